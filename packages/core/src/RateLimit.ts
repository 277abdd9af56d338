/**
 * Rate limiting per key: how many calls may start, shared by every fiber of a process (memory
 * store, the default) or by every instance (Redis store).
 *
 * - {@link tokenBucket}: `limit` permits per `interval`, bursts up to `burst`. In any span of
 *   time `t`, at most `burst + limit × t / interval` calls start; in any window of length
 *   `interval`, at most `limit + burst − 1`. Kept as GCRA: a waiter's permit is reserved when it
 *   arrives, so a waiter that wakes late costs the rate nothing.
 * - {@link slidingWindow}: a sliding log (each admitted call's time, kept for one window). It is
 *   exact, with no error bound to state: in every window of the configured length, at most
 *   `limit` calls start. The price is memory proportional to `limit` per key (a sliding-window
 *   counter would be O(1) but can overshoot by up to the previous window's share).
 * - Modes: `wait` (default) queues the caller, first come first served within a process (token
 *   buckets: the reserved permit; sliding windows: a per key `Semaphore` turnstile, where an
 *   interrupted waiter leaves the queue and gives its place back);
 *   `fail` fails fast with `RateLimited { retryAfterMillis }`.
 * - {@link makeAdaptive}: an AIMD limiter that halves its rate on a 429, grows it additively on
 *   success, and learns from `RateLimit-*` / `X-RateLimit-*` headers.
 * - Concurrency (how many calls run at once) is `FanOut.make`, a `Semaphore`.
 *
 * The counting is a {@link Store} (a Tag of its own): {@link layerStoreMemory} or
 * {@link layerStoreRedis}. The Redis store is atomic Lua on the shared ioredis client with Redis `TIME` as the clock (no
 * skew between instances), keys `liaison:ratelimit:{key}:…` (one Cluster slot per key), each
 * expiring. If Redis fails (or takes over 200 ms), the limiter falls back to a local limiter at
 * `limit / N` by default, N the live instances counted by a Redis heartbeat before the outage
 * (one warning per outage, a summary every 30 s, one line on recovery); `onStoreFailure: "allow"`
 * fails open, `"deny"` fails closed.
 * - Metrics `liaison_rate_limit_decisions_total` (key, outcome), `liaison_rate_limit_wait_seconds`
 *   (key), `liaison_rate_limit_fallback_total` (key), and a `liaison.rate_limit` span event. The
 *   `key` label is never the limit's key itself (it may be a person's id): `Policy` passes its
 *   host, a rule may carry a `name`, anything else is `"custom"`.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { RateLimited } from "./HttpError.js"
import * as Invalid from "./internal/invalidOptions.js"
import * as internal from "./internal/rateLimit.js"
import * as MemoryOrRedis from "./internal/rateLimitStore.js"
import type { InvalidOptions, StorageError } from "./LiaisonError.js"
import * as Redis from "./Redis.js"

/**
 * @since 0.1.0
 * @category errors
 */
export { RateLimited } from "./HttpError.js"

/**
 * A limit: a token bucket or a sliding window. Build one with {@link tokenBucket} or
 * {@link slidingWindow}.
 *
 * @since 0.1.0
 * @category models
 */
export type Rule =
  | {
    readonly _tag: "TokenBucket"
    /** The most tokens the bucket holds (the burst). */
    readonly capacity: number
    /** Tokens added per millisecond. */
    readonly refillPerMilli: number
    /** The `key` label of this rule's metrics when the caller gives none (see {@link Service.acquire}). */
    readonly name?: string | undefined
  }
  | {
    readonly _tag: "SlidingWindow"
    readonly limit: number
    readonly windowMillis: number
    /** The `key` label of this rule's metrics when the caller gives none (see {@link Service.acquire}). */
    readonly name?: string | undefined
  }

/**
 * `limit` permits per `interval`, refilled continuously; up to `burst` (default `limit`) at once.
 * Kept as GCRA (virtual scheduling): a waiter's permit is reserved when it arrives, so the rate
 * holds exactly however late waiters wake. In any window of length `interval` at most
 * `limit + burst − 1` calls start (`limit` with `burst: 1`). `name` labels its metrics.
 *
 * @since 0.1.0
 * @category constructors
 */
export const tokenBucket = (options: {
  readonly limit: number
  readonly interval: Duration.DurationInput
  readonly burst?: number | undefined
  readonly name?: string | undefined
}): Rule => ({
  _tag: "TokenBucket",
  capacity: options.burst ?? options.limit,
  refillPerMilli: options.limit / Duration.toMillis(Duration.decode(options.interval)),
  ...(options.name === undefined ? {} : { name: options.name })
})

/**
 * At most `limit` calls in any `window`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const slidingWindow = (options: {
  readonly limit: number
  readonly window: Duration.DurationInput
  readonly name?: string | undefined
}): Rule => ({
  _tag: "SlidingWindow",
  limit: options.limit,
  windowMillis: Duration.toMillis(Duration.decode(options.window)),
  ...(options.name === undefined ? {} : { name: options.name })
})

/**
 * Whether a rule can ever admit a call.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validate = (rule: Rule, option = "rateLimit"): Effect.Effect<Rule, InvalidOptions> => {
  const invalid = rule._tag === "TokenBucket"
    ? Invalid.check([
      [Number.isFinite(rule.capacity) && rule.capacity >= 1, `${option}.burst`, "must be ≥ 1"],
      [Number.isFinite(rule.refillPerMilli) && rule.refillPerMilli > 0, `${option}.limit`, "must be a positive rate"]
    ])
    : Invalid.check([
      [Number.isInteger(rule.limit) && rule.limit >= 1, `${option}.limit`, "must be an integer ≥ 1"],
      [rule.windowMillis >= 1, `${option}.window`, "must be at least 1 ms"]
    ])
  return invalid === undefined ? Effect.succeed(rule) : Effect.fail(invalid)
}

/**
 * @since 0.1.0
 * @category models
 */
export type Mode = "wait" | "fail"

/**
 * One key's state, for dashboards.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly key: string
  readonly algorithm: Rule["_tag"]
  readonly limit: number
  readonly remaining: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Takes a permit for `key` under `rule`: waits for one, or fails with `RateLimited` in `fail` mode.
   *
   * `label` is the `key` label of its metrics and span event. A key given directly may be a
   * person's id, which must never become a label: without `label`, the rule's `name` is used,
   * else the fixed `"custom"`. `Policy` passes its own key (the host).
   */
  readonly acquire: (key: string, rule: Rule, mode?: Mode, label?: string) => Effect.Effect<void, RateLimited>
  /** Every key used so far. */
  readonly snapshots: Effect.Effect<ReadonlyArray<Snapshot>>
}

/**
 * @since 0.1.0
 * @category models
 */
export class RateLimit extends Context.Tag("@liaison/core/RateLimit")<RateLimit, Service>() {}

/**
 * A store's answer to one request for a permit.
 *
 * @since 0.1.0
 * @category models
 */
export interface Decision {
  readonly allowed: boolean
  /** Permits left after this one. */
  readonly remaining: number
  /** When asking again may succeed; 0 when allowed. */
  readonly retryAfterMillis: number
  /** The store's clock when it decided. */
  readonly nowMillis: number
}

/**
 * The counting behind a limiter: every operation atomic per key.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreService {
  /** Takes a permit for `key` under `rule`, if there is one. */
  readonly take: (key: string, rule: Rule) => Effect.Effect<Decision, StorageError>
  /** Permits left for `key`, without taking one. */
  readonly remaining: (key: string, rule: Rule) => Effect.Effect<number, StorageError>
  /**
   * Token buckets: takes the next permit for `key` now, due `retryAfterMillis` from now
   * (`nowMillis` is when). Wait mode then sleeps that long instead of asking again, so the
   * schedule never slips when a waiter wakes late. Optional: without it, wait mode polls `take`.
   */
  readonly reserve?: ((key: string, rule: Rule) => Effect.Effect<Decision, StorageError>) | undefined
  /**
   * How many instances share this store, as last learned (1 in memory). While the store fails,
   * the limiter's local fallback allows each instance `limit / instances`.
   */
  readonly instances?: (() => number) | undefined
}

/**
 * The backend of {@link RateLimit}: {@link layerStoreMemory} or {@link layerStoreRedis}.
 *
 * @since 0.1.0
 * @category models
 */
export class Store extends Context.Tag("@liaison/core/RateLimit/Store")<Store, StoreService>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * What to do when the store fails (Redis down): `local` (default) limits each instance to
   * `limit / N` in memory, N the live instances last counted by the Redis heartbeat; `allow`
   * lets calls through (fail open); `deny` refuses them (fail closed).
   */
  readonly onStoreFailure?: "local" | "allow" | "deny" | undefined
}

/**
 * The defaults: calls wait for a permit, a failing store falls back to this instance's share of
 * each limit (a limiter must not take the application down with it, nor let every call through),
 * Redis keys under `liaison:ratelimit:`, a Redis decision waited for at most 200 ms, a heartbeat
 * every second; the adaptive
 * limiter between 1 per second and 10 × its initial rate, +1 per second, × 0.5 on a 429.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: {
  readonly mode: Mode
  readonly onStoreFailure: "local" | "allow" | "deny"
  readonly prefix: string
  /** The Redis store's longest wait for a decision before the fallback takes it. */
  readonly storeTimeoutMillis: number
  /** How often each instance refreshes its heartbeat (gone after three missed). */
  readonly heartbeatMillis: number
  readonly adaptive: {
    readonly min: number
    /** `max` is `initial` times this. */
    readonly maxOverInitial: number
    readonly increase: number
    readonly decrease: number
  }
} = {
  mode: "wait",
  onStoreFailure: "local",
  prefix: "liaison:ratelimit:",
  storeTimeoutMillis: 200,
  heartbeatMillis: 1000,
  adaptive: { min: 1, maxOverInitial: 10, increase: 1, decrease: 0.5 }
}

/**
 * The options from the environment: `RATE_LIMIT_ON_STORE_FAILURE` (`local`, `allow` or `deny`). Unset, it
 * stays undefined: {@link make} fills in the {@link defaults}.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  onStoreFailure: Config.map(
    Config.option(Config.literal("local", "allow", "deny")("RATE_LIMIT_ON_STORE_FAILURE")),
    Option.getOrUndefined
  )
})

/**
 * A limiter over the {@link Store} in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, Store> =>
  Effect.map(
    Store,
    (store) => RateLimit.of(internal.make(store, options.onStoreFailure ?? defaults.onStoreFailure, defaults.mode))
  )

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<RateLimit, never, Store> =>
  Layer.effect(RateLimit, make(options))

/**
 * {@link layer} with its options from `Config` (default {@link config}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<RateLimit, ConfigError.ConfigError, Store> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))

/**
 * In-process counting: the embedded default. Time is the `Clock`'s (so `TestClock` drives it).
 * Each build has its own counters: two applications (or two tests) in one process never share them.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreMemory: Layer.Layer<Store> = Layer.sync(Store, () => Store.of(MemoryOrRedis.makeMemory()))

/**
 * Counting in Redis on the shared {@link Redis.Redis}, for every instance using the same
 * `prefix` (default `liaison:ratelimit:`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreRedis = (options: RedisStoreOptions = {}): Layer.Layer<Store, never, Redis.Redis> =>
  Layer.scoped(
    Store,
    Effect.flatMap(Redis.Redis, (redis) => {
      const heartbeatMillis = options.heartbeatMillis ?? defaults.heartbeatMillis
      const store = MemoryOrRedis.makeRedis(redis, {
        prefix: options.prefix ?? defaults.prefix,
        timeoutMillis: options.timeoutMillis ?? defaults.storeTimeoutMillis,
        heartbeatMillis
      })
      // The first beat before the store is used (N known from the start), then one per interval;
      // a failed beat keeps the last count, which is what the fallback needs while Redis is down.
      return Effect.as(
        Effect.zipRight(
          Effect.ignore(store.beat),
          Effect.zipRight(
            Effect.forkScoped(
              Effect.repeat(Effect.ignore(store.beat), Schedule.spaced(Duration.millis(heartbeatMillis)))
            ),
            Effect.addFinalizer(() => Effect.ignore(store.leave))
          )
        ),
        Store.of(store)
      )
    })
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisStoreOptions {
  /** Key prefix, default `liaison:ratelimit:`; every instance sharing limits uses the same. */
  readonly prefix?: string | undefined
  /** Longest wait for Redis' decision before the fallback decides (default 200 ms). */
  readonly timeoutMillis?: number | undefined
  /** How often this instance says it is alive (default 1 s); gone after three missed beats. */
  readonly heartbeatMillis?: number | undefined
}

/**
 * In-process limits: {@link layer} over {@link layerStoreMemory}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Options = {}): Layer.Layer<RateLimit> =>
  layer(options).pipe(Layer.provide(layerStoreMemory))

/**
 * Limits shared through Redis: {@link layer} over {@link layerStoreRedis}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (
  options: Options & RedisStoreOptions = {}
): Layer.Layer<RateLimit, never, Redis.Redis> => layer(options).pipe(Layer.provide(layerStoreRedis(options)))

/**
 * Runs `effect` once a permit for `key` is taken (`mode` default `wait`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const limit: {
  (
    key: string,
    rule: Rule,
    mode?: Mode
  ): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | RateLimited, R | RateLimit>
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    rule: Rule,
    mode?: Mode
  ): Effect.Effect<A, E | RateLimited, R | RateLimit>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    key: string,
    rule: Rule,
    mode?: Mode
  ): Effect.Effect<A, E | RateLimited, R | RateLimit> =>
    Effect.zipRight(Effect.flatMap(RateLimit, (limiter) => limiter.acquire(key, rule, mode)), effect)
)

// ---------------------------------------------------------------------------------------------
// adaptive

/**
 * @since 0.1.0
 * @category models
 */
export interface AdaptiveOptions {
  /** Calls per second to start with. */
  readonly initial: number
  /** Never below this. Default 1 per second. */
  readonly min?: number | undefined
  /** Never above this. Default `initial × 10`. */
  readonly max?: number | undefined
  /** Added per second's worth of successes (additive increase). Default 1. */
  readonly increase?: number | undefined
  /** The rate is multiplied by this on a 429 (multiplicative decrease). Default 0.5. */
  readonly decrease?: number | undefined
}

/**
 * An adaptive limiter: call `acquire` before a call, `observe` with its answer after.
 *
 * @since 0.1.0
 * @category models
 */
export interface Adaptive {
  readonly acquire: (mode?: Mode) => Effect.Effect<void, RateLimited>
  readonly observe: (status: number, headers: Readonly<Record<string, string | undefined>>) => Effect.Effect<void>
  /** The current rate, calls per second, and until when calls are held (ms since the epoch, 0 if not). */
  readonly state: Effect.Effect<{ readonly ratePerSecond: number; readonly pausedUntilMillis: number }>
}

/**
 * AIMD: a 429 multiplies the rate by `decrease` and holds calls for its `Retry-After`; every
 * other answer adds `increase / rate` (so `increase` per second at full speed). `RateLimit-Remaining`
 * with `RateLimit-Reset` (or the `X-` forms) cap the rate at remaining ÷ seconds to reset, and a
 * remaining of 0 holds calls until the reset.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeAdaptive = (options: AdaptiveOptions): Effect.Effect<Adaptive, InvalidOptions> =>
  internal.makeAdaptive(options, defaults.adaptive)
