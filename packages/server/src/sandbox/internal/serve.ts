/**
 * What the fake Stripe and SendGrid servers share: an `@effect/platform-node` server for the life
 * of a scope, a log of every request, faults to inject (an error answer, a dropped connection, an
 * answer lost after the request was processed), once or until recovery, and the fake's state in
 * one `Ref` that each request changes with one pure transition (`Ref.modify`), so that a request's
 * checks and its changes are atomic.
 *
 * The request body is read from the Node request itself, up to a limit: a larger body is drained
 * and answered (413), never cut off, as the real APIs do.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import * as http from "node:http"
import type * as net from "node:net"

/** A request as the fake received it (public through the `StripeSandbox` and `SendGridSandbox` faces). */
export interface RecordedRequest {
  readonly method: string
  /** The path, without the query string. */
  readonly path: string
  /** The raw query string, without `?`. */
  readonly query: string
  /** Lowercase names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>
  /** The body as UTF-8 text. */
  readonly body: string
}

/**
 * A misbehaviour, consumed by one request (or every request during an outage):
 *
 * - `Respond`: answer this instead of processing the request;
 * - `Drop`: close the connection without an answer, the request not processed;
 * - `DropAfterProcessing`: process the request (its effects happen), then close the connection
 *   without an answer: the client cannot tell whether it happened.
 */
export type Fault =
  | {
    readonly _tag: "Respond"
    readonly status: number
    readonly body?: unknown
    readonly headers?: Readonly<Record<string, string>> | undefined
  }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "DropAfterProcessing" }

/** An answer a fake computed. @internal */
export interface Answer {
  readonly status: number
  /** Serialized as JSON; `undefined` for an empty body. */
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** Controls shared by both fakes. */
export interface FakeControls {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  /** Every request received so far, oldest first (faulted ones included). */
  readonly requests: () => ReadonlyArray<RecordedRequest>
  /** Queues faults: each is consumed by one request, in order. */
  readonly inject: (...faults: ReadonlyArray<Fault>) => void
  /** Every request meets this fault until {@link recover}. */
  readonly outage: (fault: Fault) => void
  /** Ends an outage and drops the faults still queued. */
  readonly recover: () => void
  readonly close: () => Promise<void>
}

/** A random id of `length` letters and digits. @internal */
export const randomId = (length: number): string => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  const bytes = randomBytes(length)
  let id = ""
  for (const byte of bytes) id += alphabet[byte % alphabet.length]
  return id
}

/** Settings of {@link serve}: the fake's state and its one transition. @internal */
export interface ServeOptions<S> {
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** Largest body read; a larger one gets `tooLarge`. */
  readonly maxBodyBytes: number
  readonly tooLarge: Answer
  /** Headers on every answer, e.g. a fresh `Request-Id`. */
  readonly commonHeaders: () => Readonly<Record<string, string>>
  readonly initial: S
  /** Answers a request given the common headers of its answer: the answer and the next state. */
  readonly transition: (state: S, request: RecordedRequest, common: Readonly<Record<string, string>>) => readonly [
    Answer,
    S
  ]
}

/** A running fake: its controls (but `close`, which the scope does) and its current state. @internal */
export interface Served<S> extends Omit<FakeControls, "close"> {
  readonly state: () => S
}

const headerRecord = (headers: http.IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(", ") : value ?? ""])
  )

/** Reads the body up to `limit` bytes; `undefined` when it is larger (the rest is drained). */
const readBody = async (req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> => {
  const chunks: Array<Buffer> = []
  let size = 0
  for await (const chunk of req) {
    const buffer = chunk instanceof Buffer ? chunk : Buffer.from(String(chunk))
    size += buffer.length
    if (size > limit) {
      req.resume()
      return undefined
    }
    chunks.push(buffer)
  }
  return Buffer.concat(chunks)
}

const toResponse = (answer: Answer, common: Readonly<Record<string, string>>) => {
  const headers = { ...common, ...answer.headers }
  return answer.body === undefined
    ? HttpServerResponse.empty({ status: answer.status, headers: { ...headers, "content-length": "0" } })
    : HttpServerResponse.text(JSON.stringify(answer.body), {
      status: answer.status,
      contentType: "application/json",
      headers
    })
}

/** Closes the connection without an answer; the request's fiber ends there. */
const drop = (req: http.IncomingMessage) => Effect.zipRight(Effect.sync(() => req.socket.destroy()), Effect.interrupt)

/** What the fake keeps besides its state: the wire log and the faults to come. */
interface Wire {
  readonly log: Array<RecordedRequest>
  readonly queue: Array<Fault>
  outage: Fault | undefined
}

/** The app: log the request, serve a fault or the transition's answer. */
const app = <S>(options: ServeOptions<S>, wire: Wire, state: Ref.Ref<S>) =>
  Effect.gen(function*() {
    const req = NodeHttpServerRequest.toIncomingMessage(yield* HttpServerRequest.HttpServerRequest)
    const body = yield* Effect.promise(() => readBody(req, options.maxBodyBytes))
    const [path = "/", query = ""] = (req.url ?? "/").split(/\?(.*)/s, 2)
    const request: RecordedRequest = {
      method: req.method ?? "GET",
      path,
      query,
      headers: headerRecord(req.headers),
      body: body === undefined ? "" : body.toString("utf8")
    }
    wire.log.push(request)
    const common = options.commonHeaders()
    if (body === undefined) return toResponse(options.tooLarge, common)
    const fault = wire.outage ?? wire.queue.shift()
    if (fault?._tag === "Drop") return yield* drop(req)
    if (fault?._tag === "Respond") return toResponse(fault, common)
    const answer = yield* Ref.modify(state, (current) => options.transition(current, request, common))
    if (fault?._tag === "DropAfterProcessing") return yield* drop(req)
    return toResponse(answer, common)
  }).pipe(
    // A request the fake cannot read or answer loses its connection, as before any answer.
    Effect.catchAllDefect(() =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        drop(NodeHttpServerRequest.toIncomingMessage(request)))
    )
  )

const urlOf = (address: HttpServer.Address): string =>
  address._tag === "UnixAddress"
    ? `unix://${address.path}`
    : `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`

/**
 * Listens on a free port (default) of `127.0.0.1` for the life of the scope, whose end destroys
 * every open connection.
 *
 * @internal
 */
export const serve = <S>(options: ServeOptions<S>): Effect.Effect<Served<S>, HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const wire: Wire = { log: [], queue: [], outage: undefined }
    const state = yield* Ref.make(options.initial)
    const sockets = new Set<net.Socket>()
    const server = yield* NodeHttpServer.make(() => {
      const node = http.createServer()
      node.on("connection", (socket) => {
        sockets.add(socket)
        socket.once("close", () => sockets.delete(socket))
      })
      return node
    }, { host: options.host ?? "127.0.0.1", port: options.port ?? 0 })
    // Added after the server's own finalizer, so it runs first: `close` would wait for idle keep-alives.
    yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((socket) => socket.destroy())))
    yield* HttpServer.serveEffect(app(options, wire, state)).pipe(Effect.provideService(HttpServer.HttpServer, server))
    return {
      url: urlOf(server.address),
      requests: () => [...wire.log],
      inject: (...faults) => {
        wire.queue.push(...faults)
      },
      outage: (fault) => {
        wire.outage = fault
      },
      recover: () => {
        wire.outage = undefined
        wire.queue.length = 0
      },
      state: () => Effect.runSync(Ref.get(state))
    }
  })

/**
 * Runs a scoped fake outside Effect: it stops when `close()` is called.
 *
 * @internal
 */
export const start = async <A>(
  make: Effect.Effect<A, HttpServerError.ServeError, Scope.Scope>
): Promise<A & { readonly close: () => Promise<void> }> => {
  const scope = Effect.runSync(Scope.make())
  const fake = await Effect.runPromise(Scope.extend(make, scope))
  return { ...fake, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}
