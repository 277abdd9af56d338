/**
 * SendGrid's mail send, as Schemas: a {@link Message} (validated before anything is sent), its
 * parts, SendGrid's {@link limits} on one send, and {@link toPayload}, the JSON body of
 * `POST /v3/mail/send` (https://www.twilio.com/docs/sendgrid/api-reference/mail-send).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"

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

const unixSeconds = (date: Date) => Math.floor(date.getTime() / 1000)

const address = (recipient: Recipient) =>
  recipient.name === undefined ? { email: recipient.email } : { email: recipient.email, name: recipient.name }

const addresses = (recipients: ReadonlyArray<Recipient> | undefined) =>
  recipients === undefined || recipients.length === 0 ? undefined : recipients.map(address)

/** The object without its `undefined` fields (SendGrid refuses explicit nulls in places). */
const defined = (value: Readonly<Record<string, unknown>>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined))

/**
 * The JSON body of `POST /v3/mail/send` for a message.
 *
 * @since 0.1.0
 * @category constructors
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
