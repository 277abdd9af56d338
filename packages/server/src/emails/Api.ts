/**
 * `/emails`: email sent in the background, durably (a background task on
 * `@liaison/core`'s `DurableQueue`: Redis with `REDIS_URL`, memory without), through
 * `@liaison/integrations`' `SendGrid` client (the real SendGrid with `SENDGRID_API_KEY`, else the
 * built-in sandbox).
 *
 * - `POST /emails` validates the message as SendGrid would (and its limits), queues it and answers
 *   202 `{ status: "queued", id }` at once.
 * - `GET /emails/{id}` → `{ id, status: queued | sending | sent | failed, attempts, messageId?, error? }`.
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { SendGridSchema } from "@liaison/integrations"
import * as Schema from "effect/Schema"
import * as ApiError from "../ApiError.js"
import { Authorization, JsonOnly } from "../Credentials.js"

const Recipients = Schema.Array(SendGridSchema.Recipient)

/**
 * The body of `POST /emails`: SendGrid's {@link SendGridSchema.Message} in JSON (`send_at` as an
 * ISO-8601 date, at most 72 hours ahead; attachments in base64).
 *
 * @since 0.1.0
 * @category schemas
 */
export const EmailRequest = Schema.Struct({
  from: SendGridSchema.Recipient,
  to: Recipients.pipe(Schema.minItems(1, { message: () => "needs at least one recipient" })),
  cc: Schema.optionalWith(Recipients, { exact: true }),
  bcc: Schema.optionalWith(Recipients, { exact: true }),
  reply_to: Schema.optionalWith(SendGridSchema.Recipient, { exact: true }),
  subject: Schema.String.pipe(Schema.minLength(1, { message: () => "is empty" })),
  text: Schema.optionalWith(Schema.String, { exact: true }),
  html: Schema.optionalWith(Schema.String, { exact: true }),
  attachments: Schema.optionalWith(Schema.Array(SendGridSchema.Attachment), { exact: true }),
  categories: Schema.optionalWith(Schema.Array(Schema.String), { exact: true }),
  custom_args: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { exact: true }),
  send_at: Schema.optionalWith(Schema.Date, { exact: true }),
  /** SendGrid's sandbox mode: validated, answered, not delivered. */
  sandbox: Schema.optionalWith(Schema.Boolean, { exact: true })
  // An unknown field is refused, not dropped: a caller's `template_id` must not vanish silently.
}).annotations({ identifier: "EmailRequest", parseOptions: { onExcessProperty: "error" } })

/**
 * @since 0.1.0
 * @category models
 */
export interface EmailRequest extends Schema.Schema.Type<typeof EmailRequest> {}

/**
 * @since 0.1.0
 * @category schemas
 */
export const EmailQueued = Schema.Struct({
  status: Schema.Literal("queued"),
  id: Schema.String
}).annotations({ identifier: "EmailQueued" })

/**
 * `queued` (waiting, or waiting for a retry: `error` says why the last attempt failed),
 * `sending`, `sent` (`messageId` is SendGrid's `X-Message-Id`), `failed` (for good: `error`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const EmailStatus = Schema.Struct({
  id: Schema.String,
  /** `unknown`: a send began and its outcome is unknown; it is not resent (it may or may not have arrived). */
  status: Schema.Literal("queued", "sending", "sent", "failed", "unknown"),
  attempts: Schema.Int,
  messageId: Schema.optional(Schema.String),
  /** SendGrid's sandbox mode: accepted, not delivered. */
  sandbox: Schema.optional(Schema.Boolean),
  error: Schema.optional(Schema.String)
}).annotations({ identifier: "EmailStatus" })

/**
 * @since 0.1.0
 * @category models
 */
export type EmailStatus = typeof EmailStatus.Type

/**
 * The message breaks one of SendGrid's rules or limits (400).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEmail extends ApiError.make<InvalidEmail>()(
  "InvalidEmail",
  400,
  "The email breaks one of SendGrid's rules or limits",
  {
    /** The offending field, when there is one. */
    field: Schema.optional(Schema.String)
  }
) {}

/**
 * The sender is not one the operator allows (403): the server is no open relay.
 *
 * @since 0.1.0
 * @category errors
 */
export class SenderNotAllowed extends ApiError.make<SenderNotAllowed>()(
  "SenderNotAllowed",
  403,
  "The server does not send email from this address (EMAIL_SENDERS)",
  { field: Schema.optional(Schema.String) }
) {}

/**
 * No email has this id (404).
 *
 * @since 0.1.0
 * @category errors
 */
export class EmailNotFound extends ApiError.make<EmailNotFound>()("EmailNotFound", 404, "No email has this id") {}

/**
 * The queue's store (Redis) failed: the email was not queued (503).
 *
 * @since 0.1.0
 * @category errors
 */
export class EmailQueueUnavailable extends ApiError.make<EmailQueueUnavailable>()(
  "EmailQueueUnavailable",
  503,
  "The email queue is unavailable"
) {}

const EmailPath = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^email_[0-9a-f-]{36}$/, { message: () => "must be an email id" }))
})

/**
 * @since 0.1.0
 * @category schemas
 */
export class EmailsApi extends HttpApiGroup.make("emails")
  .middleware(Authorization)
  .middleware(JsonOnly)
  .add(
    HttpApiEndpoint.post("send", "/emails")
      .setPayload(EmailRequest)
      .addSuccess(EmailQueued, { status: 202 })
      .addError(InvalidEmail)
      .addError(SenderNotAllowed)
      .annotate(OpenApi.Summary, "Queue an email; it is sent in the background, retried while SendGrid fails")
  )
  .add(
    HttpApiEndpoint.get("status", "/emails/:id")
      .setPath(EmailPath)
      .addSuccess(EmailStatus)
      .addError(EmailNotFound)
      .annotate(OpenApi.Summary, "Where a queued email is: queued, sending, sent or failed")
  )
  .addError(EmailQueueUnavailable)
  .annotate(OpenApi.Description, "Email through SendGrid (or the built-in SendGrid sandbox), sent by a durable queue")
{}
