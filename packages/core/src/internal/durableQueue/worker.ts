import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
// Values of the public module are used at call time only (the two modules import each other).
import * as DurableQueue from "../../DurableQueue.js"
import type { Item, Outcome, RetryingOptions, WorkerOptions } from "../../DurableQueue.js"
import type { StorageError } from "../../LiaisonError.js"
import { delayAt } from "../duration.js"
import type { OutageLog } from "../outageLog.js"
import { makeOutageLog } from "../outageLog.js"
import { withSpan } from "../tracing.js"
import type { QueueContext } from "./queue.js"
import { apply, extend, fail, release, retryLater, takeOrNext } from "./queue.js"

type Handler<A, R> = (item: Item<A>) => Effect.Effect<Outcome, never, R>

/** What a worker fiber is running, for its heartbeat; the store's outage log, shared by the worker's fibers. */
interface Running<A> {
  item: Item<A> | undefined
  readonly outage: OutageLog
}

type Restore = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.Effect<X, E, R>

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const squashed = Cause.squash(cause)
  return squashed instanceof Error ? `${squashed.name}: ${squashed.message}` : String(squashed)
}

/** Backoff after a handler died: 1 s doubling per attempt, at most 10 minutes. */
const defectDelayMillis = (attempt: number) => Math.min(600_000, 1000 * 2 ** Math.min(20, attempt - 1))

const logSettleFailure = <A>(q: QueueContext<A>, item: Item<A>) => (error: StorageError | DurableQueue.LeaseLost) =>
  error._tag === "LeaseLost"
    ? Effect.logDebug(error.message)
    : Effect.logWarning(
      `durable queue ${q.name}: could not settle item ${item.id}; its lease will run out: ${error.message}`
    )

/** How an attempt ended, for its span: a settle failing (lease lost, store down) leaves it unknown. */
type AttemptOutcome = "done" | "retried" | "failed" | "released" | "unknown"

const outcomeOf: Record<Outcome["_tag"], AttemptOutcome> = { Done: "done", RetryLater: "retried", Failed: "failed" }

/** Settles, logging a failure to: the attempt's outcome is then unknown. */
const settled = <A>(
  q: QueueContext<A>,
  item: Item<A>,
  settle: Effect.Effect<void, StorageError | DurableQueue.LeaseLost>,
  outcome: AttemptOutcome
): Effect.Effect<AttemptOutcome> =>
  Effect.as(settle, outcome).pipe(
    Effect.catchAll((error) => Effect.as(logSettleFailure(q, item)(error), "unknown" as const))
  )

/** Runs the handler (its lease kept by the worker's heartbeat) and settles the item by its outcome. */
const handle = <A, R>(
  q: QueueContext<A>,
  item: Item<A>,
  handler: Handler<A, R>,
  restore: Restore,
  running: Running<A>
): Effect.Effect<AttemptOutcome, never, R> =>
  Effect.gen(function*() {
    const { maxAttempts } = q.config
    if (item.attempt > maxAttempts) {
      const error = `taken ${item.attempt} times, more than maxAttempts (${maxAttempts}): its workers keep dying`
      return yield* settled(q, item, fail(q, item, { error }), "failed")
    }
    running.item = item
    const exit = yield* Effect.exit(restore(handler(item)))
    running.item = undefined
    if (exit._tag === "Success") return yield* settled(q, item, apply(q, item, exit.value), outcomeOf[exit.value._tag])
    if (Cause.isInterruptedOnly(exit.cause)) return yield* settled(q, item, release(q, item), "released")
    const error = `the handler died: ${describeCause(exit.cause)}`
    yield* Effect.logError(`durable queue ${q.name}: item ${item.id}: ${error}`)
    return yield* settled(q, item, retryLater(q, item, defectDelayMillis(item.attempt), { error }), "retried")
  })

/** {@link handle} in a `liaison.queue.attempt` span when a tracer is installed. */
const attempt = <A, R>(
  q: QueueContext<A>,
  item: Item<A>,
  handler: Handler<A, R>,
  restore: Restore,
  running: Running<A>
): Effect.Effect<void, never, R> =>
  withSpan("liaison.queue.attempt", "consumer", (span) => {
    if (span === undefined) return handle(q, item, handler, restore, running)
    span.attribute("liaison.queue.name", q.name)
    span.attribute("liaison.queue.attempt", item.attempt)
    span.attribute("liaison.queue.age_ms", Math.max(0, item.startedAt - item.enqueuedAt))
    return Effect.map(handle(q, item, handler, restore, running), (outcome) => {
      span.attribute("liaison.queue.outcome", outcome)
    })
  })

/**
 * Extends the lease of what a worker fiber runs, every third of a lease: one fiber per worker
 * fiber, not one per item. A lease lost anyway (the store unreachable for a whole lease) shows
 * when the handler settles: `LeaseLost`, logged, the other worker's attempt counting.
 */
const heartbeat = <A>(q: QueueContext<A>, running: Running<A>): Effect.Effect<never> =>
  Effect.forever(Effect.zipRight(
    Effect.sleep(Math.max(1, Math.floor(q.config.leaseMillis / 3))),
    Effect.suspend(() => {
      const item = running.item
      if (item === undefined) return Effect.void
      return extend(q, item, q.config.leaseMillis).pipe(
        Effect.catchAll((error) =>
          error._tag === "LeaseLost"
            ? Effect.void
            : running.outage.failed(`could not extend a lease: ${error.message}`)
        )
      )
    })
  ))

/**
 * Waits for a wake-up: from an enqueue in this process, or from the worker's {@link poller}. Only an
 * item due before the next poll gets a timer of its own: a race of a timer and the wake-up forks two
 * fibers, and a worker idles after nearly every item it runs (the demo server spent 14% more CPU per
 * inbound webhook with it).
 */
const idle = <A>(q: QueueContext<A>, next: Option.Option<number>): Effect.Effect<void> => {
  const woken = q.store.awaitWake(q.name)
  return Option.match(next, {
    onNone: () => woken,
    onSome: (due) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => due - now < q.config.pollMillis ? Effect.raceFirst(Effect.sleep(Math.max(1, due - now)), woken) : woken
      )
  })
}

/**
 * Wakes every fiber of a worker once per poll interval, so that idle ones look for items queued by
 * other instances (or due by now): one timer for the worker, not one per idle turn of each fiber.
 */
const poller = <A>(q: QueueContext<A>, fibers: number): Effect.Effect<never> => {
  const wakeAll = Effect.replicateEffect(q.store.wake(q.name), fibers, { discard: true })
  return Effect.forever(Effect.zipRight(Effect.sleep(q.config.pollMillis), wakeAll))
}

const loop = <A, R>(q: QueueContext<A>, handler: Handler<A, R>, running: Running<A>): Effect.Effect<never, never, R> =>
  Effect.forever(
    Effect.uninterruptibleMask((restore) =>
      // Not interruptible: an item taken is then either handled or released, never left leased.
      takeOrNext(q, undefined).pipe(
        Effect.tap(running.outage.recovered),
        Effect.flatMap(Either.match({
          onLeft: (next) => restore(idle(q, next)),
          onRight: (item) => attempt(q, item, handler, restore, running)
        })),
        Effect.catchAll((error) =>
          Effect.zipRight(
            running.outage.failed(`take failed, retrying: ${error.message}`),
            restore(Effect.sleep(q.config.pollMillis))
          )
        )
      )
    )
  )

/** One worker fiber: its loop and the heartbeat of the item it runs. */
const fiber = <A, R>(
  q: QueueContext<A>,
  handler: Handler<A, R>,
  outage: OutageLog
): Effect.Effect<never, never, Scope.Scope | R> =>
  Effect.suspend(() => {
    const running: Running<A> = { item: undefined, outage }
    return Effect.zipRight(Effect.forkScoped(heartbeat(q, running)), loop(q, handler, running))
  })

/**
 * Runs `handler` on `concurrency` fibers until the scope closes.
 *
 * @internal
 */
export const worker = <A, R>(
  q: QueueContext<A>,
  handler: Handler<A, R>,
  options: WorkerOptions = {}
): Effect.Effect<void, never, Scope.Scope | R> =>
  Effect.suspend(() => {
    // One outage log for the worker: its fibers failing together are one outage, not N.
    const outage = makeOutageLog(`durable queue ${q.name}`)
    const fibers = Math.max(1, options.concurrency ?? 1)
    return Effect.asVoid(Effect.forkScoped(Effect.scoped(Effect.all(
      [poller(q, fibers), ...Array.from({ length: fibers }, () => fiber(q, handler, outage))],
      { concurrency: "unbounded", discard: true }
    ))))
  })

// ---------------------------------------------------------------------------------------------------------------
// retrying: a handler that fails, settled by a verdict and a table of delays
// ---------------------------------------------------------------------------------------------------------------

const outcomeTags: ReadonlySet<unknown> = new Set(["Done", "RetryLater", "Failed"])

const isOutcome = (u: unknown): u is Outcome => Predicate.hasProperty(u, "_tag") && outcomeTags.has(u._tag)

const describeError = (error: unknown): string =>
  error instanceof Error
    ? error.message
    : typeof error === "string"
    ? error
    : Predicate.hasProperty(error, "message") && typeof error.message === "string"
    ? error.message
    : JSON.stringify(error) ?? String(error)

/** The outcome of a failed attempt, by its verdict and the table of delays. */
const settleFailure = <E>(options: RetryingOptions<E>, attempt: number, error: E): Effect.Effect<Outcome> => {
  const verdict = options.classify?.(error) ?? "retry"
  const message = options.describe?.(error) ?? describeError(error)
  const detail = options.detail?.(error)
  if (verdict === "fail") return Effect.succeed(DurableQueue.failed({ error: message, detail }))
  if (verdict === "unknown" && options.onUnknown === "fail") {
    const unknown = `the outcome is unknown (${message}): not retried, so that it is not done twice`
    return Effect.succeed(DurableQueue.failed({ error: unknown, detail }))
  }
  const noted = verdict === "unknown" ? `${message} (the outcome is unknown: retried)` : message
  const delay = delayAt(options.delays, attempt)
  if (delay === undefined) return Effect.succeed(DurableQueue.failed({ error: noted, detail }))
  const floor = typeof verdict === "object" ? verdict.retryAfterMillis : 0
  const { max, min } = options.jitter ?? DurableQueue.defaults.jitter
  const after = (factor: number) =>
    DurableQueue.retryAfter(Math.max(Duration.toMillis(delay) * factor, floor), { error: noted, detail })
  return min === max ? Effect.succeed(after(min)) : Effect.map(Random.nextRange(min, max), after)
}

/**
 * See `DurableQueue.retrying`.
 *
 * @internal
 */
export const retrying = <A, E, R>(
  handler: (item: Item<A>) => Effect.Effect<void | Outcome, E, R>,
  options: RetryingOptions<E>
) =>
(item: Item<A>): Effect.Effect<Outcome, never, R> =>
  handler(item).pipe(
    Effect.map((result) => isOutcome(result) ? result : DurableQueue.done()),
    Effect.catchAll((error) => settleFailure(options, item.attempt, error))
  )
