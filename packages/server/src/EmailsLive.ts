/**
 * Background email: the `emails` queue (a `DurableQueue`: Redis with `REDIS_URL`, memory without),
 * its workers sending through SendGrid (the real one when `SENDGRID_API_KEY` is set, else the
 * built-in sandbox, said at startup), and the handlers of {@link EmailsApi.EmailsApi}.
 *
 * What a worker does with a failed send:
 *
 * - SendGrid did not take it and may later (5xx, 429, a connection that never opened, a connect
 *   timeout, the retry budget or the rate limiter): retried after a growing delay
 *   (`EMAIL_RETRY_DELAY` × 1, 5, 30, 120, 600, 1800), then `failed`;
 * - SendGrid refused it (other 4xx) or it breaks a rule: `failed`;
 * - the outcome is unknown (the connection broke or timed out after the request was sent): `failed`
 *   with that said, not retried — mail send has no idempotency key, and a retry could deliver it
 *   twice.
 *
 * | variable | default | |
 * |---|---|---|
 * | `SENDGRID_API_KEY` | (unset) | redacted; unset → the built-in sandbox SendGrid |
 * | `SENDGRID_API_BASE` | `https://api.sendgrid.com` | `https://api.eu.sendgrid.com` for EU subusers |
 * | `EMAIL_WORKERS` | `2` | emails sent at once |
 * | `EMAIL_RETRY_DELAY` | `1 second` | the first retry's delay; later ones are 5, 30, 120, 600 and 1800 times it |
 * | `EMAIL_QUEUE` | `emails` | the queue's name (instances sharing a Redis share the queue) |
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import type { HttpError, Redis } from "@liaison/core"
import { DurableQueue, RateLimit } from "@liaison/core"
import { SendGrid } from "@liaison/integrations"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { Api } from "./Api.js"
import type { EmailStatus } from "./EmailsApi.js"
import { EmailNotFound, EmailQueueUnavailable, EmailRequest, InvalidEmail } from "./EmailsApi.js"
import * as SendGridSandbox from "./SendGridSandbox.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
  readonly apiBase: string
  readonly workers: number
  readonly retryDelay: Duration.Duration
  readonly queue: string
}

/**
 * Every email setting, from the environment.
 *
 * @since 0.1.0
 * @category config
 */
export const settings: Config.Config<Settings> = Config.all({
  apiKey: Config.option(Config.redacted("SENDGRID_API_KEY")),
  apiBase: Config.string("SENDGRID_API_BASE").pipe(Config.withDefault(SendGrid.defaultApiBase)),
  workers: Config.integer("EMAIL_WORKERS").pipe(
    Config.validate({ message: "Expected a positive integer", validation: (n) => n > 0 }),
    Config.withDefault(2)
  ),
  retryDelay: Config.duration("EMAIL_RETRY_DELAY").pipe(Config.withDefault(Duration.seconds(1))),
  queue: Config.string("EMAIL_QUEUE").pipe(Config.withDefault("emails"))
})

/** Multiples of `EMAIL_RETRY_DELAY` before each retry: 1 s, 5 s, 30 s, 2 min, 10 min, 30 min by default. */
const retrySteps = [1, 5, 30, 120, 600, 1800] as const

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Validates and queues; the id is the email's. */
  readonly send: (
    request: EmailRequest
  ) => Effect.Effect<string, SendGrid.InvalidMessage | SendGrid.LimitExceeded | DurableQueue.DurableQueueError>
  readonly status: (id: string) => Effect.Effect<Option.Option<EmailStatus>, DurableQueue.DurableQueueError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Emails extends Context.Tag("@liaison/server/Emails")<Emails, Service>() {}

type Verdict = "retry" | "fail" | "unknown"

const transportVerdict = (error: HttpError.TransportError | HttpError.TimeoutError): Verdict => {
  if (error._tag === "TransportError") {
    return error.reason === "refused" || error.reason === "dns" || error.reason === "tls" ? "retry" : "unknown"
  }
  return error.phase === "connect" || error.phase === "pool" ? "retry" : "unknown"
}

/** Whether a failed send may be retried, must not be, or may have been delivered. */
const verdict = (error: SendGrid.Error): Verdict => {
  switch (error._tag) {
    case "SendGridError":
      return error.status === 429 || error.status === 408 || error.status >= 500 ? "retry" : "fail"
    case "TransportError":
    case "TimeoutError":
      return transportVerdict(error)
    case "RetryAfterTooLong":
    case "RetryBudgetExhausted":
    case "RateLimited":
    case "CircuitOpen":
      return "retry"
    default:
      return "fail"
  }
}

const deliver =
  (sendgrid: SendGrid.Service, retryDelay: Duration.Duration) =>
  (item: DurableQueue.Item<EmailRequest>): Effect.Effect<DurableQueue.Outcome> =>
    sendgrid.send(item.value).pipe(
      Effect.map((accepted) =>
        DurableQueue.done({
          detail: accepted.messageId === undefined
            ? { sandbox: accepted.sandbox }
            : { messageId: accepted.messageId, sandbox: accepted.sandbox }
        })
      ),
      Effect.catchAll((error) => {
        const step = retrySteps[item.attempt - 1]
        switch (verdict(error)) {
          case "retry": {
            if (step === undefined) return Effect.succeed(DurableQueue.failed({ error: error.message }))
            const asked = error._tag === "RetryAfterTooLong" ? error.retryAfterMillis : 0
            const delay = Math.max(Duration.toMillis(retryDelay) * step, asked)
            return Effect.succeed(DurableQueue.retryAfter(delay, { error: error.message }))
          }
          case "unknown":
            return Effect.succeed(DurableQueue.failed({
              error: `the outcome is unknown (${error.message}): not retried, so that it is not delivered twice`
            }))
          case "fail":
            return Effect.succeed(DurableQueue.failed({ error: error.message }))
        }
      })
    )

const publicState = {
  queued: "queued",
  processing: "sending",
  done: "sent",
  failed: "failed"
} as const

const toStatus = (status: DurableQueue.Status<EmailRequest>): EmailStatus => {
  const settled = [...status.history].reverse().find((attempt) => attempt.outcome === "done")?.detail
  const messageId = settled?.messageId
  const sandbox = settled?.sandbox
  return {
    id: status.id,
    status: publicState[status.state],
    attempts: status.attempts,
    ...(typeof messageId === "string" ? { messageId } : {}),
    ...(typeof sandbox === "boolean" ? { sandbox } : {}),
    ...(status.state !== "done" && status.lastError !== undefined ? { error: status.lastError } : {})
  }
}

const sendGridLayer = (config: Settings) =>
  Layer.unwrapScoped(Effect.gen(function*() {
    if (Option.isSome(config.apiKey)) {
      yield* Effect.logInfo(`emails: SendGrid at ${new URL(config.apiBase).origin}`)
      return SendGrid.layer({ apiKey: config.apiKey.value, apiBase: config.apiBase })
    }
    const sandbox = yield* SendGridSandbox.make()
    yield* Effect.logInfo(
      `emails: no SENDGRID_API_KEY, using the built-in sandbox SendGrid at ${sandbox.url} (nothing is delivered)`
    )
    return SendGrid.layer({ apiKey: Redacted.make(SendGridSandbox.sandboxApiKey), apiBase: sandbox.url })
  }))

/**
 * The emails service and its workers: the queue on Redis when `redis` is given (and the SendGrid
 * rate limit shared through it), in memory otherwise.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  redis: Option.Option<Layer.Layer<Redis.Redis>>
): Layer.Layer<Emails, ConfigError.ConfigError | DurableQueue.InvalidOptions> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const config = yield* settings
    const stores = Option.match(redis, {
      onNone: () => Layer.merge(DurableQueue.layerMemory, RateLimit.layerMemory),
      onSome: (redis) => Layer.provide(Layer.merge(DurableQueue.layerRedis, RateLimit.layerRedis()), redis)
    })
    const emails = Layer.scoped(
      Emails,
      Effect.gen(function*() {
        const queue = yield* DurableQueue.make(config.queue, EmailRequest, {
          pollInterval: Duration.min(Duration.seconds(1), config.retryDelay)
        })
        const sendgrid = yield* SendGrid.SendGrid
        yield* queue.worker(deliver(sendgrid, config.retryDelay), { concurrency: config.workers })
        return {
          send: (request) =>
            Effect.gen(function*() {
              yield* SendGrid.validate(request)
              const { id } = yield* queue.enqueue(request, { id: `email_${globalThis.crypto.randomUUID()}` }).pipe(
                // The request was decoded with the queue's own Schema: it encodes.
                Effect.catchTag("ParseError", Effect.die)
              )
              return id
            }),
          status: (id) =>
            queue.status(id).pipe(
              // A record that no longer decodes is as good as gone.
              Effect.catchTag("ParseError", () => Effect.succeedNone),
              Effect.map(Option.map(toStatus))
            )
        } satisfies Service
      })
    )
    return emails.pipe(Layer.provide(sendGridLayer(config)), Layer.provide(stores))
  }))

const unavailable = (error: DurableQueue.DurableQueueError) =>
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
export const EmailsLive: Layer.Layer<HttpApiGroup.ApiGroup<"liaison", "emails">, never, Emails> = HttpApiBuilder
  .group(Api, "emails", (handlers) =>
    Effect.map(Emails, (emails) =>
      handlers
        .handle("send", ({ payload }) =>
          emails.send(payload).pipe(
            Effect.map((id) => ({ status: "queued" as const, id })),
            Effect.catchTags({
              SendGridInvalidMessage: (error: SendGrid.InvalidMessage) =>
                Effect.fail(new InvalidEmail({ error: "invalid_email", message: error.message, field: error.field })),
              SendGridLimitExceeded: (error: SendGrid.LimitExceeded) =>
                Effect.fail(new InvalidEmail({ error: "over_limit", message: error.message, field: error.limit })),
              DurableQueueError: unavailable
            })
          ))
        .handle("status", ({ path }) =>
          emails.status(path.id).pipe(
            Effect.catchTag("DurableQueueError", unavailable),
            Effect.flatMap(Option.match({
              onNone: () => Effect.fail(new EmailNotFound({ error: "not_found", message: `no email ${path.id}` })),
              onSome: Effect.succeed
            }))
          ))))
