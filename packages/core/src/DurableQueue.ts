/**
 * A durable work queue: items survive a crash or a restart of the process (with the Redis layer),
 * each is handled by one worker at a time under a lease (a visibility timeout), and every attempt
 * is recorded.
 *
 * - {@link make} a typed queue on the {@link DurableQueue} store: values are encoded with a
 *   Schema to JSON.
 * - `enqueue` (optionally with an id, which makes a second enqueue of the same id a duplicate,
 *   and a delay); `take` leases the first due item; `ack`, `retryLater`, `fail` and `release`
 *   settle it; `status` looks an item up; `retry` re-queues a failed item.
 * - `worker` runs a handler on `concurrency` fibers until its scope closes: the lease is extended
 *   while the handler runs, and released if the worker is interrupted.
 *
 * An item whose worker died is taken again when its lease ends, its `attempt` one higher: delivery
 * to handlers is at least once, and `maxAttempts` fails an item that keeps killing its workers.
 *
 * Stores: {@link layerMemory} (this process only) and {@link layerRedis} (Lua scripts on the shared
 * `Redis` client, keys `liaison:{dq:<name>}:*`, each expiring once the queue falls idle for the
 * retention). Times come from Effect's `Clock`, so `TestClock` drives leases and delays; several
 * instances sharing Redis need clocks that agree to well within a lease (NTP does).
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
 * }).pipe(Effect.scoped, Effect.provide(DurableQueue.layerMemory))
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import * as internal from "./internal/durableQueue.js"
import { makeRedisStore } from "./internal/durableQueueRedis.js"
import * as Invalid from "./internal/invalidOptions.js"
import { Redis } from "./Redis.js"

// ---------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * The queue's storage failed (Redis down or erroring). Nothing was changed, or what changed is
 * recovered by the lease rules (an item leased but never handed out is taken again later).
 *
 * @since 0.1.0
 * @category errors
 */
export const DurableQueueError = internal.DurableQueueError

/**
 * @since 0.1.0
 * @category errors
 */
export type DurableQueueError = internal.DurableQueueError

/**
 * An item was settled or extended with a lease that is no longer its: the lease ran out and
 * another worker took the item, or it was settled already.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Data.TaggedError("LeaseLost")<{
  readonly queue: string
  readonly id: string
}> {
  override get message(): string {
    return `durable queue ${this.queue}: the lease on item ${this.id} is no longer held`
  }
}

/**
 * Options out of range, found when a queue is made.
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

const Log = Schema.parseJson(Schema.Struct({
  lastError: Schema.optional(Schema.String),
  history: Schema.Array(Attempt)
}))
type Log = typeof Log.Type
const decodeLog = Schema.decodeEither(Log)
const encodeLog = Schema.encodeSync(Log)
const readLog = (raw: string): Log =>
  raw === "" ? { history: [] } : Either.getOrElse(decodeLog(raw), (): Log => ({ history: [] }))

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
 * @category outcomes
 */
export const done = (options: { readonly detail?: Detail | undefined } = {}): Outcome => ({
  _tag: "Done",
  detail: options.detail
})

/**
 * @since 0.1.0
 * @category outcomes
 */
export const retryAfter = (
  delay: Duration.DurationInput,
  options: { readonly error?: string | undefined; readonly detail?: Detail | undefined } = {}
): Outcome => ({ _tag: "RetryLater", delay: Duration.decode(delay), error: options.error, detail: options.detail })

/**
 * @since 0.1.0
 * @category outcomes
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
  ) => Effect.Effect<Enqueued, DurableQueueError | ParseResult.ParseError>
  /** Leases the first due item for `lease` (default: the queue's), or `None` when none is due. */
  readonly take: (
    options?: { readonly lease?: Duration.DurationInput | undefined }
  ) => Effect.Effect<Option.Option<Item<A>>, DurableQueueError>
  readonly ack: (
    item: Item<A>,
    options?: { readonly detail?: Detail | undefined }
  ) => Effect.Effect<void, DurableQueueError | LeaseLost>
  readonly retryLater: (
    item: Item<A>,
    delay: Duration.DurationInput,
    options?: { readonly error?: string | undefined; readonly detail?: Detail | undefined }
  ) => Effect.Effect<void, DurableQueueError | LeaseLost>
  readonly fail: (
    item: Item<A>,
    options: { readonly error: string; readonly detail?: Detail | undefined }
  ) => Effect.Effect<void, DurableQueueError | LeaseLost>
  /** Back to queued, due now, the attempt not counted (a worker shutting down). */
  readonly release: (item: Item<A>) => Effect.Effect<void, DurableQueueError | LeaseLost>
  /** Moves the end of the lease to `lease` (default: the queue's) from now. */
  readonly extend: (
    item: Item<A>,
    lease?: Duration.DurationInput
  ) => Effect.Effect<Item<A>, DurableQueueError | LeaseLost>
  readonly status: (id: string) => Effect.Effect<Option.Option<Status<A>>, DurableQueueError | ParseResult.ParseError>
  /** Queues a failed item again, due now, its attempts reset: false when it is not failed. */
  readonly retry: (id: string) => Effect.Effect<boolean, DurableQueueError>
  /**
   * Runs `handler` on `concurrency` fibers until the scope closes. Items are settled by the
   * {@link Outcome} the handler returns; a handler that dies is retried with a backoff (1 s
   * doubling, at most 10 min); one interrupted by the scope closing is released. Leases are
   * extended every third of a lease while their handler runs.
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

/**
 * The store under every queue.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** @internal */
  readonly store: internal.Store
}

/**
 * @since 0.1.0
 * @category tags
 */
export class DurableQueue extends Context.Tag("@liaison/core/DurableQueue")<DurableQueue, Service>() {}

// ---------------------------------------------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------------------------------------------

/**
 * Queues in this process' memory: lost with the process.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<DurableQueue> = Layer.sync(
  DurableQueue,
  () => ({ store: internal.makeMemoryStore() })
)

/**
 * Queues on the shared Redis client. Fails closed: with Redis down, `enqueue` fails with
 * {@link DurableQueueError} (and workers keep polling until it is back).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis: Layer.Layer<DurableQueue, never, Redis> = Layer.effect(
  DurableQueue,
  Effect.map(Redis, (redis) => ({ store: makeRedisStore(redis.client) }))
)

// ---------------------------------------------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------------------------------------------

const namePattern = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$/

const resolve = (name: string, options: QueueOptions) => {
  const millis = (input: Duration.DurationInput | undefined, fallback: Duration.DurationInput) =>
    Duration.toMillis(Duration.decode(input ?? fallback))
  const resolved = {
    leaseMillis: millis(options.lease, "30 seconds"),
    retentionMillis: millis(options.retention, "7 days"),
    maxAttempts: options.maxAttempts ?? 10,
    pollMillis: millis(options.pollInterval, "1 second"),
    maxHistory: options.maxHistory ?? 50
  }
  const error = Invalid.check([
    [namePattern.test(name), "name", "1 to 200 of A-Z, a-z, 0-9, ':', '.', '_', '-', starting with a letter or digit"],
    [resolved.leaseMillis >= 1 && Number.isFinite(resolved.leaseMillis), "lease", "must be finite and at least 1 ms"],
    [
      Number.isFinite(resolved.retentionMillis) && resolved.retentionMillis > resolved.leaseMillis,
      "retention",
      "must be finite and longer than the lease"
    ],
    [Number.isInteger(resolved.maxAttempts) && resolved.maxAttempts >= 1, "maxAttempts", "must be an integer >= 1"],
    [resolved.pollMillis >= 1 && Number.isFinite(resolved.pollMillis), "pollInterval", "must be finite and >= 1 ms"],
    [Number.isInteger(resolved.maxHistory) && resolved.maxHistory >= 1, "maxHistory", "must be an integer >= 1"]
  ])
  return error === undefined ? Effect.succeed(resolved) : Effect.fail(error)
}

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const squashed = Cause.squash(cause)
  return squashed instanceof Error ? `${squashed.name}: ${squashed.message}` : String(squashed)
}

/** Backoff after a handler died: 1 s doubling per attempt, at most 10 minutes. */
const defectDelayMillis = (attempt: number) => Math.min(600_000, 1000 * 2 ** Math.min(20, attempt - 1))

/**
 * A typed queue named `name` (1 to 200 of `A-Z a-z 0-9 : . _ -`), its values encoded with `schema`.
 * Queues of the same name on the same store are the same queue.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I>(
  name: string,
  schema: Schema.Schema<A, I>,
  options: QueueOptions = {}
): Effect.Effect<Queue<A>, InvalidOptions, DurableQueue> =>
  Effect.gen(function*() {
    const { store } = yield* DurableQueue
    const config = yield* resolve(name, options)
    const json = Schema.parseJson(schema)
    const encode = Schema.encode(json)
    const decode = Schema.decode(json)

    const leaseOf = (lease: Duration.DurationInput | undefined) =>
      lease === undefined ? config.leaseMillis : Duration.toMillis(Duration.decode(lease))

    /** The history with the attempts whose lease ran out filled in as `lost`. */
    const withLost = (log: Log, attempt: number, now: number): ReadonlyArray<Attempt> => {
      const last = log.history.length === 0 ? 0 : log.history[log.history.length - 1]!.attempt
      const lost: Array<Attempt> = []
      for (let n = last + 1; n < attempt; n++) {
        lost.push({ attempt: n, finishedAt: now, outcome: "lost", error: "the lease ran out before the attempt ended" })
      }
      return lost.length === 0 ? log.history : [...log.history, ...lost]
    }

    const takeOrNext = (
      lease: Duration.DurationInput | undefined
    ): Effect.Effect<Either.Either<Item<A>, Option.Option<number>>, DurableQueueError> =>
      Effect.gen(function*() {
        for (;;) {
          const now = yield* Clock.currentTimeMillis
          const leaseUntil = now + leaseOf(lease)
          const taken = yield* store.take(name, {
            now,
            leaseUntil,
            token: randomUUID(),
            expireAt: leaseUntil + config.retentionMillis
          })
          if (Either.isLeft(taken)) return Either.left(taken.left)
          const raw = taken.right
          const log = readLog(raw.log)
          const history = withLost(log, raw.attempts, now)
          const value = yield* Effect.either(decode(raw.value))
          if (Either.isRight(value)) {
            return Either.right<Item<A>>({
              id: raw.id,
              value: value.right,
              attempt: raw.attempts,
              enqueuedAt: raw.enqueuedAt,
              startedAt: now,
              leaseUntil,
              lastError: log.lastError,
              history,
              token: raw.token
            })
          }
          // A value that no longer decodes will not decode on the next attempt either.
          const error = `the stored value does not decode: ${value.left.message}`
          yield* store.settle(name, {
            id: raw.id,
            token: raw.token,
            state: "failed",
            due: now,
            now,
            log: encodeLog({
              lastError: error,
              history: [...history, {
                attempt: raw.attempts,
                startedAt: now,
                finishedAt: now,
                outcome: "failed" as const,
                error
              }]
                .slice(-config.maxHistory)
            }),
            uncount: false,
            expireAt: now + config.retentionMillis
          })
        }
      })

    const settle = (
      item: Item<A>,
      state: "queued" | "done" | "failed",
      delayMillis: number,
      entry: Omit<Attempt, "attempt" | "startedAt" | "finishedAt"> | undefined
    ): Effect.Effect<void, DurableQueueError | LeaseLost> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const due = now + Math.max(0, delayMillis)
        const lastError = entry?.error ?? item.lastError
        const log = entry === undefined ? undefined : encodeLog({
          ...(lastError === undefined ? {} : { lastError }),
          history: [...item.history, { attempt: item.attempt, startedAt: item.startedAt, finishedAt: now, ...entry }]
            .slice(-config.maxHistory)
        })
        const settled = yield* store.settle(name, {
          id: item.id,
          token: item.token,
          state,
          due,
          now,
          log,
          uncount: entry === undefined,
          expireAt: (state === "queued" ? due : now) + config.retentionMillis
        })
        if (!settled) return yield* new LeaseLost({ queue: name, id: item.id })
        if (state === "queued" && due <= now) yield* store.wake(name)
      })

    const entryOf = (
      outcome: Attempt["outcome"],
      options: { readonly error?: string | undefined; readonly detail?: Detail | undefined }
    ) => ({
      outcome,
      ...(options.error === undefined ? {} : { error: options.error }),
      ...(options.detail === undefined ? {} : { detail: options.detail })
    })

    const ack: Queue<A>["ack"] = (item, options = {}) => settle(item, "done", 0, entryOf("done", options))
    const retryLater: Queue<A>["retryLater"] = (item, delay, options = {}) =>
      settle(item, "queued", Duration.toMillis(Duration.decode(delay)), entryOf("retry", options))
    const fail: Queue<A>["fail"] = (item, options) => settle(item, "failed", 0, entryOf("failed", options))
    const release: Queue<A>["release"] = (item) => settle(item, "queued", 0, undefined)

    const extend: Queue<A>["extend"] = (item, lease) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const leaseUntil = now + leaseOf(lease)
        const extended = yield* store.extend(name, {
          id: item.id,
          token: item.token,
          now,
          leaseUntil,
          expireAt: leaseUntil + config.retentionMillis
        })
        if (!extended) return yield* new LeaseLost({ queue: name, id: item.id })
        return { ...item, leaseUntil }
      })

    const apply = (item: Item<A>, outcome: Outcome) => {
      switch (outcome._tag) {
        case "Done":
          return ack(item, { detail: outcome.detail })
        case "RetryLater":
          return retryLater(item, outcome.delay, { error: outcome.error, detail: outcome.detail })
        case "Failed":
          return fail(item, { error: outcome.error, detail: outcome.detail })
      }
    }

    const logSettleFailure = (item: Item<A>) => (error: DurableQueueError | LeaseLost) =>
      error._tag === "LeaseLost"
        ? Effect.logDebug(error.message)
        : Effect.logWarning(
          `durable queue ${name}: could not settle item ${item.id}; its lease will run out: ${error.message}`
        )

    /** What a worker fiber is running, for its heartbeat. */
    interface Running {
      item: Item<A> | undefined
    }

    /** Runs the handler (its lease kept by the worker's heartbeat) and settles the item by its outcome. */
    const handle = <R>(
      item: Item<A>,
      handler: (item: Item<A>) => Effect.Effect<Outcome, never, R>,
      restore: <X, E, R2>(effect: Effect.Effect<X, E, R2>) => Effect.Effect<X, E, R2>,
      running: Running
    ): Effect.Effect<void, never, R> =>
      Effect.gen(function*() {
        if (item.attempt > config.maxAttempts) {
          yield* fail(item, {
            error: `taken ${item.attempt} times, more than maxAttempts (${config.maxAttempts}): its workers keep dying`
          }).pipe(Effect.catchAll(logSettleFailure(item)))
          return
        }
        running.item = item
        const exit = yield* Effect.exit(restore(handler(item)))
        running.item = undefined
        if (exit._tag === "Success") {
          return yield* apply(item, exit.value).pipe(Effect.catchAll(logSettleFailure(item)))
        }
        if (Cause.isInterruptedOnly(exit.cause)) {
          return yield* release(item).pipe(Effect.catchAll(logSettleFailure(item)))
        }
        const error = `the handler died: ${describeCause(exit.cause)}`
        yield* Effect.logError(`durable queue ${name}: item ${item.id}: ${error}`)
        yield* retryLater(item, defectDelayMillis(item.attempt), { error }).pipe(
          Effect.catchAll(logSettleFailure(item))
        )
      })

    /**
     * Extends the lease of what a worker fiber runs, every third of a lease: one fiber per worker
     * fiber, not one per item. A lease lost anyway (the store unreachable for a whole lease) shows
     * when the handler settles: `LeaseLost`, logged, the other worker's attempt counting.
     */
    const heartbeat = (running: Running) =>
      Effect.forever(Effect.zipRight(
        Effect.sleep(Math.max(1, Math.floor(config.leaseMillis / 3))),
        Effect.suspend(() => {
          const item = running.item
          if (item === undefined) return Effect.void
          return extend(item, config.leaseMillis).pipe(
            Effect.catchAll((error) =>
              error._tag === "LeaseLost"
                ? Effect.void
                : Effect.logWarning(`durable queue ${name}: could not extend a lease: ${error.message}`)
            )
          )
        })
      ))

    const idle = (next: Option.Option<number>) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const wait = Option.match(next, {
          onNone: () => config.pollMillis,
          onSome: (due) => Math.min(config.pollMillis, Math.max(1, due - now))
        })
        return Effect.raceFirst(Effect.sleep(wait), store.awaitWake(name))
      })

    const worker: Queue<A>["worker"] = (handler, workerOptions = {}) => {
      const loop = Effect.suspend(() => {
        const running: Running = { item: undefined }
        return Effect.zipRight(Effect.forkScoped(heartbeat(running)), workLoop(handler, running))
      })
      return Effect.asVoid(Effect.forkScoped(Effect.scoped(Effect.all(
        Array.from({ length: Math.max(1, workerOptions.concurrency ?? 1) }, () => loop),
        { concurrency: "unbounded", discard: true }
      ))))
    }

    const workLoop = <R>(handler: (item: Item<A>) => Effect.Effect<Outcome, never, R>, running: Running) =>
      Effect.forever(
        Effect.uninterruptibleMask((restore) =>
          // Not interruptible: an item taken is then either handled or released, never left leased.
          takeOrNext(undefined).pipe(
            Effect.flatMap(Either.match({
              onLeft: (next) => restore(idle(next)),
              onRight: (item) => handle(item, handler, restore, running)
            })),
            Effect.catchAll((error) =>
              Effect.zipRight(
                Effect.logWarning(`durable queue ${name}: take failed, retrying: ${error.message}`),
                restore(Effect.sleep(config.pollMillis))
              )
            )
          )
        )
      )

    const queue: Queue<A> = {
      name,
      enqueue: (value, enqueueOptions = {}) =>
        Effect.gen(function*() {
          const encoded = yield* encode(value)
          const now = yield* Clock.currentTimeMillis
          const delay = enqueueOptions.delay === undefined
            ? 0
            : Duration.toMillis(Duration.decode(enqueueOptions.delay))
          const availableAt = now + Math.max(0, delay)
          const id = enqueueOptions.id ?? randomUUID()
          const added = yield* store.enqueue(name, {
            id,
            value: encoded,
            now,
            availableAt,
            expireAt: availableAt + config.retentionMillis
          })
          if (added && availableAt <= now) yield* store.wake(name)
          return { id, duplicate: !added }
        }),
      take: (takeOptions = {}) => Effect.map(takeOrNext(takeOptions.lease), Either.getRight),
      ack,
      retryLater,
      fail,
      release,
      extend,
      status: (id) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const found = yield* store.get(name, id, now)
          if (Option.isNone(found)) return Option.none()
          const raw = found.value
          const value = yield* decode(raw.value)
          const log = readLog(raw.log)
          const history = withLost(log, raw.state === "processing" ? raw.attempts : raw.attempts + 1, now)
          return Option.some<Status<A>>({
            id,
            state: raw.state,
            attempts: raw.attempts,
            value,
            enqueuedAt: raw.enqueuedAt,
            updatedAt: raw.updatedAt,
            availableAt: raw.due,
            lastError: log.lastError,
            history
          })
        }),
      retry: (id) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const found = yield* store.get(name, id, now)
          if (Option.isNone(found) || found.value.state !== "failed") return false
          const log = readLog(found.value.log)
          const requeued = yield* store.requeue(name, {
            id,
            now,
            log: encodeLog({
              ...(log.lastError === undefined ? {} : { lastError: log.lastError }),
              history: [...log.history, { attempt: 0, finishedAt: now, outcome: "requeued" as const }]
                .slice(-config.maxHistory)
            }),
            expireAt: now + config.retentionMillis
          })
          if (requeued) yield* store.wake(name)
          return requeued
        }),
      worker
    }
    return queue
  })

/**
 * Turns a handler that fails into one that returns an {@link Outcome}: success is `Done`; a failure
 * on attempt `n` is retried after `delays[n - 1]` (times a random factor in `jitter`, default
 * 0.8 to 1.2), and fails the item once the delays are used up: `delays.length + 1` attempts in all.
 *
 * @since 0.1.0
 * @category combinators
 */
export const retrying = <A, E, R>(
  handler: (item: Item<A>) => Effect.Effect<void, E, R>,
  options: {
    readonly delays: ReadonlyArray<Duration.DurationInput>
    readonly describe?: ((error: E) => string) | undefined
    readonly jitter?: { readonly min: number; readonly max: number } | undefined
  }
): (item: Item<A>) => Effect.Effect<Outcome, never, R> =>
(item) =>
  handler(item).pipe(
    Effect.as(done()),
    Effect.catchAll((error) => {
      const message = options.describe?.(error) ?? describeError(error)
      const delay = options.delays[item.attempt - 1]
      if (delay === undefined) return Effect.succeed(failed({ error: message }))
      const { max, min } = options.jitter ?? { min: 0.8, max: 1.2 }
      return Effect.map(
        Random.nextRange(min, max),
        (factor) => retryAfter(Duration.toMillis(Duration.decode(delay)) * factor, { error: message })
      )
    })
  )

const describeError = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error) ?? String(error)
