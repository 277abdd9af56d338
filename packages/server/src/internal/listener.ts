/**
 * The server's listener and its graceful shutdown (see `Server`): the Node server under the
 * platform's `HttpServer`, opened only once the whole app is built, its timeouts and caps, a
 * drain that lets every request in flight finish, and the serving of the `HttpApi`.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Etag from "@effect/platform/Etag"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiSwagger from "@effect/platform/HttpApiSwagger"
import * as HttpPlatform from "@effect/platform/HttpPlatform"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as MutableRef from "effect/MutableRef"
import * as Scope from "effect/Scope"
import * as NodeHttp from "node:http"
import type * as Net from "node:net"
import type { Connections } from "../Config.js"
import * as Probes from "../health/Probes.js"
import * as Access from "../observability/Access.js"
import { problemBody, toProblem } from "./problem.js"

/**
 * How often Node checks the headers and request timeouts (its default, 30 s, would let a slow
 * client hold its connection up to 30 s past its timeout).
 */
const connectionsCheckingInterval = 1000

/**
 * Answers `503` (`Retry-After: 1`, problem+json) to a request that arrives while no handler is
 * attached: in the moment between the port opening and the app's handler attaching, and after
 * the handler is detached at shutdown. Without it Node would leave the request unanswered.
 */
const answerWhenNoHandler =
  (node: NodeHttp.Server) => (_request: NodeHttp.IncomingMessage, response: NodeHttp.ServerResponse) => {
    if (node.listenerCount("request") > 1 || response.headersSent) return
    const body = Probes.unavailableBody("The server is not ready to serve requests; retry shortly.")
    response.writeHead(503, {
      "content-type": "application/problem+json",
      "content-length": Buffer.byteLength(body),
      "retry-after": "1",
      "connection": "close"
    })
    response.end(body)
  }

/** What Node's own parser and timers reject, as Node itself would answer it. */
const clientErrorStatus = (code: string | undefined): number =>
  code === "HPE_HEADER_OVERFLOW"
    ? 431
    : code === "HPE_CHUNK_EXTENSIONS_OVERFLOW"
    ? 413
    : code === "ERR_HTTP_REQUEST_TIMEOUT"
    ? 408
    : 400

const clientErrorDetail: Record<number, string> = {
  400: "The request is not valid HTTP.",
  408: "The request did not arrive within the server's request timeout.",
  413: "The request's chunk extensions are too large.",
  431: "The request's headers are larger than the server accepts."
}

/**
 * Node's own answer to a request its parser or timers reject (malformed HTTP, headers over
 * `maxHeaderSize`, a request or headers timeout), as problem+json instead of an empty body. As
 * Node does, it answers only while nothing of a response is on the wire, then closes the socket.
 */
const answerClientError = (error: Error & { readonly code?: string }, socket: Net.Socket) => {
  const inFlight: unknown = Reflect.get(socket, "_httpMessage")
  const started = inFlight instanceof NodeHttp.ServerResponse && inFlight.headersSent
  if (socket.writable && !started && error.code !== "ECONNRESET") {
    const status = clientErrorStatus(error.code)
    const body = problemBody(status, clientErrorDetail[status] ?? "The request was rejected.")
    socket.write(
      `HTTP/1.1 ${status} ${NodeHttp.STATUS_CODES[status]}\r\n` +
        "Content-Type: application/problem+json\r\n" +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        "Connection: close\r\n\r\n" + body
    )
  }
  socket.destroy(error)
}

/**
 * A Node server with `connections`' timeouts and caps. (Exported for its test; `internal/` is
 * not part of the package's exports.)
 */
export const nodeServer = (connections: Connections): NodeHttp.Server => {
  const node = NodeHttp.createServer({
    headersTimeout: Duration.toMillis(connections.headersTimeout),
    requestTimeout: Duration.toMillis(connections.requestTimeout),
    maxHeaderSize: connections.maxHeaderSize,
    connectionsCheckingInterval
  })
  node.keepAliveTimeout = Duration.toMillis(connections.keepAliveTimeout)
  node.maxConnections = connections.maxConnections
  node.on("request", answerWhenNoHandler(node))
  node.on("clientError", answerClientError)
  return node
}

/** While draining, every response closes its connection after it; every error is problem+json. */
const finishWith =
  (draining: MutableRef.MutableRef<boolean>) =>
  (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse =>
    toProblem(MutableRef.get(draining) ? HttpServerResponse.setHeader(response, "connection", "close") : response)

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
 * Where and how the server listens.
 *
 * @internal
 */
export interface ServeOptions {
  readonly port: number
  readonly host: string
  readonly shutdownTimeout: Duration.Duration
  readonly connections: Connections
  /** The parts on built-in sandboxes, for the start-up line. */
  readonly sandboxes?: ReadonlyArray<string> | undefined
}

/** Builds the app, then opens the port and attaches the app's handler; drains at shutdown. */
const listenAndServe = (options: ServeOptions) =>
  Effect.gen(function*() {
    const { draining } = yield* Probes.Lifecycle
    // Everything the app needs is built before this layer, and the app itself before the port
    // opens: no connection is accepted that the app cannot answer.
    const app = yield* HttpApiBuilder.httpApp
    const node = nodeServer(options.connections)
    const server = yield* NodeHttpServer.make(() => node, { port: options.port, host: options.host })
    // Each request copies the serving fiber's context to add itself: serve with only the scope and
    // the platform's services (the handlers keep the context they were built with), not every
    // service of the server.
    yield* server.serve(app, Access.make(finishWith(draining))).pipe(
      Effect.mapInputContext((context: Context.Context<Scope.Scope | HttpRouter.HttpRouter.DefaultServices>) =>
        Context.pick(Scope.Scope, HttpPlatform.HttpPlatform, Etag.Generator, FileSystem.FileSystem, Path.Path)(context)
      )
    )
    // Added after `serve`'s own finalizer, so it runs first: readiness turns false, then the
    // handler stays attached until every request in flight is answered.
    yield* Effect.addFinalizer(() => drain(node, draining, options.shutdownTimeout))
    const context = Context.make(HttpServer.HttpServer, server)
    yield* HttpServer.addressFormattedWith((url) => Effect.logInfo(startupLine(url, options.sandboxes ?? []))).pipe(
      Effect.provide(context)
    )
    return context
  })

/**
 * Serves the `HttpApi` in context (with Swagger UI at `/docs`, `GET /` redirecting there, the
 * OpenAPI document at `/openapi.json`, and the probes `/livez` and `/readyz`) on a Node server
 * that listens only once all of it is built; at shutdown, `/readyz` turns 503 and the server
 * drains for up to `shutdownTimeout`.
 *
 * @internal
 */
export const serve = (options: ServeOptions) =>
  Layer.scopedContext(listenAndServe(options)).pipe(
    Layer.provide([
      HttpApiSwagger.layer({ path: "/docs" }),
      rootToDocs,
      Probes.routes,
      HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })
    ]),
    Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer]),
    Layer.provide(Probes.layerLifecycle)
  )
