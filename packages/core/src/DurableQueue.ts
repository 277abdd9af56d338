/**
 * A durable work queue: items survive a crash or a restart of the process (with the Redis store),
 * each is handled by one worker at a time under a lease (a visibility timeout), and every attempt
 * is recorded.
 *
 * - {@link make} a typed queue on the {@link Store} in context: values are encoded with a Schema
 *   to JSON.
 * - `enqueue` (optionally with an id, which makes a second enqueue of the same id a duplicate,
 *   and a delay); `take` leases the first due item; `ack`, `retryLater`, `fail` and `release`
 *   settle it; `status` looks an item up; `retry` re-queues a failed item.
 * - `worker` runs a handler on `concurrency` fibers until its scope closes: the lease is extended
 *   while the handler runs, and released if the worker is interrupted. {@link retrying} turns a
 *   handler that fails into one that settles its item by a table of delays: the durable retry
 *   every consumer of a queue shares.
 *
 * An item whose worker died is taken again when its lease ends, its `attempt` one higher: delivery
 * to handlers is at least once, and `maxAttempts` fails an item that keeps killing its workers.
 *
 * Stores: {@link layerStoreMemory} (this process only) and {@link layerStoreRedis} (Lua scripts on
 * the shared `Redis` client, keys `liaison:{dq:<name>}:*`, each expiring once the queue falls idle
 * for the retention). Times come from Effect's `Clock`, so `TestClock` drives leases and delays;
 * several instances sharing Redis need clocks that agree to well within a lease (NTP does).
 *
 * @example
 * ```ts
 * import { DurableQueue } from "@liaison/core"
 * import { Effect, Schema } from "effect"
 *
 * const Email = Schema.Struct({ to: Schema.String, subject: Schema.String })
 *
 * const program = Effect.gen(function*() {
 *   const emails = yield* DurableQueue.make("emails", Email)
 *   yield* emails.enqueue({ to: "ann@example.com", subject: "Welcome" })
 *   yield* emails.worker(
 *     DurableQueue.retrying((item) => Effect.log(`sending to ${item.value.to}`), {
 *       delays: ["1 second", "1 minute", "10 minutes"]
 *     }),
 *     { concurrency: 4 }
 *   )
 * }).pipe(Effect.scoped, Effect.provide(DurableQueue.layerStoreMemory))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as memoryStore from "./internal/durableQueue/memoryStore.js"
import * as internal from "./internal/durableQueue/queue.js"
import * as redisStore from "./internal/durableQueue/redisStore.js"
import * as internalWorker from "./internal/durableQueue/worker.js"
import type * as LiaisonError from "./LiaisonError.js"
import { Redis } from "./Redis.js"

// ---------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * An item was settled or extended with a lease that is no longer its: the lease ran out and
 * another worker took the item, or it was settled already. (The store failing is a
 * `LiaisonError.StorageError` with `store: "durable-queue"`.)
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>("@liaison/core/DurableQueue/LeaseLost")("LeaseLost", {
  queue: Schema.String,
  id: Schema.String
}) {
  override get message(): string {
    return `durable queue ${this.queue}: the lease on item ${this.id} is no longer held`
  }
}

// ---------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------

/**
 * `queued` (waiting, perhaps until a later time), `processing` (leased by a worker), `done`,
 * `failed` (given up; {@link Queue.retry} queues it again).
 *
 * @since 0.1.0
 * @category models
 */
export const State = Schema.Literal("queued", "processing", "done", "failed")

/**
 * @since 0.1.0
 * @category models
 */
export type State = typeof State.Type

/**
 * Small facts about an attempt, e.g. `{ status: 503, durationMs: 120 }`.
 *
 * @since 0.1.0
 * @category models
 */
export const Detail = Schema.Record({
  key: Schema.String,
  value: Schema.Union(Schema.String, Schema.Number, Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Detail = typeof Detail.Type

/**
 * One recorded attempt. `lost`: the worker's lease ran out before it settled the item (it died,
 * or hung); `requeued` (attempt 0) marks a failed item queued again by hand.
 *
 * @since 0.1.0
 * @category models
 */
export const Attempt = Schema.Struct({
  attempt: Schema.Int,
  /** Milliseconds since the epoch; unknown for a `lost` attempt. */
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.Number,
  outcome: Schema.Literal("done", "retry", "failed", "lost", "requeued"),
  error: Schema.optional(Schema.String),
  detail: Schema.optional(Detail)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Attempt = typeof Attempt.Type

/**
 * A leased item, handed to a worker.
 *
 * @since 0.1.0
 * @category models
 */
export interface Item<A> {
  readonly id: string
  readonly value: A
  /** 1 for the first attempt; each take adds one, a lease that ran out included. */
  readonly attempt: number
  readonly enqueuedAt: number
  readonly startedAt: number
  /** When the lease ends unless extended (milliseconds since the epoch). */
  readonly leaseUntil: number
  readonly lastError: string | undefined
  /** The attempts before this one. */
  readonly history: ReadonlyArray<Attempt>
  /** The lease's token: settling with it fails with {@link LeaseLost} once the lease moved on. */
  readonly token: string
}

/**
 * What {@link Queue.status} tells about an item.
 *
 * @since 0.1.0
 * @category models
 */
export interface Status<A> {
  readonly id: string
  readonly state: State
  /** Attempts started (since the last {@link Queue.retry}). */
  readonly attempts: number
  readonly value: A
  readonly enqueuedAt: number
  readonly updatedAt: number
  /** Queued: when it is due; processing: when its lease ends; settled: undefined. */
  readonly availableAt: number | undefined
  readonly lastError: string | undefined
  readonly history: ReadonlyArray<Attempt>
}

/**
 * How a handler settles an item: `Done`, `RetryLater` (queued again after `delay`) or `Failed`.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Done"; readonly detail?: Detail | undefined }
  | {
    readonly _tag: "RetryLater"
    readonly delay: Duration.Duration
    readonly error?: string | undefined
    readonly detail?: Detail | undefined
  }
  | { readonly _tag: "Failed"; readonly error: string; readonly detail?: Detail | undefined }

/**
 * @since 0.1.0
 * @category constructors
 */
export const done = (options: { readonly detail?: Detail | undefined } = {}): Outcome => ({
  _tag: "Done",
  detail: options.detail
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const retryAfter = (
  delay: Duration.DurationInput,
  options: { readonly error?: string | undefined; readonly detail?: Detail | undefined } = {}
): Outcome => ({ _tag: "RetryLater", delay: Duration.decode(delay), error: options.error, detail: options.detail })

/**
 * @since 0.1.0
 * @category constructors
 */
export const failed = (options: { readonly error: string; readonly detail?: Detail | undefined }): Outcome => ({
  _tag: "Failed",
  error: options.error,
  detail: options.detail
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Enqueued {
  readonly id: string
  /** An item with this id existed already (queued, running or settled within the retention): nothing was added. */
  readonly duplicate: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WorkerOptions {
  /** Fibers taking items at once. Default 1. */
  readonly concurrency?: number | undefined
}

/**
 * A typed queue; see the module documentation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Queue<A> {
  readonly name: string
  /**
   * Adds an item, due now or after `delay`. With an `id`, an item of that id already stored
   * (in any state, until its record expires) makes this a duplicate: nothing is added.
   */
  readonly enqueue: (
    value: A,
    options?: { readonly id?: string | undefined; readonly delay?: Duration.DurationInput | undefined }
  ) => Effect.Effect<Enqueued, LiaisonError.StorageError | ParseResult.ParseError>
  /** Leases the first due item for `lease` (default: the queue's), or `None` when none is due. */
  readonly take: (
    options?: { readonly lease?: Duration.DurationInput | undefined }
  ) => Effect.Effect<Option.Option<Item<A>>, LiaisonError.StorageError>
  readonly ack: (
    item: Item<A>,
    options?: { readonly detail?: Detail | undefined }
  ) => Effect.Effect<void, LiaisonError.StorageError | LeaseLost>
  readonly retryLater: (
    item: Item<A>,
    delay: Duration.DurationInput,
    options?: { readonly error?: string | undefined; readonly detail?: Detail | undefined }
  ) => Effect.Effect<void, LiaisonError.StorageError | LeaseLost>
  readonly fail: (
    item: Item<A>,
    options: { readonly error: string; readonly detail?: Detail | undefined }
  ) => Effect.Effect<void, LiaisonError.StorageError | LeaseLost>
  /** Back to queued, due now, the attempt not counted (a worker shutting down). */
  readonly release: (item: Item<A>) => Effect.Effect<void, LiaisonError.StorageError | LeaseLost>
  /** Moves the end of the lease to `lease` (default: the queue's) from now. */
  readonly extend: (
    item: Item<A>,
    lease?: Duration.DurationInput
  ) => Effect.Effect<Item<A>, LiaisonError.StorageError | LeaseLost>
  readonly status: (
    id: string
  ) => Effect.Effect<Option.Option<Status<A>>, LiaisonError.StorageError | ParseResult.ParseError>
  /** Queues a failed item again, due now, its attempts reset: false when it is not failed. */
  readonly retry: (id: string) => Effect.Effect<boolean, LiaisonError.StorageError>
  /**
   * Runs `handler` on `concurrency` fibers until the scope closes. Items are settled by the
   * {@link Outcome} the handler returns ({@link retrying} makes one from a handler that fails); a
   * handler that dies is retried with a backoff (1 s doubling, at most 10 min); one interrupted by
   * the scope closing is released. Leases are extended every third of a lease while their handler runs.
   */
  readonly worker: <R>(
    handler: (item: Item<A>) => Effect.Effect<Outcome, never, R>,
    options?: WorkerOptions
  ) => Effect.Effect<void, never, Scope.Scope | R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface QueueOptions {
  /** How long a taken item stays leased unless extended (workers extend it every third of it). Default 30 s. */
  readonly lease?: Duration.DurationInput | undefined
  /** How long a record is kept after its last change (and past its due time). Default 7 days. */
  readonly retention?: Duration.DurationInput | undefined
  /** An item taken more often than this is failed without running its handler. Default 10. */
  readonly maxAttempts?: number | undefined
  /** How often idle workers look for due items; enqueues in this process wake them at once. Default 1 s. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** How many attempts the history keeps (the latest). Default 50. */
  readonly maxHistory?: number | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// the store
// ---------------------------------------------------------------------------------------------------------------

/**
 * One stored item, as the store keeps it: the value and the log are JSON strings the store
 * never looks into.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredRecord {
  readonly id: string
  readonly state: State
  readonly attempts: number
  /** The token of the lease that holds it ("" when none does). */
  readonly token: string
  readonly enqueuedAt: number
  readonly updatedAt: number
  /** When a queued item is due, or when a leased one's lease ends; undefined once settled. */
  readonly due: number | undefined
  readonly value: string
  readonly log: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EnqueueInput {
  readonly id: string
  readonly value: string
  readonly now: number
  readonly availableAt: number
  readonly expireAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TakeInput {
  readonly now: number
  readonly leaseUntil: number
  readonly token: string
  readonly expireAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SettleInput {
  readonly id: string
  readonly token: string
  readonly state: "queued" | "done" | "failed"
  /** For `queued`: when it is due again. */
  readonly due: number
  readonly now: number
  /** The new log; `undefined` keeps the old one. */
  readonly log: string | undefined
  /** `release`: the attempt did not happen, so it is not counted. */
  readonly uncount: boolean
  readonly expireAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ExtendInput {
  readonly id: string
  readonly token: string
  readonly now: number
  readonly leaseUntil: number
  readonly expireAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RequeueInput {
  readonly id: string
  readonly now: number
  readonly log: string
  readonly expireAt: number
}

/**
 * The storage under every queue: strings in, strings out; every operation atomic. Times are
 * milliseconds from the caller's `Clock`; a record expires at its `expireAt`.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreService {
  /** Adds the item unless one with its id exists (and has not expired): true when added. */
  readonly enqueue: (queue: string, input: EnqueueInput) => Effect.Effect<boolean, LiaisonError.StorageError>
  /** Leases the first due item (queued and due, or leased with its lease over), or says when the next is due. */
  readonly take: (
    queue: string,
    input: TakeInput
  ) => Effect.Effect<Either.Either<StoredRecord, Option.Option<number>>, LiaisonError.StorageError>
  /** Settles a leased item if `token` still holds its lease: true when it did. */
  readonly settle: (queue: string, input: SettleInput) => Effect.Effect<boolean, LiaisonError.StorageError>
  /** Moves a lease's end if `token` still holds it. */
  readonly extend: (queue: string, input: ExtendInput) => Effect.Effect<boolean, LiaisonError.StorageError>
  readonly get: (
    queue: string,
    id: string,
    now: number
  ) => Effect.Effect<Option.Option<StoredRecord>, LiaisonError.StorageError>
  /** A failed item back to queued, due now, its attempts reset: true when it was failed. */
  readonly requeue: (queue: string, input: RequeueInput) => Effect.Effect<boolean, LiaisonError.StorageError>
  /** Wakes one idle worker of a queue in this process (kept for the next waiter when none waits). */
  readonly wake: (queue: string) => Effect.Effect<void>
  /** Resolves at the next {@link StoreService.wake} of a queue. */
  readonly awaitWake: (queue: string) => Effect.Effect<void>
  /**
   * How many items are queued or leased, and the earliest due time among them (a leased item's is
   * its lease's end), for the `liaison_queue_depth` and `liaison_queue_oldest_age_seconds` gauges.
   * Optional: a store without it has no gauges.
   */
  readonly depth?: ((queue: string, now: number) => Effect.Effect<Depth, LiaisonError.StorageError>) | undefined
}

/**
 * What {@link StoreService.depth} reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface Depth {
  readonly items: number
  /** The earliest due time (epoch ms) among the items, if any. */
  readonly oldestDue: number | undefined
}

/**
 * The store every queue of a program lives on: {@link layerStoreMemory} or {@link layerStoreRedis}.
 *
 * @since 0.1.0
 * @category models
 */
export class Store extends Context.Tag("@liaison/core/DurableQueue/Store")<Store, StoreService>() {}

// ---------------------------------------------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------------------------------------------

/**
 * Queues in this process' memory: lost with the process.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreMemory: Layer.Layer<Store> = Layer.sync(Store, () => Store.of(memoryStore.make()))

/**
 * @since 0.1.0
 * @category models
 */
export interface StoreRedisOptions {
  /** The first part of every key: `<prefix>:{dq:<name>}:<part>`. Default `liaison`. */
  readonly prefix?: string | undefined
}

/**
 * Queues on the shared Redis client. Fails closed: with Redis down, `enqueue` fails with
 * `LiaisonError.StorageError` (and workers keep polling until it is back).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreRedis = (options: StoreRedisOptions = {}): Layer.Layer<Store, never, Redis> =>
  Layer.effect(
    Store,
    Effect.map(Redis, (redis) => Store.of(redisStore.make(redis.client, options.prefix ?? defaults.redisPrefix)))
  )

// ---------------------------------------------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------------------------------------------

/**
 * The defaults of {@link QueueOptions}, of {@link retrying}'s `jitter` and of the Redis key prefix.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  lease: Duration.seconds(30),
  retention: Duration.days(7),
  maxAttempts: 10,
  pollInterval: Duration.seconds(1),
  maxHistory: 50,
  jitter: { min: 0.8, max: 1.2 },
  redisPrefix: "liaison"
} as const

/**
 * A typed queue named `name` (1 to 200 of `A-Z a-z 0-9 : . _ -`), its values encoded with `schema`,
 * on the {@link Store} in context. Queues of the same name on the same store are the same queue.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I>(
  name: string,
  schema: Schema.Schema<A, I>,
  options: QueueOptions = {}
): Effect.Effect<Queue<A>, LiaisonError.InvalidOptions, Store> =>
  Effect.flatMap(Store, (store) =>
    Effect.map(internal.context(store, name, schema, options), (q): Queue<A> => ({
      name,
      enqueue: (value, options) => internal.enqueue(q, value, options),
      take: (options = {}) => internal.take(q, options.lease),
      ack: (item, options = {}) => internal.ack(q, item, options),
      retryLater: (item, delay, options = {}) => internal.retryLater(q, item, delay, options),
      fail: (item, options) => internal.fail(q, item, options),
      release: (item) => internal.release(q, item),
      extend: (item, lease) => internal.extend(q, item, lease),
      status: (id) => internal.status(q, id),
      retry: (id) => internal.retry(q, id),
      worker: (handler, options) => internalWorker.worker(q, handler, options)
    })))

// ---------------------------------------------------------------------------------------------------------------
// retrying
// ---------------------------------------------------------------------------------------------------------------

/**
 * What {@link retrying} makes of a failure (its `classify`):
 *
 * - `"retry"`: queued again after the next delay of the table; failed once the table is used up.
 * - `"fail"`: failed at once (the failure is permanent: retrying cannot help).
 * - `"unknown"`: the attempt may have taken effect (an answer lost after the request was sent).
 *   With `onUnknown: "retry"` (the default) it is retried like `"retry"`, its error noting that the
 *   outcome is unknown (the receiver must be idempotent); with `onUnknown: "fail"` it is failed,
 *   so that it never happens twice.
 * - `{ retryAfterMillis }`: retried like `"retry"`, but no sooner than this (a `Retry-After` floor;
 *   cap it yourself). Past the end of the table it fails all the same.
 *
 * @since 0.1.0
 * @category models
 */
export type Verdict = "retry" | "fail" | "unknown" | { readonly retryAfterMillis: number }

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryingOptions<E> {
  /**
   * The delay before each retry: a failure of attempt `n` is retried after `delays[n - 1]`, and
   * fails the item once the delays are used up (`delays.length + 1` attempts in all).
   */
  readonly delays: ReadonlyArray<Duration.DurationInput>
  /**
   * Each delay is multiplied by a random factor in this range. Default 0.8 to 1.2
   * (`defaults.jitter`); `{ min: 1, max: 1 }` for none.
   */
  readonly jitter?: { readonly min: number; readonly max: number } | undefined
  /** Whether a failure is retried; see {@link Verdict}. Default: every failure is `"retry"`. */
  readonly classify?: ((error: E) => Verdict) | undefined
  /** What an `"unknown"` verdict does. Default `"retry"`. */
  readonly onUnknown?: "retry" | "fail" | undefined
  /** The error recorded for the attempt. Default: the error's `message`, or the error itself. */
  readonly describe?: ((error: E) => string) | undefined
  /** Facts recorded with a failed attempt, e.g. `{ status: 503, durationMs: 120 }`. */
  readonly detail?: ((error: E) => Detail | undefined) | undefined
}

/**
 * The queue's durable retry: turns a handler that fails into one that returns an {@link Outcome}.
 * Success is `Done` (or the {@link Outcome} the handler returns, to settle an item its own way, e.g.
 * `done({ detail })` or `failed(...)`); a failure is settled by its {@link Verdict} (`classify`) and
 * the table of `delays`, each delay times a random factor in `jitter`.
 *
 * @example
 * ```ts
 * import { DurableQueue, HttpError } from "@liaison/core"
 * import type { Effect } from "effect"
 *
 * declare const send: (item: DurableQueue.Item<string>) => Effect.Effect<void, HttpError.HttpError>
 *
 * const handler = DurableQueue.retrying(send, {
 *   delays: ["5 seconds", "1 minute", "10 minutes"],
 *   classify: (error) => {
 *     const transience = HttpError.transience(error)
 *     return transience === "transient" ? "retry" : transience === "permanent" ? "fail" : "unknown"
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const retrying: {
  <E>(
    options: RetryingOptions<E>
  ): <A, R>(
    handler: (item: Item<A>) => Effect.Effect<void | Outcome, E, R>
  ) => (item: Item<A>) => Effect.Effect<Outcome, never, R>
  <A, E, R>(
    handler: (item: Item<A>) => Effect.Effect<void | Outcome, E, R>,
    options: RetryingOptions<NoInfer<E>>
  ): (item: Item<A>) => Effect.Effect<Outcome, never, R>
} = dual(2, <A, E, R>(
  handler: (item: Item<A>) => Effect.Effect<void | Outcome, E, R>,
  options: RetryingOptions<E>
) => internalWorker.retrying(handler, options))
