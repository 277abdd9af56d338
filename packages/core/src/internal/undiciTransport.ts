/**
 * Liaison's own transport: an `HttpClient.HttpClient` over an undici `Dispatcher`, built with the
 * platform's `HttpClient.makeWith` so it composes with platform code (`mapRequest`, `transform`,
 * `Auth`, …). It talks to undici's dispatch handler directly, where `@effect/platform-node`'s client
 * goes through `Dispatcher.request` (a Node `Readable` per body, an `AbortController` and a
 * `FinalizationRegistry` entry per call, headers parsed into an object then copied again):
 *
 * - no `AbortController`: interrupting the fiber aborts through undici's own `abort` callback;
 * - headers stay undici's raw buffers until someone reads `response.headers`;
 * - the body is kept as undici hands it over: a buffered read concatenates the chunks once,
 *   a stream pulls whatever has arrived (undici pauses past {@link highWaterMark} unread bytes);
 * - no span: Liaison's `Http` opens its own redacted `http.client` span above the transport;
 * - timeouts are undici's per-request `headersTimeout` and `bodyTimeout` (no Effect timer), and
 *   a {@link HeadersDeadline} is one plain timer from dispatch to headers.
 *
 * Failures are the platform's `RequestError` (`Transport`, `InvalidUrl`) and `ResponseError`
 * (`Decode`), their `cause` undici's error, exactly as the platform client reports them.
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Undici from "@effect/platform-node/Undici"
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import type * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as IncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { HttpError } from "../HttpError.js"

/** Unread body bytes past which undici is paused until the reader catches up. */
export const highWaterMark = 64 * 1024

/**
 * A deadline for the response headers of the requests made within an effect, when it is shorter
 * than the client's own `read` timeout. `onTimeout` builds the error the call fails with when this
 * deadline is the one that fired (e.g. a `TimeoutError` in phase `attempt`).
 *
 * Liaison's transport counts it from dispatch (connecting and writing the request count), or up
 * to `at` when that is set, so that the wait for a pool slot counts too; the platform's transport
 * hands `millis` to undici as the request's `headersTimeout` (from when the request is written).
 *
 * Not marked `@internal`: tests import it (`./internal/*` is not exported by the package).
 */
export interface HeadersDeadline {
  readonly millis: number
  /** The wall-clock time (`Date.now()`) by which the headers must have arrived. */
  readonly at?: number | undefined
  readonly onTimeout: () => HttpError
}

/** What a request that missed its {@link HeadersDeadline} is aborted with. @internal */
export class DeadlineExceeded extends Error {
  readonly code = "ELIAISONDEADLINE"
}

/**
 * Milliseconds left of a deadline now (at least 1: a deadline already past still gets its timer).
 *
 * @internal
 */
export const remainingOf = (deadline: HeadersDeadline): number =>
  Math.max(1, deadline.at === undefined ? deadline.millis : deadline.at - Date.now())

/** The {@link HeadersDeadline} of the requests made by the current fiber; none by default. */
export const currentHeadersDeadline: FiberRef.FiberRef<HeadersDeadline | undefined> = globalValue(
  Symbol.for("@liaison/core/Http/currentHeadersDeadline"),
  () => FiberRef.unsafeMake<HeadersDeadline | undefined>(undefined)
)

/** The timeouts undici applies to every request: waiting for headers, and the body idling. */
export interface TransportTimeouts {
  readonly headersMillis: number
  readonly bodyMillis: number
}

/**
 * The client over `dispatcher`.
 *
 * @internal
 */
export const make = (dispatcher: Undici.Dispatcher, timeouts: TransportTimeouts): HttpClient.HttpClient =>
  HttpClient.makeWith<HttpClientError.HttpClientError, never, HttpClientError.HttpClientError, never>(
    (effect) => Effect.flatMap(effect, (request) => send(dispatcher, timeouts, request)),
    Effect.succeed
  )

const send = (
  dispatcher: Undici.Dispatcher,
  timeouts: TransportTimeouts,
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError> =>
  Effect.withFiberRuntime((fiber) => {
    const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
    if (url._tag === "Left") {
      return Effect.fail(new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause: url.left }))
    }
    const deadline = fiber.getFiberRef(currentHeadersDeadline)
    const deadlineMillis = deadline === undefined ? undefined : remainingOf(deadline)
    const timer = deadlineMillis !== undefined && deadlineMillis < timeouts.headersMillis ? deadlineMillis : undefined
    const options = (body: RequestBody): Undici.Dispatcher.DispatchOptions => ({
      origin: url.right.origin,
      // The fragment stays with the client: it is not part of an HTTP request target.
      path: url.right.pathname + url.right.search,
      method: request.method,
      headers: request.headers,
      body,
      headersTimeout: timeouts.headersMillis,
      bodyTimeout: timeouts.bodyMillis
    })
    const body = request.body
    return body._tag === "Stream"
      ? Effect.flatMap(
        NodeStream.toReadable(body.stream),
        (readable) => exchange(dispatcher, request, options(readable), timer)
      )
      : exchange(dispatcher, request, options(bodyOf(body)), timer)
  })

type RequestBody = Exclude<Undici.Dispatcher.DispatchOptions["body"], undefined>

const bodyOf = (body: Exclude<HttpBody.HttpBody, HttpBody.Stream>): RequestBody => {
  switch (body._tag) {
    case "Empty":
      return null
    case "Uint8Array":
      return body.body
    case "Raw":
      return body.body as RequestBody
    case "FormData":
      return body.formData as unknown as RequestBody
  }
}

/**
 * Dispatches the request; succeeds once the headers arrive. Interruption aborts the request, and
 * so does `deadlineMillis` passing before the headers arrive.
 */
const exchange = (
  dispatcher: Undici.Dispatcher,
  request: HttpClientRequest.HttpClientRequest,
  options: Undici.Dispatcher.DispatchOptions,
  deadlineMillis: number | undefined
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError> =>
  Effect.async((resume) => {
    const handler = new Exchange(request, resume)
    if (deadlineMillis !== undefined) handler.expireAfter(deadlineMillis)
    dispatcher.dispatch(options, handler)
    return Effect.sync(() => handler.cancel())
  })

type Resume = (effect: Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>) => void

/**
 * One request as undici's dispatch handler sees it, and the state of its body: the chunks not
 * read yet, whether the body ended or failed, and who waits for the next event.
 *
 * @internal
 */
export class Exchange implements Undici.Dispatcher.DispatchHandler {
  #abort: ((reason?: Error) => void) | undefined = undefined
  #cancelled = false
  #resume: Resume | undefined
  #resumeBody: (() => void) | undefined = undefined
  #deadline: ReturnType<typeof setTimeout> | undefined = undefined
  /** Unread chunks, and how many bytes they hold. */
  chunks: Array<Uint8Array> = []
  buffered = 0
  /** Every body byte received so far, and the most a buffered read accepts (past it: aborted). */
  received = 0
  limit = Infinity
  done = false
  failure: Error | undefined = undefined
  /** A buffered read is under way: undici is never paused. */
  whole = false
  paused = false
  /** Called on every body event (data, end, error) while someone waits for one. */
  wake: (() => void) | undefined = undefined
  headersArrived = false

  constructor(readonly request: HttpClientRequest.HttpClientRequest, resume: Resume) {
    this.#resume = resume
  }

  /** Aborts the request with a {@link DeadlineExceeded} unless its headers arrive within `millis`. */
  expireAfter(millis: number): void {
    this.#deadline = setTimeout(() => this.#expire(), millis)
  }

  #expire(): void {
    this.#deadline = undefined
    if (this.headersArrived) return
    const error = new DeadlineExceeded()
    this.abort(error)
    // Not connected yet (undici aborts it at `onConnect`): the caller hears of it now.
    if (this.#resume !== undefined) this.onError(error)
  }

  #clearDeadline(): void {
    if (this.#deadline === undefined) return
    clearTimeout(this.#deadline)
    this.#deadline = undefined
  }

  onConnect(abort: (reason?: Error) => void): void {
    if (this.#cancelled) return abort(this.failure ?? new Undici.errors.RequestAbortedError())
    this.#abort = abort
  }

  onHeaders(statusCode: number, rawHeaders: Array<Buffer>, resume: () => void): boolean {
    if (statusCode < 200) return true // 1xx: informational, the answer follows
    this.headersArrived = true
    this.#clearDeadline()
    this.#resumeBody = resume
    const callback = this.#resume
    this.#resume = undefined
    callback?.(Effect.succeed(new UndiciResponse(this.request, statusCode, rawHeaders, this)))
    return true
  }

  onData(chunk: Buffer): boolean {
    this.received += chunk.length
    if (this.received > this.limit) {
      this.abort(new BodyTooLarge())
      return false
    }
    this.chunks.push(chunk)
    this.buffered += chunk.length
    this.wake?.()
    if (this.whole || this.buffered < highWaterMark) return true
    this.paused = true
    return false
  }

  onComplete(): void {
    this.done = true
    this.wake?.()
  }

  onError(error: Error): void {
    this.#clearDeadline()
    const callback = this.#resume
    if (callback !== undefined) {
      this.#resume = undefined
      return callback(
        Effect.fail(new HttpClientError.RequestError({ request: this.request, reason: "Transport", cause: error }))
      )
    }
    if (this.done) return
    this.failure ??= error
    this.wake?.()
  }

  /** Takes the unread chunks, letting undici go on if it was paused. */
  take(): Array<Uint8Array> {
    const chunks = this.chunks
    this.chunks = []
    this.buffered = 0
    if (this.paused) {
      this.paused = false
      this.#resumeBody?.()
    }
    return chunks
  }

  /** A buffered read started: keep what arrived, let the rest flow in. */
  flow(): void {
    this.whole = true
    if (this.paused) {
      this.paused = false
      this.#resumeBody?.()
    }
  }

  /** Aborts the request unless its body has ended (an unread or half-read body frees its connection). */
  abort(reason: Error = new Undici.errors.RequestAbortedError()): void {
    if (this.done) return
    this.failure ??= reason
    if (this.#abort === undefined) this.#cancelled = true
    else this.#abort(reason)
  }

  /** The fiber waiting for the headers was interrupted. */
  cancel(): void {
    this.#clearDeadline()
    this.#resume = undefined
    this.abort()
  }
}

/** A buffered read refused a body over its limit; the caller reports it as it wants. @internal */
export class BodyTooLarge extends Error {
  readonly code = "ELIAISONBODYTOOLARGE"
}

/** The chunks of a body as one array (the only chunk itself when there is one). */
export const concat = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/** Raw header buffers (name, value, name, value…) as platform `Headers`; repeated names joined with `, `. */
const toHeaders = (raw: ReadonlyArray<Buffer | string>): { headers: Headers.Headers; setCookie: Array<string> } => {
  const record: Record<string, string> = Object.create(null)
  const setCookie: Array<string> = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString("latin1").toLowerCase()
    const value = raw[i + 1]!.toString("latin1")
    if (name === "set-cookie") setCookie.push(value)
    const existing = record[name]
    record[name] = existing === undefined ? value : `${existing}, ${value}`
  }
  return { headers: Headers.unsafeFromRecord(record), setCookie }
}

const utf8 = new TextDecoder()

/**
 * The response: status at once, everything else when asked. The body can be read once (the
 * buffered reads share one result, as the platform's do).
 *
 * @internal
 */
export class UndiciResponse extends Inspectable.Class implements HttpClientResponse.HttpClientResponse {
  readonly [HttpClientResponse.TypeId]: HttpClientResponse.TypeId = HttpClientResponse.TypeId
  readonly [IncomingMessage.TypeId]: IncomingMessage.TypeId = IncomingMessage.TypeId
  #headers: { headers: Headers.Headers; setCookie: Array<string> } | undefined = undefined
  #bytes: Uint8Array | undefined = undefined

  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    readonly status: number,
    readonly rawHeaders: ReadonlyArray<Buffer | string>,
    readonly exchange: Exchange
  ) {
    super()
  }

  get headers(): Headers.Headers {
    this.#headers ??= toHeaders(this.rawHeaders)
    return this.#headers.headers
  }

  get cookies(): Cookies.Cookies {
    this.#headers ??= toHeaders(this.rawHeaders)
    return this.#headers.setCookie.length === 0 ? Cookies.empty : Cookies.fromSetCookie(this.#headers.setCookie)
  }

  /** The `content-length` header as a number, found without converting the headers. */
  declaredLength(): number | undefined {
    if (this.#headers !== undefined) {
      const value = this.#headers.headers["content-length"]
      return value === undefined ? undefined : Number(value)
    }
    const raw = this.rawHeaders
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!
      if (name.length === 14 && name.toString("latin1").toLowerCase() === "content-length") {
        return Number(raw[i + 1]!.toString("latin1"))
      }
    }
    return undefined
  }

  get remoteAddress(): Option.Option<string> {
    return Option.none()
  }

  bodyError(cause: unknown): HttpClientError.ResponseError {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }

  /**
   * The whole body, refused (and the request aborted) past `limit` bytes with a `BodyTooLarge`
   * cause. Later reads get the same bytes.
   */
  readAll(limit = Infinity): Effect.Effect<Uint8Array, HttpClientError.ResponseError> {
    return Effect.suspend(() =>
      this.#bytes !== undefined
        ? Effect.succeed(this.#bytes)
        : Effect.map(this.collect(limit), (bytes) => this.#bytes = bytes)
    )
  }

  private collect(limit: number): Effect.Effect<Uint8Array, HttpClientError.ResponseError> {
    const exchange = this.exchange
    const settled = (): Effect.Effect<Uint8Array, HttpClientError.ResponseError> | undefined => {
      if (exchange.failure !== undefined) return Effect.fail(this.bodyError(exchange.failure))
      if (!exchange.done) return undefined
      const size = exchange.buffered
      return Effect.succeed(concat(exchange.take(), size))
    }
    return Effect.suspend(() => {
      exchange.limit = limit
      if (exchange.received > limit) exchange.abort(new BodyTooLarge())
      exchange.flow()
      return settled() ?? Effect.async<Uint8Array, HttpClientError.ResponseError>((resume) => {
        exchange.wake = () => {
          const result = settled()
          if (result === undefined) return
          exchange.wake = undefined
          resume(result)
        }
        return Effect.sync(() => {
          exchange.wake = undefined
          exchange.abort()
        })
      })
    })
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.map(this.readAll(), (bytes) => {
      const { buffer, byteOffset, byteLength } = bytes
      return buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength
        ? buffer
        : bytes.slice().buffer as ArrayBuffer
    })
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.map(this.readAll(), (bytes) => utf8.decode(bytes))
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({
        try: (): unknown => text === "" ? null : JSON.parse(text),
        catch: (cause) => this.bodyError(cause)
      }))
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.flatMap(this.text, (text) =>
      Effect.try({
        try: () => UrlParams.fromInput(new URLSearchParams(text)),
        catch: (cause) => this.bodyError(cause)
      }))
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.flatMap(this.readAll(), (bytes) =>
      Effect.tryPromise({
        try: () => new Response(bytes, { headers: this.headers }).formData(),
        catch: (cause) => this.bodyError(cause)
      }))
  }

  /** The body as it arrives; ending the stream early (or failing) aborts the request. */
  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    const exchange = this.exchange
    const next = ():
      | Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>>
      | undefined =>
    {
      if (exchange.chunks.length > 0) return Effect.succeed(Chunk.unsafeFromArray(exchange.take()))
      if (exchange.failure !== undefined) return Effect.fail(Option.some(this.bodyError(exchange.failure)))
      if (exchange.done) return Effect.fail(Option.none())
      return undefined
    }
    const pull = Effect.suspend(() =>
      next() ?? Effect.async<Chunk.Chunk<Uint8Array>, Option.Option<HttpClientError.ResponseError>>((resume) => {
        exchange.wake = () => {
          const result = next()
          if (result === undefined) return
          exchange.wake = undefined
          resume(result)
        }
        return Effect.sync(() => {
          exchange.wake = undefined
        })
      })
    )
    return Stream.repeatEffectChunkOption(pull).pipe(Stream.ensuring(Effect.sync(() => exchange.abort())))
  }

  toJSON(): unknown {
    return IncomingMessage.inspect(this, {
      _id: "@effect/platform/HttpClientResponse",
      request: this.request.toJSON(),
      status: this.status
    })
  }
}
