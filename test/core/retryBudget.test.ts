/**
 * The retry budget's stores: Redis shared by two "instances" (each its own ioredis client and
 * policy) against a real failing upstream, its keys under the prefix with an expiry, and a Redis
 * that goes away (the local budget decides, at once); the memory store shared by two policies.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import { CircuitBreaker, Http, Policy, Redis, Retry } from "@liaison/core"
import { Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { privateRedis } from "../fixtures/redisServer.js"
import { redisUrl, testPrefix } from "../setup/redisUrl.js"
import { scriptedUpstream } from "./policySupport.js"

const redisLayer = (url: string, redisOptions?: Redis.Options["redisOptions"]) =>
  Redis.layer({ url: Redacted.make(url), redisOptions })

/** Ten retries per 10 s window for the whole host, whatever the requests: `ratio` 0. */
const budget = { ratio: 0, minRetriesPerSecond: 1, window: "10 seconds" } as const

/** An instance: its own policy (2 attempts a call) and breakers over the budget store given. */
const instance = <E>(baseUrl: string, store: Layer.Layer<Retry.BudgetStore, E>) =>
  Policy.layer({ retry: { base: "1 millis", maxAttempts: 2, budget } }).pipe(
    Layer.provide(Layer.mergeAll(Http.layer({ baseUrl }), CircuitBreaker.layer({ failureThreshold: 1000 }), store))
  )

/** `count` failing calls, in sequence; the errors' tags. */
const failingCalls = (count: number) =>
  Effect.forEach(
    Array.from({ length: count }),
    () => Effect.map(Effect.flip(Http.text(HttpClientRequest.get("/down?steps=503"))), (error) => error._tag)
  )

const tally = (tags: ReadonlyArray<string>) =>
  tags.reduce<Record<string, number>>((counts, tag) => ({ ...counts, [tag]: (counts[tag] ?? 0) + 1 }), {})

describe("Retry budget, Redis store", () => {
  it.scopedLive("two instances share one budget per host: ten retries in all, not ten each", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const prefix = testPrefix("retry-budget")
      const store = () => Retry.layerBudgetStoreRedis({ prefix }).pipe(Layer.provide(redisLayer(redisUrl())))
      const [a, b] = yield* Effect.all([
        failingCalls(10).pipe(Effect.provide(instance(upstream.url, store()))),
        failingCalls(10).pipe(Effect.provide(instance(upstream.url, store())))
      ], { concurrency: "unbounded" })
      const errors = tally([...a, ...b])
      // 20 first attempts, 10 retries (each fails: StatusError), 10 refused.
      expect(errors).toEqual({ StatusError: 10, RetryBudgetExhausted: 10 })
      expect(upstream.requests()).toBe(30)
      // The budget's key is under the prefix, hash-tagged by host, and expires.
      // The whole keyspace (other tests write to the same Redis): one SCAN call may return none.
      const keys = yield* Redis.use("SCAN", async (client) => {
        const found: Array<string> = []
        let cursor = "0"
        do {
          const [next, batch] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
          found.push(...batch)
          cursor = next
        } while (cursor !== "0")
        return found
      }).pipe(Effect.provide(redisLayer(redisUrl())))
      expect(keys).toEqual([`${prefix}{${upstream.host}}:10000`])
      const ttl = yield* Redis.use("PTTL", (client) => client.call("PTTL", `${prefix}{${upstream.host}}:10000`)).pipe(
        Effect.provide(redisLayer(redisUrl()))
      )
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(11_000)
    }))

  it.scopedLive("each instance with the memory store: ten retries each", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const [a, b] = yield* Effect.all([
        failingCalls(10).pipe(Effect.provide(instance(upstream.url, Retry.layerBudgetStoreMemory))),
        failingCalls(10).pipe(Effect.provide(instance(upstream.url, Retry.layerBudgetStoreMemory)))
      ], { concurrency: "unbounded" })
      expect(tally([...a, ...b])).toEqual({ StatusError: 20 })
      expect(upstream.requests()).toBe(40)
    }))

  it.live("Redis down: the local budget decides, and no call waits for Redis", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => privateRedis()),
        (s) => Effect.promise(s.dispose)
      )
      const redis = yield* Layer.build(redisLayer(server.url, { retryStrategy: (times) => Math.min(times * 20, 100) }))
      const store = Retry.layerBudgetStoreRedis({ prefix: testPrefix("retry-budget") }).pipe(
        Layer.provide(Layer.succeedContext(redis))
      )
      const context = yield* Layer.build(instance(upstream.url, store))
      yield* Effect.promise(server.stop)
      const started = Date.now()
      const errors = yield* failingCalls(12).pipe(Effect.provide(context))
      // This instance's own budget: ten retries, then refusals.
      expect(tally(errors)).toEqual({ StatusError: 10, RetryBudgetExhausted: 2 })
      // The first retry waits at most 100 ms for Redis; after it, Redis is left alone for a second.
      expect(Date.now() - started).toBeLessThan(1000)
    }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None)))
})
