/**
 * The errors of a SendGrid send: a message refused before sending ({@link InvalidMessage},
 * {@link LimitExceeded}), or SendGrid's own answer ({@link SendGridError}, with its `errors`).
 *
 * Provider errors carry the provider prefix on the tag when the class name is generic:
 * `InvalidMessage` is tagged `SendGridInvalidMessage`, so `Effect.catchTag` never confuses it with
 * another module's error of the same name.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/**
 * The message does not validate (checked before sending).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidMessage
  extends Schema.TaggedError<InvalidMessage>("@liaison/integrations/SendGridError/InvalidMessage")(
    "SendGridInvalidMessage",
    {
      /** The offending field's path, e.g. `personalizations.0.to.1.email`. */
      field: Schema.String,
      reason: Schema.String
    }
  )
{
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
export class LimitExceeded
  extends Schema.TaggedError<LimitExceeded>("@liaison/integrations/SendGridError/LimitExceeded")(
    "SendGridLimitExceeded",
    {
      limit: Schema.Literal("personalizations", "recipients", "size", "custom_args", "send_at"),
      max: Schema.Number,
      actual: Schema.Number
    }
  )
{
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
export class SendGridError
  extends Schema.TaggedError<SendGridError>("@liaison/integrations/SendGridError/SendGridError")(
    "SendGridError",
    {
      status: Schema.Number,
      errors: Schema.Array(ErrorEntry)
    }
  )
{
  override get message(): string {
    const details = this.errors.map((error) =>
      error.field === null ? error.message : `${error.field}: ${error.message}`
    )
    return `SendGrid answered ${this.status}${details.length === 0 ? "" : `: ${details.join("; ")}`}`
  }
}

const ErrorBody = Schema.parseJson(Schema.Struct({ errors: Schema.Array(ErrorEntry) }))
const decodeErrorBody = Schema.decodeUnknownOption(ErrorBody)

/**
 * The typed error of a non-2xx answer: its status and SendGrid's `errors` (none when the body is
 * not SendGrid's error JSON).
 *
 * @since 0.1.0
 * @category constructors
 */
export const errorFromResponse = (status: number, body: string): SendGridError =>
  new SendGridError({
    status,
    errors: Option.match(decodeErrorBody(body), {
      onNone: () => [],
      onSome: (parsed) => parsed.errors
    })
  })
