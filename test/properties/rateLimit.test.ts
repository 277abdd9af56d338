/**
 * Rate limits as invariants: in every window of the configured length a sliding window admits at
 * most `limit`; a token bucket admits at most `burst + rate × t` in any span `t`, so at most
 * `limit + burst − 1` in any window of its interval, and (GCRA) a queue of waiters is admitted
 * exactly on schedule, one interval apart after the burst, however the interval divides into
 * milliseconds. The memory store under TestClock with arbitrary arrival times; the Redis store in
 * real time, judged on the times Redis itself decided at (`TIME`), from one client and from four.
 */
import { describe, expect, it } from "@effect/vitest"
import { RateLimit, Redis } from "@liaison/core"
import { Clock, Duration, Effect, FastCheck as fc, Fiber, Redacted, Ref, TestClock } from "effect"
import type { Decision } from "../../packages/core/src/internal/rateLimitStore.js"
import * as Store from "../../packages/core/src/internal/rateLimitStore.js"
import { redisUrl } from "../setup/redisUrl.js"

/**
 * The most admissions in any window `[t, t + windowMillis)`, the times known to `resolution` ms: a
 * waiter wakes at its due time rounded up to a `Duration`'s nanosecond, so one due on an exact
 * window's edge may wake 1 ns after it while a later one, due exactly, does not.
 */
const busiestWindow = (times: ReadonlyArray<number>, windowMillis: number, resolution = 0): number => {
  const sorted = [...times].sort((a, b) => a - b)
  // Times a hair apart are one instant: an interval such as 41/3 ms, summed in floating point,
  // lands the fourth permit at 41.99999999999999 for an exact 42, a window's very edge.
  const edge = windowMillis - 1e-9 - resolution
  let most = 0
  let end = 0
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && sorted[end]! < sorted[start]! + edge) end++
    most = Math.max(most, end - start)
  }
  return most
}

/** Admissions in `(at - windowMillis, at]`. */
const admittedIn = (times: ReadonlyArray<number>, at: number, windowMillis: number) =>
  times.filter((t) => t > at - windowMillis && t <= at).length

/**
 * Whether every span between two admissions holds no more than `burst + rate × span` of them, the
 * times known to `resolution` ms (a waiter wakes at its due time rounded up to a `Duration`'s
 * nanosecond, so two wake-ups may be up to 1 ns closer than their due times).
 */
const withinBucket = (times: ReadonlyArray<number>, burst: number, perMilli: number, resolution = 0): boolean => {
  const sorted = [...times].sort((a, b) => a - b)
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i; j < sorted.length; j++) {
      if (j - i + 1 > burst + perMilli * (sorted[j]! - sorted[i]! + resolution) + 1e-9) return false
    }
  }
  return true
}

// ---------------------------------------------------------------------------------------------
// memory, TestClock

const SlidingRule = fc.record({ limit: fc.integer({ min: 1, max: 6 }), windowMillis: fc.integer({ min: 1, max: 200 }) })
const BucketRule = fc.record({
  limit: fc.integer({ min: 1, max: 5 }),
  intervalMillis: fc.integer({ min: 1, max: 200 }),
  burst: fc.integer({ min: 1, max: 6 })
})
/** Gaps between arrivals, in ms; 0 is a simultaneous arrival. */
const Gaps = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 120 })), { minLength: 1, maxLength: 40 })

/** Every TestClock adjustment yields to the event loop: fewer, richer runs keep the file fast. */
const memoryRuns = { fastCheck: { numRuns: 25 } }

/** Takes permits in fail mode at the given gaps; the TestClock times of admissions and of refusals. */
const arriveFailing = (rule: RateLimit.Rule, gaps: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const limiter = yield* RateLimit.RateLimit
    const admitted: Array<number> = []
    const refused: Array<number> = []
    for (const gap of gaps) {
      if (gap > 0) yield* TestClock.adjust(Duration.millis(gap))
      const now = yield* Clock.currentTimeMillis
      const taken = yield* Effect.either(limiter.acquire("key", rule, "fail"))
      ;(taken._tag === "Right" ? admitted : refused).push(now)
    }
    return { admitted, refused }
  }).pipe(Effect.provide(RateLimit.layerMemory()))

/** Every caller waits for its permit: arrival order and admission times. */
const arriveWaiting = (rule: RateLimit.Rule, gaps: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const limiter = yield* RateLimit.RateLimit
    const order = yield* Ref.make<Array<{ readonly caller: number; readonly at: number }>>([])
    let arrival = 0
    const fibers: Array<Fiber.RuntimeFiber<void, RateLimit.RateLimited>> = []
    for (const [caller, gap] of gaps.entries()) {
      // Strictly increasing arrival times: the queue order is then the arrival order.
      arrival += Math.max(1, gap)
      fibers.push(
        yield* Effect.fork(Effect.delay(
          Effect.flatMap(
            Effect.zipRight(limiter.acquire("key", rule, "wait"), Clock.currentTimeMillis),
            (at) => Ref.update(order, (list) => [...list, { caller, at }])
          ),
          Duration.millis(arrival)
        ))
      )
    }
    yield* TestClock.adjust(Duration.hours(1))
    yield* Fiber.joinAll(fibers)
    return yield* Ref.get(order)
  }).pipe(Effect.provide(RateLimit.layerMemory()))

describe("memory sliding window (TestClock)", () => {
  it.effect.prop(
    "in every window of the configured length, admitted ≤ limit; a refusal only when the window is full",
    [SlidingRule, Gaps],
    ([{ limit, windowMillis }, gaps]) =>
      Effect.gen(function*() {
        const { admitted, refused } = yield* arriveFailing(
          RateLimit.slidingWindow({ limit, window: windowMillis }),
          gaps
        )
        expect(busiestWindow(admitted, windowMillis)).toBeLessThanOrEqual(limit)
        // The log is exact: nothing is refused while the window has room.
        for (const at of refused) expect(admittedIn(admitted, at, windowMillis)).toBe(limit)
      }),
    memoryRuns
  )

  it.effect.prop(
    "wait mode: everyone is admitted, first come first served, never more than limit per window",
    [SlidingRule, Gaps],
    ([{ limit, windowMillis }, gaps]) =>
      Effect.gen(function*() {
        const order = yield* arriveWaiting(RateLimit.slidingWindow({ limit, window: windowMillis }), gaps)
        expect(order.map((entry) => entry.caller)).toEqual(gaps.map((_, i) => i))
        expect(busiestWindow(order.map((entry) => entry.at), windowMillis)).toBeLessThanOrEqual(limit)
      }),
    memoryRuns
  )
})

describe("memory token bucket (TestClock)", () => {
  it.effect("float noise is no wait: a full bucket of 3 per ms takes its 3 at once (a case the property found)", () =>
    Effect.gen(function*() {
      const { admitted } = yield* arriveFailing(RateLimit.tokenBucket({ limit: 3, interval: 1, burst: 3 }), [32, 0, 0])
      expect(admitted.length).toBe(3)
    }))

  it.effect.prop(
    "admitted in any span t ≤ burst + rate·t",
    [BucketRule, Gaps],
    ([{ burst, intervalMillis, limit }, gaps]) =>
      Effect.gen(function*() {
        const rule = RateLimit.tokenBucket({ limit, interval: intervalMillis, burst })
        const { admitted } = yield* arriveFailing(rule, gaps)
        expect(withinBucket(admitted, burst, limit / intervalMillis)).toBe(true)
        // A full bucket takes a burst at once.
        expect(admitted.length).toBeGreaterThanOrEqual(Math.min(burst, gaps.length))
      }),
    memoryRuns
  )

  it.effect.prop(
    "wait mode: everyone is admitted in arrival order, within burst + rate·t",
    [BucketRule, Gaps],
    ([{ burst, intervalMillis, limit }, gaps]) =>
      Effect.gen(function*() {
        const order = yield* arriveWaiting(RateLimit.tokenBucket({ limit, interval: intervalMillis, burst }), gaps)
        expect(order.map((entry) => entry.caller)).toEqual(gaps.map((_, i) => i))
        expect(withinBucket(order.map((entry) => entry.at), burst, limit / intervalMillis, 1e-6)).toBe(true)
      }),
    memoryRuns
  )
})

describe("memory token bucket, GCRA (TestClock)", () => {
  it.effect.prop(
    "in any window of the interval, admitted ≤ limit + burst − 1, in fail and in wait mode",
    [BucketRule, Gaps],
    ([{ burst, intervalMillis, limit }, gaps]) =>
      Effect.gen(function*() {
        const rule = RateLimit.tokenBucket({ limit, interval: intervalMillis, burst })
        const { admitted } = yield* arriveFailing(rule, gaps)
        expect(busiestWindow(admitted, intervalMillis)).toBeLessThanOrEqual(limit + burst - 1)
        const order = yield* arriveWaiting(rule, gaps)
        expect(busiestWindow(order.map((entry) => entry.at), intervalMillis, 1e-6)).toBeLessThanOrEqual(
          limit + burst - 1
        )
      }),
    memoryRuns
  )

  it.effect.prop(
    "waiters arriving together are admitted on schedule: the k-th at (k − burst) intervals, nothing lost to rounding",
    [BucketRule, fc.integer({ min: 1, max: 30 })],
    ([{ burst, intervalMillis, limit }, callers]) =>
      Effect.gen(function*() {
        const rule = RateLimit.tokenBucket({ limit, interval: intervalMillis, burst })
        const order = yield* arriveWaiting(rule, Array.from({ length: callers }, () => 0))
        // arriveWaiting spaces arrivals 1 ms apart: caller i arrives at i + 1.
        const interval = intervalMillis / limit
        order.forEach(({ at, caller }) => {
          const due = Math.max(caller + 1, 1 + Math.max(0, caller - burst + 1) * interval)
          expect(at).toBeGreaterThanOrEqual(due - 1e-9)
          // Never more than a nanosecond late (a Duration's resolution, plus float error), however many came before.
          expect(at - due).toBeLessThan(2e-6)
        })
      }),
    memoryRuns
  )
})

// ---------------------------------------------------------------------------------------------
// Redis, real time: the times are Redis' own (`TIME`), as the scripts saw them

const redisClient = Effect.flatMap(Effect.sync(redisUrl), (url) => Redis.make({ url: Redacted.make(url) }))

/** Bursts of simultaneous takes, `gap` ms apart: every decision. */
const hammer = (store: Store.Store, key: string, rule: Store.Rule, bursts: ReadonlyArray<Burst>) =>
  Effect.map(
    Effect.forEach(bursts, ({ gap, size }) =>
      Effect.zipRight(
        Effect.sleep(Duration.millis(gap)),
        Effect.all(Array.from({ length: size }, () => Effect.orDie(store.take(key, rule))), {
          concurrency: "unbounded"
        })
      )),
    (decisions) => decisions.flat()
  )

interface Burst {
  readonly gap: number
  readonly size: number
}

const Bursts = fc.array(fc.record({ gap: fc.integer({ min: 0, max: 40 }), size: fc.integer({ min: 1, max: 4 }) }), {
  minLength: 1,
  maxLength: 10
})

const times = (decisions: ReadonlyArray<Decision>, allowed: boolean) =>
  decisions.filter((d) => d.allowed === allowed).map((d) => d.nowMillis)

/** A generous wait for Redis: these properties judge the counting, not the fallback of a loaded machine. */
const storeOptions = { prefix: "liaison:test:ratelimit:", timeoutMillis: 10_000, heartbeatMillis: 1000 }

const uniqueKey = (name: string) => `${name}-${Math.random().toString(36).slice(2)}`

describe("Redis store (real time, Redis TIME)", () => {
  it.live.prop(
    "sliding window: in every window, admitted ≤ limit; a refusal only when the window is full",
    [fc.integer({ min: 1, max: 5 }), fc.integer({ min: 100, max: 300 }), Bursts],
    ([limit, windowMillis, bursts]) =>
      Effect.gen(function*() {
        const store = Store.makeRedis(yield* redisClient, storeOptions)
        const rule = RateLimit.slidingWindow({ limit, window: windowMillis })
        const decisions = yield* hammer(store, uniqueKey("sliding"), rule, bursts)
        const admitted = times(decisions, true)
        expect(busiestWindow(admitted, windowMillis)).toBeLessThanOrEqual(limit)
        for (const at of times(decisions, false)) expect(admittedIn(admitted, at, windowMillis)).toBe(limit)
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 8 } }
  )

  it.live.prop(
    "token bucket: admitted in any span t ≤ burst + rate·t",
    [fc.integer({ min: 1, max: 5 }), fc.integer({ min: 100, max: 300 }), fc.integer({ min: 1, max: 5 }), Bursts],
    ([limit, intervalMillis, burst, bursts]) =>
      Effect.gen(function*() {
        const store = Store.makeRedis(yield* redisClient, storeOptions)
        const rule = RateLimit.tokenBucket({ limit, interval: intervalMillis, burst })
        const decisions = yield* hammer(store, uniqueKey("bucket"), rule, bursts)
        expect(withinBucket(times(decisions, true), burst, limit / intervalMillis)).toBe(true)
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 8 } }
  )

  it.live.prop(
    "token bucket reservations (wait mode): one interval apart after the burst, ≤ limit + burst − 1 per interval",
    [fc.integer({ min: 1, max: 5 }), fc.integer({ min: 50, max: 200 }), fc.integer({ min: 1, max: 5 }), Bursts],
    ([limit, intervalMillis, burst, bursts]) =>
      Effect.gen(function*() {
        const store = Store.makeRedis(yield* redisClient, storeOptions)
        const rule = RateLimit.tokenBucket({ limit, interval: intervalMillis, burst })
        const key = uniqueKey("reserve")
        const decisions = (yield* Effect.forEach(bursts, ({ gap, size }) =>
          Effect.zipRight(
            Effect.sleep(Duration.millis(gap)),
            Effect.all(Array.from({ length: size }, () => Effect.orDie(store.reserve!(key, rule))), {
              concurrency: "unbounded"
            })
          ))).flat()
        expect(decisions.every((d) => d.allowed)).toBe(true)
        const due = times(decisions, true).sort((a, b) => a - b)
        // Redis keeps times to the microsecond.
        expect(withinBucket(due, burst, limit / intervalMillis, 1e-3)).toBe(true)
        expect(busiestWindow(due, intervalMillis - 1e-3)).toBeLessThanOrEqual(limit + burst - 1)
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 8 } }
  )

  it.live("four clients sharing one limit: in every window, admitted ≤ limit in total", () =>
    Effect.gen(function*() {
      const key = uniqueKey("shared")
      const limit = 5
      const windowMillis = 150
      const rule = RateLimit.slidingWindow({ limit, window: windowMillis })
      const clients = yield* Effect.all(Array.from({ length: 4 }, () => redisClient))
      expect(new Set(clients.map((redis) => redis.client)).size).toBe(4)
      const bursts = Array.from({ length: 12 }, (_, i) => ({ gap: 10 + (i % 3) * 7, size: 3 }))
      const decisions = (yield* Effect.all(
        clients.map((redis) => hammer(Store.makeRedis(redis, storeOptions), key, rule, bursts)),
        { concurrency: "unbounded" }
      )).flat()
      const admitted = times(decisions, true)
      expect(busiestWindow(admitted, windowMillis)).toBeLessThanOrEqual(limit)
      for (const at of times(decisions, false)) expect(admittedIn(admitted, at, windowMillis)).toBe(limit)
      // 144 takes over ~250 ms: the limit bit.
      expect(admitted.length).toBeLessThan(decisions.length)
    }).pipe(Effect.scoped))
})
