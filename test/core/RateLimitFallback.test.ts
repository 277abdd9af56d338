/**
 * Redis down degrades well: with a real redis-server killed, every acquire is decided at once by
 * the local fallback at `limit / N` (N the live instances the Redis heartbeat counted before the
 * outage), the outage is one warning, and the limiter goes back to Redis when it returns. The local
 * rates themselves under TestClock, on a store that fails on demand.
 */
import { describe, expect, it } from "@effect/vitest"
import { LiaisonError, RateLimit, Redis } from "@liaison/core"
import { Duration, Effect, Either, Fiber, Layer, List, Logger, Redacted, Ref, TestClock } from "effect"
import { privateRedis } from "../fixtures/redisServer.js"
import { testPrefix } from "../setup/redisUrl.js"

/** Log lines as `LEVEL message`. */
const recordLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    const text = List.isList(message)
      ? List.toArray(message).join(" ")
      : Array.isArray(message)
      ? message.join(" ")
      : String(message)
    lines.push(`${logLevel.label} ${text}`)
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** One instance: its own Redis client, store and limiter; the store is returned to read its instance count. */
const instance = (url: string, prefix: string) =>
  Effect.gen(function*() {
    const redis = yield* Layer.build(Redis.layer({ url: Redacted.make(url) }))
    const store = yield* Layer.build(
      RateLimit.layerStoreRedis({ prefix, heartbeatMillis: 50 }).pipe(Layer.provide(Layer.succeedContext(redis)))
    )
    const limiter = yield* RateLimit.make().pipe(Effect.provide(store))
    return { limiter, store: (yield* Effect.provide(RateLimit.Store, store)) }
  })

const outcomes = (limiter: RateLimit.Service, key: string, rule: RateLimit.Rule, n: number) =>
  Effect.map(
    Effect.forEach(Array.from({ length: n }), () => Effect.either(limiter.acquire(key, rule, "fail"))),
    (results) => results.filter(Either.isRight).length
  )

/** The longest a single fail-mode acquire took, in real milliseconds. */
const slowest = (limiter: RateLimit.Service, key: string, rule: RateLimit.Rule, n: number) =>
  Effect.gen(function*() {
    let most = 0
    for (let i = 0; i < n; i++) {
      const start = performance.now()
      yield* Effect.either(limiter.acquire(key, rule, "fail"))
      most = Math.max(most, performance.now() - start)
    }
    return most
  })

describe("RateLimit, Redis killed", () => {
  it.live("decides locally at limit / N within milliseconds, logs the outage once, and goes back to Redis", () => {
    const logs = recordLogs()
    return Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => privateRedis()),
        (s) => Effect.promise(s.dispose)
      )
      const prefix = testPrefix("ratelimit-fallback")
      const a = yield* instance(server.url, prefix)
      const b = yield* instance(server.url, prefix)
      // Both heartbeats seen by both instances.
      for (let i = 0; i < 100 && (a.store.instances?.() !== 2 || b.store.instances?.() !== 2); i++) {
        yield* Effect.sleep("20 millis")
      }
      expect([a.store.instances?.(), b.store.instances?.()]).toEqual([2, 2])

      const window = RateLimit.slidingWindow({ limit: 10, window: "1 minute" })
      const bucket = RateLimit.tokenBucket({ limit: 10, interval: "1 minute", burst: 4 })
      // Up: one shared limit of 10 for both.
      expect((yield* outcomes(a.limiter, "up", window, 8)) + (yield* outcomes(b.limiter, "up", window, 8))).toBe(10)

      yield* Effect.promise(server.stop)
      // Down: every decision at once (the first one included), each instance its half of the limit.
      expect(yield* slowest(a.limiter, "first", window, 1)).toBeLessThan(200)
      expect(yield* slowest(a.limiter, "slow", bucket, 200)).toBeLessThan(200)
      expect(yield* outcomes(a.limiter, "window", window, 10)).toBe(5)
      expect(yield* outcomes(b.limiter, "window", window, 10)).toBe(5)
      expect(yield* outcomes(a.limiter, "bucket", bucket, 10)).toBe(2)
      const refused = yield* Effect.flip(a.limiter.acquire("bucket", bucket, "fail"))
      // Locally 5 per minute: a token every 12 s (less the real milliseconds since the last one).
      expect(refused.retryAfterMillis).toBeGreaterThan(11_000)
      expect(refused.retryAfterMillis).toBeLessThanOrEqual(12_000)
      const warnings = logs.lines.filter((line) => line.startsWith("WARN"))
      // One line per instance for the whole outage (a and b log through the same logger here).
      expect(warnings, logs.lines.join("\n")).toHaveLength(2)
      expect(warnings[0]).toContain("rate limiter: store failed, limiting locally to 1/2 of each limit")

      yield* Effect.promise(server.start)
      // Back: the client reconnects on its own; the next decisions are Redis' again (its log restarted empty).
      const recoveries = () => logs.lines.filter((line) => line.includes("recovered")).length
      for (let i = 0; i < 150 && recoveries() < 2; i++) {
        yield* Effect.sleep("20 millis")
        yield* Effect.either(a.limiter.acquire("probe", window, "fail"))
        yield* Effect.either(b.limiter.acquire("probe", window, "fail"))
      }
      expect(logs.lines.filter((line) => line.startsWith("INFO") && line.includes("rate limiter: recovered")))
        .toHaveLength(2)
      expect((yield* outcomes(a.limiter, "after", window, 8)) + (yield* outcomes(b.limiter, "after", window, 8))).toBe(
        10
      )
      expect(logs.lines.filter((line) => line.startsWith("WARN")), logs.lines.join("\n")).toHaveLength(2)
    }).pipe(Effect.scoped, Effect.provide(logs.layer))
  })
})

// ---------------------------------------------------------------------------------------------

/** A memory store that fails while `down`, counted as shared by `instances`. */
const flakyStore = (switchboard: { down: boolean }, instances: number) =>
  Layer.effect(
    RateLimit.Store,
    Effect.map(RateLimit.Store, (store): RateLimit.StoreService => {
      const down = Effect.fail(
        new LiaisonError.StorageError({ store: "test", operation: "take", cause: new Error("connection refused") })
      )
      return {
        ...store,
        take: (key, rule) => switchboard.down ? down : store.take(key, rule),
        reserve: (key, rule) => switchboard.down || store.reserve === undefined ? down : store.reserve(key, rule),
        instances: () => instances
      }
    })
  ).pipe(Layer.provide(RateLimit.layerStoreMemory))

/** Waiters in wait mode, one per ms; the TestClock times they were admitted at. */
const admissions = (rule: RateLimit.Rule, callers: number) =>
  Effect.gen(function*() {
    const limiter = yield* RateLimit.RateLimit
    const times = yield* Ref.make<Array<number>>([])
    const fibers = yield* Effect.forEach(Array.from({ length: callers }), () =>
      Effect.fork(
        Effect.zipRight(
          limiter.acquire("api", rule),
          Effect.flatMap(
            Effect.clockWith((clock) => clock.currentTimeMillis),
            (at) => Ref.update(times, (list) => [...list, at])
          )
        )
      ))
    yield* TestClock.adjust(Duration.minutes(1))
    yield* Fiber.joinAll(fibers)
    return yield* Ref.get(times)
  })

describe("RateLimit local fallback (TestClock)", () => {
  const shared = (instances: number, down: boolean) =>
    Effect.provide(
      Layer.merge(
        RateLimit.layer().pipe(Layer.provide(flakyStore({ down }, instances))),
        Logger.remove(Logger.defaultLogger)
      )
    )

  it.effect("a token bucket shared by 4 runs at a quarter of its rate while the store is down", () =>
    Effect.gen(function*() {
      // 100 per second, burst 1: locally 25 per second, one permit every 40 ms.
      const times = yield* admissions(RateLimit.tokenBucket({ limit: 100, interval: "1 second", burst: 1 }), 6)
      expect(times).toEqual([0, 40, 80, 120, 160, 200])
    }).pipe(shared(4, true)))

  it.effect("a sliding window shared by 4 admits a quarter of its limit per window", () =>
    Effect.gen(function*() {
      const times = yield* admissions(RateLimit.slidingWindow({ limit: 8, window: "1 second" }), 5)
      expect(times).toEqual([0, 0, 1000, 1000, 2000])
    }).pipe(shared(4, true)))

  it.effect("with the store up, the same rules are not divided", () =>
    Effect.gen(function*() {
      const times = yield* admissions(RateLimit.tokenBucket({ limit: 100, interval: "1 second", burst: 1 }), 3)
      expect(times).toEqual([0, 10, 20])
    }).pipe(shared(4, false)))
})
