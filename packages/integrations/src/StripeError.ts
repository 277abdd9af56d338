/**
 * The errors Stripe answers with, one class per error `type` (as Stripe's own libraries have
 * them), their union, and the rules that read a non-2xx answer: {@link errorFromResponse} (which
 * error) and {@link shouldRetry} (whether to try again).
 *
 * Provider errors carry the provider prefix on the tag when the class name is generic:
 * `CardError` is tagged `StripeCardError`, so `Effect.catchTag` never confuses it with another
 * module's error of the same name.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const errorFields = {
  /** The HTTP status Stripe answered with. */
  status: Schema.Number,
  /** Stripe's error `type`, e.g. `card_error`. */
  type: Schema.String,
  /** Stripe's message; for card errors, one that can be shown to the customer. */
  message: Schema.String,
  code: Schema.optional(Schema.String),
  decline_code: Schema.optional(Schema.String),
  param: Schema.optional(Schema.String),
  doc_url: Schema.optional(Schema.String),
  /** The `Request-Id` header, for Stripe's support and dashboard logs. */
  request_id: Schema.optional(Schema.String),
  /** The PaymentIntent the error is about, when Stripe says. */
  payment_intent_id: Schema.optional(Schema.String)
}

/**
 * The card was declined or could not be charged (HTTP 402, `card_error`).
 *
 * @since 0.1.0
 * @category errors
 */
export class CardError extends Schema.TaggedError<CardError>("@liaison/integrations/StripeError/CardError")(
  "StripeCardError",
  errorFields
) {}

/**
 * The request had invalid parameters or named something that does not exist (400, 404,
 * `invalid_request_error`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRequestError
  extends Schema.TaggedError<InvalidRequestError>("@liaison/integrations/StripeError/InvalidRequestError")(
    "StripeInvalidRequestError",
    errorFields
  )
{}

/**
 * Something went wrong on Stripe's side (5xx, `api_error`), or an answer that was not one of
 * Stripe's errors.
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiError extends Schema.TaggedError<ApiError>("@liaison/integrations/StripeError/ApiError")(
  "StripeApiError",
  errorFields
) {}

/**
 * An `Idempotency-Key` was reused with other parameters, or is in use by a request still
 * running (`idempotency_error`).
 *
 * @since 0.1.0
 * @category errors
 */
export class IdempotencyError
  extends Schema.TaggedError<IdempotencyError>("@liaison/integrations/StripeError/IdempotencyError")(
    "StripeIdempotencyError",
    errorFields
  )
{}

/**
 * Too many requests, still refused after the retries (429).
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitError
  extends Schema.TaggedError<RateLimitError>("@liaison/integrations/StripeError/RateLimitError")(
    "StripeRateLimitError",
    errorFields
  )
{}

/**
 * The secret key is missing, malformed or revoked (401).
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationError
  extends Schema.TaggedError<AuthenticationError>("@liaison/integrations/StripeError/AuthenticationError")(
    "StripeAuthenticationError",
    errorFields
  )
{}

/**
 * The key may not do this, e.g. a restricted key without write access (403).
 *
 * @since 0.1.0
 * @category errors
 */
export class PermissionError
  extends Schema.TaggedError<PermissionError>("@liaison/integrations/StripeError/PermissionError")(
    "StripePermissionError",
    errorFields
  )
{}

/**
 * Every error Stripe can answer with.
 *
 * @since 0.1.0
 * @category errors
 */
export type StripeError =
  | CardError
  | InvalidRequestError
  | ApiError
  | IdempotencyError
  | RateLimitError
  | AuthenticationError
  | PermissionError

/**
 * The Schema of {@link StripeError}, for APIs that send these errors over a wire.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StripeError: Schema.Union<[
  typeof CardError,
  typeof InvalidRequestError,
  typeof ApiError,
  typeof IdempotencyError,
  typeof RateLimitError,
  typeof AuthenticationError,
  typeof PermissionError
]> = Schema.Union(
  CardError,
  InvalidRequestError,
  ApiError,
  IdempotencyError,
  RateLimitError,
  AuthenticationError,
  PermissionError
)

/**
 * Whether a value is one of the {@link StripeError}s (by class).
 *
 * @since 0.1.0
 * @category guards
 */
export const isStripeError = (u: unknown): u is StripeError =>
  u instanceof CardError || u instanceof InvalidRequestError || u instanceof ApiError ||
  u instanceof IdempotencyError || u instanceof RateLimitError || u instanceof AuthenticationError ||
  u instanceof PermissionError

const ErrorBody = Schema.parseJson(Schema.Struct({
  error: Schema.Struct({
    type: Schema.optional(Schema.String),
    message: Schema.optional(Schema.String),
    code: Schema.optional(Schema.String),
    decline_code: Schema.optional(Schema.String),
    param: Schema.optional(Schema.String),
    doc_url: Schema.optional(Schema.String),
    payment_intent: Schema.optional(Schema.Struct({ id: Schema.String }))
  })
}))
const decodeErrorBody = Schema.decodeUnknownOption(ErrorBody)

type ErrorDetails = typeof ErrorBody.Type["error"]

/**
 * The typed error for a non-2xx answer, as Stripe's own libraries classify it: by status
 * first (401 authentication, 403 permission, 429 rate limit, 402 card), then by the error
 * `type` (`card_error`, `idempotency_error`, `invalid_request_error`; 400 and 404 are invalid
 * requests); anything else is an {@link ApiError}.
 *
 * @since 0.1.0
 * @category errors
 */
export const errorFromResponse = (
  status: number,
  headers: Readonly<Record<string, string>>,
  body: string
): StripeError => {
  const error = Option.match(decodeErrorBody(body), {
    onNone: (): ErrorDetails => ({}),
    onSome: (parsed) => parsed.error
  })
  const type = error.type ?? (status >= 500 ? "api_error" : "invalid_request_error")
  const fields = {
    status,
    type,
    message: error.message ?? `Stripe answered ${status} without an error message`,
    ...(error.code === undefined ? {} : { code: error.code }),
    ...(error.decline_code === undefined ? {} : { decline_code: error.decline_code }),
    ...(error.param === undefined ? {} : { param: error.param }),
    ...(error.doc_url === undefined ? {} : { doc_url: error.doc_url }),
    ...(headers["request-id"] === undefined ? {} : { request_id: headers["request-id"] }),
    ...(error.payment_intent === undefined ? {} : { payment_intent_id: error.payment_intent.id })
  }
  if (status === 401) return new AuthenticationError(fields)
  if (status === 403) return new PermissionError(fields)
  if (status === 429 || type === "rate_limit_error" || error.code === "rate_limit") return new RateLimitError(fields)
  if (status === 402 || type === "card_error") return new CardError(fields)
  if (type === "idempotency_error") return new IdempotencyError(fields)
  if (type === "invalid_request_error" || status === 400 || status === 404) return new InvalidRequestError(fields)
  return new ApiError(fields)
}

/**
 * Whether Stripe's answer may be retried, by Stripe's rules: a `Stripe-Should-Retry` header
 * decides when present; otherwise 409 (a conflict, e.g. a lock timeout), 429 (after a wait)
 * and 5xx are retried, other statuses are not.
 *
 * @since 0.1.0
 * @category guards
 */
export const shouldRetry = (status: number, headers: Readonly<Record<string, string>>): boolean => {
  const advice = headers["stripe-should-retry"]
  if (advice === "true") return true
  if (advice === "false") return false
  return status === 409 || status === 429 || status >= 500
}
