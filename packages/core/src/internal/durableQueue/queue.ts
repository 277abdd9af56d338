import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { randomUUID } from "node:crypto"
// Values of the public module are used at call time only (the two modules import each other).
import * as DurableQueue from "../../DurableQueue.js"
import type {
  Attempt,
  Detail,
  Enqueued,
  Item,
  Outcome,
  QueueOptions,
  Status,
  StoredRecord,
  StoreService
} from "../../DurableQueue.js"
import type { InvalidOptions, StorageError } from "../../LiaisonError.js"
import { millis } from "../duration.js"
import * as Invalid from "../invalidOptions.js"
import { withSpan } from "../tracing.js"
import type { QueueTelemetry } from "./telemetry.js"
import { makeTelemetry, readGauges } from "./telemetry.js"

/**
 * A queue's options, resolved and checked.
 *
 * @internal
 */
export interface Config {
  readonly leaseMillis: number
  readonly retentionMillis: number
  readonly maxAttempts: number
  readonly pollMillis: number
  readonly maxHistory: number
}

/**
 * Everything the queue's operations need: every function of the engine takes it first.
 *
 * @internal
 */
export interface QueueContext<A> {
  readonly store: StoreService
  readonly name: string
  readonly config: Config
  readonly encode: (value: A) => Effect.Effect<string, ParseResult.ParseError>
  readonly decode: (raw: string) => Effect.Effect<A, ParseResult.ParseError>
  readonly telemetry: QueueTelemetry
}

type SettleError = StorageError | DurableQueue.LeaseLost

// ---------------------------------------------------------------------------------------------------------------
// the attempt log: JSON the store keeps without looking into it
// ---------------------------------------------------------------------------------------------------------------

const Log = Schema.parseJson(Schema.Struct({
  lastError: Schema.optional(Schema.String),
  // Suspended: the public module may not be evaluated yet when this one is.
  history: Schema.Array(Schema.suspend(() => DurableQueue.Attempt))
}))
type Log = typeof Log.Type
const decodeLog = Schema.decodeEither(Log)
const encodeLog = Schema.encodeSync(Log)

const readLog = (raw: string): Log =>
  raw === "" ? { history: [] } : Either.getOrElse(decodeLog(raw), (): Log => ({ history: [] }))

const writeLog = (config: Config, lastError: string | undefined, history: ReadonlyArray<Attempt>): string =>
  encodeLog({ ...(lastError === undefined ? {} : { lastError }), history: history.slice(-config.maxHistory) })

/** The history with the attempts whose lease ran out filled in as `lost`. */
const withLost = (log: Log, attempt: number, now: number): ReadonlyArray<Attempt> => {
  const last = log.history.length === 0 ? 0 : log.history[log.history.length - 1]!.attempt
  const lost: Array<Attempt> = []
  for (let n = last + 1; n < attempt; n++) {
    lost.push({ attempt: n, finishedAt: now, outcome: "lost", error: "the lease ran out before the attempt ended" })
  }
  return lost.length === 0 ? log.history : [...log.history, ...lost]
}

// ---------------------------------------------------------------------------------------------------------------
// construction
// ---------------------------------------------------------------------------------------------------------------

const namePattern = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$/

const resolve = (name: string, options: QueueOptions): Effect.Effect<Config, InvalidOptions> => {
  const defaults = DurableQueue.defaults
  const config: Config = {
    leaseMillis: millis(options.lease ?? defaults.lease),
    retentionMillis: millis(options.retention ?? defaults.retention),
    maxAttempts: options.maxAttempts ?? defaults.maxAttempts,
    pollMillis: millis(options.pollInterval ?? defaults.pollInterval),
    maxHistory: options.maxHistory ?? defaults.maxHistory
  }
  const error = Invalid.check([
    [namePattern.test(name), "name", "1 to 200 of A-Z, a-z, 0-9, ':', '.', '_', '-', starting with a letter or digit"],
    [config.leaseMillis >= 1 && Number.isFinite(config.leaseMillis), "lease", "must be finite and at least 1 ms"],
    [
      Number.isFinite(config.retentionMillis) && config.retentionMillis > config.leaseMillis,
      "retention",
      "must be finite and longer than the lease"
    ],
    [Number.isInteger(config.maxAttempts) && config.maxAttempts >= 1, "maxAttempts", "must be an integer >= 1"],
    [config.pollMillis >= 1 && Number.isFinite(config.pollMillis), "pollInterval", "must be finite and >= 1 ms"],
    [Number.isInteger(config.maxHistory) && config.maxHistory >= 1, "maxHistory", "must be an integer >= 1"]
  ])
  return error === undefined ? Effect.succeed(config) : Effect.fail(error)
}

/**
 * The context of a typed queue over `store`, its options checked.
 *
 * @internal
 */
export const context = <A, I>(
  store: StoreService,
  name: string,
  schema: Schema.Schema<A, I>,
  options: QueueOptions
): Effect.Effect<QueueContext<A>, InvalidOptions> =>
  Effect.map(resolve(name, options), (config) => {
    const json = Schema.parseJson(schema)
    return {
      store,
      name,
      config,
      encode: Schema.encode(json),
      decode: Schema.decode(json),
      telemetry: makeTelemetry(name)
    }
  })

// ---------------------------------------------------------------------------------------------------------------
// operations
// ---------------------------------------------------------------------------------------------------------------

const leaseOf = <A>(q: QueueContext<A>, lease: Duration.DurationInput | undefined): number =>
  lease === undefined ? q.config.leaseMillis : millis(lease)

/** @internal */
export const enqueue = <A>(
  q: QueueContext<A>,
  value: A,
  options: { readonly id?: string | undefined; readonly delay?: Duration.DurationInput | undefined } = {}
): Effect.Effect<Enqueued, StorageError | ParseResult.ParseError> =>
  withSpan("liaison.queue.enqueue", "producer", (span) =>
    Effect.gen(function*() {
      span?.attribute("liaison.queue.name", q.name)
      const enqueued = yield* enqueueNow(q, value, options)
      span?.attribute("liaison.queue.outcome", enqueued.duplicate ? "duplicate" : "enqueued")
      return enqueued
    }))

const enqueueNow = <A>(
  q: QueueContext<A>,
  value: A,
  options: { readonly id?: string | undefined; readonly delay?: Duration.DurationInput | undefined }
): Effect.Effect<Enqueued, StorageError | ParseResult.ParseError> =>
  Effect.gen(function*() {
    const encoded = yield* q.encode(value)
    const now = yield* Clock.currentTimeMillis
    const availableAt = now + Math.max(0, options.delay === undefined ? 0 : millis(options.delay))
    const id = options.id ?? randomUUID()
    const added = yield* q.store.enqueue(q.name, {
      id,
      value: encoded,
      now,
      availableAt,
      expireAt: availableAt + q.config.retentionMillis
    })
    if (added && availableAt <= now) yield* q.store.wake(q.name)
    yield* readGauges(q.store, q.name, q.telemetry, now)
    return { id, duplicate: !added }
  })

/**
 * Leases the first due item, or says when the next one is due. An item whose value no longer
 * decodes is failed on the way (it would not decode on the next attempt either).
 *
 * @internal
 */
export const takeOrNext = <A>(
  q: QueueContext<A>,
  lease: Duration.DurationInput | undefined
): Effect.Effect<Either.Either<Item<A>, Option.Option<number>>, StorageError> =>
  Effect.gen(function*() {
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      const leaseUntil = now + leaseOf(q, lease)
      const taken = yield* q.store.take(q.name, {
        now,
        leaseUntil,
        token: randomUUID(),
        expireAt: leaseUntil + q.config.retentionMillis
      })
      yield* readGauges(q.store, q.name, q.telemetry, now)
      if (Either.isLeft(taken)) return Either.left(taken.left)
      const item = yield* toItem(q, taken.right, now, leaseUntil)
      if (Option.isSome(item)) return Either.right(item.value)
    }
  })

/**
 * Leases the first due item, if any.
 *
 * @internal
 */
export const take = <A>(
  q: QueueContext<A>,
  lease: Duration.DurationInput | undefined
): Effect.Effect<Option.Option<Item<A>>, StorageError> => Effect.map(takeOrNext(q, lease), Either.getRight)

const toItem = <A>(
  q: QueueContext<A>,
  raw: StoredRecord,
  now: number,
  leaseUntil: number
): Effect.Effect<Option.Option<Item<A>>, StorageError> => {
  const log = readLog(raw.log)
  const history = withLost(log, raw.attempts, now)
  return Effect.matchEffect(q.decode(raw.value), {
    onFailure: (error) => Effect.as(failUndecodable(q, raw, history, now, error.message), Option.none()),
    onSuccess: (value) =>
      Effect.succeed(Option.some({
        id: raw.id,
        value,
        attempt: raw.attempts,
        enqueuedAt: raw.enqueuedAt,
        startedAt: now,
        leaseUntil,
        lastError: log.lastError,
        history,
        token: raw.token
      }))
  })
}

const failUndecodable = <A>(
  q: QueueContext<A>,
  raw: StoredRecord,
  history: ReadonlyArray<Attempt>,
  now: number,
  reason: string
): Effect.Effect<boolean, StorageError> => {
  const error = `the stored value does not decode: ${reason}`
  const attempt: Attempt = { attempt: raw.attempts, startedAt: now, finishedAt: now, outcome: "failed", error }
  return q.store.settle(q.name, {
    id: raw.id,
    token: raw.token,
    state: "failed",
    due: now,
    now,
    log: writeLog(q.config, error, [...history, attempt]),
    uncount: false,
    expireAt: now + q.config.retentionMillis
  }).pipe(Effect.tap((settled) => q.telemetry.items[settled ? "failed" : "unknown"]()))
}

type Entry = Omit<Attempt, "attempt" | "startedAt" | "finishedAt">

/** Settles a leased item; `entry` is the attempt to record (none: the attempt did not count). */
const settle = <A>(
  q: QueueContext<A>,
  item: Item<A>,
  state: "queued" | "done" | "failed",
  delayMillis: number,
  entry: Entry | undefined
): Effect.Effect<void, SettleError> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const due = now + Math.max(0, delayMillis)
    const log = entry === undefined ? undefined : writeLog(q.config, entry.error ?? item.lastError, [
      ...item.history,
      { attempt: item.attempt, startedAt: item.startedAt, finishedAt: now, ...entry }
    ])
    const settled = yield* q.store.settle(q.name, {
      id: item.id,
      token: item.token,
      state,
      due,
      now,
      log,
      uncount: entry === undefined,
      expireAt: (state === "queued" ? due : now) + q.config.retentionMillis
    }).pipe(Effect.tapError(() => Effect.sync(() => q.telemetry.items.unknown())))
    if (!settled) {
      q.telemetry.items.unknown()
      return yield* new DurableQueue.LeaseLost({ queue: q.name, id: item.id })
    }
    // A release (no entry) is no outcome: the attempt did not count.
    if (entry !== undefined) q.telemetry.items[state === "queued" ? "retried" : state]()
    if (state === "queued" && due <= now) yield* q.store.wake(q.name)
  })

interface EntryOptions {
  readonly error?: string | undefined
  readonly detail?: Detail | undefined
}

const entryOf = (outcome: Attempt["outcome"], options: EntryOptions): Entry => ({
  outcome,
  ...(options.error === undefined ? {} : { error: options.error }),
  ...(options.detail === undefined ? {} : { detail: options.detail })
})

/** @internal */
export const ack = <A>(q: QueueContext<A>, item: Item<A>, options: EntryOptions) =>
  settle(q, item, "done", 0, entryOf("done", options))

/** @internal */
export const retryLater = <A>(
  q: QueueContext<A>,
  item: Item<A>,
  delay: Duration.DurationInput,
  options: EntryOptions
) => settle(q, item, "queued", millis(delay), entryOf("retry", options))

/** @internal */
export const fail = <A>(q: QueueContext<A>, item: Item<A>, options: EntryOptions) =>
  settle(q, item, "failed", 0, entryOf("failed", options))

/** @internal */
export const release = <A>(q: QueueContext<A>, item: Item<A>) => settle(q, item, "queued", 0, undefined)

/**
 * Settles an item by the outcome its handler returned.
 *
 * @internal
 */
export const apply = <A>(q: QueueContext<A>, item: Item<A>, outcome: Outcome): Effect.Effect<void, SettleError> => {
  switch (outcome._tag) {
    case "Done":
      return ack(q, item, { detail: outcome.detail })
    case "RetryLater":
      return retryLater(q, item, outcome.delay, { error: outcome.error, detail: outcome.detail })
    case "Failed":
      return fail(q, item, { error: outcome.error, detail: outcome.detail })
  }
}

/** @internal */
export const extend = <A>(
  q: QueueContext<A>,
  item: Item<A>,
  lease: Duration.DurationInput | undefined
): Effect.Effect<Item<A>, SettleError> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const leaseUntil = now + leaseOf(q, lease)
    const extended = yield* q.store.extend(q.name, {
      id: item.id,
      token: item.token,
      now,
      leaseUntil,
      expireAt: leaseUntil + q.config.retentionMillis
    })
    if (!extended) return yield* new DurableQueue.LeaseLost({ queue: q.name, id: item.id })
    return { ...item, leaseUntil }
  })

/** @internal */
export const status = <A>(
  q: QueueContext<A>,
  id: string
): Effect.Effect<Option.Option<Status<A>>, StorageError | ParseResult.ParseError> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const found = yield* q.store.get(q.name, id, now)
    if (Option.isNone(found)) return Option.none()
    const raw = found.value
    const value = yield* q.decode(raw.value)
    const log = readLog(raw.log)
    return Option.some<Status<A>>({
      id,
      state: raw.state,
      attempts: raw.attempts,
      value,
      enqueuedAt: raw.enqueuedAt,
      updatedAt: raw.updatedAt,
      availableAt: raw.due,
      lastError: log.lastError,
      history: withLost(log, raw.state === "processing" ? raw.attempts : raw.attempts + 1, now)
    })
  })

/** @internal */
export const retry = <A>(q: QueueContext<A>, id: string): Effect.Effect<boolean, StorageError> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const found = yield* q.store.get(q.name, id, now)
    if (Option.isNone(found) || found.value.state !== "failed") return false
    const log = readLog(found.value.log)
    const requeued = yield* q.store.requeue(q.name, {
      id,
      now,
      log: writeLog(q.config, log.lastError, [...log.history, { attempt: 0, finishedAt: now, outcome: "requeued" }]),
      expireAt: now + q.config.retentionMillis
    })
    if (requeued) yield* q.store.wake(q.name)
    return requeued
  })
