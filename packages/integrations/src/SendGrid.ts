/**
 * A SendGrid mail client (`POST /v3/mail/send`, https://www.twilio.com/docs/sendgrid/api-reference/mail-send)
 * over Liaison's {@link Http.Http}, shaped like `@effect/ai-openai`'s `OpenAiClient`: a service Tag,
 * {@link make}, {@link layer} and {@link layerConfig} (`SENDGRID_API_KEY` as a `Config.redacted`).
 *
 * - A {@link Message} is validated with a Schema (addresses, non-empty subject and content,
 *   attachments in base64, at most 10 categories of up to 255 characters, …), then SendGrid's
 *   limits are checked before anything is sent: at most 1000 personalizations, 1000 recipients
 *   in all (to + cc + bcc), 30 MiB of payload, 10,000 bytes of `custom_args`, `send_at` at most
 *   72 hours ahead. Content goes out `text/plain` first, then `text/html`, as SendGrid requires.
 * - 202 → {@link Accepted} with the `X-Message-Id`; in sandbox mode SendGrid validates the message,
 *   answers 200 and sends nothing (`sandbox: true`).
 * - Errors → {@link SendGridError} with SendGrid's `errors: [{ message, field, help }]`.
 * - A 429 waits until `X-RateLimit-Reset` and tries again (a bounded number of times); a refused
 *   connection is retried too (the message cannot have been sent). Nothing else is retried here:
 *   mail send has no idempotency key, so an unanswered request may have been sent.
 * - Every send first takes a permit from a rate limiter (`RateLimit`, shared by every instance
 *   when a Redis-backed `RateLimit.RateLimiter` is provided).
 *
 * @example
 * ```ts
 * import { SendGrid } from "@liaison/integrations"
 * import { Effect } from "effect"
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
 * }).pipe(Effect.provide(SendGrid.layerConfig()))
 * ```
 *
 * @since 0.1.0
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { Http, HttpError } from "@liaison/core"
import { RateLimit, Retry } from "@liaison/core"
import * as Clock from "effect/Clock"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Provider from "./internal/provider.js"

/**
 * For global users and subusers.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultApiBase = "https://api.sendgrid.com"

/**
 * For EU regional subusers.
 *
 * @since 0.1.0
 * @category constants
 */
export const euApiBase = "https://api.eu.sendgrid.com"

/**
 * SendGrid's limits on one mail send.
 *
 * @since 0.1.0
 * @category constants
 */
export const limits = {
  personalizations: 1000,
  /** to + cc + bcc, across every personalization. */
  recipients: 1000,
  /** The JSON payload, attachments included. */
  sizeBytes: 30 * 1024 * 1024,
  categories: 10,
  categoryLength: 255,
  customArgsBytes: 10_000,
  /** How far ahead `send_at` may be. */
  scheduleAhead: Duration.hours(72)
} as const

// ---------------------------------------------------------------------------
// message
// ---------------------------------------------------------------------------

const nonEmpty = (what: string) => Schema.String.pipe(Schema.minLength(1, { message: () => `${what} is empty` }))

/**
 * An email address: one `@`, no spaces or angle brackets, a dot in the domain.
 *
 * @since 0.1.0
 * @category schemas
 */
export const EmailAddress = Schema.String.pipe(
  Schema.pattern(/^[^\s@<>,;"()[\]]+@[^\s@<>,;"()[\]]+\.[^\s@<>,;"()[\]]+$/, {
    message: () => "must be an email address"
  }),
  Schema.maxLength(320, { message: () => "must be at most 320 characters" })
)

/**
 * `{ email, name? }`; SendGrid refuses `;` and `,` in a recipient's name.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Recipient = Schema.Struct({
  email: EmailAddress,
  name: Schema.optional(
    Schema.String.pipe(Schema.pattern(/^[^;,]*$/, { message: () => "must not contain ';' or ','" }))
  )
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Recipient extends Schema.Schema.Type<typeof Recipient> {}

/**
 * A file: `content` in base64; an `inline` one needs a `content_id` (for `cid:` in the HTML).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Attachment = Schema.Struct({
  content: Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9+/]+={0,2}$/, { message: () => "must be base64" }),
    Schema.filter((content) => content.length % 4 === 0 || "must be base64 (a multiple of 4 characters)")
  ),
  filename: nonEmpty("filename"),
  type: Schema.optional(nonEmpty("type")),
  disposition: Schema.optional(Schema.Literal("attachment", "inline")),
  content_id: Schema.optional(nonEmpty("content_id"))
}).pipe(
  Schema.filter((attachment) =>
    attachment.disposition !== "inline" || attachment.content_id !== undefined ||
    { path: ["content_id"], message: "an inline attachment needs a content_id" }
  )
)

/**
 * @since 0.1.0
 * @category models
 */
export interface Attachment extends Schema.Schema.Type<typeof Attachment> {}

const CustomArgs = Schema.Record({ key: Schema.String, value: Schema.String })

/**
 * One envelope: its own recipients and, optionally, its own subject, `custom_args` and `send_at`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Personalization = Schema.Struct({
  to: Schema.Array(Recipient).pipe(Schema.minItems(1, { message: () => "needs at least one recipient" })),
  cc: Schema.optional(Schema.Array(Recipient)),
  bcc: Schema.optional(Schema.Array(Recipient)),
  subject: Schema.optional(nonEmpty("subject")),
  custom_args: Schema.optional(CustomArgs),
  send_at: Schema.optional(Schema.DateFromSelf)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Personalization extends Schema.Schema.Type<typeof Personalization> {}

/**
 * An email. Recipients either as `to` / `cc` / `bcc` (one envelope) or as `personalizations`
 * (one envelope each, up to 1000). `text` and/or `html`; `subject` unless every personalization
 * has its own. `sandbox: true` asks SendGrid to validate and not send.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Message = Schema.Struct({
  from: Recipient,
  reply_to: Schema.optional(Recipient),
  to: Schema.optional(Schema.Array(Recipient)),
  cc: Schema.optional(Schema.Array(Recipient)),
  bcc: Schema.optional(Schema.Array(Recipient)),
  personalizations: Schema.optional(Schema.Array(Personalization)),
  subject: Schema.optional(nonEmpty("subject")),
  text: Schema.optional(nonEmpty("text")),
  html: Schema.optional(nonEmpty("html")),
  attachments: Schema.optional(Schema.Array(Attachment)),
  categories: Schema.optional(
    Schema.Array(
      Schema.String.pipe(Schema.maxLength(limits.categoryLength, {
        message: () => `a category has at most ${limits.categoryLength} characters`
      }))
    ).pipe(
      Schema.maxItems(limits.categories, { message: () => `at most ${limits.categories} categories` }),
      Schema.filter((categories) => new Set(categories).size === categories.length || "categories must be unique")
    )
  ),
  custom_args: Schema.optional(CustomArgs),
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  send_at: Schema.optional(Schema.DateFromSelf),
  sandbox: Schema.optional(Schema.Boolean)
}).pipe(
  Schema.filter((message) => {
    if (message.text === undefined && message.html === undefined) {
      return { path: ["text"], message: "needs text, html or both" }
    }
    const shorthand = message.to !== undefined || message.cc !== undefined || message.bcc !== undefined
    if (shorthand && message.personalizations !== undefined) {
      return { path: ["personalizations"], message: "give either to/cc/bcc or personalizations, not both" }
    }
    if (!shorthand && message.personalizations === undefined) {
      return { path: ["to"], message: "needs recipients: to, or personalizations" }
    }
    if (message.to !== undefined && message.to.length === 0) {
      return { path: ["to"], message: "needs at least one recipient" }
    }
    if (message.personalizations !== undefined && message.personalizations.length === 0) {
      return { path: ["personalizations"], message: "needs at least one personalization" }
    }
    const everyHasSubject = (message.personalizations ?? []).length > 0 &&
      (message.personalizations ?? []).every((personalization) => personalization.subject !== undefined)
    if (message.subject === undefined && !everyHasSubject) return { path: ["subject"], message: "is required" }
    return true
  })
).annotations({ identifier: "SendGrid.Message" })

/**
 * @since 0.1.0
 * @category models
 */
export interface Message extends Schema.Schema.Type<typeof Message> {}

/**
 * What SendGrid accepted: `messageId` from `X-Message-Id` (202); in sandbox mode (200) nothing is
 * sent and there is no id.
 *
 * @since 0.1.0
 * @category models
 */
export interface Accepted {
  readonly messageId: string | undefined
  readonly sandbox: boolean
}

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * The message does not validate (checked before sending).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidMessage extends Schema.TaggedError<InvalidMessage>("@liaison/integrations/SendGrid/InvalidMessage")(
  "SendGridInvalidMessage",
  {
    /** The offending field's path, e.g. `personalizations.0.to.1.email`. */
    field: Schema.String,
    reason: Schema.String
  }
) {
  override get message(): string {
    return `invalid email message: ${this.field === "" ? "" : `${this.field} `}${this.reason}`
  }
}

/**
 * The message is over one of SendGrid's {@link limits} (checked before sending).
 *
 * @since 0.1.0
 * @category errors
 */
export class LimitExceeded extends Schema.TaggedError<LimitExceeded>("@liaison/integrations/SendGrid/LimitExceeded")(
  "SendGridLimitExceeded",
  {
    limit: Schema.Literal("personalizations", "recipients", "size", "custom_args", "send_at"),
    max: Schema.Number,
    actual: Schema.Number
  }
) {
  override get message(): string {
    const unit = this.limit === "size" || this.limit === "custom_args"
      ? " bytes"
      : this.limit === "send_at"
      ? " ms ahead"
      : ""
    return `email over SendGrid's ${this.limit} limit: ${this.actual}${unit}, at most ${this.max}${unit}`
  }
}

/**
 * One of SendGrid's error entries.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ErrorEntry = Schema.Struct({
  message: Schema.String,
  field: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  help: Schema.optional(Schema.Unknown)
})

/**
 * SendGrid refused the request: its status and `errors`.
 *
 * @since 0.1.0
 * @category errors
 */
export class SendGridError extends Schema.TaggedError<SendGridError>("@liaison/integrations/SendGrid/SendGridError")(
  "SendGridError",
  {
    status: Schema.Number,
    errors: Schema.Array(ErrorEntry)
  }
) {
  override get message(): string {
    const details = this.errors.map((error) =>
      error.field === null ? error.message : `${error.field}: ${error.message}`
    )
    return `SendGrid answered ${this.status}${details.length === 0 ? "" : `: ${details.join("; ")}`}`
  }
}

/**
 * Every way a send can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type Error = InvalidMessage | LimitExceeded | SendGridError | HttpError.HttpError

const ErrorBody = Schema.parseJson(Schema.Struct({ errors: Schema.Array(ErrorEntry) }))
const decodeErrorBody = Schema.decodeUnknownOption(ErrorBody)

/**
 * The typed error of a non-2xx answer.
 *
 * @since 0.1.0
 * @category errors
 */
export const errorFromResponse = (status: number, body: string): SendGridError =>
  new SendGridError({
    status,
    errors: Option.match(decodeErrorBody(body), {
      onNone: () => [],
      onSome: (parsed) => parsed.errors
    })
  })

// ---------------------------------------------------------------------------
// wire payload
// ---------------------------------------------------------------------------

const unixSeconds = (date: Date) => Math.floor(date.getTime() / 1000)

const address = (recipient: Recipient) =>
  recipient.name === undefined ? { email: recipient.email } : { email: recipient.email, name: recipient.name }

const addresses = (recipients: ReadonlyArray<Recipient> | undefined) =>
  recipients === undefined || recipients.length === 0 ? undefined : recipients.map(address)

const defined = <A extends object>(value: A): A =>
  Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as A

/**
 * The JSON body of `POST /v3/mail/send` for a message.
 *
 * @since 0.1.0
 * @category encoding
 */
export const toPayload = (message: Message): Record<string, unknown> => {
  const personalizations = message.personalizations ?? [{ to: message.to ?? [], cc: message.cc, bcc: message.bcc }]
  return defined({
    personalizations: personalizations.map((personalization) =>
      defined({
        to: addresses(personalization.to),
        cc: addresses(personalization.cc),
        bcc: addresses(personalization.bcc),
        subject: "subject" in personalization ? personalization.subject : undefined,
        custom_args: "custom_args" in personalization ? personalization.custom_args : undefined,
        send_at: "send_at" in personalization && personalization.send_at !== undefined
          ? unixSeconds(personalization.send_at)
          : undefined
      })
    ),
    from: address(message.from),
    reply_to: message.reply_to === undefined ? undefined : address(message.reply_to),
    subject: message.subject,
    // text/plain first, then text/html: SendGrid refuses any other order.
    content: [
      ...(message.text === undefined ? [] : [{ type: "text/plain", value: message.text }]),
      ...(message.html === undefined ? [] : [{ type: "text/html", value: message.html }])
    ],
    attachments: message.attachments,
    categories: message.categories,
    custom_args: message.custom_args,
    headers: message.headers,
    send_at: message.send_at === undefined ? undefined : unixSeconds(message.send_at),
    mail_settings: message.sandbox === true ? { sandbox_mode: { enable: true } } : undefined
  })
}

const utf8Length = (text: string) => Buffer.byteLength(text, "utf8")

/** The first of SendGrid's limits the message is over, given the payload's JSON and the time. */
const overLimit = (message: Message, json: string, nowMillis: number): LimitExceeded | undefined => {
  const envelopes = message.personalizations ?? [{ to: message.to ?? [], cc: message.cc, bcc: message.bcc }]
  if (envelopes.length > limits.personalizations) {
    return new LimitExceeded({ limit: "personalizations", max: limits.personalizations, actual: envelopes.length })
  }
  const recipients = envelopes.reduce(
    (total, envelope) => total + envelope.to.length + (envelope.cc?.length ?? 0) + (envelope.bcc?.length ?? 0),
    0
  )
  if (recipients > limits.recipients) {
    return new LimitExceeded({ limit: "recipients", max: limits.recipients, actual: recipients })
  }
  const size = utf8Length(json)
  if (size > limits.sizeBytes) return new LimitExceeded({ limit: "size", max: limits.sizeBytes, actual: size })
  const customArgs = [
    message.custom_args,
    ...envelopes.map((envelope) => "custom_args" in envelope ? envelope.custom_args : undefined)
  ]
    .reduce((total, args) => total + (args === undefined ? 0 : utf8Length(JSON.stringify(args))), 0)
  if (customArgs > limits.customArgsBytes) {
    return new LimitExceeded({ limit: "custom_args", max: limits.customArgsBytes, actual: customArgs })
  }
  const maxAhead = Duration.toMillis(limits.scheduleAhead)
  for (
    const sendAt of [
      message.send_at,
      ...envelopes.map((envelope) => "send_at" in envelope ? envelope.send_at : undefined)
    ]
  ) {
    if (sendAt !== undefined && sendAt.getTime() - nowMillis > maxAhead) {
      return new LimitExceeded({ limit: "send_at", max: maxAhead, actual: sendAt.getTime() - nowMillis })
    }
  }
  return undefined
}

const invalidMessage = (error: ParseResult.ParseError): InvalidMessage => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  return new InvalidMessage({
    field: issue === undefined ? "" : issue.path.map(String).join("."),
    reason: issue?.message ?? "does not validate"
  })
}

/**
 * Validates a message with the {@link Message} Schema and checks SendGrid's {@link limits}
 * (`send_at` against the `Clock`): what {@link Service.send} does before sending, for callers that
 * accept a message now and send it later (e.g. from a queue).
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (input: unknown): Effect.Effect<Message, InvalidMessage | LimitExceeded> =>
  Effect.gen(function*() {
    const message = yield* Schema.decodeUnknown(Message)(input).pipe(Effect.mapError(invalidMessage))
    const over = overLimit(message, JSON.stringify(toPayload(message)), yield* Clock.currentTimeMillis)
    return over === undefined ? message : yield* over
  })

// ---------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The HTTP client underneath: base URL and authentication set. */
  readonly http: Http.Service
  /** Validates, checks the limits, waits for a rate-limit permit and sends. */
  readonly send: (message: Message) => Effect.Effect<Accepted, Error>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class SendGrid extends Context.Tag("@liaison/integrations/SendGrid")<SendGrid, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `SG.…`. */
  readonly apiKey: Redacted.Redacted<string>
  /** Default {@link defaultApiBase}; {@link euApiBase} for EU regional subusers. */
  readonly apiBase?: string | undefined
  /** Sends allowed to start, as a `RateLimit` rule. Default 100 per second, bursts of 100. */
  readonly rateLimit?: RateLimit.Rule | undefined
  /** The rate limiter's key (instances sharing a Redis-backed limiter share it). Default `sendgrid`. */
  readonly rateLimitKey?: string | undefined
  /** Tries after a 429 or a refused connection. Default 3. */
  readonly maxRetries?: number | undefined
  /** The longest wait for `X-RateLimit-Reset`; a longer one fails with `RetryAfterTooLong`. Default 60 seconds. */
  readonly maxRateLimitWait?: Duration.DurationInput | undefined
  /** Timeouts, pool and other settings of the HTTP client underneath. */
  readonly http?: Omit<Http.Options, "baseUrl" | "headers"> | undefined
}

/**
 * Builds the client: its own {@link Http.Http} (closed with the scope). Sends take permits from
 * the `RateLimit.RateLimiter` in the context if there is one (e.g. Redis-backed, shared by
 * every instance), else from an in-process one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, Retry.InvalidOptions, Scope.Scope> =>
  Effect.gen(function*() {
    const apiBase = options.apiBase ?? defaultApiBase
    const http = yield* Provider.makeHttp({ apiBase, apiKey: options.apiKey, http: options.http })
    const limiter = yield* Effect.serviceOption(RateLimit.RateLimiter).pipe(
      Effect.flatMap(Option.match({
        onSome: Effect.succeed,
        onNone: () => Effect.provide(RateLimit.RateLimiter, RateLimit.layerMemory)
      }))
    )
    const rule = yield* RateLimit.validate(
      options.rateLimit ?? RateLimit.tokenBucket({ limit: 100, interval: "1 second" })
    )
    const key = options.rateLimitKey ?? "sendgrid"
    const retry = yield* Retry.make({
      maxAttempts: (options.maxRetries ?? 3) + 1,
      base: "1 second",
      cap: "30 seconds",
      maxRetryAfter: options.maxRateLimitWait ?? "60 seconds",
      // A POST without an idempotency key: retried only when it cannot have been sent.
      retryNonIdempotent: true,
      isRetryable: (outcome) =>
        outcome._tag === "Response"
          ? outcome.status === 429
          : outcome.error._tag === "TransportError" && outcome.error.reason === "refused"
    })
    const execute = retry.execute(http.execute, apiBase)

    const post = (json: string) =>
      Provider.answer(
        execute,
        HttpClientRequest.bodyText(HttpClientRequest.post("/v3/mail/send"), json, "application/json")
      )

    const send = (input: Message): Effect.Effect<Accepted, Error> =>
      Effect.gen(function*() {
        const message = yield* Schema.decodeUnknown(Message)(input).pipe(Effect.mapError(invalidMessage))
        const json = JSON.stringify(toPayload(message))
        const over = overLimit(message, json, yield* Clock.currentTimeMillis)
        if (over !== undefined) return yield* over
        yield* limiter.acquire(key, rule, "wait")
        const answer = yield* post(json)
        if (answer.status === 202) return { messageId: answer.headers["x-message-id"], sandbox: false }
        if (answer.status === 200) return { messageId: answer.headers["x-message-id"], sandbox: true }
        return yield* errorFromResponse(answer.status, answer.body)
      }).pipe(Effect.withSpan("SendGrid.send"))

    return { http, send }
  })

/**
 * The client as a scoped layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<SendGrid, Retry.InvalidOptions> =>
  Layer.scoped(SendGrid, make(options))

/**
 * The client configured with `Config`: by default the key from `SENDGRID_API_KEY` (redacted)
 * and the base URL from `SENDGRID_API_BASE` (default {@link defaultApiBase}; {@link euApiBase}
 * for the EU).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Provider.ConfigOptions<Options> = {}
): Layer.Layer<SendGrid, ConfigError.ConfigError | Retry.InvalidOptions> =>
  Layer.unwrapEffect(
    Effect.map(
      Provider.credentials(options, {
        apiKey: "SENDGRID_API_KEY",
        apiBase: "SENDGRID_API_BASE",
        defaultApiBase
      }),
      (credentials) => layer({ ...options, ...credentials })
    )
  )
