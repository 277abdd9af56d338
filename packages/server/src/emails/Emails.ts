/**
 * Background email: the `emails` queue (a `DurableQueue` on the server's store: Redis with
 * `REDIS_URL`, memory without),
 * its workers sending through SendGrid (the real one when `SENDGRID_API_KEY` is set, else the
 * built-in sandbox, said at startup).
 *
 * What a worker does with a failed send:
 *
 * - SendGrid did not take it and may later (5xx, 429, a connection that never opened, a connect
 *   timeout, the retry budget or the rate limiter): retried after a growing delay
 *   (`EMAIL_RETRY_DELAY` × 1, 5, 30, 120, 600, 1800), then `failed`;
 * - SendGrid refused it (other 4xx) or it breaks a rule: `failed`;
 * - the outcome is unknown — the connection broke or timed out after the request was sent, or a
 *   worker took the email and stopped before it finished (a crash, a lease lost while Redis was
 *   down): `unknown`, never resent — mail send has no idempotency key, and a resend could deliver
 *   it twice. `EMAIL_AT_LEAST_ONCE=true` opts into resending instead (at least once, maybe twice).
 *
 * Every accepted email ends `sent`, `failed` or `unknown`, counted when it settles in
 * `liaison_emails_total{outcome}`.
 *
 * | variable | default | |
 * |---|---|---|
 * | `SENDGRID_API_KEY` | (unset) | redacted; unset → the built-in sandbox SendGrid |
 * | `SENDGRID_API_BASE` | `https://api.sendgrid.com` | `https://api.eu.sendgrid.com` for EU subusers |
 * | `EMAIL_WORKERS` | `2` | emails sent at once |
 * | `EMAIL_RETRY_DELAY` | `1 second` | the first retry's delay; later ones are 5, 30, 120, 600 and 1800 times it |
 * | `EMAIL_QUEUE` | `emails` | the queue's name (instances sharing a Redis share the queue) |
 * | `EMAIL_AT_LEAST_ONCE` | `false` | resend an email whose outcome is unknown (it may arrive twice) |
 * | `EMAIL_SENDERS` | (unset) | comma-separated sender addresses (`shop@example.com`) or domains (`example.com`) the server sends from; unset: any on the built-in sandbox, none with a real `SENDGRID_API_KEY` (no open relay) |
 * | `EMAIL_LEASE` | `30 seconds` | how long a worker holds an email it sends (extended while it runs): after a crash, its emails end `unknown` this long later |
 *
 * @since 0.1.0
 */
import { DurableQueue, HttpError } from "@liaison/core"
import type { LiaisonError, RateLimit } from "@liaison/core"
import type { SendGridError } from "@liaison/integrations"
import { SendGrid } from "@liaison/integrations"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { positiveInt } from "../Config.js"
import * as SendGridSandbox from "../sandbox/SendGrid.js"
import type { EmailStatus } from "./Api.js"
import { EmailRequest, SenderNotAllowed } from "./Api.js"

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
  /** Resend an email whose outcome is unknown (at least once) instead of ending it `unknown`. */
  readonly atLeastOnce: boolean
  readonly lease: Duration.Duration
  /** Addresses and domains (lower case, a domain without `@`) the server sends from. */
  readonly senders: Option.Option<ReadonlyArray<string>>
}

/**
 * Every email setting, from the environment.
 *
 * @since 0.1.0
 * @category config
 */
export const settings: Config.Config<Settings> = Config.all({
  apiKey: Config.option(Config.redacted("SENDGRID_API_KEY")),
  apiBase: Config.string("SENDGRID_API_BASE").pipe(Config.withDefault(SendGrid.defaults.apiBase)),
  workers: positiveInt("EMAIL_WORKERS", 2),
  retryDelay: Config.duration("EMAIL_RETRY_DELAY").pipe(Config.withDefault(Duration.seconds(1))),
  queue: Config.string("EMAIL_QUEUE").pipe(Config.withDefault("emails")),
  atLeastOnce: Config.boolean("EMAIL_AT_LEAST_ONCE").pipe(Config.withDefault(false)),
  lease: Config.duration("EMAIL_LEASE").pipe(Config.withDefault(Duration.decode(DurableQueue.defaults.lease))),
  senders: Config.option(
    Config.map(
      Config.string("EMAIL_SENDERS"),
      (list) =>
        list.split(",").map((entry) => entry.trim().toLowerCase().replace(/^@/, "")).filter((entry) => entry !== "")
    )
  )
})

/**
 * Whether the server may send from `address`: one of `EMAIL_SENDERS` (an address, or a domain),
 * any address only on the built-in sandbox (nothing is delivered) when it is unset.
 */
const senderAllowed = (config: Settings, address: string): boolean => {
  const lower = address.toLowerCase()
  return Option.match(config.senders, {
    onNone: () => Option.isNone(config.apiKey),
    onSome: (senders) => senders.includes(lower) || senders.includes(lower.slice(lower.lastIndexOf("@") + 1))
  })
}

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
  ) => Effect.Effect<
    string,
    SendGridError.InvalidMessage | SendGridError.LimitExceeded | SenderNotAllowed | LiaisonError.StorageError
  >
  readonly status: (id: string) => Effect.Effect<Option.Option<EmailStatus>, LiaisonError.StorageError>
}

/**
 * @since 0.1.0
 * @category models
 */
export class Emails extends Context.Tag("@liaison/server/Emails")<Emails, Service>() {}

/** Whether a failed send may be retried (no sooner than a `Retry-After`), must not be, or may have been delivered. */
const classify = (error: SendGrid.Error): DurableQueue.Verdict => {
  if (error._tag === "SendGridError") return HttpError.isTransientStatus(error.status) ? "retry" : "fail"
  if (!HttpError.isHttpError(error)) return "fail"
  if (error._tag === "RetryAfterTooLong") return { retryAfterMillis: error.retryAfterMillis }
  const transience = HttpError.transience(error)
  return transience === "transient" ? "retry" : transience === "permanent" ? "fail" : "unknown"
}

/** The detail that marks an email whose outcome is unknown. */
const unknownDetail = { unknown: true } as const

/**
 * Whether the attempt before this one was taken and never finished: its lease ran out (the worker
 * crashed, or lost its lease while the store was down), so the email may have been sent.
 */
const previousAttemptLost = (item: DurableQueue.Item<EmailRequest>): boolean => {
  const last = item.history[item.history.length - 1]
  return last !== undefined && last.outcome === "lost" && last.attempt === item.attempt - 1
}

const sendOnce = (sendgrid: SendGrid.Service, item: DurableQueue.Item<EmailRequest>) =>
  Effect.map(sendgrid.send(item.value), (accepted) =>
    DurableQueue.done({
      detail: accepted.messageId === undefined
        ? { sandbox: accepted.sandbox }
        : { messageId: accepted.messageId, sandbox: accepted.sandbox }
    }))

/** Sends one email; a failure is settled by {@link classify} and the delays (no jitter: they are the user's). */
const deliver = (sendgrid: SendGrid.Service, config: Settings) =>
  DurableQueue.retrying(
    (item: DurableQueue.Item<EmailRequest>) =>
      !config.atLeastOnce && previousAttemptLost(item)
        ? Effect.succeed(DurableQueue.failed({
          error: "the outcome is unknown: a worker began sending it and stopped before it finished; " +
            "not resent, so that it is not delivered twice",
          detail: unknownDetail
        }))
        : sendOnce(sendgrid, item),
    {
      delays: retrySteps.map((step) => Duration.times(config.retryDelay, step)),
      jitter: { min: 1, max: 1 },
      classify,
      // Mail send has no idempotency key: a retry could deliver it twice.
      onUnknown: config.atLeastOnce ? "retry" : "fail",
      detail: (error) => classify(error) === "unknown" ? unknownDetail : undefined
    }
  )

/**
 * `liaison_emails_total`: emails settled by a worker, by outcome (`sent`, `failed`, `unknown`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const emailsTotal = Metric.counter("liaison_emails_total", {
  description: "Emails settled by a worker, by outcome (sent, failed, unknown)",
  incremental: true
})

/** Counts an attempt that settled its email; a retry settles nothing. */
const counted =
  <R>(handler: (item: DurableQueue.Item<EmailRequest>) => Effect.Effect<DurableQueue.Outcome, never, R>) =>
  (item: DurableQueue.Item<EmailRequest>) =>
    Effect.tap(handler(item), (outcome) =>
      outcome._tag === "RetryLater"
        ? Effect.void
        : Metric.increment(Metric.tagged(
          emailsTotal,
          "outcome",
          outcome._tag === "Done" ? "sent" : outcome.detail?.unknown === true ? "unknown" : "failed"
        )))

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
  const unknown = status.state === "failed" && status.history[status.history.length - 1]?.detail?.unknown === true
  return {
    id: status.id,
    status: unknown ? "unknown" : publicState[status.state],
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
      return SendGrid.layerStandalone({ apiKey: config.apiKey.value, apiBase: config.apiBase })
    }
    const sandbox = yield* SendGridSandbox.make()
    yield* Effect.logInfo(
      `emails: no SENDGRID_API_KEY, using the built-in sandbox SendGrid at ${sandbox.url} (nothing is delivered)`
    )
    return SendGrid.layerStandalone({ apiKey: Redacted.make(SendGridSandbox.sandboxApiKey), apiBase: sandbox.url })
  }))

/**
 * The service over the `emails` queue, its workers started in the scope and sending through the
 * SendGrid client in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: Settings
): Effect.Effect<Service, LiaisonError.InvalidOptions, DurableQueue.Store | SendGrid.SendGrid | Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* DurableQueue.make(config.queue, EmailRequest, {
      pollInterval: Duration.min(DurableQueue.defaults.pollInterval, config.retryDelay),
      lease: config.lease
    })
    const sendgrid = yield* SendGrid.SendGrid
    yield* queue.worker(counted(deliver(sendgrid, config)), { concurrency: config.workers })
    return Emails.of({
      send: (request) =>
        Effect.gen(function*() {
          if (!senderAllowed(config, request.from.email)) {
            return yield* new SenderNotAllowed({
              error: "sender_not_allowed",
              message: Option.isNone(config.senders)
                ? "no EMAIL_SENDERS configured: the server sends from no address (it would be an open relay)"
                : "the server does not send from this address: see EMAIL_SENDERS",
              field: "from"
            })
          }
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
    })
  })

/**
 * The emails service and its workers from {@link settings}: the queue on the `DurableQueue.Store`
 * in context, and SendGrid (sharing the server's `RateLimit`) or its sandbox.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  Emails,
  ConfigError.ConfigError | LiaisonError.InvalidOptions,
  DurableQueue.Store | RateLimit.RateLimit
> = Layer.unwrapEffect(
  Effect.map(settings, (config) => Layer.scoped(Emails, make(config)).pipe(Layer.provide(sendGridLayer(config))))
)
