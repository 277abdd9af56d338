/**
 * The handlers of `EmailsApi.EmailsApi`: `POST /emails` validates and queues through the
 * {@link Emails} service, `GET /emails/{id}` reports where an email is.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import type { LiaisonError } from "@liaison/core"
import type { SendGridError } from "@liaison/integrations"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { Api } from "../Api.js"
import type { Authorization, JsonOnly } from "../Credentials.js"
import type { SenderNotAllowed } from "./Api.js"
import { EmailNotFound, EmailQueueUnavailable, InvalidEmail } from "./Api.js"
import { Emails } from "./Emails.js"

const unavailable = (error: LiaisonError.StorageError) =>
  Effect.zipRight(
    Effect.logWarning("emails: the queue's store failed", error.message),
    Effect.fail(new EmailQueueUnavailable({ error: "queue_unavailable", message: "the email queue is unavailable" }))
  )

/**
 * `POST /emails`, `GET /emails/{id}`.
 *
 * @since 0.1.0
 * @category layers
 */
export const EmailsLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"liaison", "emails">,
  never,
  Emails | Authorization | JsonOnly
> = HttpApiBuilder
  .group(Api, "emails", (handlers) =>
    Effect.map(Emails, (emails) =>
      handlers
        .handle("send", ({ payload }) =>
          emails.send(payload).pipe(
            Effect.map((id) => ({ status: "queued" as const, id })),
            Effect.catchTags({
              SendGridInvalidMessage: (error: SendGridError.InvalidMessage) =>
                Effect.fail(new InvalidEmail({ error: "invalid_email", message: error.message, field: error.field })),
              SendGridLimitExceeded: (error: SendGridError.LimitExceeded) =>
                Effect.fail(new InvalidEmail({ error: "over_limit", message: error.message, field: error.limit })),
              StorageError: unavailable,
              SenderNotAllowed: (error: SenderNotAllowed) => Effect.fail(error)
            })
          ))
        .handle("status", ({ path }) =>
          emails.status(path.id).pipe(
            Effect.catchTag("StorageError", unavailable),
            Effect.flatMap(Option.match({
              onNone: () => Effect.fail(new EmailNotFound({ error: "not_found", message: `no email ${path.id}` })),
              onSome: Effect.succeed
            }))
          ))))
