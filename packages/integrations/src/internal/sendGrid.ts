import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Http, RateLimit } from "@liaison/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Batches, Error } from "../SendGrid.js"
import * as SendGridError from "../SendGridError.js"
import * as SendGridSchema from "../SendGridSchema.js"

/** The first of SendGrid's limits the message is over, given the payload's JSON and the time. */
const overLimit = (
  message: SendGridSchema.Message,
  json: string,
  nowMillis: number
): SendGridError.LimitExceeded | undefined => {
  const limits = SendGridSchema.limits
  const envelopes = SendGridSchema.envelopes(message)
  const over = (limit: SendGridError.LimitExceeded["limit"], max: number, actual: number) =>
    actual > max ? new SendGridError.LimitExceeded({ limit, max, actual }) : undefined
  const recipients = envelopes.reduce(
    (total, envelope) => total + envelope.to.length + (envelope.cc?.length ?? 0) + (envelope.bcc?.length ?? 0),
    0
  )
  const customArgs = [
    message.custom_args,
    ...envelopes.map((envelope) => envelope.custom_args)
  ].reduce((total, args) => total + (args === undefined ? 0 : utf8Length(JSON.stringify(args))), 0)
  const maxAhead = Duration.toMillis(limits.scheduleAhead)
  const sendAts = [
    message.send_at,
    ...envelopes.map((envelope) => envelope.send_at)
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

/** The first issue, as the field's path and a reason; an unknown field says it would not be sent. */
const invalidMessage = (error: ParseResult.ParseError): SendGridError.InvalidMessage => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  return new SendGridError.InvalidMessage({
    field: issue === undefined ? "" : issue.path.map(String).join("."),
    reason: issue === undefined
      ? "does not validate"
      : issue._tag === "Unexpected"
      ? "is not a field of a SendGrid message (it would not be sent): check its name and place"
      : issue.message
  })
}

/** Every field known or refused: nothing a caller gives is dropped on the way to the wire. */
const decodeMessage = Schema.decodeUnknown(SendGridSchema.Message, { onExcessProperty: "error", errors: "first" })

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
    const message = yield* decodeMessage(input).pipe(Effect.mapError(invalidMessage))
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

/** A non-2xx answer of a batch call as SendGrid's typed error. */
const ensureAnswered = (maxErrorBodyBytes: number) => (response: Http.Response) =>
  Http.ensureOk(response, { maxErrorBodyBytes }).pipe(
    Effect.catchTag("StatusError", (error) => Effect.fail(SendGridError.errorFromResponse(error.status, error.body)))
  )

const BatchCreated = Schema.Struct({ batch_id: SendGridSchema.BatchId })

const validBatchId = (batchId: string): Effect.Effect<string, SendGridError.InvalidMessage> =>
  Schema.decodeUnknown(SendGridSchema.BatchId)(batchId).pipe(
    Effect.mapError((error) =>
      new SendGridError.InvalidMessage({
        field: "batch_id",
        reason: ParseResult.ArrayFormatter.formatErrorSync(error)[0]?.message ?? "is not a batch id"
      })
    )
  )

/**
 * The Cancel Scheduled Sends API (https://www.twilio.com/docs/sendgrid/api-reference/cancel-scheduled-sends):
 * `POST /v3/mail/batch` creates a batch id; `POST /v3/user/scheduled_sends` with
 * `{ batch_id, status }` pauses or cancels the scheduled sends carrying it;
 * `DELETE /v3/user/scheduled_sends/{batch_id}` takes the pause or cancellation back.
 *
 * @internal
 */
export const makeBatches = (http: Http.Service, maxErrorBodyBytes: number): Batches => {
  const call = (request: HttpClientRequest.HttpClientRequest) =>
    Effect.scoped(Effect.flatMap(http.execute(request), ensureAnswered(maxErrorBodyBytes)))
  const setStatus = (status: "cancel" | "pause") => (batchId: string) =>
    Effect.flatMap(validBatchId(batchId), (id) =>
      Effect.asVoid(call(
        HttpClientRequest.bodyText(
          HttpClientRequest.post("/v3/user/scheduled_sends"),
          JSON.stringify({ batch_id: id, status }),
          "application/json"
        )
      ))).pipe(Effect.withSpan(`SendGrid.batches.${status}`))
  return {
    create: Effect.scoped(
      Effect.flatMap(
        http.execute(HttpClientRequest.post("/v3/mail/batch")),
        (response) => Effect.flatMap(ensureAnswered(maxErrorBodyBytes)(response), Http.decodeJson(BatchCreated))
      )
    ).pipe(Effect.map((created) => created.batch_id), Effect.withSpan("SendGrid.batches.create")),
    cancel: setStatus("cancel"),
    pause: setStatus("pause"),
    resume: (batchId) =>
      Effect.flatMap(
        validBatchId(batchId),
        (id) => Effect.asVoid(call(HttpClientRequest.del(`/v3/user/scheduled_sends/${encodeURIComponent(id)}`)))
      ).pipe(
        Effect.withSpan("SendGrid.batches.resume")
      )
  }
}
