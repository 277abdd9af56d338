/**
 * Rate limiting per key: how many calls may start, shared by every fiber of a process (memory
 * store, the default) or by every instance (Redis store).
 *
 * - {@link tokenBucket}: `limit` permits per `interval`, bursts up to `burst`. In any span of
 *   time `t`, at most `burst + limit × t / interval` calls start.
 * - {@link slidingWindow}: a sliding log (each admitted call's time, kept for one window). It is
 *   exact, with no error bound to state: in every window of the configured length, at most
 *   `limit` calls start. The price is memory proportional to `limit` per key (a sliding-window
 *   counter would be O(1) but can overshoot by up to the previous window's share).
 * - Modes: `wait` (default) queues the caller, first come first served within a process (a per
 *   key `Semaphore` turnstile: an interrupted waiter leaves the queue and gives its place back);
 *   `fail` fails fast with `RateLimited { retryAfterMillis }`.
 * - {@link makeAdaptive}: an AIMD limiter that halves its rate on a 429, grows it additively on
 *   success, and learns from `RateLimit-*` / `X-RateLimit-*` headers.
 * - Concurrency (how many calls run at once) is `FanOut.makeLimiter`, a `Semaphore`.
 *
 * The Redis store is atomic Lua on the shared ioredis client with Redis `TIME` as the clock (no
 * skew between instances), keys `liaison:ratelimit:{key}:…` (one Cluster slot per key), each
 * expiring. If Redis fails, the limiter fails open by default (calls proceed, a warning is
 * logged) — a limiter must not take the application down with it; `onStoreFailure: "deny"`
 * fails closed instead.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import { RateLimited } from "./HttpError.js"
import { withoutStack } from "./internal/fastError.js"
import * as Invalid from "./internal/invalidOptions.js"
import * as Store from "./internal/rateLimitStore.js"
import { retryAfterMillis } from "./internal/retryAfter.js"
import * as Redis from "./Redis.js"

/**
 * @since 0.1.0
 * @category errors
 */
export { RateLimited } from "./HttpError.js"

/**
 * @since 0.1.0
 * @category errors
 */
export { InvalidOptions } from "./internal/invalidOptions.js"

/**
 * A limit: a token bucket or a sliding window. Build one with {@link tokenBucket} or
 * {@link slidingWindow}.
 *
 * @since 0.1.0
 * @category models
 */
export type Rule = Store.Rule

/**
 * `limit` permits per `interval`, refilled continuously; up to `burst` (default `limit`) at once.
 *
 * @since 0.1.0
 * @category rules
 */
export const tokenBucket = (options: {
  readonly limit: number
  readonly interval: Duration.DurationInput
  readonly burst?: number | undefined
}): Rule => ({
  _tag: "TokenBucket",
  capacity: options.burst ?? options.limit,
  refillPerMilli: options.limit / Duration.toMillis(Duration.decode(options.interval))
})

/**
 * At most `limit` calls in any `window`.
 *
 * @since 0.1.0
 * @category rules
 */
export const slidingWindow = (options: { readonly limit: number; readonly window: Duration.DurationInput }): Rule => ({
  _tag: "SlidingWindow",
  limit: options.limit,
  windowMillis: Duration.toMillis(Duration.decode(options.window))
})

/**
 * Whether a rule can ever admit a call.
 *
 * @since 0.1.0
 * @category rules
 */
export const validate = (rule: Rule, option = "rateLimit"): Effect.Effect<Rule, Invalid.InvalidOptions> => {
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
  /** Takes a permit for `key` under `rule`: waits for one, or fails with `RateLimited` in `fail` mode. */
  readonly acquire: (key: string, rule: Rule, mode?: Mode) => Effect.Effect<void, RateLimited>
  /** Every key used so far. */
  readonly snapshots: Effect.Effect<ReadonlyArray<Snapshot>>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class RateLimiter extends Context.Tag("@liaison/core/RateLimit")<RateLimiter, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface StoreOptions {
  /** What to do when the store fails (Redis down): let calls through (default) or refuse them. */
  readonly onStoreFailure?: "allow" | "deny" | undefined
}

const makeService = (store: Store.Store, options: StoreOptions): Effect.Effect<Service> =>
  Effect.sync(() => {
    const turnstiles = new Map<string, Effect.Semaphore>()
    const rules = new Map<string, Rule>()
    const turnstile = (key: string) => {
      let semaphore = turnstiles.get(key)
      if (semaphore === undefined) {
        semaphore = Effect.unsafeMakeSemaphore(1)
        turnstiles.set(key, semaphore)
      }
      return semaphore
    }
    const take = (key: string, rule: Rule) =>
      store.take(key, rule).pipe(
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning(
              `rate limiter store failed; ${options.onStoreFailure === "deny" ? "denying" : "allowing"}`,
              error.message
            ),
            {
              allowed: options.onStoreFailure !== "deny",
              remaining: 0,
              retryAfterMillis: 1000,
              nowMillis: 0
            } satisfies Store.Decision
          )
        )
      )
    const waitFor = (key: string, rule: Rule): Effect.Effect<void> =>
      Effect.flatMap(take(key, rule), (decision) =>
        decision.allowed
          ? Effect.void
          : Effect.zipRight(Effect.sleep(Duration.millis(Math.max(1, decision.retryAfterMillis))), waitFor(key, rule)))
    return {
      acquire: (key, rule, mode = "wait") => {
        rules.set(key, rule)
        return mode === "fail"
          ? Effect.flatMap(take(key, rule), (decision) =>
            decision.allowed
              ? Effect.void
              : Effect.fail(
                withoutStack(() => new RateLimited({ key, retryAfterMillis: decision.retryAfterMillis }, true))
              ))
          // One waiter per key at the head of the line; the rest queue on the turnstile in order.
          : turnstile(key).withPermits(1)(waitFor(key, rule))
      },
      snapshots: Effect.suspend(() =>
        Effect.forEach([...rules], ([key, rule]) =>
          Effect.map(
            Effect.orElseSucceed(store.remaining(key, rule), () => 0),
            (remaining): Snapshot => ({ key, algorithm: rule._tag, limit: Store.limitOf(rule), remaining })
          ))
      )
    }
  })

/**
 * In-process limits: the embedded default. Time is the `Clock`'s (so `TestClock` drives it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<RateLimiter> = Layer.effect(
  RateLimiter,
  // A store per layer build: two applications (or two tests) in one process never share counters.
  Effect.suspend(() => makeService(Store.makeMemory(), {}))
)

/**
 * Limits shared through Redis by every instance using the same `prefix` (default
 * `liaison:ratelimit:`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (
  options: StoreOptions & { readonly prefix?: string | undefined } = {}
): Layer.Layer<RateLimiter, never, Redis.Redis> =>
  Layer.effect(
    RateLimiter,
    Effect.flatMap(Redis.Redis, (redis) =>
      makeService(Store.makeRedis(redis, options.prefix ?? "liaison:ratelimit:"), options))
  )

/**
 * Runs `effect` once a permit for `key` is taken.
 *
 * @since 0.1.0
 * @category combinators
 */
export const limit = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  key: string,
  rule: Rule,
  mode: Mode = "wait"
): Effect.Effect<A, E | RateLimited, R | RateLimiter> =>
  Effect.zipRight(Effect.flatMap(RateLimiter, (limiter) => limiter.acquire(key, rule, mode)), effect)

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

interface AdaptiveState {
  readonly rate: number
  /** The header-learned ceiling, if any. */
  readonly ceiling: number
  readonly tokens: number
  readonly at: number
  readonly pausedUntil: number
}

const header = (headers: Readonly<Record<string, string | undefined>>, name: string): number | undefined => {
  const value = headers[`ratelimit-${name}`] ?? headers[`x-ratelimit-${name}`]
  if (value === undefined) return undefined
  const n = Number(value.split(/[;,]/, 1)[0])
  return Number.isFinite(n) && n >= 0 ? n : undefined
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
export const makeAdaptive = (options: AdaptiveOptions): Effect.Effect<Adaptive, Invalid.InvalidOptions> => {
  const min = options.min ?? 1
  const max = options.max ?? options.initial * 10
  const increase = options.increase ?? 1
  const decrease = options.decrease ?? 0.5
  const invalid = Invalid.check([
    [options.initial > 0, "initial", "must be positive"],
    [min > 0 && min <= options.initial && options.initial <= max, "min/max", "need 0 < min ≤ initial ≤ max"],
    [increase > 0, "increase", "must be positive"],
    [decrease > 0 && decrease < 1, "decrease", "must be in (0, 1)"]
  ])
  if (invalid !== undefined) return Effect.fail(invalid)
  return Effect.map(Clock.currentTimeMillis, (now) => {
    const ref = Ref.unsafeMake<AdaptiveState>({
      rate: options.initial,
      ceiling: max,
      tokens: 1,
      at: now,
      pausedUntil: 0
    })
    const gate = Effect.unsafeMakeSemaphore(1)
    /** Takes a token, or says how long until one. */
    const take = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Ref.modify(ref, (s): [number, AdaptiveState] => {
        if (now < s.pausedUntil) return [s.pausedUntil - now, s]
        const rate = Math.min(s.rate, s.ceiling)
        // At most one second's worth of burst.
        const tokens = Math.min(Math.max(1, rate), s.tokens + ((now - s.at) / 1000) * rate)
        return tokens >= 1
          ? [0, { ...s, tokens: tokens - 1, at: now }]
          : [Math.ceil(((1 - tokens) / rate) * 1000), { ...s, tokens, at: now }]
      }))
    const waitFor: Effect.Effect<void> = Effect.flatMap(
      take,
      (wait) => wait === 0 ? Effect.void : Effect.zipRight(Effect.sleep(Duration.millis(wait)), waitFor)
    )
    return {
      acquire: (mode = "wait") =>
        mode === "fail"
          ? Effect.flatMap(take, (wait) =>
            wait === 0
              ? Effect.void
              : Effect.fail(withoutStack(() => new RateLimited({ key: "adaptive", retryAfterMillis: wait }, true))))
          : gate.withPermits(1)(waitFor),
      observe: (status, headers) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Ref.update(ref, (s) => {
            const remaining = header(headers, "remaining")
            const resetMillis = retryAfterMillis(
              { "ratelimit-reset": headers["ratelimit-reset"], "x-ratelimit-reset": headers["x-ratelimit-reset"] },
              now
            )
            const learned = remaining !== undefined && resetMillis !== undefined && resetMillis > 0
              ? Math.max(min, remaining / (resetMillis / 1000))
              : s.ceiling
            const exhausted = remaining === 0 && resetMillis !== undefined ? now + resetMillis : 0
            if (status === 429) {
              const wait = retryAfterMillis(headers, now) ?? 0
              return {
                ...s,
                rate: Math.max(min, s.rate * decrease),
                ceiling: learned,
                // Empty from now: the time since the last call must not refill it into a burst.
                tokens: 0,
                at: now,
                pausedUntil: Math.max(s.pausedUntil, now + wait, exhausted)
              }
            }
            return {
              ...s,
              rate: Math.min(max, s.rate + increase / s.rate),
              ceiling: learned,
              pausedUntil: Math.max(s.pausedUntil, exhausted)
            }
          })),
      state: Effect.map(
        Ref.get(ref),
        (s) => ({ ratePerSecond: Math.min(s.rate, s.ceiling), pausedUntilMillis: s.pausedUntil })
      )
    }
  })
}
