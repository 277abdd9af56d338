/**
 * Exactly-once processing of inbound webhook events, off the request path.
 *
 * The endpoint verifies a request ({@link Webhooks.receive}), then {@link Service.record}s its
 * events and answers 2xx: recording claims each event id atomically (`received`) and queues it,
 * so a provider's retry of the same event is a duplicate, acknowledged and never queued again.
 * Workers ({@link run}) take each event under a lease (`processing`), decode its payload with the
 * Schema of the handler registered for its type ({@link on}) and settle it: `processed`, or
 * `failed` once its retries are used up (or at once when the payload does not decode). A worker
 * that dies mid-event loses its lease, and the event is processed again, once. Failed events can
 * be queued again ({@link Service.retry}). Records expire after the retention (default 7 days,
 * longer than Stripe's 3 days of retries).
 *
 * Built on {@link DurableQueue}: {@link make} and {@link layer} take the `DurableQueue.Store` in
 * context; {@link layerMemory} for one process, {@link layerRedis} for several instances sharing
 * Redis. A failing handler is retried with `DurableQueue.retrying` on {@link Options.retryDelays}.
 *
 * @example
 * ```ts
 * import { WebhookInbox } from "@liaison/core"
 * import { Effect, Schema } from "effect"
 *
 * const PaymentIntent = Schema.Struct({ data: Schema.Struct({ object: Schema.Struct({ id: Schema.String }) }) })
 *
 * const workers = WebhookInbox.run([
 *   WebhookInbox.on("payment_intent.succeeded", PaymentIntent, (event) =>
 *     Effect.log(`paid: ${event.data.object.id}`), { source: "stripe" })
 * ], { concurrency: 4 })
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as DurableQueue from "./DurableQueue.js"
import { activeSpan, eventTime, withSpan } from "./internal/tracing.js"
import { countReceived } from "./internal/webhookDelivery/telemetry.js"
import type * as LiaisonError from "./LiaisonError.js"
import type { Redis } from "./Redis.js"
import type * as Webhooks from "./Webhooks.js"

/**
 * An event as the inbox stores it.
 *
 * @since 0.1.0
 * @category models
 */
export const StoredEvent = Schema.Struct({
  source: Schema.String,
  id: Schema.String,
  type: Schema.String,
  payload: Schema.Unknown,
  receivedAt: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type StoredEvent = typeof StoredEvent.Type

/**
 * `received` (queued, perhaps for a retry), `processing` (a worker holds its lease),
 * `processed`, `failed`.
 *
 * @since 0.1.0
 * @category models
 */
export const State = Schema.Literal("received", "processing", "processed", "failed")

/**
 * @since 0.1.0
 * @category models
 */
export type State = typeof State.Type

/**
 * @since 0.1.0
 * @category models
 */
export const EventStatus = Schema.Struct({
  id: Schema.String,
  source: Schema.String,
  type: Schema.String,
  state: State,
  attempts: Schema.Int,
  receivedAt: Schema.Number,
  updatedAt: Schema.Number,
  lastError: Schema.optional(Schema.String)
}).annotations({ identifier: "WebhookEventStatus" })

/**
 * @since 0.1.0
 * @category models
 */
export type EventStatus = typeof EventStatus.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface Recorded {
  readonly id: string
  /** Seen before (within the retention): acknowledged, not queued again. */
  readonly duplicate: boolean
}

/**
 * A handler for one event type (of one source, or of any).
 *
 * @since 0.1.0
 * @category models
 */
export interface Handler<R> {
  readonly type: string
  readonly source: string | undefined
  readonly handle: (event: StoredEvent) => Effect.Effect<void, HandlerError, R>
}

/**
 * Why a handler did not process its event: the payload does not decode (final), or the handler
 * failed (retried).
 *
 * @since 0.1.0
 * @category models
 */
export type HandlerError =
  | { readonly _tag: "Undecodable"; readonly message: string }
  | { readonly _tag: "Failed"; readonly message: string }

const describe = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error) ?? String(error)

/**
 * Registers `f` for events of `type` (of `options.source` only, when given): the payload is decoded
 * with `schema` first; a payload that does not decode fails the event without retries, a failure
 * of `f` is retried.
 *
 * @since 0.1.0
 * @category constructors
 */
export const on = <A, I, E, R>(
  type: string,
  schema: Schema.Schema<A, I>,
  f: (payload: A, event: StoredEvent) => Effect.Effect<void, E, R>,
  options: { readonly source?: string | undefined } = {}
): Handler<R> => {
  const decode = Schema.decodeUnknown(schema)
  return {
    type,
    source: options.source,
    handle: (event) =>
      decode(event.payload).pipe(
        Effect.mapError((error): HandlerError => ({
          _tag: "Undecodable",
          message: `the payload does not match the handler's schema: ${
            ParseResult.TreeFormatter.formatErrorSync(error)
          }`
        })),
        Effect.flatMap((payload) =>
          Effect.mapError(f(payload, event), (error): HandlerError => ({ _tag: "Failed", message: describe(error) }))
        )
      )
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Claims and queues each event; an id already recorded for the source (within the retention) is a
   * duplicate and is not queued again. Fails with `LiaisonError.StorageError` when the store is
   * down: answer 503, so that the provider retries.
   */
  readonly record: (
    source: string,
    events: ReadonlyArray<Webhooks.Event>
  ) => Effect.Effect<ReadonlyArray<Recorded>, LiaisonError.StorageError>
  readonly status: (source: string, id: string) => Effect.Effect<Option.Option<EventStatus>, LiaisonError.StorageError>
  /** Queues a failed event again: false when it is not failed. */
  readonly retry: (source: string, id: string) => Effect.Effect<boolean, LiaisonError.StorageError>
  /**
   * Runs workers until the scope closes: `concurrency` fibers (default 4) taking events and running
   * the handler of their type. An event without a handler is processed as it is.
   */
  readonly run: <R>(
    handlers: ReadonlyArray<Handler<R>>,
    options?: { readonly concurrency?: number | undefined }
  ) => Effect.Effect<void, never, Scope.Scope | R>
}

/**
 * @since 0.1.0
 * @category models
 */
export class WebhookInbox extends Context.Tag("@liaison/core/WebhookInbox")<WebhookInbox, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The queue's name (keys `liaison:{dq:<name>}:*` on Redis). Default `webhooks-inbox`. */
  readonly name?: string | undefined
  /** How long records are kept after their last change. Default 7 days. */
  readonly retention?: Duration.DurationInput | undefined
  /** How long a worker may hold an event before another may take it over. Default 30 s (extended while it runs). */
  readonly lease?: Duration.DurationInput | undefined
  /**
   * Delays between the attempts of a failing handler; the event fails after the last. Default
   * `defaults.retryDelays`.
   */
  readonly retryDelays?: ReadonlyArray<Duration.DurationInput> | undefined
  /** How often idle workers look for events queued by other instances. Default 1 s. */
  readonly pollInterval?: Duration.DurationInput | undefined
}

/**
 * The defaults of {@link Options} and of {@link run}'s `concurrency`. The retry delays: 5 s, 30 s,
 * 2 min, 10 min, 30 min, 1 h, 3 h (8 attempts in about 5 hours).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  name: "webhooks-inbox",
  retention: Duration.days(7),
  retryDelays: [
    Duration.seconds(5),
    Duration.seconds(30),
    Duration.minutes(2),
    Duration.minutes(10),
    Duration.minutes(30),
    Duration.hours(1),
    Duration.hours(3)
  ],
  concurrency: 4
} as const

/**
 * The options from the environment: `WEBHOOK_INBOX_QUEUE`, `WEBHOOK_INBOX_RETENTION`,
 * `WEBHOOK_INBOX_LEASE`, `WEBHOOK_INBOX_RETRY_DELAYS` (comma-separated durations) and
 * `WEBHOOK_INBOX_POLL_INTERVAL`. Unset variables stay undefined: {@link make} fills in the
 * {@link defaults}. Give {@link layerConfig} your own `Config` to read other names.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  name: Config.option(Config.string("WEBHOOK_INBOX_QUEUE")),
  retention: Config.option(Config.duration("WEBHOOK_INBOX_RETENTION")),
  lease: Config.option(Config.duration("WEBHOOK_INBOX_LEASE")),
  retryDelays: Config.option(Config.array(Config.duration(), "WEBHOOK_INBOX_RETRY_DELAYS")),
  pollInterval: Config.option(Config.duration("WEBHOOK_INBOX_POLL_INTERVAL"))
}).pipe(Config.map((options): Options => ({
  name: Option.getOrUndefined(options.name),
  retention: Option.getOrUndefined(options.retention),
  lease: Option.getOrUndefined(options.lease),
  retryDelays: Option.getOrUndefined(options.retryDelays),
  pollInterval: Option.getOrUndefined(options.pollInterval)
})))

const states: Record<DurableQueue.State, State> = {
  queued: "received",
  processing: "processing",
  done: "processed",
  failed: "failed"
}

const key = (source: string, id: string) => `${source}:${id}`

const handlerFor = <R>(handlers: ReadonlyArray<Handler<R>>, event: StoredEvent) =>
  handlers.find((handler) => handler.type === event.type && handler.source === event.source) ??
    handlers.find((handler) => handler.type === event.type && handler.source === undefined)

/** The worker's handler: the event's handler, retried on `delays` unless its payload does not decode. */
const worker = <R>(handlers: ReadonlyArray<Handler<R>>, delays: ReadonlyArray<Duration.DurationInput>) => {
  const retried = retrying(handlers, delays)
  return (item: DurableQueue.Item<StoredEvent>): Effect.Effect<DurableQueue.Outcome, never, R> =>
    withSpan("liaison.webhook.handle", "consumer", (span) => {
      span?.attribute("liaison.webhook.source", item.value.source)
      span?.attribute("liaison.webhook.type", item.value.type)
      span?.attribute("liaison.webhook.attempt", item.attempt)
      return Effect.map(retried(item), (outcome) => {
        const settled = outcome._tag === "Done" ? "processed" : outcome._tag === "Failed" ? "failed" : "retried"
        // A retry is not an outcome of the event yet: only processed and failed are counted.
        if (settled !== "retried") countReceived(item.value.source, settled)
        span?.attribute("liaison.webhook.outcome", settled)
        return outcome
      })
    })
}

const retrying = <R>(handlers: ReadonlyArray<Handler<R>>, delays: ReadonlyArray<Duration.DurationInput>) =>
  DurableQueue.retrying(
    (item: DurableQueue.Item<StoredEvent>): Effect.Effect<void | DurableQueue.Outcome, HandlerError, R> => {
      const handler = handlerFor(handlers, item.value)
      return handler === undefined
        ? Effect.succeed(DurableQueue.done({ detail: { handled: false } }))
        : handler.handle(item.value)
    },
    {
      delays,
      // The delays as configured, not jittered.
      jitter: { min: 1, max: 1 },
      classify: (error) => error._tag === "Undecodable" ? "fail" : "retry",
      describe: (error) => error.message
    }
  )

/** Counts the events recorded before, and notes them on the caller's span (as `liaison.webhook.verify` events). */
const countDuplicates = (source: string, recorded: ReadonlyArray<Recorded>) =>
  Effect.withFiberRuntime<void>((fiber) => {
    let duplicates = 0
    for (const event of recorded) if (event.duplicate) duplicates++
    if (duplicates === 0) return Effect.void
    countReceived(source, "duplicate", duplicates)
    const span = activeSpan(fiber)
    if (span === undefined) return Effect.void
    return Effect.map(Clock.currentTimeMillis, (now) =>
      span.event("liaison.webhook.verify", eventTime(now), {
        "liaison.webhook.source": source,
        "liaison.webhook.outcome": "duplicate",
        "liaison.webhook.duplicates": duplicates
      }))
  })

const toEventStatus = (status: DurableQueue.Status<StoredEvent>): EventStatus => ({
  id: status.value.id,
  source: status.value.source,
  type: status.value.type,
  state: states[status.state],
  attempts: status.attempts,
  receivedAt: status.value.receivedAt,
  updatedAt: status.updatedAt,
  ...(status.lastError === undefined ? {} : { lastError: status.lastError })
})

/**
 * The inbox on the `DurableQueue.Store` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<Service, LiaisonError.InvalidOptions, DurableQueue.Store> =>
  Effect.gen(function*() {
    const delays = options.retryDelays ?? defaults.retryDelays
    const queue = yield* DurableQueue.make(options.name ?? defaults.name, StoredEvent, {
      retention: options.retention ?? defaults.retention,
      lease: options.lease,
      pollInterval: options.pollInterval,
      // Enough for the retries, plus a few leases lost to dying workers.
      maxAttempts: delays.length + 4
    })
    return WebhookInbox.of({
      record: (source, events) =>
        Effect.flatMap(Clock.currentTimeMillis, (receivedAt) =>
          Effect.forEach(events, (event) =>
            queue.enqueue(
              { source, id: event.id, type: event.type, payload: event.payload, receivedAt },
              { id: key(source, event.id) }
            ).pipe(
              // An event that came in as JSON always encodes.
              Effect.catchTag("ParseError", Effect.die),
              Effect.map(({ duplicate }) => ({ id: event.id, duplicate }))
            ))).pipe(Effect.tap((recorded) => countDuplicates(source, recorded))),
      status: (source, id) =>
        queue.status(key(source, id)).pipe(
          Effect.catchTag("ParseError", Effect.die),
          Effect.map(Option.map(toEventStatus))
        ),
      retry: (source, id) => queue.retry(key(source, id)),
      run: (handlers, runOptions = {}) =>
        queue.worker(worker(handlers, delays), { concurrency: runOptions.concurrency ?? defaults.concurrency })
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<WebhookInbox, LiaisonError.InvalidOptions, DurableQueue.Store> =>
  Layer.effect(WebhookInbox, make(options))

/**
 * The inbox configured by `config` ({@link config} by default), on the `DurableQueue.Store` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<WebhookInbox, LiaisonError.InvalidOptions | ConfigError.ConfigError, DurableQueue.Store> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))

/**
 * The inbox in this process' memory.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Options = {}): Layer.Layer<WebhookInbox, LiaisonError.InvalidOptions> =>
  Layer.provide(layer(options), DurableQueue.layerStoreMemory)

/**
 * The inbox on the shared Redis: several instances record and process as one.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (
  options: Options = {}
): Layer.Layer<WebhookInbox, LiaisonError.InvalidOptions, Redis> =>
  Layer.provide(layer(options), DurableQueue.layerStoreRedis())

/**
 * Runs the inbox's workers until the scope closes; see {@link Service.run}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = <R>(
  handlers: ReadonlyArray<Handler<R>>,
  options?: { readonly concurrency?: number | undefined }
): Effect.Effect<void, never, WebhookInbox | Scope.Scope | R> =>
  Effect.flatMap(WebhookInbox, (inbox) => inbox.run(handlers, options))
