import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ResolvedOptions, Response } from "../Http.js"
import type { HttpError, TimeoutPhase, TransportReason } from "../HttpError.js"
import { DecodeError, InvalidRequest, StatusError, TimeoutError, TransportError } from "../HttpError.js"

/** The URL without its query string (API keys travel there) nor fragment, for error messages. @internal */
export const safeUrl = (request: HttpClientRequest.HttpClientRequest): string => {
  const end = request.url.search(/[?#]/)
  return end === -1 ? request.url : request.url.slice(0, end)
}

/** @internal */
export const timeoutError = (
  request: HttpClientRequest.HttpClientRequest,
  phase: TimeoutPhase,
  duration: Duration.Duration
): TimeoutError =>
  new TimeoutError({
    phase,
    method: request.method,
    url: safeUrl(request),
    timeoutMillis: Duration.toMillis(duration)
  })

/** @internal */
export const decodeError = (request: HttpClientRequest.HttpClientRequest, status: number, reason: string) =>
  new DecodeError({ method: request.method, url: safeUrl(request), status, reason })

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
  connectTimeout: Duration.Duration
): TimeoutError | TransportError => {
  const codes = errorCodes(cause)
  if (codes.includes("UND_ERR_CONNECT_TIMEOUT") || codes.includes("ETIMEDOUT")) {
    return timeoutError(request, "connect", connectTimeout)
  }
  const pick = (reason: TransportReason, code: string | undefined) =>
    new TransportError({
      reason,
      method: request.method,
      url: safeUrl(request),
      ...(code === undefined ? {} : { code })
    })
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

const fromRequestError = (
  request: HttpClientRequest.HttpClientRequest,
  error: HttpClientError.HttpClientError,
  options: ResolvedOptions
): HttpError => {
  if (error._tag === "RequestError" && error.reason !== "Transport") {
    return new InvalidRequest({ reason: `${error.reason === "InvalidUrl" ? "invalid URL" : "body did not encode"}` })
  }
  return transportError(request, error.cause, options.timeouts.connect)
}

/** A response body failing mid-way: the wire, unless nothing on the wire is to blame. */
const fromBodyError = (
  request: HttpClientRequest.HttpClientRequest,
  status: number,
  error: HttpClientError.HttpClientError,
  options: ResolvedOptions
): HttpError => {
  const mapped = transportError(request, error.cause, options.timeouts.connect)
  return mapped._tag === "TransportError" && mapped.reason === "other" && mapped.code === undefined
    ? decodeError(request, status, "the response body could not be read")
    : mapped
}

const utf8 = new TextDecoder()

const concat = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

const wrapResponse = (
  request: HttpClientRequest.HttpClientRequest,
  response: HttpClientResponse.HttpClientResponse,
  options: ResolvedOptions
): Response => {
  const status = response.status
  const idle = options.timeouts.read
  const stream = response.stream.pipe(
    Stream.mapError((error) => fromBodyError(request, status, error, options)),
    Stream.timeoutFail(() => timeoutError(request, "read", idle), idle)
  )
  const bytes = Stream.runFoldWhileEffect(
    stream,
    { chunks: [] as Array<Uint8Array>, size: 0 },
    () => true,
    (acc, chunk) => {
      acc.size += chunk.length
      if (acc.size > options.maxBodyBytes) {
        return Effect.fail(decodeError(request, status, `the body exceeds ${options.maxBodyBytes} bytes`))
      }
      acc.chunks.push(chunk)
      return Effect.succeed(acc)
    }
  ).pipe(Effect.map((acc) => concat(acc.chunks, acc.size)))
  return {
    status,
    headers: response.headers,
    stream,
    bytes,
    text: Effect.map(bytes, (body) => utf8.decode(body))
  }
}

/** Reads at most `max` bytes of an error body; a body that fails to read does not hide the status. @internal */
export const statusError = (
  request: HttpClientRequest.HttpClientRequest,
  response: Response,
  max: number
): Effect.Effect<never, StatusError> =>
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
      return Effect.fail(
        new StatusError({ status: response.status, headers, body, method: request.method, url: safeUrl(request) })
      )
    })
  )

/** @internal */
export const withTotalTimeout =
  (request: HttpClientRequest.HttpClientRequest, total: Duration.Duration) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | TimeoutError, R> =>
    Effect.timeoutFail(self, { duration: total, onTimeout: () => timeoutError(request, "total", total) })

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
 * Watches the upload of a request body. Returns the request to send (its body instrumented)
 * and an effect that completes once the whole body is handed to the socket, or fails with a
 * `write` timeout when the body makes no progress for `timeout` (the socket is stalled by
 * backpressure). The first chunk waits on connect, which has its own timeout.
 */
const watchUpload = (
  request: HttpClientRequest.HttpClientRequest,
  timeout: Duration.Duration
): Effect.Effect<{
  readonly request: HttpClientRequest.HttpClientRequest
  readonly uploaded: Effect.Effect<void, TimeoutError>
}> => {
  const body = request.body
  const source = body._tag === "Stream"
    ? body.stream
    : body._tag === "Uint8Array" && body.body.length > streamedBodyThreshold
    ? uploadChunks(body.body)
    : undefined
  if (source === undefined) return Effect.succeed({ request, uploaded: Effect.void })
  const contentType = body._tag === "Stream" || body._tag === "Uint8Array" ? body.contentType : undefined
  const contentLength = body._tag === "Stream" || body._tag === "Uint8Array" ? body.contentLength : undefined
  return Effect.map(Queue.sliding<"chunk" | "end">(1), (progress) => {
    const instrumented = source.pipe(
      Stream.tap(() => progress.offer("chunk")),
      Stream.ensuring(progress.offer("end"))
    )
    const next = Queue.take(progress).pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => timeoutError(request, "write", timeout) })
    )
    const follow = (signal: "chunk" | "end"): Effect.Effect<void, TimeoutError> =>
      signal === "end" ? Effect.void : Effect.flatMap(next, follow)
    return {
      request: HttpClientRequest.setBody(request, HttpBody.stream(instrumented, contentType, contentLength)),
      uploaded: Effect.flatMap(Queue.take(progress), follow)
    }
  })
}

/**
 * The call itself: a pool slot within the `pool` timeout, the request sent with the body
 * watched for `write` stalls, then the headers within `read` once the body is sent.
 * The request is aborted when the scope closes.
 *
 * @internal
 */
export const makeExecute = (
  client: HttpClient.HttpClient,
  permits: Effect.Semaphore,
  options: ResolvedOptions
) => {
  const scopedClient = HttpClient.withScope(client)
  const { pool, read, write } = options.timeouts
  return (request: HttpClientRequest.HttpClientRequest): Effect.Effect<Response, HttpError, Scope.Scope> =>
    Effect.gen(function*() {
      yield* Effect.uninterruptibleMask((restore) =>
        restore(
          Effect.timeoutFail(permits.take(1), {
            duration: pool,
            onTimeout: () => timeoutError(request, "pool", pool)
          })
        ).pipe(Effect.zipRight(Effect.addFinalizer(() => permits.release(1))))
      )
      const { request: sent, uploaded } = yield* watchUpload(request, write)
      const headersDeadline = uploaded.pipe(
        Effect.zipRight(Effect.sleep(read)),
        Effect.zipRight(Effect.failSync(() => timeoutError(request, "read", read)))
      )
      const response = yield* scopedClient.execute(sent).pipe(
        Effect.mapError((error) => fromRequestError(request, error, options)),
        Effect.raceFirst(headersDeadline)
      )
      return wrapResponse(request, response, options)
    })
}
