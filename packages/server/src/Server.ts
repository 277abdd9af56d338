/**
 * The demo server as one layer: the {@link Api.Api} served by Node's HTTP server, its upstream
 * (the configured one, or the in-process {@link Sandbox}), Redis for `/health` when configured,
 * Swagger UI at `/docs` and the OpenAPI document at `/openapi.json`.
 *
 * Shutdown is graceful. When the layer's scope closes (SIGTERM under `main`), the server first
 * stops accepting connections and closes the idle ones, then lets every request in flight finish
 * (its response carries `connection: close`, so no new request follows it on that connection)
 * for up to `shutdownTimeout`, and only then stops serving, closes the upstream client and the
 * sandbox. Without this, the platform's serve layer would detach the request handler first, and a
 * request arriving on a kept-alive connection in the meantime would never be answered.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Auth, CircuitBreaker, Http, Policy, RateLimit, Redis } from "@liaison/core"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as MutableRef from "effect/MutableRef"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as NodeHttp from "node:http"
import * as ApiLive from "./ApiLive.js"
import * as CachedUsers from "./CachedUsers.js"
import * as CacheLive from "./CacheLive.js"
import { ServerConfig } from "./Config.js"
import * as EmailsLive from "./EmailsLive.js"
import * as Health from "./Health.js"
import * as PaymentsLive from "./PaymentsLive.js"
import * as ProtectedLive from "./ProtectedLive.js"
import * as Sandbox from "./Sandbox.js"
import * as Upstream from "./Upstream.js"
import * as WebhooksLive from "./WebhooksLive.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default 3000; 0 picks a free port (read it back with {@link url}). */
  readonly port?: number | undefined
  /** Default `0.0.0.0`. */
  readonly host?: string | undefined
  /** The users API to proxy; without it the built-in {@link Sandbox} is started. */
  readonly upstreamUrl?: string | undefined
  /** Redis for `/health`; without it `/health` reports `redis: "disabled"`. */
  readonly redisUrl?: Redacted.Redacted<string> | undefined
  /** The upstream client's timeouts, pool, etc. Its base URL is the upstream's. */
  readonly http?: Omit<Http.Options, "baseUrl"> | undefined
  /** How long in-flight requests may take to finish at shutdown. Default 30 seconds. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /**
   * The resilience policy of every upstream call (`false`: none) and the options of its circuit
   * breakers. Default: `Policy`'s and `CircuitBreaker`'s defaults.
   */
  readonly resilience?: Resilience | undefined
  /**
   * The credentials `GET /protected/{mode}` calls the upstream with. Default: none (with the
   * sandbox, its demo credentials and built-in token endpoint).
   */
  readonly auth?: ProtectedLive.Settings | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Resilience {
  readonly policy?: Policy.Options | false | undefined
  readonly breaker?: CircuitBreaker.Options | undefined
}

/** The Node server under the platform's `HttpServer`, and whether it is shutting down. */
class Listener extends Context.Tag("@liaison/server/Server/Listener")<Listener, {
  readonly node: NodeHttp.Server
  readonly draining: MutableRef.MutableRef<boolean>
}>() {}

const listen = (options: { readonly port: number; readonly host: string }) =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const node = NodeHttp.createServer()
      const server = yield* NodeHttpServer.make(() => node, options)
      return Context.make(HttpServer.HttpServer, server).pipe(
        Context.add(Listener, { node, draining: MutableRef.make(false) })
      )
    })
  ).pipe(Layer.merge(NodeHttpServer.layerContext))

/** While draining, every response closes its connection after it. */
const closeConnectionsWhenDraining = (draining: MutableRef.MutableRef<boolean>) =>
  HttpMiddleware.make((app) =>
    Effect.zipRight(
      HttpApp.appendPreResponseHandler((_request, response) =>
        Effect.succeed(
          MutableRef.get(draining) ? HttpServerResponse.setHeader(response, "connection", "close") : response
        )
      ),
      app
    )
  )

/**
 * Stops accepting connections (Node's `close` also closes the idle ones) and waits until every
 * connection has ended, closing those still open after `timeout`.
 */
const drain = (node: NodeHttp.Server, draining: MutableRef.MutableRef<boolean>, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    MutableRef.set(draining, true)
    const closed = yield* Deferred.make<boolean>()
    yield* Effect.sync(() => {
      let forced = false
      const deadline = setTimeout(() => {
        forced = true
        node.closeAllConnections()
      }, Duration.toMillis(timeout))
      node.close(() => {
        clearTimeout(deadline)
        Deferred.unsafeDone(closed, Exit.succeed(forced))
      })
    })
    yield* Effect.logInfo("shutting down: no new connections, finishing the requests in flight")
    if (yield* Deferred.await(closed)) {
      yield* Effect.logWarning(`shutting down: requests still in flight after ${Duration.format(timeout)} were cut off`)
    }
  })

const serve = (shutdownTimeout: Duration.Duration) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const { draining, node } = yield* Listener
      const app = yield* HttpApiBuilder.httpApp
      yield* HttpServer.serveEffect(app, closeConnectionsWhenDraining(draining))
      // Added after `serveEffect`'s own finalizer, so it runs first: the handler stays attached
      // until every request in flight is answered.
      yield* Effect.addFinalizer(() => drain(node, draining, shutdownTimeout))
      yield* HttpServer.addressFormattedWith((url) => Effect.logInfo(`listening on ${url}`))
    })
  ).pipe(
    Layer.provide([
      HttpApiSwagger.layer({ path: "/docs" }),
      HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })
    ]),
    Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer])
  )

/** Only the origin is logged: a path may be long, a URL's user info is a secret. */
const originOf = (url: string) => URL.canParse(url) ? new URL(url).origin : "(not a URL)"

/** The upstream client, its calls through the resilience policy. */
const resilient = <E>(
  http: Layer.Layer<Http.Http, E>,
  policy: Policy.Options | false
): Layer.Layer<Http.Http, E | Policy.InvalidOptions, CircuitBreaker.CircuitBreaker | RateLimit.RateLimiter> =>
  policy === false ? http : Layer.provide(Policy.layer(policy), http)

const upstream = <E, R>(
  upstreamUrl: Option.Option<string>,
  http: ProtectedLive.HttpFactory<E, R>,
  auth: ProtectedLive.Settings
): Layer.Layer<
  Upstream.Upstream | ProtectedLive.Protected,
  E | HttpServerError.ServeError | Auth.InvalidCredentials,
  R
> =>
  Option.match(upstreamUrl, {
    onSome: (baseUrl) =>
      Layer.merge(
        Layer.provide(
          Upstream.layer,
          Layer.merge(http(baseUrl, undefined), Layer.effectDiscard(Effect.logInfo(`upstream: ${originOf(baseUrl)}`)))
        ),
        ProtectedLive.layer({ baseUrl, sandbox: false, settings: auth, http })
      ),
    onNone: () =>
      Layer.unwrapEffect(
        Effect.gen(function*() {
          const { baseUrl } = yield* Sandbox.Sandbox
          yield* Effect.logInfo(`no UPSTREAM_URL: using the built-in sandbox users upstream at ${baseUrl}`)
          return Layer.merge(
            Layer.provide(Upstream.layer, http(baseUrl, undefined)),
            ProtectedLive.layer({ baseUrl, sandbox: true, settings: auth, http })
          )
        })
      ).pipe(Layer.provide(Sandbox.layer({ credentials: ProtectedLive.sandboxCredentials(auth) })))
  })

/**
 * The server's stateful services: their Redis layers when `REDIS_URL` is set (all sharing one
 * client), their memory layers otherwise. Each feature adds its layer here.
 */
const services = (redis: Option.Option<Layer.Layer<Redis.Redis>>, resilience: ServerConfig["resilience"]) =>
  Layer.mergeAll(
    CircuitBreaker.layer(resilience.breaker),
    Option.match(redis, {
      onNone: () => RateLimit.layerMemory,
      onSome: (redis) => Layer.provide(RateLimit.layerRedis(), redis)
    }),
    CacheLive.layer(redis),
    Option.match(redis, {
      onNone: () => Auth.layerTokenStoreMemory,
      onSome: (redis) => Layer.provide(Auth.layerTokenStoreRedis(), redis)
    }),
    WebhooksLive.layer(redis),
    PaymentsLive.layerStripe,
    EmailsLive.layer(redis)
  )

/** One client for every Redis-backed service; it connects in the background, so a Redis that is down degrades. */
const sharedRedis = (url: Redacted.Redacted<string>): Layer.Layer<Redis.Redis> =>
  Layer.scoped(Redis.Redis, Effect.orDie(Redis.make({ url, connect: "background" })))

const make = <E>(
  config: ServerConfig,
  auth: ProtectedLive.Settings,
  http: ProtectedLive.HttpFactory<E, never>
): Layer.Layer<
  HttpServer.HttpServer,
  E | HttpServerError.ServeError | Policy.InvalidOptions | ConfigError.ConfigError | Auth.InvalidCredentials
> => {
  const health = Option.match(config.redisUrl, {
    onNone: () => Health.layerDisabled,
    onSome: (url) => Health.layerRedis({ url })
  })
  // Built in this order, released in the reverse: the listener, then the upstream and Redis,
  // then the API; at shutdown the requests in flight finish before their upstream goes away.
  // One layer value: Effect builds it once however many services use it.
  const redis = Option.map(config.redisUrl, sharedRedis)
  const users = upstream(
    config.upstreamUrl,
    (baseUrl, authenticate) => resilient(http(baseUrl, authenticate), config.resilience.policy),
    auth
  )
  const server = serve(config.shutdownTimeout).pipe(
    Layer.provide(ApiLive.layer),
    Layer.provide(Layer.mergeAll(users, health, Layer.provide(CachedUsers.layer, users))),
    Layer.provide(services(redis, config.resilience)),
    Layer.provideMerge(listen(config))
  )
  return Layer.effect(HttpServer.HttpServer, HttpServer.HttpServer).pipe(Layer.provide(server))
}

/**
 * The server from explicit options, e.g. in tests:
 * `Server.layer({ port: 0, host: "127.0.0.1", http: { timeouts: { read: "100 millis" } } })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<
  HttpServer.HttpServer,
  HttpServerError.ServeError | Policy.InvalidOptions | ConfigError.ConfigError | Auth.InvalidCredentials
> =>
  make(
    {
      port: options.port ?? 3000,
      host: options.host ?? "0.0.0.0",
      upstreamUrl: Option.fromNullable(options.upstreamUrl),
      redisUrl: Option.fromNullable(options.redisUrl),
      shutdownTimeout: Duration.decode(options.shutdownTimeout ?? Duration.seconds(30)),
      resilience: { policy: options.resilience?.policy ?? {}, breaker: options.resilience?.breaker ?? {} }
    },
    options.auth ?? {},
    (baseUrl, authenticate) =>
      Http.layer({
        ...options.http,
        baseUrl,
        transformClient: ProtectedLive.composeTransforms(authenticate, options.http?.transformClient)
      })
  )

/**
 * The server configured by {@link ServerConfig} (`PORT`, `HOST`, `UPSTREAM_URL`, `REDIS_URL`,
 * `SHUTDOWN_TIMEOUT`), its upstream client by `Http.layerConfig` (`HTTP_*_TIMEOUT`, …).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<
  HttpServer.HttpServer,
  ConfigError.ConfigError | HttpServerError.ServeError | Policy.InvalidOptions | Auth.InvalidCredentials
> = Layer.unwrapEffect(
  Effect.map(
    Effect.all([ServerConfig, ProtectedLive.config]),
    ([config, auth]) =>
      make(config, auth, (baseUrl, authenticate) => Http.layerConfig({ baseUrl, transformClient: authenticate }))
  )
)

/**
 * Where the server listens, e.g. `http://127.0.0.1:43121`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const url: Effect.Effect<string, never, HttpServer.HttpServer> = HttpServer.addressFormattedWith(Effect.succeed)
