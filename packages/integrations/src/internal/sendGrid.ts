import { Http, RateLimit } from "@liaison/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Error } from "../SendGrid.js"
import * as SendGridError from "../SendGridError.js"
import * as SendGridSchema from "../SendGridSchema.js"

/** The first of SendGrid's limits the message is over, given the payload's JSON and the time. */
const overLimit = (
  message: SendGridSchema.Message,
  json: string,
  nowMillis: number
): SendGridError.LimitExceeded | undefined => {
  const limits = SendGridSchema.limits
  const envelopes = message.personalizations ?? [{ to: message.to ?? [], cc: message.cc, bcc: message.bcc }]
  const over = (limit: SendGridError.LimitExceeded["limit"], max: number, actual: number) =>
    actual > max ? new SendGridError.LimitExceeded({ limit, max, actual }) : undefined
  const recipients = envelopes.reduce(
    (total, envelope) => total + envelope.to.length + (envelope.cc?.length ?? 0) + (envelope.bcc?.length ?? 0),
    0
  )
  const customArgs = [
    message.custom_args,
    ...envelopes.map((envelope) => "custom_args" in envelope ? envelope.custom_args : undefined)
  ].reduce((total, args) => total + (args === undefined ? 0 : utf8Length(JSON.stringify(args))), 0)
  const maxAhead = Duration.toMillis(limits.scheduleAhead)
  const sendAts = [
    message.send_at,
    ...envelopes.map((envelope) => "send_at" in envelope ? envelope.send_at : undefined)
  ]
  return over("personalizations", limits.personalizations, envelopes.length) ??
    over("recipients", limits.recipients, recipients) ??
    over("size", limits.sizeBytes, utf8Length(json)) ??
    over("custom_args", limits.customArgsBytes, customArgs) ??
    sendAts.reduce<SendGridError.LimitExceeded | undefined>(
      (found, sendAt) =>
        found ?? (sendAt === undefined ? undefined : over("send_at", maxAhead, sendAt.getTime() - nowMillis)),
      undefined
    )
}

const utf8Length = (text: string) => Buffer.byteLength(text, "utf8")

const invalidMessage = (error: ParseResult.ParseError): SendGridError.InvalidMessage => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  return new SendGridError.InvalidMessage({
    field: issue === undefined ? "" : issue.path.map(String).join("."),
    reason: issue?.message ?? "does not validate"
  })
}

/**
 * The message decoded and within the limits, with its payload's JSON (computed once).
 *
 * @internal
 */
export const checked = (
  input: unknown
): Effect.Effect<
  { readonly message: SendGridSchema.Message; readonly json: string },
  SendGridError.InvalidMessage | SendGridError.LimitExceeded
> =>
  Effect.gen(function*() {
    const message = yield* Schema.decodeUnknown(SendGridSchema.Message)(input).pipe(Effect.mapError(invalidMessage))
    const json = JSON.stringify(SendGridSchema.toPayload(message))
    const over = overLimit(message, json, yield* Clock.currentTimeMillis)
    return over === undefined ? { message, json } : yield* over
  })

/**
 * Reads an answer: 202 sent, 200 sandbox mode; any other answer is a `SendGridError`.
 *
 * @internal
 */
export const readAnswer =
  (maxErrorBodyBytes: number) => (response: Http.Response): Effect.Effect<SendGridSchema.Accepted, Error> => {
    if (response.status === 202) return Effect.succeed({ messageId: response.headers["x-message-id"], sandbox: false })
    if (response.status === 200) return Effect.succeed({ messageId: response.headers["x-message-id"], sandbox: true })
    return Http.ensureOk(response, { maxErrorBodyBytes }).pipe(
      Effect.flatMap((other) => other.text),
      Effect.catchTag("StatusError", (error) => Effect.succeed(error.body)),
      Effect.flatMap((body) => Effect.fail(SendGridError.errorFromResponse(response.status, body)))
    )
  }

/**
 * The `RateLimit` in context (e.g. Redis-backed, shared by every instance), else an in-process one.
 *
 * @internal
 */
export const rateLimiter: Effect.Effect<RateLimit.Service> = Effect.flatMap(
  Effect.serviceOption(RateLimit.RateLimit),
  Option.match({
    onSome: Effect.succeed,
    onNone: () => Effect.provide(RateLimit.RateLimit, RateLimit.layerMemory())
  })
)
