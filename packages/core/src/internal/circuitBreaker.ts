/**
 * The breaker engine: options resolved once, then a thin effectful shell around the pure
 * transitions of `breakerState` (each applied in one synchronous step; metrics, span events and
 * publishing outside them), and the registry of one breaker per key.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import type * as CircuitBreaker from "../CircuitBreaker.js"
import type { OpenedBy } from "../HttpError.js"
import { CircuitOpen, isHttpError } from "../HttpError.js"
import type { InvalidOptions } from "../LiaisonError.js"
import * as State from "./breakerState.js"
import * as Telemetry from "./circuitBreaker/telemetry.js"
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

/**
 * How a breaker takes part in a cluster (the shared breaker); a local breaker has none.
 *
 * @internal
 */
export interface Coordinator {
  /** Told of every change of state made here (not of those applied from elsewhere); must not wait. */
  readonly changed: (change: {
    readonly key: string
    readonly before: State.State
    readonly after: State.State
    readonly now: number
    readonly openedBy: OpenedBy | undefined
  }) => Effect.Effect<void>
  /**
   * Asks for the cluster's probe of `key`: `undefined` when this instance may probe (it holds
   * the lease, or the cluster cannot be asked and the local breaker decides), else how long to
   * wait before asking again. Never fails, never waits long.
   */
  readonly probeLease: (key: string) => Effect.Effect<number | undefined>
}

type RuntimeFiber = Fiber.RuntimeFiber<unknown, unknown>

/** A rejection as last built: reused while its fields would be the same. */
interface Rejection {
  readonly remainingMillis: number
  readonly openedBy: OpenedBy | undefined
  readonly fail: Effect.Effect<never, CircuitOpen>
}

/**
 * One breaker. `state` is the only copy of its state and changes only by the pure transitions of
 * `breakerState`, each applied in one synchronous step (JavaScript runs one fiber at a time, so
 * no other fiber sees a half-made change: what `Ref.modify` gives, without its Effect steps).
 *
 * @internal
 */
export interface Cell {
  readonly key: string
  readonly resolved: Resolved
  state: State.State
  /** `state.until` while Open, else `-Infinity`: the open breaker's hot path reads only this. */
  openUntil: number
  /** The failure that opened the breaker, set once per transition to Open (never per rejection). */
  openedBy: OpenedBy | undefined
  rejection: Rejection | undefined
  /** A fiber of this instance is asking the cluster for the probe lease. */
  leasing: boolean
  readonly telemetry: Telemetry.Telemetry
  readonly publish: (transition: CircuitBreaker.Transition) => Effect.Effect<void>
  readonly coordinator: Coordinator | undefined
}

const clockOf = (fiber: RuntimeFiber): Clock.Clock => Context.get(fiber.currentDefaultServices, Clock.Clock)

/**
 * Makes `next` the state: keeps the mirror and `openedBy` in step, and on a change of state
 * counts it and answers the effect that publishes it (`undefined` when nothing changed).
 * `remote`: the change came from another instance (not sent back to the cluster).
 */
const apply = (
  cell: Cell,
  next: State.State,
  now: number,
  fiber: RuntimeFiber,
  openedBy?: () => OpenedBy | undefined,
  remote = false
): Effect.Effect<void> | undefined => {
  const before = cell.state
  if (before === next) return undefined
  cell.state = next
  cell.openUntil = next._tag === "Open" ? next.until : -Infinity
  if (before._tag === next._tag && before.generation === next.generation) return undefined
  if (next._tag === "Open") cell.openedBy = openedBy?.()
  else if (next._tag === "Closed") cell.openedBy = undefined
  Telemetry.transitioned(cell.telemetry, before._tag, next._tag, fiber, clockOf(fiber))
  const published = cell.publish({
    key: cell.key,
    from: before._tag,
    to: next._tag,
    atMillis: now,
    generation: next.generation
  })
  const coordinator = cell.coordinator
  return coordinator === undefined || remote
    ? published
    : Effect.zipRight(
      published,
      coordinator.changed({ key: cell.key, before, after: next, now, openedBy: cell.openedBy })
    )
}

/** Runs a change made outside a call (`isolate`, `reset`, another instance's decision). */
const change = (
  cell: Cell,
  f: (state: State.State, now: number) => State.State,
  openedBy?: () => OpenedBy | undefined,
  remote = false
): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => {
    const now = clockOf(fiber).unsafeCurrentTimeMillis()
    return apply(cell, f(cell.state, now), now, fiber, openedBy, remote) ?? Effect.void
  })

/**
 * Applies another instance's decision to the local breaker.
 *
 * @internal
 */
export const applyShared = (
  cell: Cell,
  decision: { readonly _tag: "Open"; readonly millis: number; readonly openedBy: OpenedBy | undefined } | {
    readonly _tag: "Closed"
  }
): Effect.Effect<void> =>
  decision._tag === "Open"
    ? change(cell, (state, now) => State.openShared(state, now, decision.millis), () => decision.openedBy, true)
    : change(cell, State.closeShared, undefined, true)

/** Fails the call with `CircuitOpen`, built anew only when its fields change. */
const reject = (
  cell: Cell,
  remainingMillis: number,
  fiber: RuntimeFiber,
  state: State.StateName
): Effect.Effect<never, CircuitOpen> => {
  Telemetry.count(cell.telemetry, "rejected", fiber)
  Telemetry.event(cell.telemetry, fiber, clockOf(fiber), state, "rejected")
  const last = cell.rejection
  if (last !== undefined && last.remainingMillis === remainingMillis && last.openedBy === cell.openedBy) {
    return last.fail
  }
  const { key, openedBy } = cell
  const error = withoutStack(() =>
    openedBy === undefined
      ? new CircuitOpen({ key, remainingMillis }, true)
      : new CircuitOpen({ key, remainingMillis, openedBy }, true)
  )
  const rejection: Rejection = { remainingMillis, openedBy, fail: Effect.fail(error) }
  cell.rejection = rejection
  return rejection.fail
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

/** Records a finished call's outcome: free when it changes nothing (a success while Closed). */
const settle = <A, E>(
  cell: Cell,
  admission: { readonly generation: number; readonly probe: boolean },
  start: number,
  exit: Exit.Exit<A, E>,
  judge: (exit: Exit.Exit<A, E>) => Verdict,
  fiber: RuntimeFiber
): Effect.Effect<void> => {
  const now = clockOf(fiber).unsafeCurrentTimeMillis()
  const elapsed = now - start
  const outcome = outcomeOf(cell, exit, elapsed, judge)
  const next = State.record(cell.state, admission, outcome, now, cell.resolved.settings)
  return apply(cell, next, now, fiber, () => openedByOf(exit, outcome, elapsed, cell.resolved.slowCallMillis)) ??
    Effect.void
}

/** Admits a call by `State.admit` (HalfOpen, or Open with its time up), inside an uninterruptible region. */
const admitOrReject = <A, E, R>(
  cell: Cell,
  restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>,
  effect: Effect.Effect<A, E, R>,
  judge: (exit: Exit.Exit<A, E>) => Verdict,
  fiber: RuntimeFiber
): Effect.Effect<A, E | CircuitOpen, R> => {
  const now = clockOf(fiber).unsafeCurrentTimeMillis()
  const [admission, next] = State.admit(cell.state, now, cell.resolved.settings)
  if (admission._tag === "Rejected") return reject(cell, admission.remainingMillis, fiber, cell.state._tag)
  const changed = apply(cell, next, now, fiber)
  Telemetry.count(cell.telemetry, admission.probe ? "probe" : "admitted", fiber)
  if (admission.probe) Telemetry.event(cell.telemetry, fiber, clockOf(fiber), "HalfOpen", "probe")
  const run = Effect.onExit(restore(effect), (exit) => settle(cell, admission, now, exit, judge, fiber))
  return changed === undefined ? run : Effect.zipRight(changed, run)
}

/**
 * A shared breaker whose open time is up: the probe is the cluster's, so ask for its lease
 * first (one fiber of this instance at a time; the others are turned away meanwhile). Denied,
 * the breaker stays Open until the lease's holder has had its time.
 */
const leaseThenAdmit = <A, E, R>(
  cell: Cell,
  coordinator: Coordinator,
  restore: <AX, EX, RX>(effect: Effect.Effect<AX, EX, RX>) => Effect.Effect<AX, EX, RX>,
  effect: Effect.Effect<A, E, R>,
  judge: (exit: Exit.Exit<A, E>) => Verdict,
  fiber: RuntimeFiber
): Effect.Effect<A, E | CircuitOpen, R> => {
  if (cell.leasing) return reject(cell, 0, fiber, "Open")
  cell.leasing = true
  const generation = cell.state.generation
  return Effect.flatMap(
    Effect.ensuring(coordinator.probeLease(cell.key), Effect.sync(() => (cell.leasing = false))),
    (retryMillis) =>
      Effect.withFiberRuntime<A, E | CircuitOpen, R>((fiber) => {
        const now = clockOf(fiber).unsafeCurrentTimeMillis()
        const state = cell.state
        if (retryMillis === undefined || state.generation !== generation || !State.probeDue(state, now)) {
          return admitOrReject(cell, restore, effect, judge, fiber)
        }
        apply(cell, State.holdOpen(state, now, retryMillis), now, fiber)
        return reject(cell, retryMillis, fiber, "Open")
      })
  )
}

const protectWith = <A, E, R>(
  cell: Cell,
  effect: Effect.Effect<A, E, R>,
  judge: (exit: Exit.Exit<A, E>) => Verdict
): Effect.Effect<A, E | CircuitOpen, R> =>
  Effect.withFiberRuntime((fiber) => {
    const now = clockOf(fiber).unsafeCurrentTimeMillis()
    // The open breaker's hot path: one comparison, a rejection built once per distinct value.
    if (now < cell.openUntil) return reject(cell, cell.openUntil - now, fiber, "Open")
    const state = cell.state
    if (state._tag === "Closed") {
      // The closed breaker's hot path: no transition to make at admission. An interruption
      // before the outcome is recorded loses nothing (an abandoned call does not count while Closed).
      Telemetry.count(cell.telemetry, "admitted", fiber)
      const admission = { generation: state.generation, probe: false }
      return Effect.onExit(effect, (exit) => settle(cell, admission, now, exit, judge, fiber))
    }
    // A probe must record its outcome whatever happens, or its place would be lost.
    return Effect.uninterruptibleMask((restore) =>
      Effect.withFiberRuntime<A, E | CircuitOpen, R>((fiber) => {
        const coordinator = cell.coordinator
        return coordinator !== undefined && State.probeDue(cell.state, clockOf(fiber).unsafeCurrentTimeMillis())
          ? leaseThenAdmit(cell, coordinator, restore, effect, judge, fiber)
          : admitOrReject(cell, restore, effect, judge, fiber)
      })
    )
  })
const success: Verdict = { _tag: "Success" }
const unjudged: Verdict = { _tag: "Failure", retryAfterMillis: undefined }

/** @internal */
export const makeCell = (
  key: string,
  resolved: Resolved,
  publish: (transition: CircuitBreaker.Transition) => Effect.Effect<void>,
  coordinator?: Coordinator
): Cell => ({
  key,
  resolved,
  state: State.initial,
  openUntil: -Infinity,
  openedBy: undefined,
  rejection: undefined,
  leasing: false,
  telemetry: Telemetry.make(key),
  publish,
  coordinator
})

/** @internal */
export const breakerOf = (cell: Cell): CircuitBreaker.Breaker => {
  const judgeError = <A, E>(exit: Exit.Exit<A, E>): Verdict =>
    exit._tag === "Success"
      ? success
      : Option.match(Cause.failureOption(exit.cause), { onNone: () => unjudged, onSome: cell.resolved.verdict })
  return {
    key: cell.key,
    protect: (effect) => protectWith(cell, effect, judgeError),
    protectWith: (effect, judge) => protectWith(cell, effect, judge),
    snapshot: Effect.map(Clock.currentTimeMillis, (now) => snapshotOf(cell.key, cell.state, now)),
    isolate: change(cell, State.isolate),
    reset: change(cell, State.reset)
  }
}

/** @internal */
export const makeBreaker = (
  key: string,
  resolved: Resolved,
  publish: (transition: CircuitBreaker.Transition) => Effect.Effect<void>
): CircuitBreaker.Breaker => breakerOf(makeCell(key, resolved, publish))

/**
 * A registry and its breakers' cells (for the shared breaker, which applies other instances'
 * decisions to them).
 *
 * @internal
 */
export interface Registry {
  readonly service: CircuitBreaker.Service
  readonly cell: (key: string) => Cell | undefined
}

/**
 * `shared`: the cluster's coordinator, and what to do with a breaker once created (catch up
 * with the cluster's state).
 *
 * @internal
 */
export const makeRegistry = (
  options: CircuitBreaker.Options,
  perKey: (key: string) => CircuitBreaker.Options | undefined,
  resolveOptions: (options: CircuitBreaker.Options) => Effect.Effect<Resolved, InvalidOptions>,
  shared?: { readonly coordinator: Coordinator; readonly created: (cell: Cell) => Effect.Effect<void> }
): Effect.Effect<Registry, InvalidOptions> =>
  Effect.gen(function*() {
    const resolved = yield* resolveOptions(options)
    const hub = yield* PubSub.sliding<CircuitBreaker.Transition>(1024)
    const publish = (transition: CircuitBreaker.Transition) => Effect.asVoid(PubSub.publish(hub, transition))
    const cells = new Map<string, { readonly cell: Cell; readonly breaker: CircuitBreaker.Breaker }>()
    const create = (key: string): Effect.Effect<Cell> => {
      const own = perKey(key)
      const make = (r: Resolved) => makeCell(key, r, publish, shared?.coordinator)
      return own === undefined
        ? Effect.succeed(make(resolved))
        : Effect.orDie(Effect.map(resolveOptions({ ...options, ...own }), make))
    }
    const get = (key: string): Effect.Effect<CircuitBreaker.Breaker> =>
      Effect.suspend(() => {
        const existing = cells.get(key)
        if (existing !== undefined) return Effect.succeed(existing.breaker)
        return Effect.flatMap(create(key), (cell) => {
          // Two fibers may race to create it: the first one stored wins.
          const stored = cells.get(key)
          if (stored !== undefined) return Effect.succeed(stored.breaker)
          const breaker = breakerOf(cell)
          cells.set(key, { cell, breaker })
          return shared === undefined ? Effect.succeed(breaker) : Effect.as(shared.created(cell), breaker)
        })
      })
    return {
      service: {
        get,
        snapshots: Effect.suspend(() => Effect.forEach([...cells.values()], ({ breaker }) => breaker.snapshot)),
        changes: Stream.fromPubSub(hub)
      },
      cell: (key) => cells.get(key)?.cell
    }
  })
