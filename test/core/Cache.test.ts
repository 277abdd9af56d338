import { describe, expect, it } from "@effect/vitest"
import { Cache } from "@liaison/core"
import type { Duration } from "effect"
import {
  Config,
  ConfigProvider,
  Data,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Option,
  Ref,
  Schema,
  TestClock
} from "effect"

const User = Schema.Struct({ id: Schema.Number, name: Schema.String, since: Schema.DateFromString })
type User = typeof User.Type

const user = (id: number, name = `user-${id}`): User => ({ id, name, since: new Date(Date.UTC(2024, 0, id)) })

class Upstream extends Data.TaggedError("Upstream")<{ readonly status: number }> {}

/** A fetch that counts its runs and takes `latency` (of the test's clock) to answer. */
const counted = <A>(value: (call: number) => A, latency: Duration.DurationInput = "1 second") =>
  Effect.map(Ref.make(0), (calls) => ({
    calls,
    fetch: Ref.updateAndGet(calls, (n) => n + 1).pipe(Effect.delay(latency), Effect.map(value))
  }))

const memory = (options: Cache.MemoryOptions = {}) =>
  Cache.make(options).pipe(Effect.provide(Cache.layerStoreMemory(options)))

describe("Cache (memory)", () => {
  it.scoped("set then get round-trips a Schema-typed value; it expires after its own ttl", () =>
    Effect.gen(function*() {
      const cache = yield* memory({ ttl: "1 minute" })
      yield* cache.set("users:1", User, user(1))
      yield* cache.set("users:2", User, user(2), { ttl: "10 seconds" })
      expect(yield* cache.get("users:1", User)).toEqual(Option.some(user(1)))
      yield* TestClock.adjust("11 seconds")
      expect(yield* cache.get("users:2", User)).toEqual(Option.none())
      expect(yield* cache.get("users:1", User)).toEqual(Option.some(user(1)))
      yield* TestClock.adjust("50 seconds")
      expect(yield* cache.get("users:1", User)).toEqual(Option.none())
      const stats = yield* cache.stats
      expect(stats).toMatchObject({ hits: 2, misses: 2, redis: "none" })
    }))

  it.scoped("getOrFetch: a miss runs the fetch once, then hits until the ttl passes", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      const { calls, fetch } = yield* counted((n) => user(n), "0 millis")
      const options = { schema: User, ttl: "30 seconds" } as const
      const first = yield* cache.getOrFetchCached("users:1", fetch, options)
      const second = yield* cache.getOrFetchCached("users:1", fetch, options)
      expect([first.status, second.status]).toEqual(["miss", "hit"])
      expect(second.value).toEqual(user(1))
      yield* TestClock.adjust("31 seconds")
      expect(yield* cache.getOrFetch("users:1", fetch, options)).toEqual(user(2))
      expect(yield* Ref.get(calls)).toBe(2)
    }))

  it.scoped("is bounded: the least recently used entry goes first", () =>
    Effect.gen(function*() {
      const cache = yield* memory({ maxEntries: 3 })
      for (const id of [1, 2, 3]) yield* cache.set(`users:${id}`, User, user(id))
      yield* cache.get("users:1", User) // 1 is now the most recently used; 2 the least
      yield* cache.set("users:4", User, user(4))
      const present = yield* Effect.forEach([1, 2, 3, 4], (id) => cache.get(`users:${id}`, User))
      expect(present.map(Option.isSome)).toEqual([true, false, true, true])
      expect((yield* cache.stats).entries).toBe(3)
    }))

  it.scoped("1000 concurrent misses on one key run one fetch; every caller gets its value", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      const { calls, fetch } = yield* counted((n) => user(n))
      const fibers = yield* Effect.forEach(
        Array.from({ length: 1000 }),
        () => Effect.fork(cache.getOrFetch("users:1", fetch, { schema: User })),
        { concurrency: "unbounded" }
      )
      yield* TestClock.adjust("1 second")
      const values = yield* Fiber.joinAll(fibers)
      expect(yield* Ref.get(calls)).toBe(1)
      expect(new Set(values.map((value) => value.name))).toEqual(new Set(["user-1"]))
      expect((yield* cache.stats).fetches).toBe(1)
    }))

  it.scoped("a caller giving up does not cancel the fetch the others wait for", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      const { calls, fetch } = yield* counted((n) => user(n))
      const quitter = yield* Effect.fork(cache.getOrFetch("users:1", fetch, { schema: User }))
      const waiter = yield* Effect.fork(cache.getOrFetch("users:1", fetch, { schema: User }))
      yield* TestClock.adjust("500 millis")
      yield* Fiber.interrupt(quitter)
      yield* TestClock.adjust("500 millis")
      expect(yield* Fiber.join(waiter)).toEqual(user(1))
      expect(yield* cache.get("users:1", User)).toEqual(Option.some(user(1)))
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.scoped("stale-if-error: an expired value is served, marked stale, within its grace period only", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      const failing = yield* Ref.make(false)
      const fetch = Effect.flatMap(
        Ref.get(failing),
        (fail) => fail ? Effect.fail(new Upstream({ status: 503 })) : Effect.succeed(user(1))
      )
      const options = { schema: User, ttl: "1 minute", staleFor: "5 minutes" } as const
      yield* cache.getOrFetch("users:1", fetch, options)
      yield* Ref.set(failing, true)
      yield* TestClock.adjust("2 minutes")
      const stale = yield* cache.getOrFetchCached("users:1", fetch, options)
      expect(stale).toEqual({ value: user(1), status: "stale" })
      // staleIf narrows which failures qualify.
      const refused = yield* cache.getOrFetchCached("users:1", fetch, {
        ...options,
        staleIf: (error) => error.status !== 503
      }).pipe(Effect.flip)
      expect(refused.status).toBe(503)
      yield* TestClock.adjust("5 minutes")
      const gone = yield* cache.getOrFetch("users:1", fetch, options).pipe(Effect.flip)
      expect(gone).toEqual(new Upstream({ status: 503 }))
      expect((yield* cache.stats).stale).toBe(1)
    }))

  it.scoped("a failed fetch is not cached and fails every caller waiting for it", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      const calls = yield* Ref.make(0)
      const fetch = Ref.update(calls, (n) => n + 1).pipe(
        Effect.zipRight(Effect.sleep("1 second")),
        Effect.zipRight(Effect.fail(new Upstream({ status: 502 })))
      )
      const fibers = yield* Effect.forEach(
        [1, 2, 3],
        () => Effect.fork(cache.getOrFetch("users:1", fetch, { schema: User })),
        { concurrency: "unbounded" }
      )
      yield* TestClock.adjust("1 second")
      const exits = yield* Effect.forEach(fibers, Fiber.await)
      expect(exits.every(Exit.isFailure)).toBe(true)
      expect(yield* Ref.get(calls)).toBe(1)
      expect(yield* cache.get("users:1", User)).toEqual(Option.none())
    }))

  it.scoped("refresh-ahead: a hit close to expiry is answered at once and refreshed in the background, once", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      const { calls, fetch } = yield* counted((n) => user(1, `v${n}`))
      const options = { schema: User, ttl: "1 minute", refreshAhead: "10 seconds" } as const
      yield* Effect.fork(cache.getOrFetch("users:1", fetch, options))
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("54 seconds")
      // Within 10 s of expiry: the old value now, one refresh started however many hits.
      const hits = yield* Effect.forEach([1, 2, 3], () => cache.getOrFetchCached("users:1", fetch, options))
      expect(hits.map((hit) => [hit.value.name, hit.status])).toEqual([["v1", "hit"], ["v1", "hit"], ["v1", "hit"]])
      yield* TestClock.adjust("1 second")
      expect((yield* cache.getOrFetch("users:1", fetch, options)).name).toBe("v2")
      expect(yield* Ref.get(calls)).toBe(2)
    }))

  it.scoped("a value fetched while its key was invalidated is returned but not stored", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      const { fetch } = yield* counted((n) => user(n))
      const fiber = yield* Effect.fork(cache.getOrFetch("users:1", fetch, { schema: User }))
      yield* TestClock.adjust("500 millis")
      yield* cache.delete("users:1")
      yield* TestClock.adjust("500 millis")
      expect(yield* Fiber.join(fiber)).toEqual(user(1))
      expect(yield* cache.get("users:1", User)).toEqual(Option.none())
    }))

  it.scoped("invalidation by key, pattern, tag and related resource", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      const keys = ["users:1", "users:2", "users:1:posts", "users:list:page=1", "users:10", "teams:1", "a*b"]
      for (const key of keys) yield* cache.set(key, Schema.String, key, { tags: key.startsWith("users") ? ["u"] : [] })
      const present = () =>
        Effect.map(
          Effect.forEach(keys, (key) => cache.get(key, Schema.String)),
          (found) => keys.filter((_, i) => Option.isSome(found[i]!))
        )
      expect(yield* cache.invalidate({ _tag: "Related", resource: "users", id: "1" })).toBe(3)
      expect(yield* present()).toEqual(["users:2", "users:10", "teams:1", "a*b"])
      expect(yield* cache.invalidate({ _tag: "Pattern", pattern: `${Cache.escapePattern("a*")}*` })).toBe(1)
      expect(yield* cache.invalidate({ _tag: "Tag", tag: "u" })).toBe(2)
      expect(yield* present()).toEqual(["teams:1"])
      yield* cache.delete("teams:1")
      expect(yield* present()).toEqual([])
    }))

  it.scoped("an entry read with another Schema that does not decode is a miss, dropped and counted", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      yield* cache.set("k", Schema.String, "not a number")
      expect(yield* cache.get("k", Schema.NumberFromString)).toEqual(Option.none())
      expect(yield* cache.get("k", Schema.String)).toEqual(Option.none())
      yield* cache.set("n", Schema.NumberFromString, 42)
      expect(yield* cache.get("n", Schema.compose(Schema.String, Schema.NumberFromString))).toEqual(Option.some(42))
      expect((yield* cache.stats).errors).toBe(1)
    }))

  it.scoped("the combinator caches an effect, data-first and data-last", () =>
    Effect.gen(function*() {
      const { calls, fetch } = yield* counted((n) => n, "0 millis")
      const options = { schema: Schema.Number }
      const a = yield* fetch.pipe(Cache.cached("n", options))
      const b = yield* Cache.cached(fetch, "n", options)
      expect([a, b]).toEqual([1, 1])
      expect(yield* Ref.get(calls)).toBe(1)
    }).pipe(Effect.provide(Cache.layerMemory())))

  it.effect("options out of range are an InvalidOptions when the layer is built", () =>
    Effect.gen(function*() {
      const error = yield* memory({ maxEntries: 0 }).pipe(Effect.scoped, Effect.flip)
      expect(error._tag).toBe("InvalidOptions")
      expect(error.message).toContain("maxEntries")
    }))

  it.effect("layerConfig and layerStoreConfig read CACHE_* by default, or the names the caller gives", () =>
    Effect.gen(function*() {
      const fromEnv = Cache.layerConfig().pipe(Layer.provide(Cache.layerStoreConfig("memory")))
      const error = yield* Cache.stats.pipe(
        Effect.provide(fromEnv),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["CACHE_MAX_ENTRIES", "0"]]))),
        Effect.flip
      )
      expect(error._tag).toBe("InvalidOptions")
      expect(error.message).toContain("maxEntries")
      const named = Cache.layerConfig(Config.all({ ttl: Config.duration("MY_TTL") })).pipe(
        Layer.provide(Cache.layerStoreMemory())
      )
      const stats = yield* Cache.stats.pipe(
        Effect.provide(named),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["MY_TTL", "1 minute"]])))
      )
      expect(stats.redis).toBe("none")
    }))

  it.scoped("keys: a list key is stable whatever the order of its parameters", () =>
    Effect.sync(() => {
      expect(Cache.listKey("users", { page: 1, active: true, name: undefined })).toBe("users:list:active=true&page=1")
      expect(Cache.listKey("users", { active: true, page: 1 })).toBe(Cache.listKey("users", { page: 1, active: true }))
      expect(Cache.resourceKey("users", 7)).toBe("users:7")
    }))

  it.scoped("a Deferred-gated fetch shows followers join the leader's flight", () =>
    Effect.gen(function*() {
      const cache = yield* memory()
      const gate = yield* Deferred.make<void>()
      const calls = yield* Ref.make(0)
      const fetch = Ref.update(calls, (n) => n + 1).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as("v"))
      const fibers = yield* Effect.forEach([1, 2, 3, 4], () =>
        Effect.fork(cache.getOrFetchCached("k", fetch, { schema: Schema.String })))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.joinAll(fibers)
      expect(results.map((result) =>
        result.status
      )).toEqual(["miss", "miss", "miss", "miss"])
      expect(yield* Ref.get(calls)).toBe(1)
      expect((yield* cache.stats).misses).toBe(4)
    }))
})
