/**
 * The breaker engine: options resolved once, then a thin effectful shell around the pure
 * transitions of `breakerState` (one `Ref.modify` per event, the effects outside it), and the
 * registry of one breaker per key.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import type * as CircuitBreaker from "../CircuitBreaker.js"
import type { OpenedBy } from "../HttpError.js"
import { CircuitOpen, isHttpError } from "../HttpError.js"
import type { InvalidOptions } from "../LiaisonError.js"
import * as State from "./breakerState.js"
import { millis } from "./duration.js"
import { withoutStack } from "./fastError.js"
import * as Invalid from "./invalidOptions.js"

type Verdict = CircuitBreaker.Verdict

/** @internal */
export interface Resolved {
  readonly settings: State.Settings
  readonly slowCallMillis: number | undefined
  readonly verdict: (error: unknown) => Verdict
}

const transitions = Metric.counter("liaison_circuit_breaker_transitions_total", {
  description: "Circuit breaker state changes, by key and target state"
})

const windowOf = (rate: NonNullable<CircuitBreaker.Options["failureRate"]>): State.FailureRate["window"] =>
  "calls" in rate.window
    ? { _tag: "Count", size: rate.window.calls }
    : { _tag: "Time", millis: millis(rate.window.duration) }

/** @internal */
export const resolve = (
  options: CircuitBreaker.Options,
  defaults: typeof CircuitBreaker.defaults,
  defaultVerdict: (error: unknown) => Verdict
): Effect.Effect<Resolved, InvalidOptions> => {
  const rate = options.failureRate
  const failureThreshold = options.failureThreshold ?? defaults.failureThreshold
  const halfOpenProbes = options.halfOpenProbes ?? defaults.halfOpenProbes
  const openMillis = millis(options.openDuration ?? defaults.openDuration)
  const maxOpenMillis = millis(options.maxOpenDuration ?? defaults.maxOpenDuration)
  const window = rate === undefined ? undefined : windowOf(rate)
  // A count window smaller than the default minimum would never reach a verdict.
  const minimumCalls = rate?.minimumCalls ??
    (window?._tag === "Count" ? Math.min(defaults.minimumCalls, window.size) : defaults.minimumCalls)
  const invalid = Invalid.check([
    [Number.isInteger(failureThreshold) && failureThreshold >= 1, "failureThreshold", "must be an integer ≥ 1"],
    [Number.isInteger(halfOpenProbes) && halfOpenProbes >= 1, "halfOpenProbes", "must be an integer ≥ 1"],
    [openMillis > 0, "openDuration", "must be positive"],
    [maxOpenMillis >= openMillis, "maxOpenDuration", "must be at least openDuration"],
    [rate === undefined || (rate.threshold > 0 && rate.threshold <= 1), "failureRate.threshold", "must be in (0, 1]"],
    [
      window === undefined ||
      (window._tag === "Count" ? Number.isInteger(window.size) && window.size >= 1 : window.millis > 0),
      "failureRate.window",
      "must hold at least one call / last a positive duration"
    ],
    [
      window === undefined ||
      (Number.isInteger(minimumCalls) && minimumCalls >= 1 &&
        (window._tag === "Time" || minimumCalls <= window.size)),
      "failureRate.minimumCalls",
      "must be an integer ≥ 1, and no more than a count window holds"
    ]
  ])
  if (invalid !== undefined) return Effect.fail(invalid)
  return Effect.succeed({
    settings: {
      failureThreshold,
      failureRate: rate === undefined || window === undefined
        ? undefined
        : { threshold: rate.threshold, minimumCalls, window },
      openMillis,
      maxOpenMillis,
      halfOpenProbes
    },
    slowCallMillis: options.slowCall === undefined ? undefined : millis(options.slowCall),
    verdict: options.verdict ?? defaultVerdict
  })
}

const snapshotOf = (key: string, state: State.State, now: number): CircuitBreaker.Snapshot => {
  const name = State.nameAt(state, now)
  const calls = state._tag === "Closed" ? state.calls : []
  return {
    key,
    state: name,
    consecutiveFailures: state._tag === "Closed" ? state.consecutiveFailures : 0,
    windowCalls: calls.length,
    windowFailures: calls.reduce((n, call) => call.failed ? n + 1 : n, 0),
    remainingOpenMillis: state._tag === "Open" && name === "Open"
      ? (Number.isFinite(state.until) ? state.until - now : null)
      : 0,
    probesAdmitted: state._tag === "HalfOpen" ? state.admitted : 0,
    probeSuccesses: state._tag === "HalfOpen" ? state.successes : 0
  }
}

/** One breaker's state and what its transitions go to. */
interface Cell {
  readonly key: string
  readonly resolved: Resolved
  readonly ref: Ref.Ref<State.State>
  /**
   * The hot path of an open breaker: a mirror of the Ref's `until`, kept in step inside
   * `Ref.modify`, answers without a transition to make.
   */
  openUntil: number
  /** The failure that opened the breaker, set once per transition to Open (never per rejection). */
  openedBy: OpenedBy | undefined
  readonly transitioned: Metric.Metric.Counter<number>
  readonly publish: (transition: CircuitBreaker.Transition) => Effect.Effect<void>
}

/** Keeps `openedBy` in step with the state: set when the breaker opens, cleared when it closes. */
const noteOpenedBy = (
  cell: Cell,
  before: State.State,
  after: State.State,
  openedBy: (() => OpenedBy | undefined) | undefined
): void => {
  if (before._tag === after._tag && before.generation === after.generation) return
  if (after._tag === "Open") cell.openedBy = openedBy?.()
  else if (after._tag === "Closed") cell.openedBy = undefined
}

/**
 * Applies `f` atomically and publishes the change of state, if any; `openedBy` describes the
 * failure behind the event, asked for only when it opens the breaker.
 */
const change = <B>(
  cell: Cell,
  f: (state: State.State, now: number) => readonly [B, State.State],
  openedBy?: () => OpenedBy | undefined
): Effect.Effect<B> =>
  Effect.clockWith((clock) => {
    const now = clock.unsafeCurrentTimeMillis()
    return Effect.flatMap(
      Ref.modify(cell.ref, (state) => {
        const [result, next] = f(state, now)
        cell.openUntil = next._tag === "Open" ? next.until : -Infinity
        noteOpenedBy(cell, state, next, openedBy)
        return [[result, state, next] as const, next]
      }),
      ([result, before, after]) =>
        before === after || (before._tag === after._tag && before.generation === after.generation)
          ? Effect.succeed(result)
          : Effect.as(
            Effect.zipRight(
              Metric.increment(Metric.tagged(cell.transitioned, "to", after._tag)),
              cell.publish({
                key: cell.key,
                from: before._tag,
                to: after._tag,
                atMillis: now,
                generation: after.generation
              })
            ),
            result
          )
    )
  })

const rejectedFor = (cell: Cell, remainingMillis: number) => {
  const { key, openedBy } = cell
  return Effect.fail(
    withoutStack(() =>
      openedBy === undefined
        ? new CircuitOpen({ key, remainingMillis }, true)
        : new CircuitOpen({ key, remainingMillis, openedBy }, true)
    )
  )
}

/**
 * A failure as `CircuitOpen.openedBy` shows it: an `HttpError`'s tag and message (its URL is
 * already redacted), only the tag of any other error (its message could hold anything).
 */
const summarize = (error: unknown): OpenedBy => {
  if (isHttpError(error)) return { _tag: error._tag, message: error.message }
  const tag = Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" ? error._tag : "UnknownError"
  return { _tag: tag, message: `a ${tag} failure` }
}

/** What opened the breaker, when `outcome` did: asked for once per transition to Open. */
const openedByOf = <A, E>(
  exit: Exit.Exit<A, E>,
  outcome: State.Outcome | Verdict,
  elapsedMillis: number,
  slowCallMillis: number | undefined
): OpenedBy | undefined => {
  if (outcome._tag !== "Failure") return undefined
  if (slowCallMillis !== undefined && elapsedMillis > slowCallMillis) {
    return { _tag: "SlowCall", message: `a call took ${elapsedMillis} ms, more than slowCall (${slowCallMillis} ms)` }
  }
  if ("openedBy" in outcome && outcome.openedBy !== undefined) return outcome.openedBy
  if (exit._tag === "Success") return { _tag: "Failure", message: "a result judged a failure" }
  return Option.match(Cause.failureOption(exit.cause), {
    onNone: () => ({ _tag: "Defect", message: "an unexpected error (a defect)" }),
    onSome: summarize
  })
}

// An interruption's cause is rarely a bare `Interrupt` (e.g. `Sequential(Empty, Interrupt)`).
const isInterruptedOnly = <A, E>(exit: Exit.Exit<A, E>): boolean =>
  exit._tag === "Failure" && Cause.isInterruptedOnly(exit.cause)

/** What a finished call was: abandoned (interrupted), too slow, or as `judge` says. */
const outcomeOf = <A, E>(
  cell: Cell,
  exit: Exit.Exit<A, E>,
  elapsedMillis: number,
  judge: (exit: Exit.Exit<A, E>) => Verdict
): State.Outcome | Verdict =>
  exit._tag === "Failure" && isInterruptedOnly(exit)
    ? { _tag: "Abandoned" }
    : cell.resolved.slowCallMillis !== undefined && elapsedMillis > cell.resolved.slowCallMillis
    ? { _tag: "Failure", retryAfterMillis: undefined }
    : judge(exit)

const admitted = <A, E, R>(
  cell: Cell,
  effect: Effect.Effect<A, E, R>,
  judge: (exit: Exit.Exit<A, E>) => Verdict
): Effect.Effect<A, E | CircuitOpen, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(
      change(cell, (state, now) => {
        const [admission, next] = State.admit(state, now, cell.resolved.settings)
        return [[admission, now] as const, next]
      }),
      ([admission, start]): Effect.Effect<A, E | CircuitOpen, R> =>
        admission._tag === "Rejected"
          ? rejectedFor(cell, admission.remainingMillis)
          : restore(effect).pipe(
            Effect.onExit((exit) => {
              let outcome: State.Outcome | Verdict | undefined
              let elapsed = 0
              return change(cell, (state, now) => {
                elapsed = now - start
                outcome = outcomeOf(cell, exit, elapsed, judge)
                return [undefined, State.record(state, admission, outcome, now, cell.resolved.settings)]
              }, () =>
                outcome === undefined
                  ? undefined
                  : openedByOf(exit, outcome, elapsed, cell.resolved.slowCallMillis))
            })
          )
    )
  )

const protectWith = <A, E, R>(
  cell: Cell,
  effect: Effect.Effect<A, E, R>,
  judge: (exit: Exit.Exit<A, E>) => Verdict
): Effect.Effect<A, E | CircuitOpen, R> =>
  Effect.clockWith((clock) => {
    const now = clock.unsafeCurrentTimeMillis()
    return now < cell.openUntil ? rejectedFor(cell, cell.openUntil - now) : admitted(cell, effect, judge)
  })

const success: Verdict = { _tag: "Success" }
const unjudged: Verdict = { _tag: "Failure", retryAfterMillis: undefined }

/** @internal */
export const makeBreaker = (
  key: string,
  resolved: Resolved,
  publish: (transition: CircuitBreaker.Transition) => Effect.Effect<void>
): CircuitBreaker.Breaker => {
  const cell: Cell = {
    key,
    resolved,
    ref: Ref.unsafeMake(State.initial),
    openUntil: -Infinity,
    openedBy: undefined,
    transitioned: Metric.tagged(transitions, "key", key),
    publish
  }
  const judgeError = <A, E>(exit: Exit.Exit<A, E>): Verdict =>
    exit._tag === "Success"
      ? success
      : Option.match(Cause.failureOption(exit.cause), { onNone: () => unjudged, onSome: resolved.verdict })
  return {
    key,
    protect: (effect) => protectWith(cell, effect, judgeError),
    protectWith: (effect, judge) => protectWith(cell, effect, judge),
    snapshot: Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => Effect.map(Ref.get(cell.ref), (s) => snapshotOf(key, s, now))
    ),
    isolate: change(cell, (state, now) => [undefined, State.isolate(state, now)]),
    reset: change(cell, (state) => [undefined, State.reset(state)])
  }
}

/** @internal */
export const makeRegistry = (
  options: CircuitBreaker.Options,
  perKey: (key: string) => CircuitBreaker.Options | undefined,
  resolveOptions: (options: CircuitBreaker.Options) => Effect.Effect<Resolved, InvalidOptions>
): Effect.Effect<CircuitBreaker.Service, InvalidOptions> =>
  Effect.gen(function*() {
    const resolved = yield* resolveOptions(options)
    const hub = yield* PubSub.sliding<CircuitBreaker.Transition>(1024)
    const publish = (transition: CircuitBreaker.Transition) => Effect.asVoid(PubSub.publish(hub, transition))
    const breakers = new Map<string, CircuitBreaker.Breaker>()
    const create = (key: string): Effect.Effect<CircuitBreaker.Breaker> => {
      const own = perKey(key)
      return own === undefined
        ? Effect.succeed(makeBreaker(key, resolved, publish))
        : Effect.orDie(Effect.map(resolveOptions({ ...options, ...own }), (r) => makeBreaker(key, r, publish)))
    }
    return {
      get: (key) =>
        Effect.suspend(() => {
          const existing = breakers.get(key)
          if (existing !== undefined) return Effect.succeed(existing)
          return Effect.map(create(key), (breaker) => {
            // Two fibers may race to create it: the first one stored wins.
            const stored = breakers.get(key)
            if (stored !== undefined) return stored
            breakers.set(key, breaker)
            return breaker
          })
        }),
      snapshots: Effect.suspend(() => Effect.forEach([...breakers.values()], (breaker) => breaker.snapshot)),
      changes: Stream.fromPubSub(hub)
    }
  })
