/**
 * The demo server as one layer: the {@link Api.Api} served by Node's HTTP server, its upstream
 * (the configured one, or the in-process {@link Sandbox}), its state chosen once by `Stores`
 * (memory, or one shared Redis client when `REDIS_URL` is set), Swagger UI at `/docs` and the
 * OpenAPI document at `/openapi.json`.
 *
 * Shutdown is graceful. When the layer's scope closes (SIGTERM under `main`), the server first
 * stops accepting connections and closes the idle ones, then lets every request in flight finish
 * (its response carries `connection: close`, so no new request follows it on that connection)
 * for up to `shutdownTimeout`, and only then stops serving, closes the upstream client and the
 * sandbox. Without this, the platform's serve layer would detach the request handler first, and a
 * request arriving on a kept-alive connection in the meantime would never be answered.
 *
 * Start-up is the mirror image: the port opens only once the whole app (sandboxes, Redis client,
 * services, handler) is built, so a connection is refused rather than left waiting; a request
 * that still finds no handler attached is answered `503` with `Retry-After: 1`. `GET /livez`
 * (the process is up) and `GET /readyz` (built, Redis answering when configured, not draining)
 * are the probes; `/readyz` turns 503 first at shutdown. Client connections are bounded by
 * `connections` (headers and request timeouts, keep-alive, header size, open connections).
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import { Cache, CircuitBreaker, Http, LiaisonError, Policy, RateLimit, Redis } from "@liaison/core"
import type { Auth } from "@liaison/core"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as ApiLive from "./ApiLive.js"
import type { Connections } from "./Config.js"
import { connectionDefaults, connectionsProblem, defaults, ServerConfig } from "./Config.js"
import * as Emails from "./emails/Emails.js"
import * as Health from "./health/Health.js"
import { serve } from "./internal/listener.js"
import * as MetricsLive from "./observability/Live.js"
import * as PaymentsLive from "./payments/Live.js"
import * as ProtectedLive from "./protected/Live.js"
import * as Safety from "./Safety.js"
import type { SandboxCredentials } from "./sandbox/Auth.js"
import { demoCredentials } from "./sandbox/secrets.js"
import * as Sandbox from "./sandbox/Users.js"
import * as Settings from "./Settings.js"
import * as Stores from "./Stores.js"
import * as CachedUsers from "./users/CachedUsers.js"
import * as Upstream from "./users/Upstream.js"
import * as WebhookSources from "./webhooks/Sources.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default 3000; 0 picks a free port (read it back with {@link url}). */
  readonly port?: number | undefined
  /** Default `127.0.0.1` (see `Safety` for what a non-loopback address needs). */
  readonly host?: string | undefined
  /** The users API to proxy; without it the built-in {@link Sandbox} is started. */
  readonly upstreamUrl?: string | undefined
  /** Redis for every stateful service (see `Stores`) and `/health`; without it memory, and `/health` reports `redis: "disabled"`. */
  readonly redisUrl?: Redacted.Redacted<string> | undefined
  /** The upstream client's timeouts, pool, etc. Its base URL is the upstream's. */
  readonly http?: Omit<Http.Options, "baseUrl"> | undefined
  /** How long in-flight requests may take to finish at shutdown. Default 30 seconds. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /**
   * What a client connection may take: headers and request timeouts, keep-alive, header size,
   * open connections. Default: `Config.connectionDefaults` (10 s, 30 s, 5 s, 16 KiB, 1024).
   */
  readonly connections?: ConnectionOptions | undefined
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
 * {@link Options}' `connections`; each unset one keeps its default (`Config.connectionDefaults`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionOptions {
  readonly headersTimeout?: Duration.DurationInput | undefined
  /** At least `headersTimeout`. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  readonly keepAliveTimeout?: Duration.DurationInput | undefined
  /** Bytes. */
  readonly maxHeaderSize?: number | undefined
  readonly maxConnections?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Resilience {
  readonly policy?: Policy.Options | false | undefined
  readonly breaker?: CircuitBreaker.Options | undefined
}

/**
 * Why the server could not start: its port is taken, a setting is unreadable or contradictory,
 * or credentials are malformed.
 *
 * @since 0.1.0
 * @category errors
 */
export type StartError =
  | HttpServerError.ServeError
  | LiaisonError.InvalidOptions
  | ConfigError.ConfigError
  | Auth.InvalidCredentials
  | Safety.UnsafeConfiguration
  | Settings.InvalidConfiguration

/**
 * Builds the upstream's `Http` client at `baseUrl` with an authentication transform applied first.
 *
 * @since 0.1.0
 * @category models
 */
export type HttpFactory<E, R> = (
  baseUrl: string,
  authenticate: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
) => Layer.Layer<Http.Http, E, R>

/**
 * Authentication first, then the caller's own transform (e.g. a retry) around it.
 *
 * @since 0.1.0
 * @category combinators
 */
export const composeTransforms = (
  authenticate: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined,
  outer: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
): ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined =>
  authenticate === undefined ? outer : outer === undefined ? authenticate : (client) => outer(authenticate(client))

/**
 * What the built-in sandbox accepts: the configured credentials, its demo ones for the rest;
 * tokens it did not issue too when a real token endpoint is configured (it cannot check those).
 *
 * @since 0.1.0
 * @category constructors
 */
export const sandboxCredentials = (settings: ProtectedLive.Settings): SandboxCredentials => {
  const apiKey = settings.apiKey
  return {
    bearerToken: settings.bearer?.token ?? demoCredentials.bearerToken,
    apiKey: apiKey === undefined ? demoCredentials.apiKey : {
      key: apiKey.key,
      in: apiKey.in ?? "header",
      name: apiKey.name ?? (apiKey.in === "query" ? "api_key" : "X-API-Key")
    },
    basic: settings.basic ?? demoCredentials.basic,
    oauth2Client: demoCredentials.oauth2Client,
    acceptExternalTokens: settings.oauth2 !== undefined
  }
}

/** Only the origin is logged: a path may be long, a URL's user info is a secret. */
const originOf = (url: string) => URL.canParse(url) ? new URL(url).origin : "(not a URL)"

/** The upstream client, its calls through the resilience policy. */
const resilient = <E>(
  http: Layer.Layer<Http.Http, E>,
  policy: Policy.Options | false
): Layer.Layer<Http.Http, E | LiaisonError.InvalidOptions, CircuitBreaker.CircuitBreaker | RateLimit.RateLimit> =>
  policy === false ? http : Layer.provide(Policy.layer(policy), http)

const upstream = <E, R>(
  upstreamUrl: Option.Option<string>,
  http: HttpFactory<E, R>,
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
        ProtectedLive.layer({ baseUrl, settings: auth, http })
      ),
    onNone: () => {
      const credentials = sandboxCredentials(auth)
      return Layer.unwrapEffect(
        Effect.gen(function*() {
          const { baseUrl } = yield* Sandbox.Sandbox
          yield* Effect.logInfo(`no UPSTREAM_URL: using the built-in sandbox users upstream at ${baseUrl}`)
          return Layer.merge(
            Layer.provide(Upstream.layer, http(baseUrl, undefined)),
            ProtectedLive.layer({ baseUrl, sandbox: { baseUrl, credentials }, settings: auth, http })
          )
        })
      ).pipe(Layer.provide(Sandbox.layer({ credentials })))
    }
  })

/**
 * The parts that run on built-in sandboxes, for the start-up line: the users upstream without
 * `UPSTREAM_URL`, Stripe without `STRIPE_SECRET_KEY`, SendGrid without `SENDGRID_API_KEY`, and
 * the webhook secrets left on their sandbox defaults. (Each part also says so in its own log line.)
 */
const sandboxesOf = (config: ServerConfig): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(
    Effect.all([PaymentsLive.config, Emails.settings, WebhookSources.settings]),
    ([stripe, emails, webhooks]) => [
      ...(Option.isNone(config.upstreamUrl) ? ["users upstream (UPSTREAM_URL unset)"] : []),
      ...(Option.isNone(stripe.secretKey) ? ["Stripe"] : []),
      ...(Option.isNone(emails.apiKey) ? ["SendGrid"] : []),
      ...(webhooks.sandboxDefaults.length === 0 ? [] : [`webhook secrets (${webhooks.sandboxDefaults.join(", ")})`])
    ]
  ).pipe(
    // An unreadable setting fails the layer that reads it, with its own message.
    Effect.orElseSucceed((): ReadonlyArray<string> => [])
  )

/**
 * The server's services, on the stores in context (see {@link storage}). Each feature adds
 * its layer here.
 */
const services = (resilience: ServerConfig["resilience"]) =>
  Layer.mergeAll(
    CircuitBreaker.layerShared(resilience.breaker),
    Cache.layerConfig(),
    WebhookSources.layer,
    PaymentsLive.layerStripe,
    Emails.layer
  ).pipe(
    // One limiter for the upstream's policy and the SendGrid and Stripe clients.
    Layer.provideMerge(RateLimit.layerConfig())
  )

/** One client for every Redis-backed service; it connects in the background, so a Redis that is down degrades. */
const sharedRedis = (url: Redacted.Redacted<string>): Layer.Layer<Redis.Redis> =>
  Layer.scoped(Redis.Redis, Effect.orDie(Redis.make({ url, connect: "background" })))

/**
 * The one choice of storage: every store, and `/health`'s ping, on one shared Redis client when
 * `REDIS_URL` is set; in memory otherwise.
 */
const storage = (redisUrl: Option.Option<Redacted.Redacted<string>>) =>
  Option.match(redisUrl, {
    onNone: () =>
      Layer.mergeAll(
        Stores.layerMemory,
        Health.layerDisabled,
        Layer.effectDiscard(Effect.logInfo(
          "state: in memory (no REDIS_URL): queued emails, webhook events and deliveries do not survive a restart"
        ))
      ),
    onSome: (url) => Layer.provide(Layer.merge(Stores.layerRedis, Health.layerRedis()), sharedRedis(url))
  })

const make = <E>(
  config: ServerConfig,
  auth: ProtectedLive.Settings,
  http: HttpFactory<E, never>
): Layer.Layer<
  HttpServer.HttpServer,
  E | StartError
> => {
  // Built in this order, released in the reverse: the stores, the services and the upstream, the
  // API, and only then the listener (no connection is accepted before the app can answer it); at
  // shutdown the requests in flight finish before their upstream goes away.
  const users = upstream(
    config.upstreamUrl,
    (baseUrl, authenticate) => resilient(http(baseUrl, authenticate), config.resilience.policy),
    auth
  )
  const server = Layer.unwrapEffect(
    Effect.map(sandboxesOf(config), (sandboxes) =>
      serve({
        port: config.port,
        host: config.host,
        shutdownTimeout: config.shutdownTimeout,
        connections: config.connections,
        sandboxes
      }))
  ).pipe(
    Layer.provide(Layer.provide(ApiLive.layer, MetricsLive.layerAccess(config.host))),
    Layer.provide(Layer.merge(users, Layer.provide(CachedUsers.layer, users))),
    Layer.provide(Layer.provideMerge(services(config.resilience), storage(config.redisUrl))),
    Layer.provide(NodeHttpServer.layerContext)
  )
  return Layer.effect(HttpServer.HttpServer, HttpServer.HttpServer).pipe(
    Layer.provide(server),
    // The platform's server span records the full URL, query string included (the sandboxes'
    // servers too); `observability/Access` records one without it.
    Layer.provide(Layer.locallyScoped(HttpMiddleware.currentTracerDisabledWhen, () => true))
  )
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
  StartError
> => {
  const connections = connectionsOf(options.connections ?? {})
  const problem = connectionsProblem(connections)
  if (problem !== undefined) {
    return Layer.fail(
      new LiaisonError.InvalidOptions({ option: `connections.${problem.option}`, reason: problem.reason })
    )
  }
  return make(
    {
      port: options.port ?? defaults.port,
      host: options.host ?? defaults.host,
      upstreamUrl: Option.fromNullable(options.upstreamUrl),
      redisUrl: Option.fromNullable(options.redisUrl),
      shutdownTimeout: Duration.decode(options.shutdownTimeout ?? defaults.shutdownTimeout),
      connections,
      resilience: { policy: options.resilience?.policy ?? {}, breaker: options.resilience?.breaker ?? {} }
    },
    options.auth ?? {},
    (baseUrl, authenticate) =>
      Http.layer({
        ...options.http,
        baseUrl,
        transformClient: composeTransforms(authenticate, options.http?.transformClient)
      })
  )
}

/** `options` over the defaults. */
const connectionsOf = (options: ConnectionOptions): Connections => ({
  headersTimeout: Duration.decode(options.headersTimeout ?? connectionDefaults.headersTimeout),
  requestTimeout: Duration.decode(options.requestTimeout ?? connectionDefaults.requestTimeout),
  keepAliveTimeout: Duration.decode(options.keepAliveTimeout ?? connectionDefaults.keepAliveTimeout),
  maxHeaderSize: options.maxHeaderSize ?? connectionDefaults.maxHeaderSize,
  maxConnections: options.maxConnections ?? connectionDefaults.maxConnections
})

/**
 * The server configured by {@link ServerConfig} (`PORT`, `HOST`, `UPSTREAM_URL`, `REDIS_URL`,
 * `SHUTDOWN_TIMEOUT`, the `SERVER_*` connection limits), its upstream client by
 * `Http.layerConfig` (`HTTP_*_TIMEOUT`, …). Before anything starts, `Settings.validate` reads every
 * setting and reports each problem once, and `Safety.check` refuses a non-loopback `HOST` with
 * missing or published secrets.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<
  HttpServer.HttpServer,
  StartError
> = Layer.unwrapEffect(
  Effect.map(
    Effect.zipRight(
      Effect.zipRight(Settings.validate, Safety.check),
      Effect.all([ServerConfig, ProtectedLive.config])
    ),
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
