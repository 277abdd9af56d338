import { describe, expect, it } from "@effect/vitest"
import { HttpError, RateLimit, Redis } from "@liaison/core"
import { Clock, Effect, Either, Fiber, Layer, Logger, LogLevel, Option, Redacted, Ref, TestClock } from "effect"
import { privateRedis } from "../fixtures/redisServer.js"
import { redisUrl, testPrefix } from "../setup/redisUrl.js"

const memory = Effect.provide(RateLimit.layerMemory())

const take = (key: string, rule: RateLimit.Rule, mode: RateLimit.Mode = "fail") =>
  Effect.flatMap(RateLimit.RateLimit, (limiter) => limiter.acquire(key, rule, mode))

/** Forks a caller that waits for a permit and notes when it got it. */
const waiter = (
  admitted: Ref.Ref<Array<readonly [string, number]>>,
  name: string,
  rule: RateLimit.Rule
) =>
  Effect.fork(
    Effect.zipRight(
      take("queue", rule, "wait"),
      Effect.flatMap(Clock.currentTimeMillis, (at) => Ref.update(admitted, (list) => [...list, [name, at] as const]))
    )
  )

describe("RateLimit, memory store", () => {
  it.effect("fail mode: RateLimited says when a permit frees up (sliding window)", () =>
    Effect.gen(function*() {
      const rule = RateLimit.slidingWindow({ limit: 2, window: "1 second" })
      yield* take("api", rule)
      yield* TestClock.adjust("300 millis")
      yield* take("api", rule)
      yield* TestClock.adjust("200 millis")
      const error = yield* Effect.flip(take("api", rule))
      expect(error).toBeInstanceOf(RateLimit.RateLimited)
      // The oldest permit (at 0) leaves the window at 1000.
      expect(error).toMatchObject({ key: "api", retryAfterMillis: 500 })
      expect(error.message).toContain("api")
      expect(HttpError.toHttpStatus(error)).toBe(429)
      // Another key has its own limit.
      yield* take("other", rule)
      yield* TestClock.adjust("499 millis")
      expect((yield* Effect.flip(take("api", rule))).retryAfterMillis).toBe(1)
      yield* TestClock.adjust("1 millis")
      yield* take("api", rule)
    }).pipe(memory))

  it.effect("fail mode: RateLimited says when a token comes (token bucket)", () =>
    Effect.gen(function*() {
      const rule = RateLimit.tokenBucket({ limit: 2, interval: "1 second", burst: 3 })
      for (let i = 0; i < 3; i++) yield* take("api", rule)
      expect((yield* Effect.flip(take("api", rule))).retryAfterMillis).toBe(500)
      yield* TestClock.adjust("500 millis")
      yield* take("api", rule)
      const [snapshot] = yield* Effect.flatMap(RateLimit.RateLimit, (limiter) => limiter.snapshots)
      expect(snapshot).toEqual({ key: "api", algorithm: "TokenBucket", limit: 3, remaining: 0 })
      yield* TestClock.adjust("10 seconds")
      const [full] = yield* Effect.flatMap(RateLimit.RateLimit, (limiter) => limiter.snapshots)
      expect(full?.remaining).toBe(3)
    }).pipe(memory))

  it.effect("wait mode is first come, first served", () =>
    Effect.gen(function*() {
      const rule = RateLimit.slidingWindow({ limit: 1, window: "100 millis" })
      const admitted = yield* Ref.make<Array<readonly [string, number]>>([])
      const fibers = []
      for (const name of ["a", "b", "c", "d", "e"]) {
        fibers.push(yield* waiter(admitted, name, rule))
        yield* TestClock.adjust("1 millis")
      }
      yield* TestClock.adjust("1 second")
      yield* Fiber.joinAll(fibers)
      expect(yield* Ref.get(admitted)).toEqual([["a", 0], ["b", 100], ["c", 200], ["d", 300], ["e", 400]])
    }).pipe(memory))

  it.effect("an interrupted waiter gives its place back, in the queue or at its head", () =>
    Effect.gen(function*() {
      const rule = RateLimit.slidingWindow({ limit: 1, window: "100 millis" })
      const admitted = yield* Ref.make<Array<readonly [string, number]>>([])
      const fibers = new Map<string, Fiber.RuntimeFiber<void, RateLimit.RateLimited>>()
      for (const name of ["a", "b", "c", "d", "e"]) {
        fibers.set(name, yield* waiter(admitted, name, rule))
        yield* TestClock.adjust("1 millis")
      }
      // b waits at the head for the window to move; c, d and e queue behind it.
      yield* Fiber.interrupt(fibers.get("c")!)
      yield* Fiber.interrupt(fibers.get("b")!)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fibers.get("e")!)
      expect(yield* Ref.get(admitted)).toEqual([["a", 0], ["d", 100], ["e", 200]])
    }).pipe(memory))

  it.effect("limit runs the effect only with a permit", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const limited = RateLimit.limit(
        Ref.update(runs, (n) => n + 1),
        "api",
        RateLimit.slidingWindow({ limit: 1, window: "1 minute" }),
        "fail"
      )
      yield* limited
      const second = yield* Effect.either(limited)
      expect(Either.isLeft(second) && second.left._tag).toBe("RateLimited")
      expect(yield* Ref.get(runs)).toBe(1)
    }).pipe(memory))

  it.effect("each layerMemory build has its own counters", () =>
    Effect.gen(function*() {
      const rule = RateLimit.slidingWindow({ limit: 1, window: "1 minute" })
      yield* memory(take("api", rule))
      yield* memory(take("api", rule))
    }))

  it.effect("rules that can never admit a call are InvalidOptions", () =>
    Effect.gen(function*() {
      const invalid: ReadonlyArray<readonly [RateLimit.Rule, string]> = [
        [RateLimit.tokenBucket({ limit: 0, interval: "1 second" }), "rateLimit.burst"],
        [RateLimit.tokenBucket({ limit: 10, interval: "1 second", burst: 0 }), "rateLimit.burst"],
        [RateLimit.tokenBucket({ limit: 10, interval: 0 }), "rateLimit.limit"],
        [RateLimit.slidingWindow({ limit: 0, window: "1 second" }), "rateLimit.limit"],
        [RateLimit.slidingWindow({ limit: 1.5, window: "1 second" }), "rateLimit.limit"],
        [RateLimit.slidingWindow({ limit: 10, window: 0 }), "rateLimit.window"]
      ]
      for (const [rule, option] of invalid) {
        expect(yield* Effect.flip(RateLimit.validate(rule))).toMatchObject({ _tag: "InvalidOptions", option })
      }
      const ok = RateLimit.slidingWindow({ limit: 10, window: "1 second" })
      expect(yield* RateLimit.validate(ok)).toBe(ok)
    }))
})

// ---------------------------------------------------------------------------------------------

const redisLayer = (url: string, redisOptions?: Redis.Options["redisOptions"]) =>
  Redis.layer({ url: Redacted.make(url), redisOptions })

const uniquePrefix = () => testPrefix("ratelimit")

/** Every key under `prefix`, by SCAN (never KEYS). */
const scan = (prefix: string) =>
  Redis.use("SCAN", async (client) => {
    const keys: Array<string> = []
    let cursor = "0"
    do {
      const [next, batch] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      keys.push(...batch)
    } while (cursor !== "0")
    return keys.sort()
  })

describe("RateLimit, Redis store", () => {
  it.effect("every key expires and a limit's keys share one hash tag", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const limiter = RateLimit.layerRedis({ prefix })
      yield* take("api.example.com", RateLimit.slidingWindow({ limit: 5, window: "2 seconds" })).pipe(
        Effect.provide(limiter)
      )
      yield* take("api.example.com:bucket", RateLimit.tokenBucket({ limit: 5, interval: "1 second" })).pipe(
        Effect.provide(limiter)
      )
      const keys = yield* scan(prefix)
      expect(keys).toEqual([
        `${prefix}{api.example.com:bucket}:tat`,
        `${prefix}{api.example.com}:log`,
        // No `instances`: a limiter whose layer closed took itself out of the heartbeat count.
        `${prefix}{api.example.com}:seq`
      ])
      for (const key of keys) {
        const ttl = yield* Redis.use("PTTL", (client) => client.pttl(key))
        expect(ttl).toBeGreaterThan(0)
        expect(ttl).toBeLessThanOrEqual(2000)
      }
    }).pipe(Effect.provide(redisLayer(redisUrl()))))

  it.effect("four Redis clients sharing one limit admit no more than the limit in total", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const rule = RateLimit.slidingWindow({ limit: 10, window: "5 seconds" })
      // Four instances: each its own ioredis client and its own limiter.
      const instances = Array.from(
        { length: 4 },
        // A generous Redis wait: a decision taken by the local fallback on a loaded machine is not what this counts.
        () => RateLimit.layerRedis({ prefix, timeoutMillis: 10_000 }).pipe(Layer.provide(redisLayer(redisUrl())))
      )
      const outcomes = yield* Effect.all(
        instances.map((instance) =>
          Effect.all(Array.from({ length: 10 }, () => Effect.either(take("shared", rule))), { concurrency: 3 }).pipe(
            Effect.provide(instance)
          )
        ),
        { concurrency: "unbounded" }
      )
      const admitted = outcomes.flat().filter(Either.isRight).length
      expect(admitted).toBe(10)
      // Every instance sees the shared count.
      const refusals = outcomes.flat().filter(Either.isLeft).map((either) => either.left)
      expect(refusals).toHaveLength(30)
      expect(refusals.every((error) => error.retryAfterMillis > 0 && error.retryAfterMillis <= 5000)).toBe(true)
    }))

  it.live("Redis down: onStoreFailure allow lets calls through, deny refuses them", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => privateRedis()),
        (s) => Effect.promise(s.dispose)
      )
      const rule = RateLimit.slidingWindow({ limit: 1, window: "1 minute" })
      const redis = yield* Layer.build(redisLayer(server.url, { retryStrategy: (times) => Math.min(times * 20, 100) }))
      const limiter = (onStoreFailure: "allow" | "deny") =>
        RateLimit.layerRedis({ prefix: uniquePrefix(), onStoreFailure }).pipe(
          Layer.provide(Layer.succeedContext(redis))
        )
      const allow = yield* Layer.build(limiter("allow"))
      const deny = yield* Layer.build(limiter("deny"))
      const attempt = (context: typeof allow) => Effect.either(Effect.provide(take("api", rule), context))

      // Up: the store counts (the second call is over the limit).
      expect(Either.isRight(yield* attempt(allow))).toBe(true)
      expect(Either.isLeft(yield* attempt(allow))).toBe(true)
      expect(Either.isRight(yield* attempt(deny))).toBe(true)

      yield* Effect.promise(server.stop)
      // Down: allow fails open, even over the limit; deny fails closed.
      expect(Either.isRight(yield* attempt(allow))).toBe(true)
      const refused = yield* attempt(deny)
      expect(Either.isLeft(refused) && refused.left).toMatchObject({ _tag: "RateLimited", key: "api" })
    }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None)))
})

// ---------------------------------------------------------------------------------------------

describe("RateLimit adaptive (TestClock)", () => {
  const state = (adaptive: RateLimit.Adaptive) => Effect.map(adaptive.state, (s) => s.ratePerSecond)

  it.effect("a 429 halves the rate (never below min); successes grow it additively (never above max)", () =>
    Effect.gen(function*() {
      const adaptive = yield* RateLimit.makeAdaptive({ initial: 8, min: 1, max: 10 })
      yield* adaptive.observe(429, {})
      expect(yield* state(adaptive)).toBe(4)
      yield* adaptive.observe(429, {})
      expect(yield* state(adaptive)).toBe(2)
      // increase / rate per success: a second's worth of successes adds about `increase`.
      yield* adaptive.observe(200, {})
      expect(yield* state(adaptive)).toBe(2.5)
      let previous = 2.5
      for (let i = 0; i < 200; i++) {
        yield* adaptive.observe(200, {})
        const now = yield* state(adaptive)
        expect(now).toBeGreaterThanOrEqual(previous)
        previous = now
      }
      expect(previous).toBe(10)
      for (let i = 0; i < 10; i++) yield* adaptive.observe(429, {})
      expect(yield* state(adaptive)).toBe(1)
    }))

  it.effect("the rate paces calls; fail mode says how long until the next", () =>
    Effect.gen(function*() {
      const adaptive = yield* RateLimit.makeAdaptive({ initial: 10 })
      yield* adaptive.acquire("fail")
      const error = yield* Effect.flip(adaptive.acquire("fail"))
      expect(error).toMatchObject({ _tag: "RateLimited", retryAfterMillis: 100 })
      yield* TestClock.adjust("100 millis")
      yield* adaptive.acquire("fail")
      // Wait mode: ten calls at 10 per second take 900 ms after the first.
      const start = yield* Clock.currentTimeMillis
      yield* TestClock.adjust("100 millis")
      const calls = yield* Effect.fork(Effect.all(Array.from({ length: 10 }, () => adaptive.acquire())))
      yield* TestClock.adjust("899 millis")
      expect(Option.isNone(yield* Fiber.poll(calls))).toBe(true)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(calls)
      expect((yield* Clock.currentTimeMillis) - start).toBe(1000)
    }))

  it.effect("right after a 429 no burst goes out: the bucket starts empty at the new rate", () =>
    Effect.gen(function*() {
      const adaptive = yield* RateLimit.makeAdaptive({ initial: 100 })
      yield* adaptive.acquire("fail")
      yield* TestClock.adjust("900 millis")
      yield* adaptive.observe(429, {})
      // At 50 per second the next token is 20 ms away, however long it was since the last call.
      expect((yield* Effect.flip(adaptive.acquire("fail"))).retryAfterMillis).toBe(20)
      yield* TestClock.adjust("20 millis")
      yield* adaptive.acquire("fail")
    }))

  it.effect("a 429's Retry-After holds every call until then", () =>
    Effect.gen(function*() {
      const adaptive = yield* RateLimit.makeAdaptive({ initial: 100 })
      yield* adaptive.observe(429, { "retry-after": "2" })
      expect(yield* adaptive.state).toEqual({ ratePerSecond: 50, pausedUntilMillis: 2000 })
      expect((yield* Effect.flip(adaptive.acquire("fail"))).retryAfterMillis).toBe(2000)
      const waiting = yield* Effect.fork(adaptive.acquire())
      yield* TestClock.adjust("1999 millis")
      expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waiting)
    }))

  it.effect("remaining 0 pauses until the reset; remaining and reset cap the rate", () =>
    Effect.gen(function*() {
      const adaptive = yield* RateLimit.makeAdaptive({ initial: 50 })
      yield* adaptive.observe(200, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": "3" })
      expect((yield* adaptive.state).pausedUntilMillis).toBe(3000)
      const waiting = yield* Effect.fork(adaptive.acquire())
      yield* TestClock.adjust("2999 millis")
      expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waiting)
      // 20 calls left for the next 10 seconds: 2 per second, whatever the additive increase says.
      yield* adaptive.observe(200, { "ratelimit-remaining": "20", "ratelimit-reset": "10" })
      expect(yield* state(adaptive)).toBe(2)
    }))

  it.effect("contradictory settings are InvalidOptions", () =>
    Effect.gen(function*() {
      for (
        const options of [
          { initial: 0 },
          { initial: 5, min: 10 },
          { initial: 5, max: 4 },
          { initial: 5, decrease: 1 },
          { initial: 5, increase: 0 }
        ]
      ) {
        expect((yield* Effect.flip(RateLimit.makeAdaptive(options)))._tag).toBe("InvalidOptions")
      }
    }))
})
