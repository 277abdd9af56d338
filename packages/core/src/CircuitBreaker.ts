/**
 * A circuit breaker: after enough failures it stops calls to an upstream for a while (Open),
 * failing them fast with {@link CircuitOpen}, then lets a few probe calls through (HalfOpen)
 * and closes again when they succeed.
 *
 * - State lives in a `Ref`, changed only by `Ref.modify` with the pure transitions of
 *   `internal/breakerState`, so concurrent calls never race: 1000 fibers hitting a HalfOpen
 *   breaker admit exactly `halfOpenProbes` probes.
 * - Trips on `failureThreshold` consecutive failures (default 5), or on a failure rate over a
 *   count- or time-based window once it holds `minimumCalls`; calls slower than `slowCall`
 *   count as failures.
 * - Stays open `openDuration` (default 60 s), or exactly as long as a 429/503's `Retry-After`
 *   asks (capped by `maxOpenDuration`).
 * - What counts as a failure is configurable; by default transport errors, timeouts, 5xx and 429
 *   (other 4xx are the caller's mistakes, not the upstream's illness).
 * - One breaker per key (default: the upstream host) from the {@link CircuitBreaker} registry;
 *   state changes are published on `changes` and counted in metrics; `isolate` and `reset` by hand.
 *
 * The state is per process (the in-memory default).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import { CircuitOpen, isHttpError } from "./HttpError.js"
import * as State from "./internal/breakerState.js"
import { withoutStack } from "./internal/fastError.js"
import * as Invalid from "./internal/invalidOptions.js"
import { retryAfterMillis } from "./internal/retryAfter.js"

/**
 * @since 0.1.0
 * @category errors
 */
export const InvalidOptions = Invalid.InvalidOptions

/**
 * @since 0.1.0
 * @category errors
 */
export type InvalidOptions = Invalid.InvalidOptions

/**
 * @since 0.1.0
 * @category errors
 */
export { CircuitOpen } from "./HttpError.js"

/**
 * @since 0.1.0
 * @category models
 */
export type StateName = State.StateName

/**
 * What a finished call tells the breaker. `retryAfter` (milliseconds) sets how long it opens, if
 * this failure trips it.
 *
 * @since 0.1.0
 * @category models
 */
export type Verdict =
  | { readonly _tag: "Success" }
  | { readonly _tag: "Failure"; readonly retryAfterMillis: number | undefined }

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Consecutive failures that trip the breaker. Default 5. */
  readonly failureThreshold?: number | undefined
  /** Also trip on a failure rate over a window of recent calls. Off by default. */
  readonly failureRate?: {
    /** A share in (0, 1], e.g. 0.5. */
    readonly threshold: number
    /** Default 10 (at most a count window's size). */
    readonly minimumCalls?: number | undefined
    readonly window: { readonly calls: number } | { readonly duration: Duration.DurationInput }
  } | undefined
  /** A call slower than this counts as a failure even if it succeeds. Off by default. */
  readonly slowCall?: Duration.DurationInput | undefined
  /** How long the breaker stays open. Default 60 seconds. */
  readonly openDuration?: Duration.DurationInput | undefined
  /** The longest a server's `Retry-After` may keep it open. Default 10 minutes. */
  readonly maxOpenDuration?: Duration.DurationInput | undefined
  /** Probe calls admitted when HalfOpen; all must succeed to close. Default 2. */
  readonly halfOpenProbes?: number | undefined
  /** Which failures count. Default {@link defaultVerdict}. */
  readonly verdict?: ((error: unknown) => Verdict) | undefined
}

/**
 * A snapshot of one breaker.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly key: string
  readonly state: StateName
  readonly consecutiveFailures: number
  /** Calls and failures in the failure-rate window (0 when no rate is configured). */
  readonly windowCalls: number
  readonly windowFailures: number
  /** Until the next probe; 0 unless Open; `null` when isolated. */
  readonly remainingOpenMillis: number | null
  readonly probesAdmitted: number
  readonly probeSuccesses: number
}

/**
 * A state change.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transition {
  readonly key: string
  readonly from: StateName
  readonly to: StateName
  readonly atMillis: number
  /** Increases with every transition of this breaker: orders events that arrive out of order. */
  readonly generation: number
}

/**
 * One breaker.
 *
 * @since 0.1.0
 * @category models
 */
export interface Breaker {
  readonly key: string
  /** Runs the effect if the breaker admits it, and records its outcome. */
  readonly protect: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpen, R>
  /** Like `protect`, judging the outcome (success values too, e.g. a 503 response) with `judge`. */
  readonly protectWith: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    judge: (exit: Exit.Exit<A, E>) => Verdict
  ) => Effect.Effect<A, E | CircuitOpen, R>
  readonly snapshot: Effect.Effect<Snapshot>
  /** Opens the breaker until {@link Breaker.reset}. */
  readonly isolate: Effect.Effect<void>
  /** Closes the breaker and forgets its failures. */
  readonly reset: Effect.Effect<void>
}

/**
 * The registry: one breaker per key, created on first use with the registry's options.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly get: (key: string) => Effect.Effect<Breaker>
  readonly snapshots: Effect.Effect<ReadonlyArray<Snapshot>>
  /** Every breaker's state changes, from the moment of subscription. */
  readonly changes: Stream.Stream<Transition>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class CircuitBreaker extends Context.Tag("@liaison/core/CircuitBreaker")<CircuitBreaker, Service>() {}

const success: Verdict = { _tag: "Success" }
const failure = (retryAfter: number | undefined): Verdict => ({ _tag: "Failure", retryAfterMillis: retryAfter })

/**
 * Whether a response status is the upstream's failure: 5xx and 429.
 *
 * @since 0.1.0
 * @category verdicts
 */
export const isFailureStatus = (status: number): boolean => status >= 500 || status === 429

/**
 * The verdict on a response: 5xx and 429 are failures, carrying the `Retry-After` of a 429 or 503.
 *
 * @since 0.1.0
 * @category verdicts
 */
export const verdictOfResponse = (
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  nowMillis: number
): Verdict =>
  isFailureStatus(status)
    ? failure(status === 429 || status === 503 ? retryAfterMillis(headers, nowMillis) : undefined)
    : success

/**
 * The default verdict on a failed call: transport errors, timeouts, and 5xx/429 `StatusError`s
 * are failures; other 4xx, undecodable bodies and invalid requests are successes of the breaker
 * (the upstream answered); any error that is not an `HttpError` is a failure.
 *
 * @since 0.1.0
 * @category verdicts
 */
export const defaultVerdict = (error: unknown): Verdict => {
  if (!isHttpError(error)) return failure(undefined)
  switch (error._tag) {
    case "TransportError":
    case "TimeoutError":
      return failure(undefined)
    case "StatusError":
      return verdictOfResponse(error.status, error.headers, Date.now())
    case "DecodeError":
    case "InvalidRequest":
    case "RateLimited":
    case "RetryAfterTooLong":
    case "RetryBudgetExhausted":
    case "AuthError":
      return success
    case "CircuitOpen":
      return failure(undefined)
  }
}

const transitions = Metric.counter("liaison_circuit_breaker_transitions_total", {
  description: "Circuit breaker state changes, by key and target state"
})

interface Resolved {
  readonly settings: State.Settings
  readonly slowCallMillis: number | undefined
  readonly verdict: (error: unknown) => Verdict
}

const millis = (duration: Duration.DurationInput) => Duration.toMillis(Duration.decode(duration))

const resolve = (options: Options): Effect.Effect<Resolved, InvalidOptions> => {
  const rate = options.failureRate
  const failureThreshold = options.failureThreshold ?? 5
  const halfOpenProbes = options.halfOpenProbes ?? 2
  const openMillis = millis(options.openDuration ?? "60 seconds")
  const maxOpenMillis = millis(options.maxOpenDuration ?? "10 minutes")
  const window: State.FailureRate["window"] | undefined = rate === undefined
    ? undefined
    : "calls" in rate.window
    ? { _tag: "Count", size: rate.window.calls }
    : { _tag: "Time", millis: millis(rate.window.duration) }
  // A count window smaller than the default minimum would never reach a verdict.
  const minimumCalls = rate?.minimumCalls ?? (window?._tag === "Count" ? Math.min(10, window.size) : 10)
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

const snapshotOf = (key: string, state: State.State, now: number): Snapshot => {
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

const makeBreaker = (
  key: string,
  resolved: Resolved,
  publish: (transition: Transition) => Effect.Effect<void>
): Breaker => {
  const { settings, slowCallMillis } = resolved
  const ref = Ref.unsafeMake(State.initial)
  let openUntil = -Infinity
  const transitioned = Metric.tagged(transitions, "key", key)

  /** Applies `f` atomically and publishes the change of state, if any. */
  const change = <B>(f: (state: State.State, now: number) => readonly [B, State.State]) =>
    Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      return Effect.flatMap(
        Ref.modify(ref, (state) => {
          const [result, next] = f(state, now)
          openUntil = next._tag === "Open" ? next.until : -Infinity
          return [[result, state, next] as const, next]
        }),
        ([result, before, after]) =>
          before === after || (before._tag === after._tag && before.generation === after.generation)
            ? Effect.succeed(result)
            : Effect.as(
              Effect.zipRight(
                Metric.increment(Metric.tagged(transitioned, "to", after._tag)),
                publish({ key, from: before._tag, to: after._tag, atMillis: now, generation: after.generation })
              ),
              result
            )
      )
    })

  const rejectedFor = (remainingMillis: number) =>
    Effect.fail(withoutStack(() => new CircuitOpen({ key, remainingMillis }, true)))

  const protectWith = <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    judge: (exit: Exit.Exit<A, E>) => Verdict
  ): Effect.Effect<A, E | CircuitOpen, R> =>
    Effect.clockWith((clock) => {
      // The hot path of an open breaker: a mirror of the Ref's `until`, kept in step inside
      // `Ref.modify`, answers without a transition to make.
      const now = clock.unsafeCurrentTimeMillis()
      return now < openUntil ? rejectedFor(openUntil - now) : admitted(effect, judge)
    })

  const admitted = <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    judge: (exit: Exit.Exit<A, E>) => Verdict
  ): Effect.Effect<A, E | CircuitOpen, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(
        change((state, now) => {
          const [admission, next] = State.admit(state, now, settings)
          return [[admission, now] as const, next]
        }),
        ([admission, start]): Effect.Effect<
          A,
          E | CircuitOpen,
          R
        > => {
          if (admission._tag === "Rejected") {
            return rejectedFor(admission.remainingMillis)
          }
          return restore(effect).pipe(
            Effect.onExit((exit) =>
              change((state, now) => {
                const outcome: State.Outcome = exit._tag === "Failure" && isInterruptedOnly(exit)
                  ? { _tag: "Abandoned" }
                  : slowCallMillis !== undefined && now - start > slowCallMillis
                  ? { _tag: "Failure", retryAfterMillis: undefined }
                  : judge(exit)
                return [undefined, State.record(state, admission, outcome, now, settings)]
              })
            )
          )
        }
      )
    )

  const judgeError = <A, E>(exit: Exit.Exit<A, E>): Verdict =>
    exit._tag === "Success"
      ? success
      : Option.match(Cause.failureOption(exit.cause), { onNone: () => failure(undefined), onSome: resolved.verdict })

  return {
    key,
    protect: (effect) => protectWith(effect, judgeError),
    protectWith,
    snapshot: Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => Effect.map(Ref.get(ref), (s) => snapshotOf(key, s, now))
    ),
    isolate: change((state, now) => [undefined, State.isolate(state, now)]),
    reset: change((state) => [undefined, State.reset(state)])
  }
}

// An interruption's cause is rarely a bare `Interrupt` (e.g. `Sequential(Empty, Interrupt)`).
const isInterruptedOnly = <A, E>(exit: Exit.Exit<A, E>): boolean =>
  exit._tag === "Failure" && Cause.isInterruptedOnly(exit.cause)

/**
 * A single breaker, outside any registry; its changes go to `onTransition`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  key: string,
  options: Options = {},
  onTransition: (transition: Transition) => Effect.Effect<void> = () => Effect.void
): Effect.Effect<Breaker, InvalidOptions> =>
  Effect.map(resolve(options), (resolved) => makeBreaker(key, resolved, onTransition))

/**
 * The registry, every breaker built with `options` (per-key options through `perKey`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRegistry = (
  options: Options = {},
  perKey: (key: string) => Options | undefined = () => undefined
): Effect.Effect<Service, InvalidOptions> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options)
    const hub = yield* PubSub.sliding<Transition>(1024)
    const publish = (transition: Transition) => Effect.asVoid(PubSub.publish(hub, transition))
    const breakers = new Map<string, Breaker>()
    const create = (key: string): Effect.Effect<Breaker> => {
      const own = perKey(key)
      return own === undefined
        ? Effect.succeed(makeBreaker(key, resolved, publish))
        : Effect.orDie(Effect.map(resolve({ ...options, ...own }), (r) => makeBreaker(key, r, publish)))
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

/**
 * The registry as a Layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {},
  perKey?: (key: string) => Options | undefined
): Layer.Layer<CircuitBreaker, InvalidOptions> => Layer.effect(CircuitBreaker, makeRegistry(options, perKey))

/**
 * Runs `effect` through `breaker`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const protect: {
  (breaker: Breaker): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpen, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, breaker: Breaker): Effect.Effect<A, E | CircuitOpen, R>
} = dual(2, <A, E, R>(effect: Effect.Effect<A, E, R>, breaker: Breaker) => breaker.protect(effect))

/**
 * Answers with `fallback` when the breaker is open.
 *
 * @since 0.1.0
 * @category fallbacks
 */
export const orElse: {
  <A2, E2, R2>(
    fallback: (open: CircuitOpen) => Effect.Effect<A2, E2, R2>
  ): <A, E, R>(effect: Effect.Effect<A, E | CircuitOpen, R>) => Effect.Effect<A | A2, E | E2, R | R2>
  <A, E, R, A2, E2, R2>(
    effect: Effect.Effect<A, E | CircuitOpen, R>,
    fallback: (open: CircuitOpen) => Effect.Effect<A2, E2, R2>
  ): Effect.Effect<A | A2, E | E2, R | R2>
} = dual(2, <A, E, R, A2, E2, R2>(
  effect: Effect.Effect<A, E | CircuitOpen, R>,
  fallback: (open: CircuitOpen) => Effect.Effect<A2, E2, R2>
): Effect.Effect<A | A2, E | E2, R | R2> =>
  Effect.catchIf(effect, (error): error is CircuitOpen => error instanceof CircuitOpen, fallback))

/**
 * Remembers the last value `effect` succeeded with and serves it, with `stale: true`, while the
 * breaker is open; with nothing remembered yet the `CircuitOpen` stands.
 *
 * @since 0.1.0
 * @category fallbacks
 */
export const lastGood = <A, E, R>(
  effect: Effect.Effect<A, E | CircuitOpen, R>
): Effect.Effect<Effect.Effect<{ readonly value: A; readonly stale: boolean }, E | CircuitOpen, R>> =>
  Effect.map(Ref.make<{ readonly value: A } | undefined>(undefined), (last) =>
    effect.pipe(
      Effect.tap((value) => Ref.set(last, { value })),
      Effect.map((value) => ({ value, stale: false })),
      orElse((open) =>
        Effect.flatMap(Ref.get(last), (remembered) =>
          remembered === undefined ? Effect.fail(open) : Effect.succeed({ value: remembered.value, stale: true }))
      )
    ))
