/**
 * A SendGrid mail client (`POST /v3/mail/send`, https://www.twilio.com/docs/sendgrid/api-reference/mail-send)
 * over Liaison's {@link Http.Http}, shaped like `@effect/ai-openai`'s `OpenAiClient`: a service Tag,
 * {@link make} and {@link layer} on the `Http` in context (the application's pool and middleware:
 * its requests carry absolute URLs), {@link layerStandalone} with a pool of its own, and
 * {@link layerConfig} (`SENDGRID_API_KEY` as a `Config.redacted`). The message Schemas are in
 * `SendGridSchema`, the errors in `SendGridError`, the Event Webhook verifier in `SendGridWebhook`.
 *
 * - A `SendGridSchema.Message` is validated with a Schema (addresses, non-empty subject and
 *   content unless a `template_id` gives them, `dynamic_template_data` only with a dynamic
 *   template, attachments in base64, at most 10 categories of up to 255 characters, `asm`,
 *   `mail_settings`, `tracking_settings`, …); a field the Schema does not know is an
 *   `InvalidMessage` naming it, never silently dropped. Then SendGrid's limits are checked before
 *   anything is sent: at most 1000 personalizations, 1000 recipients in all (to + cc + bcc),
 *   30 MiB of payload, 10,000 bytes of `custom_args`, `send_at` at most 72 hours ahead. Content
 *   goes out `text/plain` first, then `text/html`, as SendGrid requires. The JSON body is the one
 *   `@sendgrid/mail` sends for the same message (a test compares them on the wire).
 * - `batches` creates batch ids and pauses, cancels or resumes the scheduled sends that carry one.
 * - 202 → `Accepted` with the `X-Message-Id`; in sandbox mode SendGrid validates the message,
 *   answers 200 and sends nothing (`sandbox: true`).
 * - Errors → `SendGridError.SendGridError` with SendGrid's `errors: [{ message, field, help }]`.
 * - A 429 waits until `X-RateLimit-Reset` and tries again (a bounded number of times); a refused
 *   connection is retried too (the message cannot have been sent). Nothing else is retried here:
 *   mail send has no idempotency key, so an unanswered request may have been sent.
 * - Every send first takes a permit from a rate limiter (`RateLimit`, shared by every instance
 *   when a Redis-backed `RateLimit.RateLimit` is provided).
 *
 * @example
 * ```ts
 * import { Http } from "@liaison/core"
 * import { SendGrid } from "@liaison/integrations"
 * import { Effect, Layer } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const sendgrid = yield* SendGrid.SendGrid
 *   const { messageId } = yield* sendgrid.send({
 *     from: { email: "shop@example.com", name: "Shop" },
 *     to: [{ email: "ann@example.com" }],
 *     subject: "Your order",
 *     text: "Thank you!",
 *     html: "<p>Thank you!</p>"
 *   })
 *   return messageId
 * }).pipe(Effect.provide(SendGrid.layerConfig().pipe(Layer.provide(Http.layer()))))
 *
 * // A dynamic template: its subject and content, each envelope's data rendered into it.
 * const welcome = Effect.flatMap(SendGrid.SendGrid, (sendgrid) =>
 *   sendgrid.send({
 *     from: { email: "shop@example.com" },
 *     template_id: "d-0123456789abcdef0123456789abcdef",
 *     personalizations: [
 *       { to: [{ email: "ann@example.com" }], dynamic_template_data: { name: "Ann" } },
 *       { to: [{ email: "bob@example.com" }], dynamic_template_data: { name: "Bob" } }
 *     ],
 *     asm: { group_id: 42 }
 *   }))
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { HttpError, LiaisonError } from "@liaison/core"
import { Http, RateLimit, Retry } from "@liaison/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Provider from "./internal/provider.js"
import * as internal from "./internal/sendGrid.js"
import type * as SendGridError from "./SendGridError.js"
import type * as SendGridSchema from "./SendGridSchema.js"

/**
 * For EU regional subusers.
 *
 * @since 0.1.0
 * @category constants
 */
export const euApiBase = "https://api.eu.sendgrid.com"

/**
 * The defaults of {@link Options}: the global API base, 100 sends per second in bursts of 100
 * under the key `sendgrid`, 3 retries after a 429 or a refused connection (from 1 s, doubling up
 * to 30 s), a `X-RateLimit-Reset` waited for up to 60 s; and how much of an error answer is read.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: {
  readonly apiBase: string
  readonly rateLimit: RateLimit.Rule
  readonly rateLimitKey: string
  readonly maxRetries: number
  readonly retryBase: Duration.Duration
  readonly retryCap: Duration.Duration
  readonly maxRateLimitWait: Duration.Duration
  readonly maxErrorBodyBytes: number
} = {
  apiBase: "https://api.sendgrid.com",
  rateLimit: RateLimit.tokenBucket({ limit: 100, interval: "1 second" }),
  rateLimitKey: "sendgrid",
  maxRetries: 3,
  retryBase: Duration.seconds(1),
  retryCap: Duration.seconds(30),
  maxRateLimitWait: Duration.seconds(60),
  maxErrorBodyBytes: 64 * 1024
}

/**
 * Every way a send can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type Error =
  | SendGridError.InvalidMessage
  | SendGridError.LimitExceeded
  | SendGridError.SendGridError
  | HttpError.HttpError

/**
 * Every way a batch call can fail: a malformed batch id (`InvalidMessage` on `batch_id`),
 * SendGrid's answer, or the call itself.
 *
 * @since 0.1.0
 * @category errors
 */
export type BatchError = SendGridError.InvalidMessage | SendGridError.SendGridError | HttpError.HttpError

/**
 * Scheduled sends grouped by a batch id
 * (https://www.twilio.com/docs/sendgrid/api-reference/cancel-scheduled-sends): create an id, send
 * messages with it as `batch_id` and a `send_at`, then pause or cancel them together (up to 10
 * minutes before their `send_at`; at most 10 batches paused or cancelled at a time), or resume.
 *
 * @since 0.1.0
 * @category models
 */
export interface Batches {
  /** `POST /v3/mail/batch`: a new batch id. */
  readonly create: Effect.Effect<string, BatchError>
  /** `POST /v3/user/scheduled_sends` `{ batch_id, status: "cancel" }`: discarded at their `send_at`. */
  readonly cancel: (batchId: string) => Effect.Effect<void, BatchError>
  /** `POST /v3/user/scheduled_sends` `{ batch_id, status: "pause" }`: held until resumed (72 hours at most). */
  readonly pause: (batchId: string) => Effect.Effect<void, BatchError>
  /** `DELETE /v3/user/scheduled_sends/{batch_id}`: the pause or cancellation taken back. */
  readonly resume: (batchId: string) => Effect.Effect<void, BatchError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The `Http` underneath with this client's decoration: the API base, the key and the retries. */
  readonly http: Http.Service
  /**
   * Validates (an unknown field is an `InvalidMessage` naming it, never dropped), checks the
   * limits, waits for a rate-limit permit and sends.
   */
  readonly send: (message: SendGridSchema.Message) => Effect.Effect<SendGridSchema.Accepted, Error>
  /** Batch ids for scheduled sends: pause, cancel or resume them together. */
  readonly batches: Batches
}

/**
 * @since 0.1.0
 * @category models
 */
export class SendGrid extends Context.Tag("@liaison/integrations/SendGrid")<SendGrid, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `SG.…`. */
  readonly apiKey: Redacted.Redacted<string>
  /** Default `defaults.apiBase`; {@link euApiBase} for EU regional subusers. */
  readonly apiBase?: string | undefined
  /** Sends allowed to start, as a `RateLimit` rule. Default 100 per second, bursts of 100. */
  readonly rateLimit?: RateLimit.Rule | undefined
  /** The rate limiter's key (instances sharing a Redis-backed limiter share it). Default `sendgrid`. */
  readonly rateLimitKey?: string | undefined
  /** Tries after a 429 or a refused connection. Default 3. */
  readonly maxRetries?: number | undefined
  /** The longest wait for `X-RateLimit-Reset`; a longer one fails with `RetryAfterTooLong`. Default 60 seconds. */
  readonly maxRateLimitWait?: Duration.DurationInput | undefined
}

/**
 * The environment {@link layerConfig} reads by default: `SENDGRID_API_KEY` (redacted, required)
 * and `SENDGRID_API_BASE` (optional: unset is `defaults.apiBase`; {@link euApiBase} for the EU).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Provider.credentials({
  apiKey: "SENDGRID_API_KEY",
  apiBase: "SENDGRID_API_BASE"
})

/**
 * Validates a message with the `SendGridSchema.Message` Schema and checks SendGrid's limits
 * (`send_at` against the `Clock`): what {@link Service.send} does before sending, for callers that
 * accept a message now and send it later (e.g. from a queue).
 *
 * @since 0.1.0
 * @category constructors
 */
export const validate = (
  input: unknown
): Effect.Effect<SendGridSchema.Message, SendGridError.InvalidMessage | SendGridError.LimitExceeded> =>
  Effect.map(internal.checked(input), ({ message }) => message)

/** SendGrid's retry rules: a 429, or a connection refused (nothing can have been sent). */
const retryOptions = (options: Options): Retry.Options => ({
  maxAttempts: (options.maxRetries ?? defaults.maxRetries) + 1,
  base: defaults.retryBase,
  cap: defaults.retryCap,
  maxRetryAfter: options.maxRateLimitWait ?? defaults.maxRateLimitWait,
  // A POST without an idempotency key: retried only when it cannot have been sent.
  retryNonIdempotent: true,
  isRetryable: (outcome) =>
    outcome._tag === "Response"
      ? outcome.status === 429
      : outcome.error._tag === "TransportError" && outcome.error.reason === "refused"
})

/**
 * Builds the client on the {@link Http.Http} in context, with its own middleware on top
 * (SendGrid's base URL and key, then a `Retry` policy with SendGrid's rules). Sends take permits
 * from the `RateLimit.RateLimit` in the context if there is one, else from an in-process one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, LiaisonError.InvalidOptions, Http.Http> =>
  Effect.gen(function*() {
    const limiter = yield* internal.rateLimiter
    const rule = yield* RateLimit.validate(options.rateLimit ?? defaults.rateLimit)
    const key = options.rateLimitKey ?? defaults.rateLimitKey
    const http = Http.withMiddleware(
      Http.withMiddleware(yield* Http.Http, yield* Retry.middleware(retryOptions(options))),
      Provider.decorateRequests({
        apiBase: options.apiBase ?? defaults.apiBase,
        apiKey: options.apiKey,
        headers: { accept: "application/json" }
      })
    )
    const send = Effect.fn("SendGrid.send")(function*(input: SendGridSchema.Message) {
      const { json } = yield* internal.checked(input)
      yield* limiter.acquire(key, rule, "wait")
      const request = HttpClientRequest.bodyText(HttpClientRequest.post("/v3/mail/send"), json, "application/json")
      return yield* Effect.scoped(
        Effect.flatMap(http.execute(request), internal.readAnswer(defaults.maxErrorBodyBytes))
      )
    })
    return SendGrid.of({ http, send, batches: internal.makeBatches(http, defaults.maxErrorBodyBytes) })
  })

/**
 * The client on the {@link Http.Http} in context (e.g. the application's: one pool for every
 * upstream, its middleware around SendGrid's calls too). The client brings its own retries: give it
 * an `Http` without a `Retry` middleware, or every attempt is retried again underneath.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<SendGrid, LiaisonError.InvalidOptions, Http.Http> =>
  Layer.effect(SendGrid, make(options))

/**
 * The client with a pool of its own (closed with the layer): {@link layer} over an `Http` made
 * from `options.http` (Http's default timeouts unless set).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStandalone = (
  options: Options & { readonly http?: Omit<Http.Options, "baseUrl" | "headers"> | undefined }
): Layer.Layer<SendGrid, LiaisonError.InvalidOptions> => Layer.provide(layer(options), Http.layer(options.http))

/**
 * {@link layer} with its options from `Config`: by default {@link config} (`SENDGRID_API_KEY`,
 * `SENDGRID_API_BASE`); the caller may name its own variables, e.g.
 * `SendGrid.layerConfig({ apiKey: Config.redacted("MY_SENDGRID_KEY") })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<SendGrid, ConfigError.ConfigError | LiaisonError.InvalidOptions, Http.Http> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
