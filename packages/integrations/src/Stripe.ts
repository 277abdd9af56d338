/**
 * A Stripe client: PaymentIntents (create, retrieve, update, confirm, cancel, capture, list,
 * auto-pagination as a `Stream`) over Liaison's {@link Http.Http}, shaped like
 * `@effect/ai-openai`'s `OpenAiClient`: a service Tag, {@link make} and {@link layer} on the
 * `Http` in context (the application's pool and middleware: its requests carry absolute URLs),
 * {@link layerStandalone} with a pool of its own, and {@link layerConfig} (`STRIPE_SECRET_KEY` as a
 * `Config.redacted`). Errors are in `StripeError`, objects and parameters in `StripeSchema`, the
 * webhook verifier in `StripeWebhook`.
 *
 * What it does for you, as Stripe's API expects (https://docs.stripe.com/api):
 *
 * - every request carries `Authorization: Bearer <secret key>` (redacted in traces), a pinned
 *   `Stripe-Version` (`defaults.apiVersion`) and, when asked, `Stripe-Account` (Connect);
 * - parameters in Stripe's form encoding: `metadata[order_id]=6735`, `payment_method_types[0]=card`,
 *   `null` as an empty value (unsets a field), `undefined` left out, dates as Unix seconds;
 * - every POST carries an `Idempotency-Key` (yours, or a generated one), the same on every retry;
 * - retries as Stripe's own libraries do: connection errors, 409 and 5xx are retried, 429 backs
 *   off, and a `Stripe-Should-Retry: true|false` answer overrides all of that; exponential
 *   backoff with jitter, bounded;
 * - errors typed by Stripe's error `type` (`StripeError.CardError`, `StripeError.InvalidRequestError`,
 *   …), each with `code`, `decline_code`, `param`, `doc_url`, `message` and the `Request-Id`.
 *
 * A GET's parameters (e.g. a `client_secret`) travel as URL parameters, never in the URL string
 * that errors and spans show.
 *
 * @example
 * ```ts
 * import { Http } from "@liaison/core"
 * import { Stripe } from "@liaison/integrations"
 * import { Effect, Layer } from "effect"
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
 *   // the application's Http: one pool shared with its other upstreams
 *   Effect.provide(Stripe.layerConfig().pipe(Layer.provide(Http.layer())))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type { HttpError, LiaisonError } from "@liaison/core"
import { Http, Retry } from "@liaison/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import * as Provider from "./internal/provider.js"
import * as internal from "./internal/stripe.js"
import * as StripeError from "./StripeError.js"
import type * as StripeSchema from "./StripeSchema.js"

/**
 * The defaults of {@link Options}, as Stripe's own libraries have them: the API base, the pinned
 * `Stripe-Version` (so a change of the account's default version never changes what this client
 * receives), 2 retries from 500 ms doubling up to 5 s, a `Retry-After` honoured up to 60 s; and
 * how much of an error answer is read (Stripe's errors may embed the PaymentIntent).
 *
 * `apiVersion` is `2026-09-30.endive`, the current version on Stripe's API versioning page
 * (https://docs.stripe.com/api-versions) when it was pinned. Another version is one option away:
 * `Stripe.layer({ apiKey, apiVersion: "2025-07-30.basil" })` (or `Options.apiVersion` in `make`,
 * `layerStandalone`, `layerConfig`); every request of that client then carries it.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: {
  readonly apiBase: string
  readonly apiVersion: string
  readonly maxNetworkRetries: number
  readonly initialNetworkRetryDelay: Duration.Duration
  readonly maxNetworkRetryDelay: Duration.Duration
  readonly maxRetryAfter: Duration.Duration
  readonly maxErrorBodyBytes: number
} = {
  apiBase: "https://api.stripe.com",
  apiVersion: "2026-09-30.endive",
  maxNetworkRetries: 2,
  initialNetworkRetryDelay: Duration.millis(500),
  maxNetworkRetryDelay: Duration.seconds(5),
  maxRetryAfter: Duration.seconds(60),
  maxErrorBodyBytes: 64 * 1024
}

/**
 * Every way a call of this client can fail: Stripe's answer, or the call itself (timed out,
 * could not connect, an answer that did not decode, parameters that do not encode, Stripe
 * asking for a longer wait than `maxRetryAfter`, …).
 *
 * @since 0.1.0
 * @category errors
 */
export type Error = StripeError.StripeError | HttpError.HttpError

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
  /** Sent as the URL parameters of a GET or DELETE, as the form body of a POST. */
  readonly params?: StripeSchema.Params | undefined
  /** Decodes the JSON answer. */
  readonly schema: Schema.Schema<A, I>
  readonly options?: RequestOptions | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntents {
  readonly create: (
    params: StripeSchema.PaymentIntentCreateParams,
    options?: RequestOptions
  ) => Effect.Effect<StripeSchema.PaymentIntent, Error>
  readonly retrieve: (
    id: string,
    params?: { readonly client_secret?: string },
    options?: RequestOptions
  ) => Effect.Effect<StripeSchema.PaymentIntent, Error>
  readonly update: (
    id: string,
    params: StripeSchema.PaymentIntentUpdateParams,
    options?: RequestOptions
  ) => Effect.Effect<StripeSchema.PaymentIntent, Error>
  readonly confirm: (
    id: string,
    params?: StripeSchema.PaymentIntentConfirmParams,
    options?: RequestOptions
  ) => Effect.Effect<StripeSchema.PaymentIntent, Error>
  readonly cancel: (
    id: string,
    params?: StripeSchema.PaymentIntentCancelParams,
    options?: RequestOptions
  ) => Effect.Effect<StripeSchema.PaymentIntent, Error>
  readonly capture: (
    id: string,
    params?: StripeSchema.PaymentIntentCaptureParams,
    options?: RequestOptions
  ) => Effect.Effect<StripeSchema.PaymentIntent, Error>
  /** One page, newest first. */
  readonly list: (
    params?: StripeSchema.PaymentIntentListParams,
    options?: RequestOptions
  ) => Effect.Effect<StripeSchema.List<StripeSchema.PaymentIntent>, Error>
  /**
   * Every PaymentIntent from the cursor on, fetching page after page as the stream is pulled
   * (`limit` is the page size). With `ending_before`, pages are fetched backwards.
   */
  readonly autoPaginate: (
    params?: StripeSchema.PaymentIntentListParams,
    options?: RequestOptions
  ) => Stream.Stream<StripeSchema.PaymentIntent, Error>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * The `Http` underneath with this client's decoration: relative URLs get the API base, every
   * request the key, `Stripe-Version` and Stripe's retries.
   */
  readonly http: Http.Service
  /** Any endpoint, with this client's encoding, idempotency, retries and errors. */
  readonly request: <A, I>(request: Request<A, I>) => Effect.Effect<A, Error>
  readonly paymentIntents: PaymentIntents
}

/**
 * @since 0.1.0
 * @category models
 */
export class Stripe extends Context.Tag("@liaison/integrations/Stripe")<Stripe, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `sk_live_…`, `sk_test_…` or a restricted `rk_…` key. */
  readonly apiKey: Redacted.Redacted<string>
  /** Default `defaults.apiBase`. */
  readonly apiBase?: string | undefined
  /**
   * The `Stripe-Version` every request carries (`YYYY-MM-DD.name`, see
   * https://docs.stripe.com/api-versions). Default `defaults.apiVersion` (`2026-09-30.endive`);
   * set it to stay on the version your integration was written for, e.g. `"2025-07-30.basil"`.
   * Stripe answers with the objects of that version; `StripeSchema.PaymentIntent` requires only
   * `id`, `object`, `amount`, `amount_received`, `currency`, `status`, `created`, `livemode` and
   * `metadata`, the rest being optional.
   */
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
}

/**
 * The environment {@link layerConfig} reads by default: `STRIPE_SECRET_KEY` (redacted, required)
 * and `STRIPE_API_BASE` (optional: unset is `defaults.apiBase`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Provider.credentials({
  apiKey: "STRIPE_SECRET_KEY",
  apiBase: "STRIPE_API_BASE"
})

const defaultIdempotencyKey = (): string => `liaison-${globalThis.crypto.randomUUID()}`

/** Stripe's retry rules as a `Retry` policy. */
const retryOptions = (options: Options): Retry.Options => ({
  maxAttempts: (options.maxNetworkRetries ?? defaults.maxNetworkRetries) + 1,
  base: options.initialNetworkRetryDelay ?? defaults.initialNetworkRetryDelay,
  cap: options.maxNetworkRetryDelay ?? defaults.maxNetworkRetryDelay,
  jitter: { min: 0.5, max: 1 },
  maxRetryAfter: options.maxRetryAfter ?? defaults.maxRetryAfter,
  // Connection failures keep Retry's defaults (retried: a POST's idempotency key makes it safe).
  isRetryable: (outcome) =>
    outcome._tag === "Response" ? StripeError.shouldRetry(outcome.status, outcome.headers) : undefined
})

/**
 * Builds the client on the {@link Http.Http} in context: its own middleware on top (Stripe's
 * base URL and headers, then a `Retry` policy with Stripe's rules, `StripeError.shouldRetry`,
 * each attempt a `Stripe.attempt` span); the `Http`'s pool, timeouts and middleware are shared.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, LiaisonError.InvalidOptions, Http.Http> =>
  Effect.gen(function*() {
    const retry = yield* Retry.middleware(retryOptions(options))
    // Innermost first: each attempt's span, Stripe's retries, then the base URL and headers.
    const attempts = Http.withMiddleware(yield* Http.Http, Provider.attemptSpans("Stripe.attempt", "stripe.attempt"))
    const http = Http.withMiddleware(
      Http.withMiddleware(attempts, retry),
      Provider.decorateRequests({
        apiBase: options.apiBase ?? defaults.apiBase,
        apiKey: options.apiKey,
        headers: { "stripe-version": options.apiVersion ?? defaults.apiVersion, accept: "application/json" }
      })
    )
    const request = internal.makeRequest(
      http,
      options.idempotencyKey ?? defaultIdempotencyKey,
      defaults.maxErrorBodyBytes
    )
    return Stripe.of({ http, request, paymentIntents: internal.makePaymentIntents(request) })
  })

/**
 * Every item of a Stripe list from the cursor in `params` on, page after page as the stream is
 * pulled: each next page starts after the last item of the one before (with `ending_before`,
 * before its first item, going backwards), until `has_more` is false.
 *
 * @since 0.1.0
 * @category constructors
 */
export const autoPaginate: <A extends { readonly id: string }, E, R, P extends StripeSchema.ListParams>(
  list: (params: P) => Effect.Effect<StripeSchema.List<A>, E, R>,
  params: P
) => Stream.Stream<A, E, R> = internal.autoPaginate

/**
 * The client on the {@link Http.Http} in context (e.g. the application's: one pool for every
 * upstream, its middleware around Stripe's calls too). The client brings its own retries: give it
 * an `Http` without a `Retry` middleware, or every attempt is retried again underneath.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Stripe, LiaisonError.InvalidOptions, Http.Http> =>
  Layer.effect(Stripe, make(options))

/**
 * The client with a pool of its own (closed with the layer): {@link layer} over an `Http` made
 * from `options.http` (Http's default timeouts unless set). For a program whose only upstream
 * is Stripe, or that keeps Stripe's connections apart.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStandalone = (
  options: Options & { readonly http?: Omit<Http.Options, "baseUrl" | "headers"> | undefined }
): Layer.Layer<Stripe, LiaisonError.InvalidOptions> => Layer.provide(layer(options), Http.layer(options.http))

/**
 * {@link layer} with its options from `Config`: by default {@link config} (`STRIPE_SECRET_KEY`,
 * `STRIPE_API_BASE`); the caller may name its own variables, e.g.
 * `Stripe.layerConfig({ apiKey: Config.redacted("MY_STRIPE_KEY") })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<Stripe, ConfigError.ConfigError | LiaisonError.InvalidOptions, Http.Http> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
