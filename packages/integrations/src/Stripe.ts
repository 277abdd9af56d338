/**
 * A Stripe client: PaymentIntents (create, retrieve, update, confirm, cancel, capture, list,
 * auto-pagination as a `Stream`) over Liaison's {@link Http.Http}, shaped like
 * `@effect/ai-openai`'s `OpenAiClient`: a service Tag, {@link make}, {@link layer} and
 * {@link layerConfig} (`STRIPE_SECRET_KEY` as a `Config.redacted`).
 *
 * What it does for you, as Stripe's API expects (https://docs.stripe.com/api):
 *
 * - every request carries `Authorization: Bearer <secret key>` (redacted in traces), a pinned
 *   `Stripe-Version` ({@link apiVersion}) and, when asked, `Stripe-Account` (Connect);
 * - parameters in Stripe's form encoding: `metadata[order_id]=6735`, `payment_method_types[0]=card`,
 *   `null` as an empty value (unsets a field), `undefined` left out, dates as Unix seconds;
 * - every POST carries an `Idempotency-Key` (yours, or a generated one), the same on every retry;
 * - retries as Stripe's own libraries do: connection errors, 409 and 5xx are retried, 429 backs
 *   off, and a `Stripe-Should-Retry: true|false` answer overrides all of that; exponential
 *   backoff with jitter, bounded;
 * - errors typed by Stripe's error `type` ({@link CardError}, {@link InvalidRequestError}, …),
 *   each with `code`, `decline_code`, `param`, `doc_url`, `message` and the `Request-Id`.
 *
 * @example
 * ```ts
 * import { Stripe } from "@liaison/integrations"
 * import { Config, Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const stripe = yield* Stripe.Stripe
 *   const intent = yield* stripe.paymentIntents.create({
 *     amount: 2000,
 *     currency: "usd",
 *     metadata: { order_id: "6735" }
 *   })
 *   return intent.client_secret
 * }).pipe(
 *   Effect.catchTag("StripeCardError", (error) => Effect.fail(error.message)),
 *   Effect.provide(Stripe.layerConfig())
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { Http } from "@liaison/core"
import { HttpError, Retry } from "@liaison/core"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Provider from "./internal/provider.js"
import type { FormValue } from "./internal/stripeForm.js"
import { encodeForm, formString } from "./internal/stripeForm.js"

/**
 * The `Stripe-Version` every request is pinned to, so that a change of the account's default
 * version never changes what this client receives.
 *
 * @since 0.1.0
 * @category constants
 */
export const apiVersion = "2025-07-30.basil"

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultApiBase = "https://api.stripe.com"

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

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
export class CardError extends Schema.TaggedError<CardError>("@liaison/integrations/Stripe/CardError")(
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
  extends Schema.TaggedError<InvalidRequestError>("@liaison/integrations/Stripe/InvalidRequestError")(
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
export class ApiError extends Schema.TaggedError<ApiError>("@liaison/integrations/Stripe/ApiError")(
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
  extends Schema.TaggedError<IdempotencyError>("@liaison/integrations/Stripe/IdempotencyError")(
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
export class RateLimitError extends Schema.TaggedError<RateLimitError>("@liaison/integrations/Stripe/RateLimitError")(
  "StripeRateLimitError",
  errorFields
) {}

/**
 * The secret key is missing, malformed or revoked (401).
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationError
  extends Schema.TaggedError<AuthenticationError>("@liaison/integrations/Stripe/AuthenticationError")(
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
  extends Schema.TaggedError<PermissionError>("@liaison/integrations/Stripe/PermissionError")(
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

/**
 * Every way a call of this client can fail: Stripe's answer, or the call itself (timed out,
 * could not connect, an answer that did not decode, parameters that do not encode, Stripe
 * asking for a longer wait than `maxRetryAfter`, …).
 *
 * @since 0.1.0
 * @category errors
 */
export type Error = StripeError | HttpError.HttpError

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
    onNone: () => ({}) as typeof ErrorBody.Type["error"],
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
 * @category retries
 */
export const shouldRetry = (status: number, headers: Readonly<Record<string, string>>): boolean => {
  const advice = headers["stripe-should-retry"]
  if (advice === "true") return true
  if (advice === "false") return false
  return status === 409 || status === 429 || status >= 500
}

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * A field that may be a plain id or, when expanded, the object (kept as its `id`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Expandable = Schema.Union(
  Schema.String,
  Schema.transform(Schema.Struct({ id: Schema.String }), Schema.String, {
    strict: true,
    decode: (object) => object.id,
    encode: (id) => ({ id })
  })
)

const nullable = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.optionalWith(Schema.NullOr(schema), { default: () => null })

/**
 * `status` of a PaymentIntent, as the real enum.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PaymentIntentStatus = Schema.Literal(
  "requires_payment_method",
  "requires_confirmation",
  "requires_action",
  "processing",
  "requires_capture",
  "canceled",
  "succeeded"
)

/**
 * @since 0.1.0
 * @category models
 */
export type PaymentIntentStatus = typeof PaymentIntentStatus.Type

/**
 * Why a PaymentIntent was canceled (the first four may be given when canceling).
 *
 * @since 0.1.0
 * @category schemas
 */
export const CancellationReason = Schema.Literal(
  "duplicate",
  "fraudulent",
  "requested_by_customer",
  "abandoned",
  "failed_invoice",
  "void_invoice",
  "automatic",
  "expired"
)

/**
 * @since 0.1.0
 * @category models
 */
export type CancellationReason = typeof CancellationReason.Type

/**
 * The last payment error of a PaymentIntent.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LastPaymentError = Schema.Struct({
  type: Schema.String,
  code: Schema.optional(Schema.String),
  decline_code: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  param: Schema.optional(Schema.String),
  doc_url: Schema.optional(Schema.String)
})

/**
 * A PaymentIntent: the fields most integrations need. Fields Stripe adds that are not listed
 * here are tolerated (and left out); nullable ones Stripe leaves out are `null`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PaymentIntent = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("payment_intent"),
  amount: Schema.Int,
  amount_capturable: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  amount_received: Schema.Int,
  currency: Schema.String,
  status: PaymentIntentStatus,
  client_secret: nullable(Schema.String),
  capture_method: Schema.optional(Schema.String),
  confirmation_method: Schema.optional(Schema.String),
  created: Schema.Int,
  livemode: Schema.Boolean,
  metadata: Schema.Record({ key: Schema.String, value: Schema.String }),
  description: nullable(Schema.String),
  customer: nullable(Expandable),
  payment_method: nullable(Expandable),
  payment_method_types: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  latest_charge: nullable(Expandable),
  last_payment_error: nullable(LastPaymentError),
  receipt_email: nullable(Schema.String),
  canceled_at: nullable(Schema.Int),
  cancellation_reason: nullable(CancellationReason)
}).annotations({ identifier: "Stripe.PaymentIntent" })

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntent extends Schema.Schema.Type<typeof PaymentIntent> {}

/**
 * One page of a list.
 *
 * @since 0.1.0
 * @category models
 */
export interface List<A> {
  readonly object: "list"
  readonly data: ReadonlyArray<A>
  readonly has_more: boolean
  readonly url: string
}

/**
 * The Schema of one page of a list of `item`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const List = <A, I, R>(item: Schema.Schema<A, I, R>): Schema.Schema<List<A>, unknown, R> =>
  Schema.Struct({
    object: Schema.Literal("list"),
    data: Schema.Array(item),
    has_more: Schema.Boolean,
    url: Schema.String
  }) as Schema.Schema<List<A>, unknown, R>

// ---------------------------------------------------------------------------
// parameters
// ---------------------------------------------------------------------------

/**
 * A parameter value in Stripe's form encoding: scalars, `Date`s (sent as Unix seconds), and
 * arrays and objects of them; `null` unsets a field, `undefined` is not sent.
 *
 * @since 0.1.0
 * @category models
 */
export type Param = FormValue

/**
 * Parameters in Stripe's form encoding, as a query string or `application/x-www-form-urlencoded`
 * body: nested objects as `a[b][c]=…`, arrays as `a[0]=…&a[1]=…`, `null` as an empty value
 * (Stripe unsets the field), `undefined` fields and empty objects or arrays left out (as an array
 * element, an empty object or array is an empty value, so no index is skipped), booleans as
 * `true` / `false`, `Date`s and `DateTime`s as Unix seconds. Fails with what does not encode
 * (a non-finite number, a key with `[` or `]`, an `undefined` array element, a function, …).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeParams = (params: Params): Either.Either<string, string> =>
  Either.map(encodeForm(params), formString)

/**
 * Request parameters: the named ones are typed, any other Stripe parameter may be added.
 *
 * @since 0.1.0
 * @category models
 */
export interface Params {
  readonly [param: string]: Param
}

/**
 * `metadata`: up to 50 keys; a `null` (or empty) value removes that key on update.
 *
 * @since 0.1.0
 * @category models
 */
export type Metadata = Readonly<Record<string, string | number | null>>

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentCreateParams extends Params {
  /** In the smallest currency unit (cents). */
  readonly amount: number
  /** Three-letter ISO code, lowercase, e.g. `usd`. */
  readonly currency: string
  readonly automatic_payment_methods?: { readonly enabled: boolean; readonly allow_redirects?: "always" | "never" }
  readonly capture_method?: "automatic" | "automatic_async" | "manual"
  readonly confirm?: boolean
  readonly customer?: string
  readonly description?: string
  readonly metadata?: Metadata
  readonly payment_method?: string
  readonly payment_method_types?: ReadonlyArray<string>
  readonly receipt_email?: string
  readonly return_url?: string
  readonly statement_descriptor?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentUpdateParams extends Params {
  readonly amount?: number
  readonly currency?: string
  readonly customer?: string
  readonly description?: string | null
  readonly metadata?: Metadata | null
  readonly payment_method?: string
  readonly receipt_email?: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentConfirmParams extends Params {
  readonly payment_method?: string
  readonly capture_method?: "automatic" | "automatic_async" | "manual"
  readonly receipt_email?: string | null
  readonly return_url?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentCancelParams extends Params {
  readonly cancellation_reason?: "duplicate" | "fraudulent" | "requested_by_customer" | "abandoned"
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentCaptureParams extends Params {
  /** Defaults to the whole `amount_capturable`. */
  readonly amount_to_capture?: number
  readonly metadata?: Metadata
}

/**
 * The cursor parameters of every list: `limit` from 1 to 100 (Stripe's default 10),
 * `starting_after` (the page after this object) or `ending_before` (the page before it).
 *
 * @since 0.1.0
 * @category models
 */
export interface ListParams extends Params {
  readonly limit?: number
  readonly starting_after?: string
  readonly ending_before?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentListParams extends ListParams {
  readonly customer?: string
  /** Unix seconds or a `Date`, or a range: `{ gte: new Date(...) }`. */
  readonly created?:
    | number
    | Date
    | {
      readonly gt?: number | Date
      readonly gte?: number | Date
      readonly lt?: number | Date
      readonly lte?: number | Date
    }
}

/**
 * Options of one call.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  /** For a POST: the key Stripe deduplicates on (up to 255 characters). Default: a new UUID per call. */
  readonly idempotencyKey?: string | undefined
  /** Act on behalf of a connected account (`Stripe-Account`, Connect). */
  readonly stripeAccount?: string | undefined
}

/**
 * One request to any Stripe endpoint, for the endpoints this module has no method for.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request<A, I> {
  readonly method: "GET" | "POST" | "DELETE"
  /** E.g. `/v1/customers`. */
  readonly path: string
  /** Sent as the query of a GET or DELETE, as the form body of a POST. */
  readonly params?: Params | undefined
  /** Decodes the JSON answer. */
  readonly schema: Schema.Schema<A, I>
  readonly options?: RequestOptions | undefined
}

// ---------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntents {
  readonly create: (
    params: PaymentIntentCreateParams,
    options?: RequestOptions
  ) => Effect.Effect<PaymentIntent, Error>
  readonly retrieve: (
    id: string,
    params?: { readonly client_secret?: string },
    options?: RequestOptions
  ) => Effect.Effect<PaymentIntent, Error>
  readonly update: (
    id: string,
    params: PaymentIntentUpdateParams,
    options?: RequestOptions
  ) => Effect.Effect<PaymentIntent, Error>
  readonly confirm: (
    id: string,
    params?: PaymentIntentConfirmParams,
    options?: RequestOptions
  ) => Effect.Effect<PaymentIntent, Error>
  readonly cancel: (
    id: string,
    params?: PaymentIntentCancelParams,
    options?: RequestOptions
  ) => Effect.Effect<PaymentIntent, Error>
  readonly capture: (
    id: string,
    params?: PaymentIntentCaptureParams,
    options?: RequestOptions
  ) => Effect.Effect<PaymentIntent, Error>
  /** One page, newest first. */
  readonly list: (
    params?: PaymentIntentListParams,
    options?: RequestOptions
  ) => Effect.Effect<List<PaymentIntent>, Error>
  /**
   * Every PaymentIntent from the cursor on, fetching page after page as the stream is pulled
   * (`limit` is the page size). With `ending_before`, pages are fetched backwards.
   */
  readonly autoPaginate: (
    params?: PaymentIntentListParams,
    options?: RequestOptions
  ) => Stream.Stream<PaymentIntent, Error>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The HTTP client underneath: base URL, authentication and `Stripe-Version` set. */
  readonly http: Http.Service
  /** Any endpoint, with this client's encoding, idempotency, retries and errors. */
  readonly request: <A, I>(request: Request<A, I>) => Effect.Effect<A, Error>
  readonly paymentIntents: PaymentIntents
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Stripe extends Context.Tag("@liaison/integrations/Stripe")<Stripe, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `sk_live_…`, `sk_test_…` or a restricted `rk_…` key. */
  readonly apiKey: Redacted.Redacted<string>
  /** Default {@link defaultApiBase}. */
  readonly apiBase?: string | undefined
  /** Default {@link apiVersion}. */
  readonly apiVersion?: string | undefined
  /** Retries after the first attempt. Default 2. */
  readonly maxNetworkRetries?: number | undefined
  /** The first retry's wait, doubled for each further one, jittered to 50–100 %. Default 500 ms. */
  readonly initialNetworkRetryDelay?: Duration.DurationInput | undefined
  /** The longest wait between retries. Default 5 seconds. */
  readonly maxNetworkRetryDelay?: Duration.DurationInput | undefined
  /** The longest `Retry-After` honoured. Default 60 seconds. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Generates the `Idempotency-Key` of a POST the caller gave none for. Default `liaison-<UUID>`. */
  readonly idempotencyKey?: (() => string) | undefined
  /** Timeouts, pool and other settings of the HTTP client underneath. */
  readonly http?: Omit<Http.Options, "baseUrl" | "headers"> | undefined
}

const defaultIdempotencyKey = (): string => `liaison-${globalThis.crypto.randomUUID()}`

/**
 * Builds the client: its own {@link Http.Http} (closed with the scope) with Stripe's base URL
 * and headers, and a {@link Retry.Retry} policy with Stripe's rules ({@link shouldRetry}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, Retry.InvalidOptions, Scope.Scope> =>
  Effect.gen(function*() {
    const apiBase = options.apiBase ?? defaultApiBase
    const http = yield* Provider.makeHttp({
      apiBase,
      apiKey: options.apiKey,
      headers: { "stripe-version": options.apiVersion ?? apiVersion, accept: "application/json" },
      http: options.http
    })
    const retry = yield* Retry.make({
      maxAttempts: (options.maxNetworkRetries ?? 2) + 1,
      base: options.initialNetworkRetryDelay ?? "500 millis",
      cap: options.maxNetworkRetryDelay ?? "5 seconds",
      jitter: { min: 0.5, max: 1 },
      maxRetryAfter: options.maxRetryAfter ?? "60 seconds",
      // Connection failures keep Retry's defaults (retried: a POST's idempotency key makes it safe).
      isRetryable: (outcome) => outcome._tag === "Response" ? shouldRetry(outcome.status, outcome.headers) : undefined
    })
    const newKey = options.idempotencyKey ?? defaultIdempotencyKey

    /** Sends with retries (each attempt in a span with its number) and reads the last answer. */
    const send = (request: HttpClientRequest.HttpClientRequest): Effect.Effect<Provider.Answer, HttpError.HttpError> =>
      Effect.flatMap(Ref.make(0), (attempts) => {
        const attempt: Http.Service["execute"] = (request) =>
          Effect.flatMap(Ref.updateAndGet(attempts, (n) => n + 1), (number) =>
            http.execute(request).pipe(
              Effect.withSpan("Stripe.attempt", {
                kind: "client",
                attributes: { "http.request.method": request.method, "url.path": request.url, "stripe.attempt": number }
              })
            ))
        return Provider.answer(retry.execute(attempt, apiBase), request)
      })

    const request = <A, I>(spec: Request<A, I>): Effect.Effect<A, Error> =>
      Effect.gen(function*() {
        const encoded = encodeParams(spec.params ?? {})
        if (Either.isLeft(encoded)) {
          return yield* new HttpError.InvalidRequest({ reason: `Stripe parameters: ${encoded.left}` })
        }
        let built = HttpClientRequest.make(spec.method)(spec.path)
        if (spec.method === "POST") {
          built = HttpClientRequest.bodyText(built, encoded.right, "application/x-www-form-urlencoded")
          // One key for every attempt of this call: a retry after a lost answer replays it.
          built = HttpClientRequest.setHeader(built, "idempotency-key", spec.options?.idempotencyKey ?? newKey())
        } else if (encoded.right !== "") {
          // Stripe reads the query as it reads a form body.
          built = HttpClientRequest.setUrl(built, `${spec.path}?${encoded.right}`)
        }
        if (spec.options?.stripeAccount !== undefined) {
          built = HttpClientRequest.setHeader(built, "stripe-account", spec.options.stripeAccount)
        }
        const answer = yield* send(built)
        if (answer.status < 200 || answer.status >= 300) {
          return yield* errorFromResponse(answer.status, answer.headers, answer.body)
        }
        const json = yield* Effect.try({
          try: (): unknown => JSON.parse(answer.body),
          catch: (cause) => decodeError(spec.method, spec.path, answer.status, `invalid JSON: ${String(cause)}`)
        })
        return yield* Schema.decodeUnknown(spec.schema)(json).pipe(
          Effect.mapError((error) =>
            decodeError(spec.method, spec.path, answer.status, ParseResult.TreeFormatter.formatErrorSync(error))
          )
        )
      }).pipe(
        Effect.withSpan("Stripe.request", { attributes: { "http.request.method": spec.method, "url.path": spec.path } })
      )

    const decodeError = (method: string, path: string, status: number, reason: string) =>
      new HttpError.DecodeError({ method, url: `${apiBase}${path}`, status, reason })

    const intentPath = (id: string, action = "") => `/v1/payment_intents/${encodeURIComponent(id)}${action}`
    const post = (path: string, params: Params | undefined, options: RequestOptions | undefined) =>
      request({ method: "POST", path, params, schema: PaymentIntent, options })

    const list: PaymentIntents["list"] = (params, options) =>
      request({ method: "GET", path: "/v1/payment_intents", params, schema: List(PaymentIntent), options })

    const paymentIntents: PaymentIntents = {
      create: (params, options) => post("/v1/payment_intents", params, options),
      retrieve: (id, params, options) =>
        request({ method: "GET", path: intentPath(id), params, schema: PaymentIntent, options }),
      update: (id, params, options) => post(intentPath(id), params, options),
      confirm: (id, params, options) => post(intentPath(id, "/confirm"), params, options),
      cancel: (id, params, options) => post(intentPath(id, "/cancel"), params, options),
      capture: (id, params, options) => post(intentPath(id, "/capture"), params, options),
      list,
      autoPaginate: (params = {}, options) => autoPaginate((page) => list(page, options), params)
    }

    return { http, request, paymentIntents }
  })

/**
 * Every item of a Stripe list from the cursor in `params` on, page after page as the stream is
 * pulled: each next page starts after the last item of the one before (with `ending_before`,
 * before its first item, going backwards), until `has_more` is false.
 *
 * @since 0.1.0
 * @category pagination
 */
export const autoPaginate = <A extends { readonly id: string }, E, R, P extends ListParams>(
  list: (params: P) => Effect.Effect<List<A>, E, R>,
  params: P
): Stream.Stream<A, E, R> => {
  const backwards = params.ending_before !== undefined
  const page = (cursor: string | undefined) =>
    cursor === undefined ? params : backwards ? { ...params, ending_before: cursor } : {
      ...params,
      starting_after: cursor
    }
  return Stream.paginateEffect(undefined as string | undefined, (cursor) =>
    Effect.map(list(page(cursor)), (result) => {
      const next = backwards ? result.data[0] : result.data[result.data.length - 1]
      return [
        result.data,
        result.has_more && next !== undefined ? Option.some(next.id) : Option.none()
      ] as const
    })).pipe(Stream.flattenIterables)
}

/**
 * The client as a scoped layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Stripe, Retry.InvalidOptions> =>
  Layer.scoped(Stripe, make(options))

/**
 * The client configured with `Config`: by default the secret key from `STRIPE_SECRET_KEY`
 * (redacted) and the base URL from `STRIPE_API_BASE` (default {@link defaultApiBase}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Provider.ConfigOptions<Options> = {}
): Layer.Layer<Stripe, ConfigError.ConfigError | Retry.InvalidOptions> =>
  Layer.unwrapEffect(
    Effect.map(
      Provider.credentials(options, {
        apiKey: "STRIPE_SECRET_KEY",
        apiBase: "STRIPE_API_BASE",
        defaultApiBase
      }),
      (credentials) => layer({ ...options, ...credentials })
    )
  )
