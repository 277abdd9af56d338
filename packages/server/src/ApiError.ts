/**
 * How the server answers when its upstream failed: one error class per status, each a
 * `Schema.TaggedError` annotated with that status, so that `HttpApi` encodes it as the response
 * (`{ _tag, error, message }`) and the OpenAPI document lists every one of them.
 *
 * {@link fromHttpError} picks the class with `HttpError.toHttpStatus` and the `error` code with
 * `HttpError.toErrorCode`: timeout → 504; connection refused or DNS → 503; other transport
 * failures, upstream 5xx and undecodable answers → 502; the upstream 4xx that describe the
 * client's request (400, 404, 409, 422, 429) are passed on.
 *
 * Messages name the method and the upstream path only: never the upstream's host (it may carry
 * credentials), a query string (API keys travel there), or a body the upstream sent.
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { HttpError } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/**
 * Builds the error class of one HTTP answer: a `Schema.TaggedError` whose body is
 * `{ _tag, error, message, ...extra }` and whose `HttpApiSchema` annotation gives its status and
 * description. Identified by the tag alone: that is the schema's name in the OpenAPI document.
 *
 * ```ts
 * export class NotFound extends ApiError.make<NotFound>()("NotFound", 404, "No such resource") {}
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Self>() =>
<const Tag extends string, Extra extends Schema.Struct.Fields = {}>(
  tag: Tag,
  status: number,
  description: string,
  extra?: Extra
) =>
  Schema.TaggedError<Self>()(
    tag,
    // `Object.assign` types the union of the fields as `Base & Extra` (a spread of an optional
    // generic would drop `Extra`).
    Object.assign({
      /** A short machine-readable code, e.g. `upstream_timeout`, `invalid_signature`. */
      error: Schema.String,
      message: Schema.String
    }, extra),
    HttpApiSchema.annotations({ status, description })
  )

/**
 * The upstream rejected the request as malformed, or it could not be built (400).
 *
 * @since 0.1.0
 * @category errors
 */
export class UpstreamBadRequest
  extends make<UpstreamBadRequest>()("UpstreamBadRequest", 400, "The upstream rejected the request")
{}

/**
 * The upstream has no such resource (404).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends make<NotFound>()("NotFound", 404, "The upstream has no such resource") {}

/**
 * The request conflicts with the upstream's state, e.g. a username already taken (409).
 *
 * @since 0.1.0
 * @category errors
 */
export class Conflict extends make<Conflict>()("Conflict", 409, "The upstream refused a conflicting change") {}

/**
 * The upstream found the request well-formed but invalid (422).
 *
 * @since 0.1.0
 * @category errors
 */
export class Unprocessable
  extends make<Unprocessable>()("Unprocessable", 422, "The upstream found the request invalid")
{}

/**
 * The upstream is rate limiting the server (429).
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManyRequests extends make<TooManyRequests>()("TooManyRequests", 429, "The upstream is rate limiting") {}

/**
 * The upstream failed, answered what could not be decoded, or refused the server itself (502).
 *
 * @since 0.1.0
 * @category errors
 */
export class BadGateway extends make<BadGateway>()("BadGateway", 502, "The upstream failed") {}

/**
 * The upstream could not be reached: connection refused or its name did not resolve (503).
 *
 * @since 0.1.0
 * @category errors
 */
export class UpstreamUnavailable
  extends make<UpstreamUnavailable>()("UpstreamUnavailable", 503, "The upstream could not be reached")
{}

/**
 * The upstream did not answer in time (504).
 *
 * @since 0.1.0
 * @category errors
 */
export class UpstreamTimeout
  extends make<UpstreamTimeout>()("UpstreamTimeout", 504, "The upstream did not answer in time")
{}

/**
 * Every answer to a failed upstream call, for `HttpApiGroup.addError`: `HttpApi` splits the
 * union into one response per status.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UpstreamError = Schema.Union(
  UpstreamBadRequest,
  NotFound,
  Conflict,
  Unprocessable,
  TooManyRequests,
  BadGateway,
  UpstreamUnavailable,
  UpstreamTimeout
)

/**
 * @since 0.1.0
 * @category errors
 */
export type UpstreamError = typeof UpstreamError.Type

/** `http://user:pass@host/users/7` → `/users/7`: the message must not show where the upstream is. */
const pathOf = (url: string): string => {
  try {
    return new URL(url).pathname
  } catch {
    return url.split(/[?#]/, 1)[0] ?? ""
  }
}

const transportReasons: Record<HttpError.TransportReason, string> = {
  refused: "connection refused",
  reset: "connection reset",
  dns: "host name did not resolve",
  tls: "TLS failure",
  blocked: "its address is not allowed",
  other: "transport error"
}

const seconds = (millis: number) => Math.max(1, Math.ceil(millis / 1000))

const describe = (error: HttpError.HttpError): string => {
  switch (error._tag) {
    case "InvalidRequest":
      return error.message
    case "CircuitOpen":
      return Number.isFinite(error.remainingMillis)
        ? `the upstream is failing: its circuit breaker is open, next try in ${seconds(error.remainingMillis)} s`
        : "the upstream is isolated (its circuit breaker was opened by hand)"
    case "RateLimited":
      return `too many requests to the upstream: retry in ${seconds(error.retryAfterMillis)} s`
    case "RetryBudgetExhausted":
      return `the upstream is failing and its retry budget is spent (${error.lastOutcome})`
    case "RetryAfterTooLong":
      return `the upstream is overloaded: it asked to retry in ${seconds(error.retryAfterMillis)} s`
    case "AuthError":
      return error.reason === "rejected"
        ? `the upstream refused the server's credentials for ${error.method} ${pathOf(error.url)}`
        : `the server could not obtain an access token for the upstream (${error.error ?? error.reason})`
  }
  const target = `${error.method} ${pathOf(error.url)}`
  switch (error._tag) {
    case "TimeoutError":
      return `the upstream did not answer ${target} in time (${error.phase} timeout, ${error.timeoutMillis} ms)`
    case "TransportError":
      return `the upstream could not be reached for ${target}: ${transportReasons[error.reason]}`
    case "StatusError":
      return `the upstream answered ${target} with ${error.status}`
    case "DecodeError":
      return `the upstream's answer to ${target} did not decode`
  }
}

/**
 * The answer to a failed upstream call. Upstream 4xx outside the passed-on set (401, 403, …)
 * become 502: they say the upstream refused the server, which the client cannot fix.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromHttpError = (error: HttpError.HttpError): UpstreamError => {
  const body = { error: HttpError.toErrorCode(error), message: describe(error) }
  switch (HttpError.toHttpStatus(error)) {
    case 400:
      return new UpstreamBadRequest(body)
    case 404:
      return new NotFound(body)
    case 409:
      return new Conflict(body)
    case 422:
      return new Unprocessable(body)
    case 429:
      return new TooManyRequests(body)
    case 503:
      return new UpstreamUnavailable(body)
    case 504:
      return new UpstreamTimeout(body)
    default:
      return new BadGateway(body)
  }
}

/**
 * Maps an upstream call's `HttpError` to its answer. Failures that are the upstream's (5xx
 * answers) are logged in full first, with details the client does not get (the decode failure,
 * the transport error code).
 *
 * @since 0.1.0
 * @category combinators
 */
export const mapUpstream = <A, R>(
  self: Effect.Effect<A, HttpError.HttpError, R>
): Effect.Effect<A, UpstreamError, R> =>
  Effect.mapError(
    Effect.tapError(self, (error) => {
      const retryAfter = HttpError.retryAfterMillis(error)
      return Effect.zipRight(
        HttpError.toHttpStatus(error) >= 500 ? Effect.logWarning("upstream call failed", error.message) : Effect.void,
        // 503 and 429 answers say when to come back.
        retryAfter === undefined
          ? Effect.void
          : HttpApp.appendPreResponseHandler((_request, response) =>
            Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(seconds(retryAfter))))
          )
      )
    }),
    fromHttpError
  )
