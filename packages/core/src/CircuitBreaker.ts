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
 * The state is per process by default. The shared breaker ({@link layerRedis}, or {@link layerShared}
 * over any {@link Store}) keeps the local breaker as the fast path and makes a cluster of it: a
 * trip is published to every instance (Redis pub/sub), one instance at a time probes (a lease),
 * an optional quorum keeps one instance with a bad network from opening it for all, and with
 * Redis down each instance falls back to its local breaker without waiting.
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
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as HttpError from "./HttpError.js"
import type { CircuitOpen } from "./HttpError.js"
import * as internal from "./internal/circuitBreaker.js"
import * as shared from "./internal/circuitBreaker/shared.js"
import * as stores from "./internal/circuitBreaker/store.js"
import { retryAfterMillis } from "./internal/retryAfter.js"
import type { InvalidOptions, StorageError } from "./LiaisonError.js"
import * as Redis from "./Redis.js"

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
 * (integers ≥ 1), `BREAKER_OPEN_DURATION` (a duration), and for the shared breaker
 * `BREAKER_QUORUM` (an integer ≥ 1) and `BREAKER_QUORUM_WINDOW` (a duration). Unset variables
 * stay undefined: {@link make} fills in the {@link defaults} ({@link sharedDefaults}).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<SharedOptions> = Config.all({
  failureThreshold: positiveInt("BREAKER_FAILURE_THRESHOLD"),
  openDuration: optional(Config.duration("BREAKER_OPEN_DURATION")),
  halfOpenProbes: positiveInt("BREAKER_HALF_OPEN_PROBES"),
  quorum: positiveInt("BREAKER_QUORUM"),
  quorumWindow: optional(Config.duration("BREAKER_QUORUM_WINDOW"))
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

// ---------------------------------------------------------------------------------------------
// The shared breaker

/**
 * A cluster-wide decision about one breaker, as every instance receives it.
 *
 * @since 0.1.0
 * @category models
 */
export type SharedEvent =
  | {
    readonly _tag: "Open"
    readonly key: string
    /** How long it stays open from now. */
    readonly millis: number
    /** The instance that decided. */
    readonly origin: string
    readonly openedBy?: HttpError.OpenedBy | undefined
  }
  | { readonly _tag: "Closed"; readonly key: string; readonly origin: string }

/**
 * Where the cluster's view of each breaker lives and how its decisions reach every instance.
 * `reportTrip` and `settle` only send (they must not hold up a call); `acquireProbe` is the one
 * question a call waits for, and the shared breaker bounds that wait.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreService {
  /** This instance tripped: open cluster-wide for `millis` once `quorum` instances reported a trip within `windowMillis`. */
  readonly reportTrip: (key: string, trip: {
    readonly instance: string
    readonly millis: number
    readonly quorum: number
    readonly windowMillis: number
    readonly openedBy?: HttpError.OpenedBy | undefined
  }) => Effect.Effect<void, StorageError>
  /** The probe lease: `undefined` when `instance` holds it now, else the holder's remaining milliseconds. */
  readonly acquireProbe: (
    key: string,
    instance: string,
    leaseMillis: number
  ) => Effect.Effect<number | undefined, StorageError>
  /** A probe's verdict, the cluster's at once: closed, or open again for `millis`; frees the lease. */
  readonly settle: (
    key: string,
    verdict:
      | { readonly _tag: "Closed"; readonly instance: string }
      | {
        readonly _tag: "Open"
        readonly instance: string
        readonly millis: number
        readonly openedBy?: HttpError.OpenedBy | undefined
      }
  ) => Effect.Effect<void, StorageError>
  /** Whether the breaker is open cluster-wide now, and for how long. */
  readonly current: (
    key: string
  ) => Effect.Effect<
    { readonly millis: number; readonly openedBy: HttpError.OpenedBy | undefined } | undefined,
    StorageError
  >
  /** Delivers every decision to `handler` while the scope is open. */
  readonly subscribe: (handler: (event: SharedEvent) => Effect.Effect<void>) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * The backend of the shared breaker: {@link layerStoreMemory} or {@link layerStoreRedis}.
 *
 * @since 0.1.0
 * @category models
 */
export class Store extends Context.Tag("@liaison/core/CircuitBreaker/Store")<Store, StoreService>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface SharedOptions extends Options {
  /** This instance's name in the cluster. Default a random UUID. */
  readonly instance?: string | undefined
  /** Instances that must report a trip within `quorumWindow` before it opens cluster-wide. Default 1. */
  readonly quorum?: number | undefined
  /** Default 10 seconds. */
  readonly quorumWindow?: Duration.DurationInput | undefined
  /** How long the cluster's probe belongs to the instance that took it. Default 10 seconds. */
  readonly probeLease?: Duration.DurationInput | undefined
  /** The longest a call waits for the store (for the probe lease); then the local breaker decides. Default 100 ms. */
  readonly storeTimeout?: Duration.DurationInput | undefined
}

/**
 * The defaults of {@link SharedOptions}, and the Redis store's key prefix.
 *
 * @since 0.1.0
 * @category constants
 */
export const sharedDefaults: {
  readonly quorum: number
  readonly quorumWindow: Duration.Duration
  readonly probeLease: Duration.Duration
  readonly storeTimeout: Duration.Duration
  readonly prefix: string
} = {
  quorum: 1,
  quorumWindow: Duration.seconds(10),
  probeLease: Duration.seconds(10),
  storeTimeout: Duration.millis(100),
  prefix: "liaison:breaker:"
}

/**
 * The shared registry over the {@link Store} in context; its subscription lasts as long as the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeShared = (
  options: SharedOptions = {},
  perKey: (key: string) => Options | undefined = () => undefined
): Effect.Effect<Service, InvalidOptions, Store | Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* shared.resolveShared(options, sharedDefaults)
    const store = yield* Store
    return CircuitBreaker.of(yield* shared.makeRegistry(options, perKey, resolve, settings, store))
  })

/**
 * The shared registry as a Layer, over the {@link Store} in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerShared = (
  options: SharedOptions = {},
  perKey?: (key: string) => Options | undefined
): Layer.Layer<CircuitBreaker, InvalidOptions, Store> => Layer.scoped(CircuitBreaker, makeShared(options, perKey))

/**
 * A store in this process: registries built on the same one behave as instances of a cluster
 * (time is the `Clock`'s, so `TestClock` drives it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreMemory: Layer.Layer<Store> = Layer.sync(Store, () => Store.of(stores.makeMemory()))

/**
 * The store in Redis on the shared {@link Redis.Redis}, for every instance using the same `prefix`
 * (default `liaison:breaker:`): atomic Lua with Redis `TIME` as the clock, every key expiring,
 * decisions on the channel `<prefix>changes` (its own connection, a duplicate of the shared one).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreRedis = (
  options: { readonly prefix?: string | undefined } = {}
): Layer.Layer<Store, never, Redis.Redis> =>
  Layer.effect(
    Store,
    Effect.flatMap(Redis.Redis, (redis) =>
      Effect.map(stores.makeRedis(redis, options.prefix ?? sharedDefaults.prefix), Store.of))
  )

/**
 * The shared breaker on Redis: {@link layerShared} over {@link layerStoreRedis}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (
  options: SharedOptions & { readonly prefix?: string | undefined } = {},
  perKey?: (key: string) => Options | undefined
): Layer.Layer<CircuitBreaker, InvalidOptions, Redis.Redis> =>
  layerShared(options, perKey).pipe(Layer.provide(layerStoreRedis(options)))
