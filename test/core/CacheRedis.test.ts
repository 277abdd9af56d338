import { describe, expect, it, layer } from "@effect/vitest"
import { Cache, Redis } from "@liaison/core"
import { Deferred, Duration, Effect, Fiber, Layer, Option, Redacted, Ref, Schema, TestClock } from "effect"
import { privateRedis } from "../fixtures/redisServer.js"
import { redisUrl, testPrefix } from "../setup/redisUrl.js"

const User = Schema.Struct({
  id: Schema.Int,
  name: Schema.String,
  email: Schema.optional(Schema.String),
  roles: Schema.Array(Schema.Literal("admin", "member")),
  nickname: Schema.OptionFromNullOr(Schema.String),
  balance: Schema.BigInt,
  created_at: Schema.DateTimeUtc
})

const user = (id: number) =>
  Schema.decodeSync(User)({
    id,
    name: `user-${id}`,
    roles: ["member"],
    nickname: null,
    balance: "12345678901234567890",
    created_at: "2024-01-01T00:00:00.000Z"
  })

/** A prefix of its own per test (its hash tag included), so tests never see each other's keys. */
const uniquePrefix = () => testPrefix("{cache-test}")

/** A client to the tests' private Redis (or to `url`), closed with the scope. */
const connect = (url = redisUrl()) => Redis.make({ url: Redacted.make(url) })

const redisLayer = (url?: string) => Layer.scoped(Redis.Redis, Effect.suspend(() => connect(url)))

/** A cache built on its own client (an "instance"). */
const instance = (options: Cache.TwoTierOptions & { readonly tier: "redis" | "two-tier" }) =>
  Effect.flatMap(
    connect(),
    (redis) =>
      Cache.make(options).pipe(
        Effect.provide(options.tier === "redis" ? Cache.layerStoreRedis(options) : Cache.layerStoreTwoTier(options)),
        Effect.provideService(Redis.Redis, redis)
      )
  )

const raw = <A>(f: (client: Redis.Service["client"]) => Promise<A>) => Redis.use("test", f)

/** Real-time wait until `check` holds (pub/sub delivery, reconnection), failing after `ms`. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, ms = 10_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`condition not met within ${ms} ms`)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
    }
  })

/**
 * A Redis-only cache on a redis-server of its own (this test stops it: never the shared one), with a
 * fetch that counts its calls and answers user n on call n.
 */
const onPrivateRedis = (options: Cache.RedisOptions) =>
  Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => privateRedis()),
      (redis) => Effect.promise(() => redis.dispose())
    )
    const redis = yield* connect(server.url)
    const cache = yield* Cache.make(options).pipe(
      Effect.provide(Cache.layerStoreRedis({ prefix: uniquePrefix(), ...options })),
      Effect.provideService(Redis.Redis, redis)
    )
    const calls = yield* Ref.make(0)
    const fetch = Effect.map(Ref.updateAndGet(calls, (n) => n + 1), user)
    return { server, cache, fetch, options: { schema: User } }
  })

const prefix = uniquePrefix()

layer(Layer.merge(redisLayer(), Cache.layerRedis({ prefix }).pipe(Layer.provide(redisLayer()))))(
  "Cache (Redis)",
  (it) => {
    it.effect.prop(
      "set then get round-trips any Schema-typed value through Redis",
      [User],
      ([value]) =>
        Effect.gen(function*() {
          const key = `prop:${crypto.randomUUID()}`
          yield* Cache.set(key, User, value)
          expect(yield* Cache.get(key, User)).toEqual(Option.some(value))
          const stored = yield* raw((client) => client.get(`${prefix}v:${key}`))
          expect(stored).not.toBeNull()
          expect(JSON.parse(stored ?? "null").v).toEqual(Schema.encodeSync(User)(value))
        }),
      { fastCheck: { numRuns: 50 } }
    )

    it.effect("a corrupt entry in Redis is a miss: deleted, counted, and the fetch answers", () =>
      Effect.gen(function*() {
        const future = Date.now() + 60_000
        const entries = {
          "corrupt:json": "{not json",
          "corrupt:shape": JSON.stringify({ value: 1 }),
          "corrupt:schema": JSON.stringify({ v: { id: "seven" }, f: future, s: future })
        }
        for (const [key, text] of Object.entries(entries)) {
          yield* raw((client) => client.set(`${prefix}v:${key}`, text, "PX", 60_000))
        }
        const before = (yield* Cache.stats).errors
        for (const key of Object.keys(entries)) {
          expect(yield* Cache.get(key, User)).toEqual(Option.none())
          expect(yield* raw((client) => client.exists(`${prefix}v:${key}`))).toBe(0)
        }
        expect((yield* Cache.stats).errors - before).toBe(3)
        yield* raw((client) => client.set(`${prefix}v:corrupt:json`, "{not json", "PX", 60_000))
        const fetched = yield* Cache.getOrFetchCached("corrupt:json", Effect.succeed(user(7)), { schema: User })
        expect(fetched).toEqual({ value: user(7), status: "miss" })
        expect(yield* Cache.get("corrupt:json", User)).toEqual(Option.some(user(7)))
      }))

    it.effect("1000 concurrent misses on one key run one fetch", () =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        const calls = yield* Ref.make(0)
        const fetch = Ref.update(calls, (n) => n + 1).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(user(1)))
        const fibers = yield* Effect.forEach(
          Array.from({ length: 1000 }),
          () => Effect.fork(Cache.getOrFetch("stampede:one", fetch, { schema: User })),
          { concurrency: "unbounded" }
        )
        yield* eventually(Effect.map(Ref.get(calls), (n) => n > 0))
        yield* Deferred.succeed(gate, undefined)
        const values = yield* Fiber.joinAll(fibers)
        expect(values.every((value) => value.id === 1)).toBe(true)
        expect(yield* Ref.get(calls)).toBe(1)
      }))

    it.effect("stale-if-error: an expired Redis entry is served, marked stale, when the fetch fails", () =>
      Effect.gen(function*() {
        const options = { schema: User, ttl: "1 minute", staleFor: "10 minutes" } as const
        yield* Cache.getOrFetch("stale:1", Effect.succeed(user(1)), options)
        yield* TestClock.adjust("2 minutes")
        const failing = Effect.fail({ _tag: "CircuitOpen" as const })
        expect(yield* Cache.getOrFetchCached("stale:1", failing, options)).toEqual({ value: user(1), status: "stale" })
        yield* TestClock.adjust("10 minutes")
        expect(yield* Effect.flip(Cache.getOrFetch("stale:1", failing, options))).toEqual({ _tag: "CircuitOpen" })
      }))

    it.effect("invalidation by tag and by related resource, with the id matched literally", () =>
      Effect.gen(function*() {
        const keys = ["rel:1", "rel:10", "rel:2", "rel:1:posts", "rel:list:page=1", "rel:*", "rel:*:x"]
        for (const key of keys) yield* Cache.set(key, Schema.String, key, { tags: key.includes("1") ? ["ones"] : [] })
        const present = Effect.map(
          Effect.forEach(keys, (key) => Cache.get(key, Schema.String)),
          (found) => keys.filter((_, i) => Option.isSome(found[i]!))
        )
        // `rel:*` itself, its sub-key `rel:*:x` and the lists; `*` is no wildcard.
        expect(yield* Cache.invalidateRelated("rel", "*")).toBe(3)
        expect(yield* present).toEqual(["rel:1", "rel:10", "rel:2", "rel:1:posts"])
        expect(yield* Cache.invalidateRelated("rel", 1)).toBe(2)
        expect(yield* present).toEqual(["rel:10", "rel:2"])
        expect(yield* Cache.invalidateTag("ones")).toBe(1)
        expect(yield* present).toEqual(["rel:2"])
        expect(yield* raw((client) => client.exists(`${prefix}t:ones`))).toBe(0)
      }))
  }
)

describe("Cache (Redis, live)", () => {
  it.scoped(
    "pattern invalidation on 10,000 keys leaves no matching key and touches no other",
    () =>
      Effect.gen(function*() {
        const ns = uniquePrefix()
        const cache = yield* Cache.make().pipe(Effect.provide(Cache.layerStoreRedis({ prefix: ns })))
        const matching = Array.from({ length: 10_000 }, (_, i) => `orders:${i}`)
        const others = [
          ...Array.from({ length: 500 }, (_, i) => `orders-archive:${i}`),
          ...Array.from({ length: 500 }, (_, i) => `order:${i}`),
          "orders",
          "Orders:1"
        ]
        yield* Effect.forEach(
          [...matching, ...others],
          (key) => cache.set(key, Schema.String, key, { ttl: "10 minutes" }),
          { concurrency: 200, discard: true }
        )
        const ttlBefore = yield* raw((client) => client.pttl(`${ns}v:order:1`))
        expect(yield* cache.invalidate({ _tag: "Pattern", pattern: "orders:*" })).toBe(10_000)
        const left = yield* raw(async (client) => {
          const found: Array<string> = []
          let cursor = "0"
          do {
            const [next, keys] = await client.scan(
              cursor,
              "MATCH",
              `${Cache.escapePattern(ns)}v:orders:*`,
              "COUNT",
              1000
            )
            found.push(...keys)
            cursor = next
          } while (cursor !== "0")
          return found
        })
        expect(left).toEqual([])
        const kept = yield* Effect.forEach(others, (key) => cache.get(key, Schema.String))
        expect(kept).toEqual(others.map(Option.some))
        const ttlAfter = yield* raw((client) => client.pttl(`${ns}v:order:1`))
        expect(ttlAfter).toBeGreaterThan(0)
        expect(ttlAfter).toBeLessThanOrEqual(ttlBefore)
      }).pipe(Effect.provide(redisLayer())),
    60_000
  )

  it.live("across two instances (two Redis clients), 1000 concurrent misses run one fetch", () =>
    Effect.gen(function*() {
      const ns = uniquePrefix()
      const a = yield* instance({ tier: "redis", prefix: ns })
      const b = yield* instance({ tier: "redis", prefix: ns })
      const gate = yield* Deferred.make<void>()
      const calls = yield* Ref.make(0)
      const fetch = Ref.update(calls, (n) => n + 1).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(user(1)))
      const fibers = yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? a : b)),
        (cache) => Effect.fork(cache.getOrFetchCached("stampede:two", fetch, { schema: User })),
        { concurrency: "unbounded" }
      )
      yield* eventually(Effect.map(Ref.get(calls), (n) => n > 0))
      // Long enough for the other instance to find the lock taken and start waiting.
      yield* Effect.sleep("200 millis")
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.joinAll(fibers)
      expect(yield* Ref.get(calls)).toBe(1)
      expect(results.every((result) => result.value.id === 1)).toBe(true)
      // One instance fetched; the other was answered from Redis once the value was there.
      expect(new Set(results.map((result) => result.status))).toEqual(new Set(["miss", "hit"]))
      expect(Object.values(yield* Effect.all([a.stats, b.stats])).map((stats) => stats.fetches).sort()).toEqual([0, 1])
    }).pipe(Effect.scoped))

  it.live("two-tier: a write or an invalidation on one instance drops the other's L1 copy", () =>
    Effect.gen(function*() {
      const ns = uniquePrefix()
      const a = yield* instance({ tier: "two-tier", prefix: ns })
      const b = yield* instance({ tier: "two-tier", prefix: ns })
      yield* a.set("users:1", User, user(1), { tags: ["users"] })
      expect(yield* b.get("users:1", User)).toEqual(Option.some(user(1)))
      // B now answers from its L1: deleting the Redis copy behind its back changes nothing for it.
      yield* raw((client) => client.unlink(`${ns}v:users:1`))
      expect(yield* b.get("users:1", User)).toEqual(Option.some(user(1)))
      // A write on A reaches B through pub/sub.
      const renamed = { ...user(1), name: "renamed" }
      yield* a.set("users:1", User, renamed, { tags: ["users"] })
      yield* eventually(Effect.map(b.get("users:1", User), (found) => Option.getOrNull(found)?.name === "renamed"))
      // So does a tag invalidation.
      yield* a.invalidate({ _tag: "Tag", tag: "users" })
      yield* eventually(Effect.map(b.get("users:1", User), Option.isNone))
      expect((yield* b.stats).entries).toBe(0)
    }).pipe(Effect.scoped, Effect.provide(redisLayer())))

  it.live(
    "Redis outage: requests are answered from the upstream; once Redis is back the cache is used again",
    () =>
      Effect.gen(function*() {
        const { cache, fetch, options, server } = yield* onPrivateRedis({
          cooldown: "200 millis",
          timeout: "200 millis"
        })
        expect((yield* cache.getOrFetchCached("users:1", fetch, options)).status).toBe("miss")
        expect((yield* cache.getOrFetchCached("users:1", fetch, options)).status).toBe("hit")

        yield* Effect.promise(() => server.stop())
        const during = yield* Effect.forEach([1, 2, 3, 4, 5], () => cache.getOrFetchCached("users:1", fetch, options))
        expect(during.map((result) => result.status)).toEqual(["miss", "miss", "miss", "miss", "miss"])
        expect(during.map((result) => result.value.id)).toEqual([2, 3, 4, 5, 6])
        const down = yield* cache.stats
        expect(down.redis).toBe("down")
        expect(down.errors).toBeGreaterThan(0)
        // Invalidations cannot reach Redis: they fail, saying so.
        const error = yield* Effect.flip(cache.delete("users:1"))
        expect(error._tag).toBe("StorageError")
        expect(error.store).toBe("cache")

        yield* Effect.promise(() => server.start())
        yield* eventually(
          Effect.map(cache.getOrFetchCached("users:1", fetch, options), (r) => r.status === "hit"),
          20_000
        )
        expect((yield* cache.stats).redis).toBe("up")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "a Redis that hangs costs one timeout per cooldown, not one per request (the L2 breaker)",
    () =>
      Effect.gen(function*() {
        const { cache, fetch, options, server } = yield* onPrivateRedis({ cooldown: "1 minute", timeout: "200 millis" })
        const admin = yield* connect(server.url)
        yield* cache.getOrFetch("users:1", fetch, options)
        const before = (yield* cache.stats).errors
        // Redis stops answering, the connection stays up: only a timeout can tell.
        yield* Effect.promise(() => admin.client.call("CLIENT", "PAUSE", "1500", "ALL"))
        const during = yield* Effect.forEach([1, 2, 3, 4, 5], () => cache.getOrFetchCached("users:1", fetch, options))
        expect(during.map((result) => result.value.id)).toEqual([2, 3, 4, 5, 6])
        const stats = yield* cache.stats
        expect(stats.errors - before).toBe(1)
        expect(stats.redis).toBe("down")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("reads of one turn share an MGET: each caller gets its own key's value, misses fetched", () =>
    Effect.gen(function*() {
      const { cache, server } = yield* onPrivateRedis({})
      const options = { schema: Schema.String } as const
      for (let i = 0; i < 100; i += 2) yield* cache.set(`batch:${i}`, Schema.String, `stored-${i}`)
      const commands = (name: string) =>
        Effect.map(
          Redis.use("info", (client) => client.call("INFO", "commandstats")),
          (info) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(String(info))?.[1] ?? 0)
        ).pipe(Effect.provideServiceEffect(Redis.Redis, connect(server.url)), Effect.scoped)
      const [gets, mgets] = [yield* commands("get"), yield* commands("mget")]
      const answers = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => cache.getOrFetchCached(`batch:${i}`, Effect.succeed(`fetched-${i}`), options),
        { concurrency: "unbounded" }
      )
      expect(answers).toEqual(
        Array.from(
          { length: 100 },
          (_, i) => i % 2 === 0 ? { value: `stored-${i}`, status: "hit" } : { value: `fetched-${i}`, status: "miss" }
        )
      )
      // The 100 reads went out together; only the misses' own checks (under their locks) read alone.
      expect((yield* commands("mget")) - mgets).toBeGreaterThanOrEqual(1)
      expect((yield* commands("get")) - gets).toBeLessThan(100)
      // One at a time, a read is a plain GET.
      const before = yield* commands("get")
      expect(yield* cache.getOrFetch("batch:0", Effect.succeed("unused"), options)).toBe("stored-0")
      expect((yield* commands("get")) - before).toBe(1)
    }).pipe(Effect.scoped))

  it.live("the cache's reads count towards the shared Redis breaker, and an open breaker skips them at once", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => privateRedis()),
        (redis) => Effect.promise(() => redis.dispose())
      )
      const redis = yield* Redis.make({
        url: Redacted.make(server.url),
        redisOptions: { commandTimeout: 300 },
        breaker: { failures: 1, openMillis: 60_000 }
      })
      // No cooldown of its own: only the shared breaker keeps the cache off Redis.
      const cache = yield* Cache.make({}).pipe(
        Effect.provide(Cache.layerStoreRedis({ prefix: uniquePrefix(), timeout: "1 second", cooldown: "0 millis" })),
        Effect.provideService(Redis.Redis, redis)
      )
      const options = { schema: Schema.String } as const
      yield* cache.set("k", Schema.String, "stored")
      const admin = yield* connect(server.url)
      yield* Effect.promise(() => admin.client.call("CLIENT", "PAUSE", "1500", "ALL"))
      const timed = <A, E>(effect: Effect.Effect<A, E>) =>
        Effect.map(Effect.timed(effect), ([duration, value]) => ({ millis: Duration.toMillis(duration), value }))
      // The read times out after the connection's 300 ms (shorter than the cache's own 1 s) ...
      const first = yield* timed(cache.getOrFetchCached("k", Effect.succeed("fetched"), options))
      expect(first.value).toEqual({ value: "fetched", status: "miss" })
      expect(first.millis).toBeGreaterThanOrEqual(299)
      expect(first.millis).toBeLessThan(900)
      // ... and counts as the one failure that opens the connection's breaker, for every user of it.
      const other = yield* Effect.promise(() => redis.client.get("k").then(() => "answered", (e: Error) => e.message))
      expect(other).toContain("Redis unavailable")
      const second = yield* timed(cache.getOrFetchCached("k", Effect.succeed("fetched again"), options))
      expect(second.value).toEqual({ value: "fetched again", status: "miss" })
      expect(second.millis).toBeLessThan(200)
    }).pipe(Effect.scoped))

  it.live("a hit whose reply arrived while the application blocked its event loop is not a timeout", () =>
    Effect.gen(function*() {
      const { cache, fetch, options } = yield* onPrivateRedis({ timeout: "50 millis", cooldown: "1 minute" })
      yield* cache.getOrFetch("users:1", fetch, options)
      const before = yield* cache.stats
      const read = yield* Effect.fork(cache.getOrFetchCached("users:1", fetch, options))
      // The read is sent when its fiber first runs; then the loop is busy for 6 timeouts.
      yield* Effect.yieldNow()
      yield* Effect.sync(() => {
        const until = performance.now() + 300
        while (performance.now() < until) {
          // busy: a long synchronous task
        }
      })
      const result = yield* Fiber.join(read)
      expect(result.status).toBe("hit")
      expect(result.value.id).toBe(1)
      const after = yield* cache.stats
      expect(after.errors).toBe(before.errors)
      expect(after.redis).toBe("up")
    }).pipe(Effect.scoped))

  it.live("an unchanged Redis entry is decoded once: hits share its value until the entry changes", () =>
    Effect.gen(function*() {
      const { cache, fetch, options, server } = yield* onPrivateRedis({ prefix: "{memo}:" })
      const first = yield* cache.getOrFetch("users:1", fetch, options)
      const [a, b] = [
        yield* cache.getOrFetch("users:1", fetch, options),
        yield* cache.getOrFetch("users:1", fetch, options)
      ]
      expect(a).toBe(b)
      expect(a).toEqual(first)
      // A write changes the stored text: the next hit decodes it.
      yield* cache.set("users:1", User, user(7))
      const changed = yield* cache.getOrFetch("users:1", fetch, options)
      expect(changed.id).toBe(7)
      expect(changed).not.toBe(a)
      // Text that is no longer an entry is corrupt, whatever was decoded before.
      const admin = yield* connect(server.url)
      yield* Effect.promise(() => admin.client.set("{memo}:v:users:1", "not json"))
      const refetched = yield* cache.getOrFetchCached("users:1", fetch, options)
      expect(refetched).toEqual({ value: user(2), status: "miss" })
    }).pipe(Effect.scoped))
})
