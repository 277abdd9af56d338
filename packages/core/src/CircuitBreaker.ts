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
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Stream from "effect/Stream"
import * as HttpError from "./HttpError.js"
import type { CircuitOpen } from "./HttpError.js"
import * as internal from "./internal/circuitBreaker.js"
import { retryAfterMillis } from "./internal/retryAfter.js"
import type { InvalidOptions } from "./LiaisonError.js"

/**
 * @since 0.1.0
 * @category errors
 */
export { CircuitOpen } from "./HttpError.js"

/**
 * @since 0.1.0
 * @category models
 */
export type StateName = "Closed" | "Open" | "HalfOpen"

/**
 * What a finished call tells the breaker. `retryAfter` (milliseconds) sets how long it opens, if
 * this failure trips it. `openedBy` describes the failure for {@link CircuitOpen}'s `openedBy`
 * when this failure trips it (by default the breaker describes the call's error itself; a judge
 * that fails a successful value, e.g. a 503 response, says what it was).
 *
 * @since 0.1.0
 * @category models
 */
export type Verdict =
  | { readonly _tag: "Success" }
  | {
    readonly _tag: "Failure"
    readonly retryAfterMillis: number | undefined
    readonly openedBy?: HttpError.OpenedBy | undefined
  }

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
 * @category models
 */
export class CircuitBreaker extends Context.Tag("@liaison/core/CircuitBreaker")<CircuitBreaker, Service>() {}

const success: Verdict = { _tag: "Success" }
const failure = (retryAfter: number | undefined): Verdict => ({ _tag: "Failure", retryAfterMillis: retryAfter })

/**
 * Whether a response status is the upstream's failure: 5xx and 429.
 *
 * @since 0.1.0
 * @category guards
 */
export const isFailureStatus = (status: number): boolean => status >= 500 || status === 429

/**
 * The verdict on a response: 5xx and 429 are failures, carrying the `Retry-After` of a 429 or 503.
 *
 * @since 0.1.0
 * @category constructors
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
 * The default verdict on a failed call, from `HttpError.transience`: a `StatusError` by the
 * response rule ({@link verdictOfResponse}: 5xx and 429 are failures); a refusal on this side
 * (`RateLimited`, `RetryAfterTooLong`, `RetryBudgetExhausted`) is a success of the breaker (the
 * upstream is not at fault); otherwise a permanent error (a 4xx, an undecodable body, an invalid
 * request, a refused address) is a success (the upstream answered, or was never asked) and
 * anything else (transport errors, timeouts, an open breaker, any error that is not an
 * `HttpError`) a failure.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultVerdict = (error: unknown): Verdict => {
  if (HttpError.isHttpError(error)) {
    switch (error._tag) {
      case "StatusError":
        return verdictOfResponse(error.status, error.headers, Date.now())
      case "RateLimited":
      case "RetryAfterTooLong":
      case "RetryBudgetExhausted":
        return success
    }
  }
  return HttpError.transience(error) === "permanent" ? success : failure(undefined)
}

/**
 * The defaults of {@link Options}: trip on 5 consecutive failures, stay open 60 seconds (a
 * server's `Retry-After` up to 10 minutes), 2 probes; a failure-rate window needs 10 calls.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: {
  readonly failureThreshold: number
  readonly openDuration: Duration.Duration
  readonly maxOpenDuration: Duration.Duration
  readonly halfOpenProbes: number
  readonly minimumCalls: number
} = {
  failureThreshold: 5,
  openDuration: Duration.seconds(60),
  maxOpenDuration: Duration.minutes(10),
  halfOpenProbes: 2,
  minimumCalls: 10
}

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

const positiveInt = (name: string) =>
  optional(
    Config.integer(name).pipe(Config.validate({ message: "Expected an integer ≥ 1", validation: (n) => n >= 1 }))
  )

/**
 * The options from the environment: `BREAKER_FAILURE_THRESHOLD`, `BREAKER_HALF_OPEN_PROBES`
 * (integers ≥ 1), `BREAKER_OPEN_DURATION` (a duration). Unset variables stay undefined:
 * {@link make} fills in the {@link defaults}.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  failureThreshold: positiveInt("BREAKER_FAILURE_THRESHOLD"),
  openDuration: optional(Config.duration("BREAKER_OPEN_DURATION")),
  halfOpenProbes: positiveInt("BREAKER_HALF_OPEN_PROBES")
})

const resolve = (options: Options) => internal.resolve(options, defaults, defaultVerdict)

/**
 * A single breaker, outside any registry; its changes go to `onTransition`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeBreaker = (
  key: string,
  options: Options = {},
  onTransition: (transition: Transition) => Effect.Effect<void> = () => Effect.void
): Effect.Effect<Breaker, InvalidOptions> =>
  Effect.map(resolve(options), (resolved) => internal.makeBreaker(key, resolved, onTransition))

/**
 * The registry, every breaker built with `options` (per-key options through `perKey`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {},
  perKey: (key: string) => Options | undefined = () => undefined
): Effect.Effect<Service, InvalidOptions> =>
  Effect.map(internal.makeRegistry(options, perKey, resolve), (registry) => CircuitBreaker.of(registry.service))

/**
 * The registry as a Layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {},
  perKey?: (key: string) => Options | undefined
): Layer.Layer<CircuitBreaker, InvalidOptions> => Layer.effect(CircuitBreaker, make(options, perKey))

/**
 * {@link layer} with its options from `Config` (default {@link config}; the caller may name its
 * own variables).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<CircuitBreaker, InvalidOptions | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), (resolved) => layer(resolved)))

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
 * @category combinators
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
  Effect.catchIf(effect, (error): error is CircuitOpen => error instanceof HttpError.CircuitOpen, fallback))

/**
 * Remembers the last value `effect` succeeded with and serves it, with `stale: true`, while the
 * breaker is open; with nothing remembered yet the `CircuitOpen` stands.
 *
 * @since 0.1.0
 * @category combinators
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
