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
export const TimeoutPhase = Schema.Literal("connect", "write", "read", "pool", "attempt", "total")

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
export const TransportReason = Schema.Literal("refused", "reset", "dns", "tls", "blocked", "other")

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
  blocked: "refused by the address guard",
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
 * What made a circuit breaker open: the `_tag` and `message` of the failure that tripped it
 * (an {@link HttpError}'s message names a redacted URL only), e.g.
 * `{ _tag: "StatusError", message: "GET https://api.example.com/x answered 503" }`. For an error
 * that is not an `HttpError` only its `_tag` is kept (its message could hold anything); a call
 * slower than the breaker's `slowCall` is `_tag: "SlowCall"`.
 *
 * @since 0.1.0
 * @category models
 */
export const OpenedBy = Schema.Struct({ _tag: Schema.String, message: Schema.String })

/**
 * @since 0.1.0
 * @category models
 */
export type OpenedBy = typeof OpenedBy.Type

/**
 * A circuit breaker (`CircuitBreaker`) is open for `key`: the call was not made. `openedBy` is
 * the failure that opened it (absent when it was isolated by hand).
 *
 * @since 0.1.0
 * @category errors
 */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>("@liaison/core/HttpError/CircuitOpen")(
  "CircuitOpen",
  {
    key: Schema.String,
    /** Until the breaker lets a probe through; 0 when HalfOpen has admitted all its probes; `Infinity` when isolated. */
    remainingMillis: Schema.Number,
    /** The failure that opened the breaker. */
    openedBy: Schema.optional(OpenedBy)
  }
) {
  override get message(): string {
    const after = this.openedBy === undefined ? "" : ` (after: ${this.openedBy.message})`
    return Number.isFinite(this.remainingMillis)
      ? `circuit breaker for ${this.key} is open${after}; next probe in ${Math.ceil(this.remainingMillis)} ms`
      : `circuit breaker for ${this.key} is isolated until reset`
  }
}

/**
 * A rate limiter (`RateLimit`) in fail-fast mode had no permit for `key`.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>("@liaison/core/HttpError/RateLimited")(
  "RateLimited",
  {
    key: Schema.String,
    /** When a permit is expected to be free. */
    retryAfterMillis: Schema.Number
  }
) {
  override get message(): string {
    return `rate limit for ${this.key} reached; retry in ${Math.ceil(this.retryAfterMillis)} ms`
  }
}

/**
 * The server asked to wait (`Retry-After`, `RateLimit-Reset`, `X-RateLimit-Reset`) longer than
 * the retry policy's `maxRetryAfter`: giving up at once rather than waiting.
 *
 * @since 0.1.0
 * @category errors
 */
export class RetryAfterTooLong extends Schema.TaggedError<RetryAfterTooLong>(
  "@liaison/core/HttpError/RetryAfterTooLong"
)(
  "RetryAfterTooLong",
  {
    method: Schema.String,
    url: Schema.String,
    status: Schema.Number,
    /** What the server asked for. */
    retryAfterMillis: Schema.Number,
    maxRetryAfterMillis: Schema.Number
  }
) {
  override get message(): string {
    return `${this.method} ${this.url} answered ${this.status} asking to retry in ${
      Math.ceil(this.retryAfterMillis)
    } ms, more than the ${this.maxRetryAfterMillis} ms allowed`
  }
}

/**
 * The host's retry budget is spent: retries already make up the allowed share of recent
 * requests, so this failure is not retried (an outage is not made worse by retry storms).
 *
 * @since 0.1.0
 * @category errors
 */
export class RetryBudgetExhausted extends Schema.TaggedError<RetryBudgetExhausted>(
  "@liaison/core/HttpError/RetryBudgetExhausted"
)(
  "RetryBudgetExhausted",
  {
    host: Schema.String,
    method: Schema.String,
    url: Schema.String,
    /** What the attempt that was not retried ended with, e.g. `answered 503`. */
    lastOutcome: Schema.String
  }
) {
  override get message(): string {
    return `${this.method} ${this.url} not retried: the retry budget for ${this.host} is spent (${this.lastOutcome})`
  }
}

/**
 * Why authentication failed:
 *
 * - `token_endpoint`: the OAuth2 token endpoint refused the token request (a non-2xx answer,
 *   usually an RFC 6749 §5.2 error such as `invalid_client`).
 * - `token_response`: the token endpoint answered 2xx with something that is not a usable token
 *   (not JSON, no `access_token`, a `token_type` other than `Bearer`, …).
 * - `rejected`: the API answered 401 to a freshly issued token, after one refresh and one replay.
 *
 * @since 0.1.0
 * @category models
 */
export const AuthFailure = Schema.Literal("token_endpoint", "token_response", "rejected")

/**
 * @since 0.1.0
 * @category models
 */
export type AuthFailure = typeof AuthFailure.Type

/**
 * Authentication with the upstream failed (see {@link AuthFailure}). `method` and `url` are
 * those of the token request, or of the API request that was rejected; `error` and
 * `description` are the token endpoint's RFC 6749 §5.2 `error` and `error_description`, or
 * what was wrong with its answer. Never a token, a secret or a response body.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthError extends Schema.TaggedError<AuthError>("@liaison/core/HttpError/AuthError")(
  "AuthError",
  {
    reason: AuthFailure,
    method: Schema.String,
    url: Schema.String,
    status: Schema.optional(Schema.Number),
    error: Schema.optional(Schema.String),
    description: Schema.optional(Schema.String)
  }
) {
  override get message(): string {
    const detail = [this.error, this.description].filter((part) => part !== undefined).join(": ")
    const suffix = detail === "" ? "" : ` (${detail})`
    switch (this.reason) {
      case "token_endpoint":
        return `the token endpoint ${this.method} ${this.url} refused the token request with ${
          this.status ?? "an error"
        }${suffix}`
      case "token_response":
        return `the token endpoint ${this.method} ${this.url} answered an unusable token response${suffix}`
      case "rejected":
        return `${this.method} ${this.url} answered ${this.status ?? 401} to a freshly issued access token${suffix}`
    }
  }
}

/**
 * Every way an outbound call can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type HttpError =
  | TimeoutError
  | TransportError
  | StatusError
  | DecodeError
  | InvalidRequest
  | CircuitOpen
  | RateLimited
  | RetryAfterTooLong
  | RetryBudgetExhausted
  | AuthError

/**
 * The Schema of {@link HttpError}, for APIs that send these errors over a wire.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HttpError: Schema.Union<
  [
    typeof TimeoutError,
    typeof TransportError,
    typeof StatusError,
    typeof DecodeError,
    typeof InvalidRequest,
    typeof CircuitOpen,
    typeof RateLimited,
    typeof RetryAfterTooLong,
    typeof RetryBudgetExhausted,
    typeof AuthError
  ]
> = Schema.Union(
  TimeoutError,
  TransportError,
  StatusError,
  DecodeError,
  InvalidRequest,
  CircuitOpen,
  RateLimited,
  RetryAfterTooLong,
  RetryBudgetExhausted,
  AuthError
)

/**
 * Whether a value is one of Liaison's HTTP errors (by class, so a user's own `TimeoutError`
 * or `DecodeError` is not mistaken for one).
 *
 * @since 0.1.0
 * @category guards
 */
export const isHttpError = (u: unknown): u is HttpError =>
  u instanceof TimeoutError || u instanceof TransportError || u instanceof StatusError ||
  u instanceof DecodeError || u instanceof InvalidRequest || u instanceof CircuitOpen || u instanceof RateLimited ||
  u instanceof RetryAfterTooLong || u instanceof RetryBudgetExhausted || u instanceof AuthError

/**
 * How long the caller should wait before trying again, when the error says: an open breaker's
 * remaining time, a rate limiter's, or the server's own `Retry-After`.
 *
 * @since 0.1.0
 * @category conversions
 */
export const retryAfterMillis = (error: HttpError): number | undefined => {
  switch (error._tag) {
    case "CircuitOpen":
      return Number.isFinite(error.remainingMillis) ? error.remainingMillis : undefined
    case "RateLimited":
    case "RetryAfterTooLong":
      return error.retryAfterMillis
    default:
      return undefined
  }
}

/**
 * The status a server should answer when an upstream call failed this way:
 * timeout → 504; refused or unresolvable upstream → 503; other transport failures,
 * upstream 5xx and undecodable answers → 502; upstream 4xx passed on; a request
 * that could not be built → 400; an open breaker, a server asking to wait too long or a spent
 * retry budget → 503; the client's own rate limit → 429; failed authentication → 502 (the
 * upstream refused the caller's own credentials, which a client of the caller cannot fix).
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
    case "CircuitOpen":
    case "RetryAfterTooLong":
    case "RetryBudgetExhausted":
      return 503
    case "RateLimited":
      return 429
    case "AuthError":
      return 502
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
    case "CircuitOpen":
      return "upstream_circuit_open"
    case "RateLimited":
      return "rate_limited"
    case "RetryAfterTooLong":
      return "upstream_overloaded"
    case "RetryBudgetExhausted":
      return "upstream_retry_budget_exhausted"
    case "AuthError":
      return "upstream_auth_failed"
  }
}

// ---------------------------------------------------------------------------
// constructors: the only places these errors are built from a request
// ---------------------------------------------------------------------------

/**
 * What an error says about the call it belongs to: an `HttpClientRequest` fits.
 *
 * @since 0.1.0
 * @category models
 */
export interface Target {
  readonly method: string
  readonly url: string
}

/**
 * A URL as errors, spans and logs may show it: no query string (API keys and client secrets
 * travel there), no fragment, no `user:password@`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const redactUrl = (url: string): string => {
  let end = url.length
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i)
    if (c === 63 /* ? */ || c === 35 /* # */) {
      end = i
      break
    }
  }
  const bare = end === url.length ? url : url.slice(0, end)
  return bare.includes("@") ? bare.replace(/^([a-zA-Z][a-zA-Z\d+.-]*:\/\/)[^/@]*@/, "$1") : bare
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const timeout = (target: Target, phase: TimeoutPhase, timeoutMillis: number): TimeoutError =>
  new TimeoutError({ phase, method: target.method, url: redactUrl(target.url), timeoutMillis })

/**
 * @since 0.1.0
 * @category constructors
 */
export const transportError = (
  target: Target,
  reason: TransportReason,
  code?: string | undefined
): TransportError =>
  new TransportError({
    reason,
    method: target.method,
    url: redactUrl(target.url),
    ...(code === undefined ? {} : { code })
  })

/**
 * @since 0.1.0
 * @category constructors
 */
export const statusError = (
  target: Target,
  response: { readonly status: number; readonly headers: Readonly<Record<string, string>>; readonly body: string }
): StatusError =>
  new StatusError({
    status: response.status,
    headers: response.headers,
    body: response.body,
    method: target.method,
    url: redactUrl(target.url)
  })

/**
 * @since 0.1.0
 * @category constructors
 */
export const decodeError = (target: Target, status: number, reason: string): DecodeError =>
  new DecodeError({ method: target.method, url: redactUrl(target.url), status, reason })

/**
 * @since 0.1.0
 * @category constructors
 */
export const retryAfterTooLong = (
  target: Target,
  details: { readonly status: number; readonly retryAfterMillis: number; readonly maxRetryAfterMillis: number }
): RetryAfterTooLong => new RetryAfterTooLong({ method: target.method, url: redactUrl(target.url), ...details })

/**
 * @since 0.1.0
 * @category constructors
 */
export const retryBudgetExhausted = (
  target: Target,
  details: { readonly host: string; readonly lastOutcome: string }
): RetryBudgetExhausted => new RetryBudgetExhausted({ method: target.method, url: redactUrl(target.url), ...details })

/**
 * @since 0.1.0
 * @category constructors
 */
export const authError = (
  target: Target,
  details: {
    readonly reason: AuthFailure
    readonly status?: number | undefined
    readonly error?: string | undefined
    readonly description?: string | undefined
  }
): AuthError =>
  new AuthError({
    reason: details.reason,
    method: target.method,
    url: redactUrl(target.url),
    ...(details.status === undefined ? {} : { status: details.status }),
    ...(details.error === undefined ? {} : { error: details.error }),
    ...(details.description === undefined ? {} : { description: details.description })
  })

// ---------------------------------------------------------------------------
// transience
// ---------------------------------------------------------------------------

/**
 * What a failure says about trying again:
 * - `transient`: nothing took effect upstream (or the upstream said "later"), a later try may work;
 * - `permanent`: trying again gets the same answer;
 * - `unknown`: the request may have reached the upstream and taken effect (a reset mid-answer,
 *   a read timeout): safe to repeat only when the call is idempotent.
 *
 * @since 0.1.0
 * @category models
 */
export type Transience = "transient" | "permanent" | "unknown"

/**
 * The one table of "is this failure transient?", used by `Retry`, `CircuitBreaker`'s default
 * verdict and every durable consumer (webhook deliveries, the email worker). Anything that is
 * not an `HttpError` is `unknown`.
 *
 * | error | transience |
 * |---|---|
 * | `TransportError` refused, dns, tls | transient (nothing was sent) |
 * | `TransportError` reset, other | unknown |
 * | `TransportError` blocked (address guard) | permanent |
 * | `TimeoutError` connect, pool | transient |
 * | `TimeoutError` write, read, attempt, total | unknown |
 * | `StatusError` 408, 425, 429, 5xx | transient |
 * | `StatusError` other | permanent |
 * | `CircuitOpen`, `RateLimited`, `RetryAfterTooLong`, `RetryBudgetExhausted` | transient (not sent) |
 * | `DecodeError`, `InvalidRequest`, `AuthError` | permanent |
 *
 * @since 0.1.0
 * @category conversions
 */
export const transience = (error: unknown): Transience => {
  if (!isHttpError(error)) return "unknown"
  switch (error._tag) {
    case "TransportError":
      return error.reason === "blocked"
        ? "permanent"
        : error.reason === "refused" || error.reason === "dns" || error.reason === "tls"
        ? "transient"
        : "unknown"
    case "TimeoutError":
      return error.phase === "connect" || error.phase === "pool" ? "transient" : "unknown"
    case "StatusError":
      return isTransientStatus(error.status) ? "transient" : "permanent"
    case "CircuitOpen":
    case "RateLimited":
    case "RetryAfterTooLong":
    case "RetryBudgetExhausted":
      return "transient"
    case "DecodeError":
    case "InvalidRequest":
    case "AuthError":
      return "permanent"
  }
}

/**
 * Statuses that say "try again later": 408, 425, 429 and every 5xx.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTransientStatus = (status: number): boolean =>
  status >= 500 || status === 408 || status === 425 || status === 429
