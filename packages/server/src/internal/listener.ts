/**
 * The server's listener and its graceful shutdown (see `Server`): the Node server under the
 * platform's `HttpServer`, a drain that lets every request in flight finish, and the serving of
 * the `HttpApi`.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as MutableRef from "effect/MutableRef"
import * as NodeHttp from "node:http"

/** The Node server under the platform's `HttpServer`, and whether it is shutting down. */
class Listener extends Context.Tag("@liaison/server/Server/Listener")<Listener, {
  readonly node: NodeHttp.Server
  readonly draining: MutableRef.MutableRef<boolean>
}>() {}

/**
 * The Node server listening at `options`, and the platform's `HttpServer` over it.
 *
 * @internal
 */
export const listen = (options: { readonly port: number; readonly host: string }) =>
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

/** `GET /` answers 302 to the API docs: a browser pointed at the server lands on Swagger UI. */
const rootToDocs = HttpApiBuilder.Router.use((router) => router.get("/", Effect.succeed(toDocs)))

const toDocs = HttpServerResponse.redirect("/docs", { status: 302 })

/**
 * The start-up line: where the server listens, where its docs are (on `localhost` when it
 * listens on every interface, an address a browser can open) and what runs on built-in sandboxes.
 * (Exported for its test; `internal/` is not part of the package's exports.)
 */
export const startupLine = (url: string, sandboxes: ReadonlyArray<string>): string => {
  const browsable = url.replace(/^http:\/\/(0\.0\.0\.0|::|\[::\]):/, "http://localhost:")
  const parts = sandboxes.length === 0 ? "no built-in sandboxes" : `built-in sandboxes: ${sandboxes.join(", ")}`
  return `Liaison demo server listening on ${url} — API docs at ${browsable}/docs; ${parts}`
}

/**
 * Serves the `HttpApi` in context (with Swagger UI at `/docs`, `GET /` redirecting there, and
 * the OpenAPI document at `/openapi.json`) on the {@link listen}er; at shutdown, drains for up to
 * `shutdownTimeout`. `sandboxes` names the parts on built-in sandboxes, for the start-up line.
 *
 * @internal
 */
export const serve = (shutdownTimeout: Duration.Duration, sandboxes: ReadonlyArray<string> = []) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const { draining, node } = yield* Listener
      const app = yield* HttpApiBuilder.httpApp
      yield* HttpServer.serveEffect(app, closeConnectionsWhenDraining(draining))
      // Added after `serveEffect`'s own finalizer, so it runs first: the handler stays attached
      // until every request in flight is answered.
      yield* Effect.addFinalizer(() => drain(node, draining, shutdownTimeout))
      yield* HttpServer.addressFormattedWith((url) => Effect.logInfo(startupLine(url, sandboxes)))
    })
  ).pipe(
    Layer.provide([
      HttpApiSwagger.layer({ path: "/docs" }),
      rootToDocs,
      HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })
    ]),
    Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer])
  )
