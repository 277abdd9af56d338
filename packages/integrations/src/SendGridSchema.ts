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

const Headers = Schema.Record({ key: Schema.String, value: Schema.String })

/**
 * The data a dynamic template (`template_id` `d-…`) renders with Handlebars: any JSON object.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DynamicTemplateData = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * A template's id: `d-` and 32 hex digits for a dynamic template, a UUID for a legacy one.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TemplateId = Schema.String.pipe(
  Schema.pattern(/^(d-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i, {
    message: () => "must be a template id: d- and 32 hex digits (dynamic), or a legacy template's UUID"
  })
)

const isDynamic = (templateId: string | undefined) => templateId !== undefined && templateId.startsWith("d-")

/**
 * One envelope: its own recipients and, optionally, its own subject, headers, `custom_args`,
 * `send_at` and `dynamic_template_data` (the data of a dynamic template for these recipients).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Personalization = Schema.Struct({
  to: Schema.Array(Recipient).pipe(Schema.minItems(1, { message: () => "needs at least one recipient" })),
  cc: Schema.optional(Schema.Array(Recipient)),
  bcc: Schema.optional(Schema.Array(Recipient)),
  subject: Schema.optional(nonEmpty("subject")),
  headers: Schema.optional(Headers),
  custom_args: Schema.optional(CustomArgs),
  send_at: Schema.optional(Schema.DateFromSelf),
  dynamic_template_data: Schema.optional(DynamicTemplateData)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Personalization extends Schema.Schema.Type<typeof Personalization> {}

const GroupId = Schema.Int.pipe(
  Schema.positive({ message: () => "must be a positive integer (an unsubscribe group id)" })
)

/**
 * An unsubscribe group (Advanced Suppression Manager): the `group_id` the message belongs to and
 * the groups (at most 25) shown on the unsubscribe page.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Asm = Schema.Struct({
  group_id: GroupId,
  groups_to_display: Schema.optional(
    Schema.Array(GroupId).pipe(Schema.maxItems(25, { message: () => "at most 25 groups" }))
  )
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Asm extends Schema.Schema.Type<typeof Asm> {}

const Enable = Schema.Struct({ enable: Schema.optional(Schema.Boolean) })

/**
 * SendGrid's documented mail settings. `bypass_list_management` cannot be combined with the
 * three narrower bypasses; `sandbox_mode` is what `Message.sandbox` sets.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MailSettings = Schema.Struct({
  bypass_list_management: Schema.optional(Enable),
  bypass_spam_management: Schema.optional(Enable),
  bypass_bounce_management: Schema.optional(Enable),
  bypass_unsubscribe_management: Schema.optional(Enable),
  footer: Schema.optional(Schema.Struct({
    enable: Schema.optional(Schema.Boolean),
    text: Schema.optional(Schema.String),
    html: Schema.optional(Schema.String)
  })),
  sandbox_mode: Schema.optional(Enable)
}).pipe(
  Schema.filter((settings) =>
    settings.bypass_list_management === undefined ||
    (settings.bypass_spam_management === undefined && settings.bypass_bounce_management === undefined &&
      settings.bypass_unsubscribe_management === undefined) ||
    {
      path: ["bypass_list_management"],
      message: "cannot be combined with bypass_spam_management, bypass_bounce_management or " +
        "bypass_unsubscribe_management"
    }
  )
)

/**
 * @since 0.1.0
 * @category models
 */
export interface MailSettings extends Schema.Schema.Type<typeof MailSettings> {}

/**
 * SendGrid's documented tracking settings: click, open and subscription tracking, Google Analytics.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TrackingSettings = Schema.Struct({
  click_tracking: Schema.optional(Schema.Struct({
    enable: Schema.optional(Schema.Boolean),
    enable_text: Schema.optional(Schema.Boolean)
  })),
  open_tracking: Schema.optional(Schema.Struct({
    enable: Schema.optional(Schema.Boolean),
    substitution_tag: Schema.optional(Schema.String)
  })),
  subscription_tracking: Schema.optional(Schema.Struct({
    enable: Schema.optional(Schema.Boolean),
    text: Schema.optional(Schema.String),
    html: Schema.optional(Schema.String),
    substitution_tag: Schema.optional(Schema.String)
  })),
  ganalytics: Schema.optional(Schema.Struct({
    enable: Schema.optional(Schema.Boolean),
    utm_source: Schema.optional(Schema.String),
    utm_medium: Schema.optional(Schema.String),
    utm_term: Schema.optional(Schema.String),
    utm_content: Schema.optional(Schema.String),
    utm_campaign: Schema.optional(Schema.String)
  }))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface TrackingSettings extends Schema.Schema.Type<typeof TrackingSettings> {}

/**
 * A batch id (from `SendGrid.Service.batches.create`): scheduled sends that carry it can be
 * paused or cancelled together.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BatchId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_-]+$/, { message: () => "must be a batch id (letters, digits, - and _)" }),
  Schema.maxLength(256, { message: () => "must be at most 256 characters" })
)

const Categories = Schema.Array(
  Schema.String.pipe(Schema.maxLength(limits.categoryLength, {
    message: () => `a category has at most ${limits.categoryLength} characters`
  }))
).pipe(
  Schema.maxItems(limits.categories, { message: () => `at most ${limits.categories} categories` }),
  Schema.filter((categories) => new Set(categories).size === categories.length || "categories must be unique")
)

const MessageFields = Schema.Struct({
  from: Recipient,
  reply_to: Schema.optional(Recipient),
  to: Schema.optional(Schema.Array(Recipient)),
  cc: Schema.optional(Schema.Array(Recipient)),
  bcc: Schema.optional(Schema.Array(Recipient)),
  personalizations: Schema.optional(Schema.Array(Personalization)),
  subject: Schema.optional(nonEmpty("subject")),
  text: Schema.optional(nonEmpty("text")),
  html: Schema.optional(nonEmpty("html")),
  template_id: Schema.optional(TemplateId),
  dynamic_template_data: Schema.optional(DynamicTemplateData),
  attachments: Schema.optional(Schema.Array(Attachment)),
  categories: Schema.optional(Categories),
  custom_args: Schema.optional(CustomArgs),
  headers: Schema.optional(Headers),
  send_at: Schema.optional(Schema.DateFromSelf),
  batch_id: Schema.optional(BatchId),
  asm: Schema.optional(Asm),
  ip_pool_name: Schema.optional(
    Schema.String.pipe(
      Schema.minLength(2, { message: () => "must be 2 to 64 characters" }),
      Schema.maxLength(64, { message: () => "must be 2 to 64 characters" })
    )
  ),
  mail_settings: Schema.optional(MailSettings),
  tracking_settings: Schema.optional(TrackingSettings),
  sandbox: Schema.optional(Schema.Boolean)
})

type Fields = Schema.Schema.Type<typeof MessageFields>
type Issue = { readonly path: ReadonlyArray<PropertyKey>; readonly message: string } | undefined

const issue = (field: PropertyKey, message: string): Issue => ({ path: [field], message })

/** to/cc/bcc (one envelope) or personalizations, not both, and not none. */
const recipientsRule = (message: Fields): Issue => {
  const shorthand = message.to !== undefined || message.cc !== undefined || message.bcc !== undefined
  if (shorthand && message.personalizations !== undefined) {
    return issue("personalizations", "give either to/cc/bcc or personalizations, not both")
  }
  if (!shorthand && message.personalizations === undefined) {
    return issue("to", "needs recipients: to, or personalizations")
  }
  if (message.to !== undefined && message.to.length === 0) return issue("to", "needs at least one recipient")
  if (message.personalizations !== undefined && message.personalizations.length === 0) {
    return issue("personalizations", "needs at least one personalization")
  }
  return undefined
}

/** Content and subject come from the message, or from its template. */
const contentRule = (message: Fields): Issue => {
  const template = message.template_id !== undefined
  if (!template && message.text === undefined && message.html === undefined) {
    return issue("text", "needs text, html or both (or a template_id)")
  }
  const personalizations = message.personalizations ?? []
  const everyHasSubject = personalizations.length > 0 &&
    personalizations.every((personalization) => personalization.subject !== undefined)
  return template || message.subject !== undefined || everyHasSubject
    ? undefined
    : issue("subject", "is required (unless every personalization has one, or a template_id gives it)")
}

/** `dynamic_template_data` only with a dynamic template (SendGrid would ignore it), per envelope. */
const templateDataRule = (message: Fields): Issue => {
  if (message.dynamic_template_data !== undefined && message.personalizations !== undefined) {
    return issue("dynamic_template_data", "with personalizations, give dynamic_template_data in each personalization")
  }
  if (isDynamic(message.template_id)) return undefined
  const reason = "needs a dynamic template_id (d-…): without one SendGrid would not use it"
  if (message.dynamic_template_data !== undefined) return issue("dynamic_template_data", reason)
  const index = (message.personalizations ?? []).findIndex((personalization) =>
    personalization.dynamic_template_data !== undefined
  )
  return index === -1 ? undefined : { path: ["personalizations", index, "dynamic_template_data"], message: reason }
}

const sandboxRule = (message: Fields): Issue =>
  message.sandbox !== undefined && message.mail_settings?.sandbox_mode !== undefined
    ? issue("sandbox", "give either sandbox or mail_settings.sandbox_mode, not both")
    : undefined

/**
 * An email. Recipients either as `to` / `cc` / `bcc` (one envelope) or as `personalizations`
 * (one envelope each, up to 1000). `text` and/or `html` and a `subject` (unless every
 * personalization has its own), or a `template_id` that gives them: a dynamic template (`d-…`)
 * renders each envelope's `dynamic_template_data` (the message's own with to/cc/bcc).
 * `batch_id`, `asm`, `ip_pool_name`, `mail_settings` and `tracking_settings` are SendGrid's.
 * `sandbox: true` asks SendGrid to validate and not send (`mail_settings.sandbox_mode`).
 *
 * A field this Schema does not know is an error (`SendGridError.InvalidMessage` naming it), never
 * dropped: the client decodes with `onExcessProperty: "error"`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Message = MessageFields.pipe(
  Schema.filter((message) =>
    recipientsRule(message) ?? contentRule(message) ?? templateDataRule(message) ?? sandboxRule(message) ?? true
  )
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

/** An empty list or object is left out, as `@sendgrid/mail` does (it means nothing to SendGrid). */
const nonEmptyOrUndefined = <A extends object>(value: A | undefined): A | undefined =>
  value === undefined || Object.keys(value).length === 0 ? undefined : value

const envelope = (personalization: Personalization): Record<string, unknown> =>
  defined({
    to: addresses(personalization.to),
    cc: addresses(personalization.cc),
    bcc: addresses(personalization.bcc),
    subject: personalization.subject,
    headers: nonEmptyOrUndefined(personalization.headers),
    custom_args: nonEmptyOrUndefined(personalization.custom_args),
    dynamic_template_data: nonEmptyOrUndefined(personalization.dynamic_template_data),
    send_at: personalization.send_at === undefined ? undefined : unixSeconds(personalization.send_at)
  })

/**
 * The envelopes of a message: its personalizations, or one made of to/cc/bcc (with the message's
 * `dynamic_template_data`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const envelopes = (message: Message): ReadonlyArray<Personalization> =>
  message.personalizations ??
    [{
      to: message.to ?? [],
      cc: message.cc,
      bcc: message.bcc,
      dynamic_template_data: message.dynamic_template_data
    }]

const mailSettings = (message: Message): MailSettings | undefined =>
  message.sandbox === true
    ? { ...message.mail_settings, sandbox_mode: { enable: true } }
    : nonEmptyOrUndefined(message.mail_settings)

/**
 * The JSON body of `POST /v3/mail/send` for a message: SendGrid's field names, `send_at` in Unix
 * seconds, content `text/plain` first then `text/html` (none for a template-only message).
 *
 * @since 0.1.0
 * @category constructors
 */
export const toPayload = (message: Message): Record<string, unknown> => {
  // text/plain first, then text/html: SendGrid refuses any other order.
  const content = [
    ...(message.text === undefined ? [] : [{ type: "text/plain", value: message.text }]),
    ...(message.html === undefined ? [] : [{ type: "text/html", value: message.html }])
  ]
  return defined({
    personalizations: envelopes(message).map(envelope),
    from: address(message.from),
    reply_to: message.reply_to === undefined ? undefined : address(message.reply_to),
    subject: message.subject,
    content: nonEmptyOrUndefined(content),
    template_id: message.template_id,
    attachments: nonEmptyOrUndefined(message.attachments),
    categories: nonEmptyOrUndefined(message.categories),
    custom_args: nonEmptyOrUndefined(message.custom_args),
    headers: nonEmptyOrUndefined(message.headers),
    send_at: message.send_at === undefined ? undefined : unixSeconds(message.send_at),
    batch_id: message.batch_id,
    asm: message.asm,
    ip_pool_name: message.ip_pool_name,
    mail_settings: mailSettings(message),
    tracking_settings: nonEmptyOrUndefined(message.tracking_settings)
  })
}
