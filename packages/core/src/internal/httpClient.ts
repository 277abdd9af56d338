import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Undici from "@effect/platform-node/Undici"
import * as Headers from "@effect/platform/Headers"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as ParseResult from "effect/ParseResult"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import type { ResolvedOptions, Response } from "../Http.js"
import type { HttpError, Target, TimeoutError, TimeoutPhase, TransportError, TransportReason } from "../HttpError.js"
import {
  decodeError,
  InvalidRequest,
  isHttpError,
  redactUrl,
  statusError as statusErrorOf,
  timeout,
  transportError as transportErrorOf
} from "../HttpError.js"
import type { PoolSlots } from "./poolSlots.js"
import { makePoolSlots } from "./poolSlots.js"
import * as Tracing from "./tracing.js"
import {
  BodyTooLarge,
  concat,
  currentHeadersDeadline,
  DeadlineExceeded,
  type HeadersDeadline,
  UndiciResponse
} from "./undiciTransport.js"

/** @internal */
export const timeoutError = (
  request: Target,
  phase: TimeoutPhase,
  duration: Duration.Duration
): TimeoutError => timeout(request, phase, Duration.toMillis(duration))

/** Every `code` found on an error, its causes and an `AggregateError`'s errors (happy eyeballs). */
const errorCodes = (error: unknown, depth = 0): Array<string> => {
  if (typeof error !== "object" || error === null || depth > 5) return []
  const codes: Array<string> = []
  if ("code" in error && typeof error.code === "string") codes.push(error.code)
  if ("errors" in error && Array.isArray(error.errors)) {
    for (const inner of error.errors) codes.push(...errorCodes(inner, depth + 1))
  }
  if ("cause" in error) codes.push(...errorCodes(error.cause, depth + 1))
  return codes
}

const resetCodes = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_GOAWAY_SESSION"
])
const dnsCodes = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL"])
const isTlsCode = (code: string) =>
  code.startsWith("ERR_TLS") || code.startsWith("ERR_SSL") || code.startsWith("CERT_") ||
  code.includes("SELF_SIGNED") || code.startsWith("UNABLE_TO_") || code === "HOSTNAME_MISMATCH"

/** Maps what undici or Node reported on the wire to a Liaison error. @internal */
export const transportError = (
  request: HttpClientRequest.HttpClientRequest,
  cause: unknown,
  timeouts: ResolvedOptions["timeouts"]
): TimeoutError | TransportError => {
  const codes = errorCodes(cause)
  if (codes.includes("UND_ERR_CONNECT_TIMEOUT") || codes.includes("ETIMEDOUT")) {
    return timeoutError(request, "connect", timeouts.connect)
  }
  if (codes.includes("UND_ERR_HEADERS_TIMEOUT") || codes.includes("UND_ERR_BODY_TIMEOUT")) {
    return timeoutError(request, "read", timeouts.read)
  }
  const pick = (reason: TransportReason, code: string | undefined) => transportErrorOf(request, reason, code)
  const blocked = codes.find((code) => code === "ESSRFREFUSED")
  if (blocked !== undefined) return pick("blocked", blocked)
  const refused = codes.find((code) => code === "ECONNREFUSED")
  if (refused !== undefined) return pick("refused", refused)
  const dns = codes.find((code) => dnsCodes.has(code))
  if (dns !== undefined) return pick("dns", dns)
  const tls = codes.find(isTlsCode)
  if (tls !== undefined) return pick("tls", tls)
  const reset = codes.find((code) => resetCodes.has(code))
  if (reset !== undefined) return pick("reset", reset)
  return pick("other", codes[0])
}

/** What undici refuses before anything goes on the wire: a bad header value, an unsupported scheme. */
const invalidCodes = new Set(["UND_ERR_INVALID_ARG", "UND_ERR_NOT_SUPPORTED", "ERR_INVALID_URL"])

const fromRequestError = (
  request: HttpClientRequest.HttpClientRequest,
  error: HttpClientError.HttpClientError,
  options: ResolvedOptions
): HttpError => {
  // A transform of the client (e.g. `Auth`) failed with one of ours: pass it on as it is.
  if (error._tag === "RequestError" && isHttpError(error.cause)) return error.cause
  if (error._tag === "RequestError" && error.reason === "InvalidUrl") {
    // The URL as sent (base URL included), redacted: no query string, no user info.
    return new InvalidRequest({
      reason: `invalid URL ${JSON.stringify(redactUrl(error.request.url))} (${request.method})`
    })
  }
  if (error._tag === "RequestError" && error.reason !== "Transport") {
    return new InvalidRequest({ reason: `${request.method} ${redactUrl(error.request.url)}: body did not encode` })
  }
  const invalid = errorCodes(error.cause).find((code) => invalidCodes.has(code))
  if (invalid !== undefined) {
    return new InvalidRequest({
      reason: `${request.method} ${redactUrl(request.url)} refused before sending (${invalid})`
    })
  }
  return transportError(request, error.cause, options.timeouts)
}

/**
 * A request failure as an `HttpError`; a headers timeout that a {@link currentHeadersDeadline}
 * shorter than `read` set is that deadline's error (e.g. the policy's attempt timeout).
 */
const failRequest = (
  request: HttpClientRequest.HttpClientRequest,
  error: HttpClientError.HttpClientError,
  options: ResolvedOptions
): Effect.Effect<never, HttpError> => {
  if (error.cause instanceof DeadlineExceeded) {
    return Effect.flatMap(
      FiberRef.get(currentHeadersDeadline),
      (deadline) => Effect.fail(deadline?.onTimeout() ?? timeoutError(request, "read", options.timeouts.read))
    )
  }
  const mapped = fromRequestError(request, error, options)
  if (mapped._tag !== "TimeoutError" || mapped.phase !== "read") return Effect.fail(mapped)
  return Effect.flatMap(FiberRef.get(currentHeadersDeadline), (deadline) =>
    Effect.fail(
      deadline !== undefined && deadline.millis < Duration.toMillis(options.timeouts.read) &&
        errorCodes(error.cause).includes("UND_ERR_HEADERS_TIMEOUT")
        ? deadline.onTimeout()
        : mapped
    ))
}

/** A response body failing mid-way: the wire, unless nothing on the wire is to blame. */
const fromBodyError = (
  request: HttpClientRequest.HttpClientRequest,
  status: number,
  error: HttpClientError.HttpClientError,
  options: ResolvedOptions
): HttpError => {
  const mapped = transportError(request, error.cause, options.timeouts)
  return mapped._tag === "TransportError" && mapped.reason === "other" && mapped.code === undefined
    ? decodeError(request, status, "the response body could not be read")
    : mapped
}

const utf8 = new TextDecoder()

const collect = (
  request: HttpClientRequest.HttpClientRequest,
  status: number,
  stream: Stream.Stream<Uint8Array, HttpError>,
  max: number
): Effect.Effect<Uint8Array, HttpError> =>
  Stream.runFoldWhileEffect(
    stream,
    { chunks: [] as Array<Uint8Array>, size: 0 },
    () => true,
    (acc, chunk) => {
      acc.size += chunk.length
      if (acc.size > max) return Effect.fail(tooLarge(request, status, max))
      acc.chunks.push(chunk)
      return Effect.succeed(acc)
    }
  ).pipe(Effect.map((acc) => concat(acc.chunks, acc.size)))

const tooLarge = (request: HttpClientRequest.HttpClientRequest, status: number, max: number) =>
  decodeError(request, status, `the body exceeds ${max} bytes`)

/**
 * The body readers, built lazily: a caller that only wants the text pays for nothing else.
 * Idle gaps are bounded by undici's `bodyTimeout` (set to `read`), so no Effect timer runs
 * per chunk. A body with a `content-length` is read in one go by undici (refused up front
 * when it is over `maxBodyBytes`); a chunked body is collected chunk by chunk so the limit
 * stops it early.
 */
const wrapResponse = (
  request: HttpClientRequest.HttpClientRequest,
  response: HttpClientResponse.HttpClientResponse,
  options: ResolvedOptions,
  body: BodyLifecycle
): Response => {
  const status = response.status
  const max = options.maxBodyBytes
  const onBodyError = (error: HttpClientError.HttpClientError) => fromBodyError(request, status, error, options)
  const chunks = (): Stream.Stream<Uint8Array, HttpError> => {
    body.started()
    return Stream.mapError(response.stream, onBodyError)
  }
  const whole = <A>(
    read: () => Effect.Effect<A, HttpClientError.HttpClientError>,
    chunked: (bytes: Uint8Array) => A
  ): Effect.Effect<A, HttpError> =>
    Effect.suspend((): Effect.Effect<A, HttpError> => {
      if (response instanceof UndiciResponse) {
        // Liaison's transport enforces the limit as the chunks arrive, without a stream.
        const length = response.declaredLength()
        if (length !== undefined && length > max) return Effect.fail(tooLarge(request, status, max))
        body.started()
        return Effect.mapBoth(response.readAll(max), {
          onFailure: (error) =>
            error.cause instanceof BodyTooLarge ? tooLarge(request, status, max) : onBodyError(error),
          onSuccess: chunked
        })
      }
      const declared = response.headers["content-length"]
      if (declared !== undefined && Number(declared) > max) return Effect.fail(tooLarge(request, status, max))
      if (declared === undefined) return Effect.map(collect(request, status, chunks(), max), chunked)
      body.started()
      return Effect.mapError(read(), onBodyError)
    }).pipe(Effect.ensuring(body.finished))
  return {
    request,
    status,
    get headers() {
      return response.headers
    },
    get stream() {
      return Stream.suspend(chunks).pipe(Stream.ensuring(body.finished))
    },
    get bytes() {
      return whole(() => Effect.map(response.arrayBuffer, (buffer) => new Uint8Array(buffer)), (bytes) => bytes)
    },
    get text() {
      return whole(() => response.text, (bytes) => utf8.decode(bytes))
    }
  }
}

/** What the body readers tell the call: the body is being read; it is done (the slot can go). */
interface BodyLifecycle {
  readonly started: () => void
  readonly finished: Effect.Effect<void>
}

/** Reads at most `max` bytes of an error body; a body that fails to read does not hide the status. @internal */
export const statusError = (
  request: HttpClientRequest.HttpClientRequest,
  response: Response,
  max: number
): Effect.Effect<never, HttpError> =>
  Stream.runFoldWhile(
    response.stream,
    { chunks: [] as Array<Uint8Array>, size: 0 },
    (acc) => acc.size < max,
    (acc, chunk) => {
      acc.chunks.push(chunk.length > max - acc.size ? chunk.subarray(0, max - acc.size) : chunk)
      acc.size += Math.min(chunk.length, max - acc.size)
      return acc
    }
  ).pipe(
    Effect.map((acc) => utf8.decode(concat(acc.chunks, acc.size))),
    Effect.orElseSucceed(() => ""),
    Effect.flatMap((body) => {
      const { "set-cookie": _cookie, ...headers } = response.headers
      return Effect.fail(statusErrorOf(request, { status: response.status, headers, body }))
    })
  )

/** @internal */
export const withTotalTimeout =
  (request: Target, total: Duration.Duration | undefined) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | TimeoutError, R> =>
    total === undefined
      ? self
      : Effect.timeoutFail(self, { duration: total, onTimeout: () => timeoutError(request, "total", total) })

/** Bodies up to this size are written in one go; larger ones are streamed so a stalled upload is seen. */
const streamedBodyThreshold = 64 * 1024

const uploadChunks = (body: Uint8Array): Stream.Stream<Uint8Array> =>
  Stream.fromIterable(
    (function*() {
      for (let offset = 0; offset < body.length; offset += streamedBodyThreshold) {
        yield body.subarray(offset, offset + streamedBodyThreshold)
      }
    })()
  )

/**
 * Watches the upload of a streamed (or large) request body: returns the request to send,
 * its body instrumented, and a watchdog that fails with a `write` timeout when the body
 * makes no progress for `timeout` (the socket stalled by backpressure, or the body itself
 * stalled), and otherwise never completes. Timing starts when undici first pulls the body,
 * after connect (which has its own timeout). Small
 * bodies are written in one go and need no watchdog: `undefined`.
 */
const watchUpload = (
  request: HttpClientRequest.HttpClientRequest,
  timeout: Duration.Duration
):
  | Effect.Effect<{
    readonly request: HttpClientRequest.HttpClientRequest
    readonly stalled: Effect.Effect<never, TimeoutError>
  }>
  | undefined =>
{
  const body = request.body
  if (body._tag !== "Stream" && (body._tag !== "Uint8Array" || body.body.length <= streamedBodyThreshold)) {
    return undefined
  }
  const source = body._tag === "Stream" ? body.stream : uploadChunks(body.body)
  return Effect.map(Queue.sliding<"chunk" | "end">(1), (progress) => {
    const instrumented = source.pipe(
      // Starting counts as progress: a body that never yields its first chunk is a stall too.
      Stream.onStart(progress.offer("chunk")),
      Stream.tap(() => progress.offer("chunk")),
      Stream.ensuring(progress.offer("end"))
    )
    const next = Queue.take(progress).pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => timeoutError(request, "write", timeout) })
    )
    const follow = (signal: "chunk" | "end"): Effect.Effect<never, TimeoutError> =>
      signal === "end" ? Effect.never : Effect.flatMap(next, follow)
    return {
      request: HttpClientRequest.setBody(request, HttpBody.stream(instrumented, body.contentType, body.contentLength)),
      stalled: Effect.flatMap(Queue.take(progress), follow)
    }
  })
}

/**
 * An undici `Agent` whose every request has `read` as its headers and body-idle timeouts:
 * undici's own timers are far cheaper than an Effect timer per call, and undici knows when
 * the request has been written, which is when waiting for headers starts.
 * `@effect/platform-node` sets 1 h and none on each request; this runs after it. (A
 * subclass, not `compose`: an interceptor converts every handler to the new handler API
 * and back, parsing the headers twice.)
 *
 * @internal
 */
export class TimedAgent extends Undici.Agent {
  readonly #read: number
  constructor(options: Undici.Agent.Options & { readonly read: Duration.Duration }) {
    const { read, ...agentOptions } = options
    super(agentOptions)
    this.#read = Duration.toMillis(read)
  }
  override dispatch(options: Undici.Dispatcher.DispatchOptions, handler: Undici.Dispatcher.DispatchHandler): boolean {
    const deadline = (options as { readonly [headersDeadlineKey]?: number })[headersDeadlineKey]
    const headersTimeout = deadline === undefined ? this.#read : Math.min(this.#read, Math.max(1, deadline))
    return super.dispatch({ ...options, headersTimeout, bodyTimeout: this.#read }, handler)
  }
}

/** Where the platform client's request options carry a {@link currentHeadersDeadline} to {@link TimedAgent}. */
const headersDeadlineKey = Symbol.for("@liaison/core/Http/headersDeadline")

/**
 * The platform client with {@link currentHeadersDeadline} honoured: it passes the request options
 * in context (`UndiciRequestOptions`) on to the dispatcher, a {@link TimedAgent}.
 *
 * @internal
 */
export const withPlatformDeadline = (client: HttpClient.HttpClient): HttpClient.HttpClient =>
  HttpClient.transform(client, (effect) =>
    Effect.flatMap(FiberRef.get(currentHeadersDeadline), (deadline) => {
      if (deadline === undefined) return effect
      const options: Undici.Dispatcher.RequestOptions<null> & { readonly [headersDeadlineKey]: number } = {
        origin: "",
        path: "",
        method: "GET",
        [headersDeadlineKey]: deadline.millis
      }
      return Effect.provideService(effect, NodeHttpClient.UndiciRequestOptions, options)
    }))

/**
 * Cancels an unread body: the platform aborts the request when a started body stream ends or
 * is interrupted, so start one, let it run up to its first wait, and interrupt it. No timer:
 * the same under `TestClock`.
 *
 * @internal
 */
export const cancelBody = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<void> =>
  response instanceof UndiciResponse ? Effect.sync(() => response.exchange.abort()) : Effect.flatMap(
    Effect.fork(Stream.runDrain(response.stream)),
    (fiber) => Effect.zipRight(Effect.yieldNow(), Fiber.interrupt(fiber))
  )

/**
 * The call itself: a pool slot within the `pool` timeout, the request sent (a large body
 * watched for `write` stalls), the response once its headers arrive. When the scope
 * closes, the slot is freed and an unread body is cancelled.
 *
 * @internal
 */
export const makeExecute = (
  client: HttpClient.HttpClient,
  slotsFor: (request: HttpClientRequest.HttpClientRequest) => PoolSlots,
  options: ResolvedOptions,
  span: SpanHeaders = noSpanHeaders,
  /** `client` sends through Liaison's own transport, which honours a deadline's `at`. */
  ownTransport = false
) => {
  const { pool, write } = options.timeouts
  const send = (request: HttpClientRequest.HttpClientRequest) =>
    Effect.catchAll(client.execute(request), (error) => failRequest(request, error, options))
  const sent = (request: HttpClientRequest.HttpClientRequest): Effect.Effect<
    HttpClientResponse.HttpClientResponse,
    HttpError
  > => {
    const upload = watchUpload(request, write)
    return upload === undefined
      ? send(request)
      : Effect.flatMap(upload, ({ request: instrumented, stalled }) =>
        Effect.raceFirst(
          Effect.mapError(send(instrumented), (error): HttpError => error),
          stalled
        ))
  }
  const execute = (request: HttpClientRequest.HttpClientRequest): Effect.Effect<Response, HttpError, Scope.Scope> => {
    // The slot goes back as soon as the body is read (or the send fails); a body nobody reads is cancelled when
    // the scope closes, just before the slot goes back, so its connection is not held until
    // GC. Unlike `HttpClient.withScope`, a call whose body is read is never aborted (no
    // DOMException built for every call). The state is per run: the effect may run many times.
    const traced = tracedSend(sent, request, options.baseUrl, span)
    return Effect.withFiberRuntime((fiber) => {
      let response: HttpClientResponse.HttpClientResponse | undefined
      let started = false
      const beforeRelease = () => response === undefined || started ? Effect.void : cancelBody(response)
      const { onTimeout, wait } = slotWait(request, pool, fiber.getFiberRef(currentHeadersDeadline))
      return Effect.flatMap(
        slotsFor(request).acquire(wait, onTimeout, beforeRelease),
        (giveBack) =>
          // A send that fails or is interrupted (an attempt timeout) holds nothing: its slot goes
          // back now, not when the caller's scope closes (retries share that scope).
          Effect.onError(
            Effect.map(traced, (received) => {
              response = received
              return wrapResponse(request, received, options, {
                started: () => {
                  started = true
                },
                finished: giveBack
              })
            }),
            () => giveBack
          )
      )
    })
  }
  const sendTraced = tracedWith(sent, options, span)
  directCalls.set(execute, makeDirect(sendTraced, slotsFor, options))
  openers.set(execute, makeOpen(sendTraced, slotsFor, options))
  if (ownTransport) deadlineHonouring.add(execute)
  return execute
}

/**
 * Sends a request without a scope: `register` receives, as soon as a pool slot is held and before
 * anything can interrupt, the effect that gives the slot back (cancelling an unread body first);
 * running it more than once does nothing. Reading the whole body gives the slot back too. A send
 * that fails or is interrupted gives it back at once.
 *
 * @internal
 */
export type Open = (
  request: HttpClientRequest.HttpClientRequest,
  register: (close: Effect.Effect<void>) => void
) => Effect.Effect<Response, HttpError>

/** The {@link Open} of each `execute` made by {@link makeExecute}. */
const openers = new WeakMap<(request: HttpClientRequest.HttpClientRequest) => unknown, Open>()

/**
 * The {@link Open} of an `execute` built by {@link makeExecute} (no middleware around it): a
 * middleware that reads the body itself (a policy's direct call) uses it to skip a `Scope` per call.
 *
 * @internal
 */
export const openOf = (execute: (request: HttpClientRequest.HttpClientRequest) => unknown): Open | undefined =>
  openers.get(execute)

/**
 * Registers `direct` as the {@link DirectCall} of a middleware's `execute`.
 *
 * @internal
 */
export const setDirectCall = (
  execute: (request: HttpClientRequest.HttpClientRequest) => unknown,
  direct: DirectCall
): void => {
  directCalls.set(execute, direct)
}

/** A request sent, succeeding once the headers arrive. */
type SendRequest = (
  request: HttpClientRequest.HttpClientRequest
) => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpError>

const makeOpen = (
  send: SendRequest,
  slotsFor: (request: HttpClientRequest.HttpClientRequest) => PoolSlots,
  options: ResolvedOptions
): Open =>
(request, register) =>
  Effect.withFiberRuntime((fiber) => {
    const slots = slotsFor(request)
    const { onTimeout, wait } = slotWait(request, options.timeouts.pool, fiber.getFiberRef(currentHeadersDeadline))
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(slots.take(wait, onTimeout)), (slot) => {
        let response: HttpClientResponse.HttpClientResponse | undefined
        let started = false
        let closed = false
        const close = Effect.suspend(() => {
          if (closed) return Effect.void
          closed = true
          return response === undefined || started
            ? slots.release(slot)
            : Effect.zipRight(cancelBody(response), slots.release(slot))
        })
        register(close)
        return Effect.onError(
          Effect.map(restore(send(request)), (received) => {
            response = received
            return wrapResponse(request, received, options, { started: () => void (started = true), finished: close })
          }),
          () => close
        )
      })
    )
  })

/**
 * How long a call may wait for a pool slot, and what it fails with then: the `pool` timeout, or
 * what is left of a deadline with `at` (an attempt's) when that is less.
 */
const slotWait = (
  request: HttpClientRequest.HttpClientRequest,
  pool: Duration.Duration,
  deadline: HeadersDeadline | undefined
): { readonly wait: Duration.Duration; readonly onTimeout: () => HttpError } => {
  const left = deadline?.at === undefined ? undefined : deadline.at - Date.now()
  return deadline === undefined || left === undefined || left >= Duration.toMillis(pool)
    ? { wait: pool, onTimeout: () => timeoutError(request, "pool", pool) }
    : { wait: Duration.millis(Math.max(0, left)), onTimeout: deadline.onTimeout }
}

/** The `execute`s of {@link makeExecute} over Liaison's own transport. */
const deadlineHonouring = new WeakSet<(request: HttpClientRequest.HttpClientRequest) => unknown>()

/**
 * Whether `execute` (no middleware around it) bounds a request by a `HeadersDeadline` with
 * `at` from the wait for its pool slot to its response headers: then a policy needs no timer of
 * its own for an attempt. A client's `transformClient` must send through the client it is given.
 *
 * @internal
 */
export const honoursDeadlines = (execute: (request: HttpClientRequest.HttpClientRequest) => unknown): boolean =>
  deadlineHonouring.has(execute)

const tracedWith = (
  sent: (
    request: HttpClientRequest.HttpClientRequest
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpError>,
  options: ResolvedOptions,
  span: SpanHeaders
) =>
(request: HttpClientRequest.HttpClientRequest) => tracedSend(sent, request, options.baseUrl, span)

/**
 * A call from request to value with no middleware in between: `execute`, then `read` on the
 * response, in one step.
 *
 * @internal
 */
export type DirectCall = <A, R>(
  request: HttpClientRequest.HttpClientRequest,
  read: (response: Response) => Effect.Effect<A, HttpError, R>
) => Effect.Effect<A, HttpError, R>

/** The direct call of each `execute` made by {@link makeExecute}; a middleware's `execute` has none. */
const directCalls = new WeakMap<(request: HttpClientRequest.HttpClientRequest) => unknown, DirectCall>()

/**
 * The {@link DirectCall} of an `execute` built by {@link makeExecute}, if it is one (no middleware
 * wraps it): the buffered readers use it to skip a `Scope` per call.
 *
 * @internal
 */
export const directCallOf = (
  execute: (request: HttpClientRequest.HttpClientRequest) => unknown
): DirectCall | undefined => directCalls.get(execute)

/**
 * `execute` then `read` without a scope: the slot is taken and given back in one uninterruptible
 * region (the wait for it and the call itself interruptible), an unread body cancelled first.
 */
const makeDirect = (
  send: SendRequest,
  slotsFor: (request: HttpClientRequest.HttpClientRequest) => PoolSlots,
  options: ResolvedOptions
): DirectCall =>
(request, read) => {
  const pool = options.timeouts.pool
  return Effect.uninterruptibleMask((restore) => {
    const slots = slotsFor(request)
    let response: HttpClientResponse.HttpClientResponse | undefined
    let started = false
    const lifecycle = { started: () => void (started = true), finished: Effect.void }
    return Effect.flatMap(restore(slots.take(pool, () => timeoutError(request, "pool", pool))), (slot) =>
      Effect.onExit(
        restore(Effect.flatMap(send(request), (received) => {
          response = received
          return read(wrapResponse(request, received, options, lifecycle))
        })),
        () =>
          response === undefined || started
            ? slots.release(slot)
            : Effect.zipRight(cancelBody(response), slots.release(slot))
      ))
  })
}

/**
 * The client span of a call, in place of the platform's (which records the query string):
 * OpenTelemetry's HTTP client attributes with the URL redacted, `traceparent` propagated
 * when propagation is on, the span ended when the headers arrive (or the call fails with its
 * `HttpError`). Within a policy's attempt the attempt's span is that span (see
 * `Tracing.offerForRequest`). Nothing is done when no tracer records.
 */
const tracedSend = (
  send: (
    request: HttpClientRequest.HttpClientRequest
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpError>,
  request: HttpClientRequest.HttpClientRequest,
  baseUrl: string | undefined,
  headers: SpanHeaders
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpError> =>
  Effect.withFiberRuntime((fiber) => {
    const tracer = Tracing.recordingTracer(fiber)
    if (tracer === undefined) return send(request)
    const offered = Tracing.takeForRequest(fiber)
    const span = offered ?? Tracing.startSpan(fiber, tracer, `http.client ${request.method}`, "client")
    annotateRequest(span, request, baseUrl)
    const redacted = Headers.redact(
      headers.empty ? request.headers : { ...headers.defaults, ...request.headers },
      headers.secret.length === 0
        ? fiber.getFiberRef(Headers.currentRedactedNames)
        : [...fiber.getFiberRef(Headers.currentRedactedNames), ...headers.secret]
    )
    for (const name in redacted) span.attribute(`http.request.header.${name}`, String(redacted[name]))
    const outgoing = fiber.getFiberRef(HttpClient.currentTracerPropagation)
      ? HttpClientRequest.setHeaders(request, HttpTraceContext.toHeaders(span))
      : request
    // Not made the current span: the transport below makes none, and a context copy per call is saved.
    const sent = Effect.tap(send(outgoing), (response) => span.attribute("http.response.status_code", response.status))
    return offered !== undefined
      ? sent // the attempt ends its span
      : Effect.onExit(sent, (exit) => Effect.sync(() => Tracing.endSpan(fiber, span, exit)))
  })

/**
 * The headers a client adds to every request (recorded in its span) and the names among them
 * whose values are secret (recorded as `<redacted>`).
 *
 * @internal
 */
export interface SpanHeaders {
  readonly defaults: Readonly<Record<string, string>>
  readonly secret: ReadonlyArray<string>
  /** No default headers: the request's own are shown as they are. */
  readonly empty: boolean
}

const noSpanHeaders: SpanHeaders = { defaults: {}, secret: [], empty: true }

const annotateRequest = (
  span: Tracer.Span,
  request: HttpClientRequest.HttpClientRequest,
  baseUrl: string | undefined
) => {
  span.attribute("http.request.method", request.method)
  const full = redactUrl(baseUrl === undefined || isAbsoluteUrl(request.url) ? request.url : baseUrl + request.url)
  span.attribute("url.full", full)
  // Split by hand, not with `new URL`: this runs per call, and the platform parses the URL anyway.
  const scheme = full.indexOf("://")
  if (scheme === -1) return // not a URL: the call fails as an InvalidRequest
  const pathStart = full.indexOf("/", scheme + 3)
  const authority = full.slice(scheme + 3, pathStart === -1 ? full.length : pathStart)
  const portAt = authority.lastIndexOf(":")
  const hasPort = portAt !== -1 && authority.indexOf("]", portAt) === -1
  span.attribute("server.address", hasPort ? authority.slice(0, portAt) : authority)
  if (hasPort) span.attribute("server.port", Number(authority.slice(portAt + 1)))
  span.attribute("url.path", pathStart === -1 ? "/" : full.slice(pathStart))
  span.attribute("url.scheme", full.slice(0, scheme).toLowerCase())
}

/**
 * Whether a request URL is absolute (`http://` or `https://`): such a URL is sent as it is,
 * never prefixed by the client's base URL, so any client can reach any origin.
 *
 * @internal
 */
export const isAbsoluteUrl = (url: string): boolean => {
  const c = url.charCodeAt(0)
  if (c !== 104 && c !== 72) return false // h or H
  const lower = url.slice(0, 8).toLowerCase()
  return lower.startsWith("https://") || lower.startsWith("http://")
}

/**
 * Prepends the base URL to a relative request URL, leaves an absolute one as it is.
 *
 * @internal
 */
export const prependBaseUrl = (baseUrl: string) => {
  const prepend = HttpClientRequest.prependUrl(baseUrl)
  return (request: HttpClientRequest.HttpClientRequest): HttpClientRequest.HttpClientRequest =>
    isAbsoluteUrl(request.url) ? request : prepend(request)
}

/** `scheme://authority` of an absolute URL, without a regular expression: this runs per call. */
const originOf = (url: string): string => {
  const authority = url.indexOf("://")
  if (authority === -1) return ""
  let end = authority + 3
  while (end < url.length && url[end] !== "/" && url[end] !== "?" && url[end] !== "#") end++
  return url.slice(0, end).toLowerCase()
}

/**
 * One set of pool slots per upstream origin, as undici keeps one pool per origin. With a
 * base URL every request goes to its origin; otherwise most calls go to the origin of the
 * call before, a cheap hit.
 *
 * @internal
 */
export const slotsPerOrigin = (
  baseUrl: string | undefined,
  size: number
): (request: HttpClientRequest.HttpClientRequest) => PoolSlots => {
  const byOrigin = slotsByOrigin(size)
  if (baseUrl !== undefined) {
    const slots = makePoolSlots(size)
    return (request) => isAbsoluteUrl(request.url) ? byOrigin(request) : slots
  }
  return byOrigin
}

const slotsByOrigin = (size: number): (request: HttpClientRequest.HttpClientRequest) => PoolSlots => {
  const pools = new Map<string, PoolSlots>()
  let last: { readonly origin: string; readonly slots: PoolSlots } | undefined
  return (request) => {
    const url = request.url
    if (last !== undefined && url.startsWith(last.origin)) {
      const next = url[last.origin.length]
      if (next === undefined || next === "/" || next === "?" || next === "#") return last.slots
    }
    const origin = originOf(url)
    let slots = pools.get(origin)
    if (slots === undefined) {
      slots = makePoolSlots(size)
      pools.set(origin, slots)
    }
    last = { origin, slots }
    return slots
  }
}

/**
 * A Schema error as paths and expectations only: the values that failed (`actual …`) are
 * left out, since a response or a request body may hold tokens or passwords.
 *
 * @internal
 */
export const describeParseError = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => {
      const path = issue.path.length === 0 ? "" : `at ${issue.path.map((key) => JSON.stringify(key)).join(".")}: `
      return `${path}${issue.message.replace(/,? ?actual[\s\S]*$/, "").trim()}`
    })
    .join("; ")
