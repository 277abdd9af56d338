/**
 * Outbound webhooks: subscriptions, and signed deliveries that survive a crash.
 *
 * - A subscription is a `url`, the event `types` it wants (`*` for all) and a `whsec_` secret
 *   (generated when not given). Its URL passes the SSRF guard: loopback, private, link-local and
 *   cloud metadata addresses are refused unless allowed ({@link Options.allow}), checked after DNS
 *   resolution when subscribing, and again on the very address each delivery connects to (so a
 *   name that later resolves inside, DNS rebinding, is refused too).
 * - {@link Service.emit} queues one delivery per matching subscription on a {@link DurableQueue}
 *   (Redis-backed with {@link layerRedis}): a crash or a restart loses none.
 * - Each attempt POSTs the same JSON body `{ id, type, timestamp, data }` signed with Standard
 *   Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,…`) and the
 *   lecture's `X-Webhook-Signature` (hex HMAC-SHA256 of the body, keyed with the secret string).
 * - 2xx is delivered. 408, 429, 5xx and network failures are retried on the schedule (default, as
 *   Standard Webhooks / Svix: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), each delay
 *   jittered (×0.8 to ×1.2) and lengthened to the receiver's `Retry-After` (at most 1 hour). Other
 *   3xx and 4xx fail at once, and 410 Gone also disables the subscription. Each attempt has 15 s.
 * - Every attempt is recorded (status, error, duration) and readable with {@link Service.delivery}.
 *
 * @since 0.1.0
 */
import * as Undici from "@effect/platform-node/Undici"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import * as DurableQueue from "./DurableQueue.js"
import * as Invalid from "./internal/invalidOptions.js"
import { retryAfterMillis } from "./internal/retryAfter.js"
import * as Ssrf from "./internal/ssrf.js"
import type { StoredSubscription, SubscriptionStore } from "./internal/webhookSubscriptions.js"
import { makeMemorySubscriptions, makeRedisSubscriptions } from "./internal/webhookSubscriptions.js"
import { Redis } from "./Redis.js"
import * as Webhooks from "./Webhooks.js"

// ---------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * A subscription that cannot be made: its URL is not http(s), does not resolve, or points where
 * the SSRF guard does not allow; its events are empty; its secret is not `whsec_` + base64.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSubscription
  extends Schema.TaggedError<InvalidSubscription>("@liaison/core/WebhookDelivery/InvalidSubscription")(
    "InvalidSubscription",
    { reason: Schema.String }
  )
{
  override get message(): string {
    return `invalid webhook subscription: ${this.reason}`
  }
}

/**
 * The subscriptions or the delivery queue could not be read or written (Redis down).
 *
 * @since 0.1.0
 * @category errors
 */
export class StorageError extends Data.TaggedError("WebhookStorageError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `webhook storage: ${this.operation} failed: ${reason}`
  }
}

/**
 * An event whose data cannot be sent as JSON.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEvent extends Data.TaggedError("InvalidEvent")<{ readonly reason: string }> {
  override get message(): string {
    return `invalid webhook event: ${this.reason}`
  }
}

/**
 * Options out of range, found when the service is made.
 *
 * @since 0.1.0
 * @category errors
 */
export const InvalidOptions = Invalid.InvalidOptions

/**
 * @since 0.1.0
 * @category errors
 */
export type InvalidOptions = Invalid.InvalidOptions

// ---------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------

/**
 * A subscription; its secret is `Redacted` (shown once, when it is made).
 *
 * @since 0.1.0
 * @category models
 */
export interface Subscription {
  readonly id: string
  readonly url: string
  readonly events: ReadonlyArray<string>
  readonly secret: Redacted.Redacted<string>
  readonly createdAt: number
  /** Set when the receiver answered 410 Gone: nothing more is delivered to it. */
  readonly disabled: Option.Option<{ readonly at: number; readonly reason: string }>
}

/**
 * `pending` (queued, perhaps waiting for a retry), `delivering`, `delivered`, `failed`.
 *
 * @since 0.1.0
 * @category models
 */
export const DeliveryState = Schema.Literal("pending", "delivering", "delivered", "failed")

/**
 * @since 0.1.0
 * @category models
 */
export type DeliveryState = typeof DeliveryState.Type

/**
 * One attempt of a delivery.
 *
 * @since 0.1.0
 * @category models
 */
export const DeliveryAttempt = Schema.Struct({
  attempt: Schema.Int,
  /** Milliseconds since the epoch. */
  at: Schema.Number,
  outcome: Schema.Literal("delivered", "retry", "failed", "lost"),
  /** The receiver's status, when it answered. */
  status: Schema.optional(Schema.Int),
  error: Schema.optional(Schema.String),
  durationMs: Schema.optional(Schema.Number)
}).annotations({ identifier: "WebhookDeliveryAttempt" })

/**
 * @since 0.1.0
 * @category models
 */
export type DeliveryAttempt = typeof DeliveryAttempt.Type

/**
 * @since 0.1.0
 * @category models
 */
export const DeliveryStatus = Schema.Struct({
  id: Schema.String,
  subscriptionId: Schema.String,
  eventId: Schema.String,
  type: Schema.String,
  url: Schema.String,
  state: DeliveryState,
  createdAt: Schema.Number,
  /** Pending: when the next attempt is due. */
  nextAttemptAt: Schema.optional(Schema.Number),
  attempts: Schema.Array(DeliveryAttempt)
}).annotations({ identifier: "WebhookDeliveryStatus" })

/**
 * @since 0.1.0
 * @category models
 */
export type DeliveryStatus = typeof DeliveryStatus.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface Emitted {
  /** The event's id: the `webhook-id` of every delivery of it. */
  readonly eventId: string
  readonly deliveries: ReadonlyArray<{ readonly id: string; readonly subscriptionId: string }>
}

/**
 * A queued delivery.
 *
 * @since 0.1.0
 * @category models
 */
export const Delivery = Schema.Struct({
  subscriptionId: Schema.String,
  eventId: Schema.String,
  type: Schema.String,
  url: Schema.String,
  /** The exact bytes sent (as text), the same on every attempt. */
  body: Schema.String,
  createdAt: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type Delivery = typeof Delivery.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly subscribe: (input: {
    readonly url: string
    readonly events: ReadonlyArray<string>
    readonly secret?: Redacted.Redacted<string> | undefined
  }) => Effect.Effect<Subscription, InvalidSubscription | StorageError>
  readonly subscriptions: Effect.Effect<ReadonlyArray<Subscription>, StorageError>
  readonly subscription: (id: string) => Effect.Effect<Option.Option<Subscription>, StorageError>
  /** False when there was no such subscription. Its queued deliveries then fail. */
  readonly unsubscribe: (id: string) => Effect.Effect<boolean, StorageError>
  /** Queues one delivery of the event per active subscription that wants its type. */
  readonly emit: (type: string, data: unknown) => Effect.Effect<Emitted, InvalidEvent | StorageError>
  readonly delivery: (id: string) => Effect.Effect<Option.Option<DeliveryStatus>, StorageError>
  /** Runs `concurrency` delivery workers (default 8) until the scope closes. */
  readonly run: (options?: { readonly concurrency?: number | undefined }) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class WebhookDelivery extends Context.Tag("@liaison/core/WebhookDelivery")<WebhookDelivery, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Names the queue and the subscriptions' keys. Default `webhook-deliveries`. */
  readonly name?: string | undefined
  /** Delays between attempts; the first attempt is at once. Default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
  readonly schedule?: ReadonlyArray<Duration.DurationInput> | undefined
  /** Each delay is multiplied by a random factor in this range. Default 0.8 to 1.2. */
  readonly jitter?: { readonly min: number; readonly max: number } | undefined
  /** The longest `Retry-After` honoured. Default 1 hour. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Each attempt's time limit. Default 15 s. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Targets the SSRF guard lets through besides public addresses. Default none. */
  readonly allow?: {
    readonly loopback?: boolean | undefined
    readonly privateNetworks?: boolean | undefined
    readonly linkLocal?: boolean | undefined
  } | undefined
  /** How long delivery records are kept after their last change. Default 7 days. */
  readonly retention?: Duration.DurationInput | undefined
  /** Redis only: subscriptions lapse after this long without a write or an emit. Default 365 days. */
  readonly subscriptionRetention?: Duration.DurationInput | undefined
  /** How often idle workers look for deliveries queued by other instances. Default 1 s. */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * The retry schedule of Standard Webhooks and Svix, after the first attempt: 5 s, 5 min, 30 min,
 * 2 h, 5 h, 10 h, 10 h (8 attempts over about 28 hours).
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultSchedule: ReadonlyArray<Duration.DurationInput> = [
  "5 seconds",
  "5 minutes",
  "30 minutes",
  "2 hours",
  "5 hours",
  "10 hours",
  "10 hours"
]

// ---------------------------------------------------------------------------------------------------------------
// implementation
// ---------------------------------------------------------------------------------------------------------------

const randomId = (prefix: string) => `${prefix}_${randomBytes(12).toString("base64url")}`

const toSubscription = (stored: StoredSubscription): Subscription => ({
  id: stored.id,
  url: stored.url,
  events: stored.events,
  secret: Redacted.make(stored.secret),
  createdAt: stored.createdAt,
  disabled: stored.disabledAt === undefined
    ? Option.none()
    : Option.some({ at: stored.disabledAt, reason: stored.disabledReason ?? "" })
})

const wants = (subscription: StoredSubscription, type: string) =>
  subscription.disabledAt === undefined && subscription.events.some((event) => event === "*" || event === type)

const deliveryStates: Record<DurableQueue.State, DeliveryState> = {
  queued: "pending",
  processing: "delivering",
  done: "delivered",
  failed: "failed"
}

const attemptOutcomes: Record<DurableQueue.Attempt["outcome"], DeliveryAttempt["outcome"] | undefined> = {
  done: "delivered",
  retry: "retry",
  failed: "failed",
  lost: "lost",
  requeued: undefined
}

/** What one attempt came to. */
type Sent =
  | { readonly _tag: "Answered"; readonly status: number; readonly retryAfterMillis: number | undefined }
  | { readonly _tag: "Refused"; readonly reason: string }
  | { readonly _tag: "Unreachable"; readonly reason: string }

const errorCode = (error: unknown): string | undefined => {
  for (let current = error, depth = 0; typeof current === "object" && current !== null && depth < 5; depth++) {
    if ("code" in current && typeof current.code === "string") return current.code
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

const describeUnreachable = (error: unknown): string => {
  const code = errorCode(error)
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused (ECONNREFUSED)"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `the host name did not resolve (${code})`
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
    case "UND_ERR_CONNECT_TIMEOUT":
      return `timed out (${code})`
    default:
      return code === undefined ? "the request failed" : `the request failed (${code})`
  }
}

/**
 * The service on the {@link DurableQueue} store in context, with its subscriptions in `store`.
 */
const makeWith = (
  options: Options,
  subscriptions: SubscriptionStore
): Effect.Effect<Service, InvalidOptions, DurableQueue.DurableQueue | Scope.Scope> =>
  Effect.gen(function*() {
    const schedule = (options.schedule ?? defaultSchedule).map((delay) => Duration.toMillis(Duration.decode(delay)))
    const jitter = options.jitter ?? { min: 0.8, max: 1.2 }
    const maxRetryAfter = Duration.toMillis(Duration.decode(options.maxRetryAfter ?? "1 hour"))
    const timeout = Duration.decode(options.requestTimeout ?? "15 seconds")
    const policy: Ssrf.Policy = {
      loopback: options.allow?.loopback ?? false,
      private: options.allow?.privateNetworks ?? false,
      linkLocal: options.allow?.linkLocal ?? false
    }
    const invalid = Invalid.check([
      [schedule.every((delay) => Number.isFinite(delay) && delay >= 0), "schedule", "delays must be finite"],
      [jitter.min > 0 && jitter.max >= jitter.min, "jitter", "needs 0 < min <= max"],
      [Number.isFinite(maxRetryAfter) && maxRetryAfter >= 0, "maxRetryAfter", "must be finite"],
      [Duration.toMillis(timeout) > 0 && Duration.isFinite(timeout), "requestTimeout", "must be finite and > 0"]
    ])
    if (invalid !== undefined) return yield* invalid
    const queue = yield* DurableQueue.make(options.name ?? "webhook-deliveries", Delivery, {
      retention: options.retention ?? "7 days",
      pollInterval: options.pollInterval,
      // Leased for longer than an attempt may take.
      lease: Duration.sum(timeout, "15 seconds"),
      maxAttempts: schedule.length + 4
    })

    // One connection pool for every delivery; every connection passes the SSRF guard.
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Undici.Agent({
          connections: 16,
          connect: { lookup: Ssrf.guardedLookup(policy), timeout: Math.min(10_000, Duration.toMillis(timeout)) },
          headersTimeout: Duration.toMillis(timeout),
          bodyTimeout: Duration.toMillis(timeout)
        })
      ),
      (agent) => Effect.promise(() => agent.destroy())
    )

    const store = <A>(operation: string, effect: Effect.Effect<A, unknown>) =>
      Effect.mapError(effect, (cause) => new StorageError({ operation, cause }))

    const send = (delivery: Delivery, secret: string, signal: AbortSignal, now: number): Promise<Sent> => {
      const timestamp = Math.floor(now / 1000)
      const body = new TextEncoder().encode(delivery.body)
      const signature = Webhooks.signStandard({ secret: Redacted.make(secret), id: delivery.eventId, timestamp, body })
      if (Either.isLeft(signature)) {
        return Promise.resolve({ _tag: "Refused", reason: "the subscription's secret is unusable" })
      }
      return Undici.request(delivery.url, {
        method: "POST",
        dispatcher: agent,
        signal,
        headers: {
          "content-type": "application/json",
          "user-agent": "Liaison-Webhooks/0.1",
          "webhook-id": delivery.eventId,
          "webhook-timestamp": String(timestamp),
          "webhook-signature": signature.right,
          "x-webhook-signature": Webhooks.signHex(Redacted.make(secret), body)
        },
        body
      }).then(
        async (response): Promise<Sent> => {
          await response.body.dump({ limit: 65_536 }).catch(() => undefined)
          const headers: Record<string, string | undefined> = {}
          for (const [name, value] of Object.entries(response.headers)) {
            headers[name] = Array.isArray(value) ? value[0] : value
          }
          return { _tag: "Answered", status: response.statusCode, retryAfterMillis: retryAfterMillis(headers, now) }
        },
        (error: unknown): Sent =>
          error instanceof Ssrf.SsrfRefused || errorCode(error) === "ESSRFREFUSED"
            ? { _tag: "Refused", reason: error instanceof Error ? error.message : "refused by the SSRF guard" }
            : { _tag: "Unreachable", reason: describeUnreachable(error) }
      )
    }

    const retryOrFail = (
      attempt: number,
      detail: DurableQueue.Detail,
      error: string,
      retryAfter: number | undefined
    ): Effect.Effect<DurableQueue.Outcome> => {
      const scheduled = schedule[attempt - 1]
      if (scheduled === undefined) {
        return Effect.succeed(DurableQueue.failed({ error: `${error}; gave up after ${attempt} attempts`, detail }))
      }
      return Effect.map(Random.nextRange(jitter.min, jitter.max), (factor) => {
        const delay = Math.max(scheduled * factor, Math.min(retryAfter ?? 0, maxRetryAfter))
        return DurableQueue.retryAfter(delay, { error, detail })
      })
    }

    const disable = (subscriptionId: string, reason: string, now: number) =>
      Effect.flatMap(subscriptions.get(subscriptionId), (found) =>
        Option.match(found, {
          onNone: () => Effect.void,
          onSome: (subscription) => subscriptions.put({ ...subscription, disabledAt: now, disabledReason: reason })
        }))

    const deliver = (item: DurableQueue.Item<Delivery>): Effect.Effect<DurableQueue.Outcome> =>
      Effect.gen(function*() {
        const delivery = item.value
        const found = yield* Effect.either(subscriptions.get(delivery.subscriptionId))
        if (Either.isLeft(found)) {
          return DurableQueue.retryAfter("5 seconds", { error: "the subscriptions could not be read" })
        }
        if (Option.isNone(found.right)) return DurableQueue.failed({ error: "the subscription was removed" })
        const subscription = found.right.value
        if (subscription.disabledAt !== undefined) {
          return DurableQueue.failed({ error: `the subscription is disabled: ${subscription.disabledReason ?? ""}` })
        }
        // A literal address never goes through the guarded lookup: check it here.
        const literalRefusal = URL.canParse(delivery.url)
          ? Ssrf.literalRefusal(policy, Ssrf.hostOf(new URL(delivery.url)))
          : "not a URL"
        if (literalRefusal !== undefined) {
          return DurableQueue.failed({ error: `refused by the SSRF guard: ${literalRefusal}` })
        }
        const started = yield* Clock.currentTimeMillis
        const sent = yield* Effect.tryPromise((signal) => send(delivery, subscription.secret, signal, started)).pipe(
          Effect.timeoutFail({ duration: timeout, onTimeout: () => "timeout" as const }),
          Effect.catchAll((error) =>
            Effect.succeed<Sent>({
              _tag: "Unreachable",
              reason: error === "timeout" ? `no answer within ${Duration.format(timeout)}` : describeUnreachable(error)
            })
          )
        )
        const durationMs = (yield* Clock.currentTimeMillis) - started
        switch (sent._tag) {
          case "Refused":
            return DurableQueue.failed({ error: `refused by the SSRF guard: ${sent.reason}`, detail: { durationMs } })
          case "Unreachable":
            return yield* retryOrFail(item.attempt, { durationMs }, sent.reason, undefined)
          case "Answered": {
            const detail = { status: sent.status, durationMs }
            if (sent.status >= 200 && sent.status < 300) return DurableQueue.done({ detail })
            const error = `the receiver answered ${sent.status}`
            if (sent.status === 408 || sent.status === 429 || sent.status >= 500) {
              return yield* retryOrFail(item.attempt, detail, error, sent.retryAfterMillis)
            }
            if (sent.status === 410) {
              yield* disable(delivery.subscriptionId, "the receiver answered 410 Gone", started).pipe(
                Effect.catchAllCause((cause) =>
                  Effect.logWarning("could not disable a subscription", Cause.pretty(cause))
                )
              )
              return DurableQueue.failed({ error: `${error} (Gone): the subscription is disabled`, detail })
            }
            return DurableQueue.failed({ error: `${error}, not retried`, detail })
          }
        }
      }).pipe(Effect.withSpan("webhook.deliver", {
        attributes: { "webhook.delivery_id": item.id, "webhook.attempt": item.attempt, "webhook.type": item.value.type }
      }))

    const checkUrl = (raw: string): Effect.Effect<URL, InvalidSubscription> =>
      Effect.gen(function*() {
        if (!URL.canParse(raw)) return yield* new InvalidSubscription({ reason: "the url is not a URL" })
        const url = new URL(raw)
        if (url.protocol !== "http:" && url.protocol !== "https:") {
          return yield* new InvalidSubscription({ reason: "the url must be http or https" })
        }
        if (url.username !== "" || url.password !== "") {
          return yield* new InvalidSubscription({ reason: "the url must not carry credentials" })
        }
        const refusal = yield* Effect.tryPromise(() => Ssrf.checkHost(policy, Ssrf.hostOf(url))).pipe(
          Effect.catchAll(() => Effect.succeed(`${url.hostname} does not resolve`))
        )
        if (refusal !== undefined) return yield* new InvalidSubscription({ reason: `refused: ${refusal}` })
        return url
      })

    const service: Service = {
      subscribe: (input) =>
        Effect.gen(function*() {
          const url = yield* checkUrl(input.url)
          const events = [...new Set(input.events)]
          if (events.length === 0 || events.some((event) => event.length === 0 || event.length > 200)) {
            return yield* new InvalidSubscription({ reason: "events must list 1 or more types of 1 to 200 characters" })
          }
          const secret = input.secret === undefined
            ? `whsec_${randomBytes(24).toString("base64")}`
            : Redacted.value(input.secret)
          if (!Webhooks.isStandardSecret(secret)) {
            return yield* new InvalidSubscription({ reason: "the secret must be whsec_ followed by base64" })
          }
          const stored: StoredSubscription = {
            id: randomId("sub"),
            url: url.href,
            events,
            secret,
            createdAt: yield* Clock.currentTimeMillis
          }
          yield* store("subscribe", subscriptions.put(stored))
          return toSubscription(stored)
        }),
      subscriptions: store("list subscriptions", Effect.map(subscriptions.list, (all) => all.map(toSubscription))),
      subscription: (id) => store("get subscription", Effect.map(subscriptions.get(id), Option.map(toSubscription))),
      unsubscribe: (id) => store("unsubscribe", subscriptions.remove(id)),
      emit: (type, data) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const eventId = randomId("msg")
          const body = yield* Effect.try({
            try: () => JSON.stringify({ id: eventId, type, timestamp: new Date(now).toISOString(), data }),
            catch: () => new InvalidEvent({ reason: "the data is not serializable as JSON" })
          })
          const targets = (yield* store("list subscriptions", subscriptions.list)).filter((s) => wants(s, type))
          const deliveries = yield* Effect.forEach(targets, (subscription) => {
            const id = randomId("dlv")
            const delivery: Delivery = {
              subscriptionId: subscription.id,
              eventId,
              type,
              url: subscription.url,
              body,
              createdAt: now
            }
            return queue.enqueue(delivery, { id }).pipe(
              Effect.catchTag("ParseError", Effect.die),
              (effect) => store("enqueue a delivery", effect),
              Effect.as({ id, subscriptionId: subscription.id })
            )
          })
          return { eventId, deliveries }
        }),
      delivery: (id) =>
        queue.status(id).pipe(
          Effect.catchTag("ParseError", Effect.die),
          (effect) => store("read a delivery", effect),
          Effect.map(Option.map((status): DeliveryStatus => ({
            id,
            subscriptionId: status.value.subscriptionId,
            eventId: status.value.eventId,
            type: status.value.type,
            url: status.value.url,
            state: deliveryStates[status.state],
            createdAt: status.value.createdAt,
            ...(status.state === "queued" && status.availableAt !== undefined
              ? { nextAttemptAt: status.availableAt }
              : {}),
            attempts: status.history.flatMap((attempt): Array<DeliveryAttempt> => {
              const outcome = attemptOutcomes[attempt.outcome]
              if (outcome === undefined) return []
              const httpStatus = attempt.detail?.["status"]
              const durationMs = attempt.detail?.["durationMs"]
              return [{
                attempt: attempt.attempt,
                at: attempt.startedAt ?? attempt.finishedAt,
                outcome,
                ...(typeof httpStatus === "number" ? { status: httpStatus } : {}),
                ...(attempt.error === undefined ? {} : { error: attempt.error }),
                ...(typeof durationMs === "number" ? { durationMs } : {})
              }]
            })
          })))
        ),
      run: (runOptions = {}) => queue.worker(deliver, { concurrency: runOptions.concurrency ?? 8 })
    }
    return service
  })

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Service, InvalidOptions, DurableQueue.DurableQueue | Scope.Scope> =>
  makeWith(options, makeMemorySubscriptions())

/**
 * Deliveries and subscriptions in this process' memory.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Options = {}): Layer.Layer<WebhookDelivery, InvalidOptions> =>
  Layer.scoped(WebhookDelivery, make(options)).pipe(Layer.provide(DurableQueue.layerMemory))

/**
 * Deliveries and subscriptions on the shared Redis: several instances deliver as one, and a
 * restart loses nothing.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: Options = {}): Layer.Layer<WebhookDelivery, InvalidOptions, Redis> =>
  Layer.scoped(
    WebhookDelivery,
    Effect.flatMap(Redis, (redis) =>
      makeWith(
        options,
        makeRedisSubscriptions(
          redis.client,
          options.name ?? "webhook-deliveries",
          Duration.toMillis(Duration.decode(options.subscriptionRetention ?? "365 days"))
        )
      ))
  ).pipe(Layer.provide(DurableQueue.layerRedis))

/**
 * Runs the delivery workers until the scope closes; see {@link Service.run}.
 *
 * @since 0.1.0
 * @category workers
 */
export const run = (
  options?: { readonly concurrency?: number | undefined }
): Effect.Effect<void, never, WebhookDelivery | Scope.Scope> =>
  Effect.flatMap(WebhookDelivery, (service) => service.run(options))
