/**
 * The one error union of every outbound call: a caller can `Effect.catchTag` each
 * case, and a server can map each case to a response with {@link toHttpStatus}.
 *
 * Errors never carry a URL's query string (API keys travel there) nor any header
 * that may hold a secret.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The phase of a request that ran out of time.
 *
 * - `connect`: TCP connect and TLS handshake.
 * - `write`: sending the request body (a stalled upload).
 * - `read`: waiting for the response headers, or the body going idle between chunks.
 * - `pool`: waiting for a free connection slot.
 * - `total`: the deadline of the whole call.
 *
 * @since 0.1.0
 * @category models
 */
export const TimeoutPhase = Schema.Literal("connect", "write", "read", "pool", "total")

/**
 * @since 0.1.0
 * @category models
 */
export type TimeoutPhase = typeof TimeoutPhase.Type

/**
 * The request ran out of time in one phase.
 *
 * @since 0.1.0
 * @category errors
 */
export class TimeoutError extends Schema.TaggedError<TimeoutError>("@liaison/core/HttpError/TimeoutError")(
  "TimeoutError",
  {
    phase: TimeoutPhase,
    method: Schema.String,
    url: Schema.String,
    timeoutMillis: Schema.Number
  }
) {
  override get message(): string {
    return `${this.method} ${this.url} timed out in the ${this.phase} phase after ${this.timeoutMillis} ms`
  }
}

/**
 * What went wrong on the wire: the connection was refused, reset, the host name did not
 * resolve, TLS failed, or something else the transport reported.
 *
 * @since 0.1.0
 * @category models
 */
export const TransportReason = Schema.Literal("refused", "reset", "dns", "tls", "other")

/**
 * @since 0.1.0
 * @category models
 */
export type TransportReason = typeof TransportReason.Type

/**
 * The transport failed before a complete response arrived.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends Schema.TaggedError<TransportError>("@liaison/core/HttpError/TransportError")(
  "TransportError",
  {
    reason: TransportReason,
    code: Schema.optional(Schema.String),
    method: Schema.String,
    url: Schema.String
  }
) {
  override get message(): string {
    const code = this.code === undefined ? "" : ` (${this.code})`
    return `${this.method} ${this.url} failed: ${describeTransport[this.reason]}${code}`
  }
}

const describeTransport: Record<TransportReason, string> = {
  refused: "connection refused",
  reset: "connection reset",
  dns: "host name did not resolve",
  tls: "TLS failure",
  other: "transport error"
}

/**
 * The upstream answered with a status outside 2xx. `body` is the start of the
 * response body (bounded), `headers` are the response headers minus `set-cookie`.
 *
 * @since 0.1.0
 * @category errors
 */
export class StatusError extends Schema.TaggedError<StatusError>("@liaison/core/HttpError/StatusError")(
  "StatusError",
  {
    status: Schema.Number,
    headers: Schema.Record({ key: Schema.String, value: Schema.String }),
    body: Schema.String,
    method: Schema.String,
    url: Schema.String
  }
) {
  override get message(): string {
    return `${this.method} ${this.url} answered ${this.status}`
  }
}

/**
 * The response body did not decode: not JSON, not XML, or not of the expected Schema.
 *
 * @since 0.1.0
 * @category errors
 */
export class DecodeError extends Schema.TaggedError<DecodeError>("@liaison/core/HttpError/DecodeError")(
  "DecodeError",
  {
    method: Schema.String,
    url: Schema.String,
    status: Schema.Number,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `${this.method} ${this.url} (${this.status}): the response did not decode: ${this.reason}`
  }
}

/**
 * The request could not be built: a query, body or URL that does not encode.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>("@liaison/core/HttpError/InvalidRequest")(
  "InvalidRequest",
  {
    reason: Schema.String
  }
) {
  override get message(): string {
    return `invalid request: ${this.reason}`
  }
}

/**
 * Every way an outbound call can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type HttpError = TimeoutError | TransportError | StatusError | DecodeError | InvalidRequest

/**
 * The Schema of {@link HttpError}, for APIs that send these errors over a wire.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HttpError: Schema.Union<
  [typeof TimeoutError, typeof TransportError, typeof StatusError, typeof DecodeError, typeof InvalidRequest]
> = Schema.Union(TimeoutError, TransportError, StatusError, DecodeError, InvalidRequest)

/**
 * Whether a value is one of Liaison's HTTP errors (by class, so a user's own `TimeoutError`
 * or `DecodeError` is not mistaken for one).
 *
 * @since 0.1.0
 * @category guards
 */
export const isHttpError = (u: unknown): u is HttpError =>
  u instanceof TimeoutError || u instanceof TransportError || u instanceof StatusError ||
  u instanceof DecodeError || u instanceof InvalidRequest

/**
 * The status a server should answer when an upstream call failed this way:
 * timeout → 504; refused or unresolvable upstream → 503; other transport failures,
 * upstream 5xx and undecodable answers → 502; upstream 4xx passed on; a request
 * that could not be built → 400.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toHttpStatus = (error: HttpError): number => {
  switch (error._tag) {
    case "TimeoutError":
      return 504
    case "TransportError":
      return error.reason === "refused" || error.reason === "dns" ? 503 : 502
    case "StatusError":
      return error.status >= 400 && error.status < 500 ? error.status : 502
    case "DecodeError":
      return 502
    case "InvalidRequest":
      return 400
  }
}

/**
 * A short machine-readable code for a server response body.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toErrorCode = (error: HttpError): string => {
  switch (error._tag) {
    case "TimeoutError":
      return "upstream_timeout"
    case "TransportError":
      return "upstream_unavailable"
    case "StatusError":
      return error.status >= 400 && error.status < 500 ? "upstream_rejected" : "upstream_error"
    case "DecodeError":
      return "upstream_bad_response"
    case "InvalidRequest":
      return "invalid_request"
  }
}
