import { describe, expect, it } from "@effect/vitest"
import { Cache, Redis } from "@liaison/core"
import { Deferred, Effect, Fiber, Redacted, Schema, TestClock } from "effect"
import { metricDelta, metricValue, metricValues } from "../fixtures/metricValues.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import { redisUrl, testPrefix } from "../setup/redisUrl.js"

// The cache's labels are fixed (tier, outcome, kind): each test compares readings before and after,
// and the tests of this file run one after the other.

const memory = (options: Cache.MemoryOptions = {}) =>
  Cache.make(options).pipe(Effect.provide(Cache.layerStoreMemory(options)))

const options = { schema: Schema.Number, ttl: "1 minute", staleFor: "10 minutes" } as const
const down = Effect.fail("upstream down" as const)

const LOOKUPS = "liaison_cache_lookups_total"
const REFRESHES = "liaison_cache_refreshes_total"

describe("Cache telemetry", () => {
  it.scoped("lookups by tier and outcome: hits, misses and a stale answer, as Cache.stats counts them", () =>
    Effect.gen(function*() {
      const before = yield* metricValues(LOOKUPS)
      const cache = yield* memory()
      yield* cache.getOrFetch("t:1", Effect.succeed(1), options) // miss
      yield* cache.getOrFetch("t:1", down, options) // hit
      expect(yield* cache.get("t:1", Schema.Number)).toEqual(expect.objectContaining({ value: 1 })) // hit
      yield* cache.get("t:2", Schema.Number) // miss
      yield* TestClock.adjust("2 minutes")
      expect(yield* cache.getOrFetchCached("t:1", down, options)).toEqual({ value: 1, status: "stale" }) // miss, stale
      expect(metricDelta(before, yield* metricValues(LOOKUPS))).toEqual({
        "outcome=hit,tier=memory": 2,
        "outcome=miss,tier=memory": 3,
        "outcome=stale,tier=memory": 1
      })
      const stats = yield* cache.stats
      expect([stats.hits, stats.misses, stats.stale]).toEqual([2, 3, 1])
    }))

  it.effect("the entries gauge follows the memory tiers, and drops a cache's entries when it closes", () =>
    Effect.gen(function*() {
      const entries = metricValue("liaison_cache_entries", { tier: "memory" })
      const start = yield* entries
      yield* Effect.scoped(Effect.gen(function*() {
        const cache = yield* memory({ maxEntries: 2 })
        yield* cache.set("e:1", Schema.Number, 1)
        yield* cache.set("e:2", Schema.Number, 2)
        yield* cache.set("e:1", Schema.Number, 3) // replaced, not added
        expect(yield* entries).toBe(start + 2)
        yield* cache.set("e:3", Schema.Number, 3) // evicts the oldest
        expect(yield* entries).toBe(start + 2)
        yield* cache.delete("e:3")
        expect(yield* entries).toBe(start + 1)
      }))
      expect(yield* entries).toBe(start)
    }))

  it.scoped("a refresh ahead of expiry and a stampede wait are counted, and shown on the caller's span", () =>
    Effect.gen(function*() {
      const before = yield* metricValues(REFRESHES)
      const { spans, text, tracer } = recordingTracer()
      const cache = yield* memory()
      yield* cache.getOrFetch("r:1", Effect.succeed(1), options)
      yield* TestClock.adjust("50 seconds")
      yield* cache.getOrFetch("r:1", Effect.succeed(2), { ...options, refreshAhead: "20 seconds" }).pipe(
        Effect.withSpan("refreshing"),
        Effect.withTracer(tracer)
      )
      // Two callers miss together: the second waits for the first one's fetch (1 s of the test's clock).
      const gate = yield* Deferred.make<void>()
      const slow = Effect.as(Deferred.await(gate), 7)
      const first = yield* Effect.fork(cache.getOrFetch("s:1", slow, options).pipe(Effect.withSpan("first")))
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(cache.getOrFetch("s:1", down, options).pipe(Effect.withSpan("second")))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(second)).toBe(7)
      expect(yield* Fiber.join(first)).toBe(7)
      expect(metricDelta(before, yield* metricValues(REFRESHES))).toEqual({
        "kind=refresh_ahead,tier=memory": 1,
        "kind=stampede_wait,tier=memory": 1
      })
      const events = (name: string) => spans.find((span) => span.name === name)?.events
      expect(events("refreshing")).toEqual([
        { name: "liaison.cache.get", attributes: { "liaison.cache.tier": "memory", "liaison.cache.outcome": "hit" } },
        {
          name: "liaison.cache.get",
          attributes: { "liaison.cache.tier": "memory", "liaison.cache.outcome": "refresh_ahead" }
        }
      ])
      expect(text()).not.toContain("r:1")
    }))

  it.scoped("a stale answer and a stampede wait show up in the recording tracer; no key in any attribute", () => {
    const { spans, text, tracer } = recordingTracer()
    return Effect.gen(function*() {
      const cache = yield* memory()
      yield* cache.getOrFetch("users:42", Effect.succeed(42), options)
      yield* TestClock.adjust("2 minutes")
      const slow = Effect.flatMap(Effect.sleep("1 second"), () => down)
      const first = yield* Effect.fork(cache.getOrFetchCached("users:42", slow, options).pipe(Effect.withSpan("first")))
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(
        cache.getOrFetchCached("users:42", down, options).pipe(Effect.withSpan("second"))
      )
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(first)).toEqual({ value: 42, status: "stale" })
      expect(yield* Fiber.join(second)).toEqual({ value: 42, status: "stale" })
      const events = (name: string) => spans.find((span) => span.name === name)?.events
      expect(events("first")).toEqual([
        { name: "liaison.cache.get", attributes: { "liaison.cache.tier": "memory", "liaison.cache.outcome": "stale" } }
      ])
      expect(events("second")).toEqual([
        {
          name: "liaison.cache.get",
          attributes: {
            "liaison.cache.tier": "memory",
            "liaison.cache.outcome": "stale",
            "liaison.cache.stampede_wait_ms": 1000
          }
        }
      ])
      expect(text()).not.toContain("users:42")
    }).pipe(Effect.withTracer(tracer))
  })

  it.scoped("the Redis tier: its misses and hits are labelled redis; a two-tier cache's L1 hits memory", () =>
    Effect.gen(function*() {
      const before = yield* metricValues(LOOKUPS)
      const redis = yield* Redis.make({ url: Redacted.make(redisUrl()) })
      const prefix = testPrefix("{cache-telemetry}")
      const redisOnly = yield* Cache.make().pipe(
        Effect.provide(Cache.layerStoreRedis({ prefix })),
        Effect.provideService(Redis.Redis, redis)
      )
      const twoTier = yield* Cache.make().pipe(
        Effect.provide(Cache.layerStoreTwoTier({ prefix })),
        Effect.provideService(Redis.Redis, redis)
      )
      yield* redisOnly.getOrFetch("k:1", Effect.succeed(1), options) // redis miss
      yield* redisOnly.getOrFetch("k:1", down, options) // redis hit
      yield* twoTier.getOrFetch("k:1", down, options) // redis hit (its L1 empty), copied to L1
      yield* twoTier.getOrFetch("k:1", down, options) // memory hit
      expect(metricDelta(before, yield* metricValues(LOOKUPS))).toEqual({
        "outcome=hit,tier=memory": 1,
        "outcome=hit,tier=redis": 2,
        "outcome=miss,tier=redis": 1
      })
    }))
})
