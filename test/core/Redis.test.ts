import { describe, expect, it } from "@effect/vitest"
import { Redis } from "@liaison/core"
import { Config, ConfigProvider, Effect, Exit, Redacted, Scope } from "effect"
import { freePort } from "../fixtures/ports.js"
import { privateRedis } from "../fixtures/redisServer.js"
import { redisUrl, testPrefix } from "../setup/redisUrl.js"

describe("Redis", () => {
  it.scoped("connects to the test's private redis-server and answers commands", () =>
    Effect.gen(function*() {
      const url = Redacted.make(redisUrl())
      const redis = yield* Redis.make({ url })
      yield* Redis.ping.pipe(Effect.provideService(Redis.Redis, redis))
      const key = `${testPrefix("redis")}k`
      yield* Redis.use("SET", (client) => client.set(key, "v", "EX", 10)).pipe(
        Effect.provideService(Redis.Redis, redis)
      )
      expect(yield* Redis.use("GET", (client) => client.get(key)).pipe(Effect.provideService(Redis.Redis, redis))).toBe(
        "v"
      )
    }))

  it.scoped("the client answers the commands the stores use, a transaction, and any other through call", () =>
    Effect.gen(function*() {
      const redis = yield* Redis.make({ url: Redacted.make(redisUrl()) })
      const run = <A>(f: (client: Redis.Client) => Promise<A>) =>
        Redis.use("test", f).pipe(Effect.provideService(Redis.Redis, redis))
      const key = `${testPrefix("redis")}k`
      const replies = yield* run((client) => client.multi().set(key, "v", "PX", 10_000).pexpire(key, 20_000).exec())
      expect(replies?.map(([error]) => error)).toEqual([null, null])
      const ttl = yield* run((client) => client.call("PTTL", key))
      expect(typeof ttl === "number" && ttl > 10_000 && ttl <= 20_000).toBe(true)
      expect(yield* run((client) => client.mget([key, `${key}:missing`]))).toEqual(["v", null])
      expect(yield* run((client) => client.set(key, "w", "PX", 1_000, "NX"))).toBeNull()
      expect(yield* run((client) => client.unlink(key))).toBe(1)
      expect(yield* run((client) => client.exists(key))).toBe(0)
    }))

  it.effect("closing the scope disconnects the client", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const redis = yield* Redis.make({ url: Redacted.make(redisUrl()) }).pipe(Scope.extend(scope))
      expect(redis.client.status).toBe("ready")
      yield* Scope.close(scope, Exit.void)
      expect(["end", "close"]).toContain(redis.client.status)
    }))

  it.effect("an unreachable Redis is a RedisError that names the operation, not a crash", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const error = yield* Redis.make({
        url: Redacted.make(`redis://:s3cret@127.0.0.1:${port}`),
        redisOptions: { retryStrategy: () => null }
      }).pipe(Effect.scoped, Effect.flip)
      expect(error._tag).toBe("RedisError")
      expect(error.message).toContain("connect")
      expect(error.message).not.toContain("s3cret")
    }))

  it.effect("layerConfig reads REDIS_URL by default, or the name the caller gives", () =>
    Effect.gen(function*() {
      const ping = Effect.scoped(Redis.ping)
      yield* ping.pipe(
        Effect.provide(Redis.layerConfig()),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REDIS_URL", redisUrl()]])))
      )
      yield* ping.pipe(
        Effect.provide(Redis.layerConfig(Config.all({ url: Config.redacted("MY_REDIS") }))),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["MY_REDIS", redisUrl()]])))
      )
    }))

  it.live("Redis killed: commands fail at once (no offline queue), and work again once it is back", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => privateRedis()),
        (s) => Effect.promise(s.dispose)
      )
      const { client } = yield* Redis.make({ url: Redacted.make(server.url) })
      expect(yield* Effect.promise(() => client.ping())).toBe("PONG")
      yield* Effect.promise(server.stop)
      let slowest = 0
      for (let i = 0; i < 50; i++) {
        const start = performance.now()
        const failed = yield* Effect.promise(() => client.get("k").then(() => false, () => true))
        expect(failed).toBe(true)
        slowest = Math.max(slowest, performance.now() - start)
      }
      expect(slowest).toBeLessThan(200)
      yield* Effect.promise(server.start)
      let back = false
      for (let i = 0; i < 100 && !back; i++) {
        back = yield* Effect.promise(() => client.ping().then(() => true, () => false))
        if (!back) yield* Effect.sleep("50 millis")
      }
      expect(back).toBe(true)
    }).pipe(Effect.scoped))

  it.live("a Redis that stops answering: commands time out, then the breaker fails them at once until it answers", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => privateRedis()),
        (s) => Effect.promise(s.dispose)
      )
      const { client } = yield* Redis.make({
        url: Redacted.make(server.url),
        redisOptions: { commandTimeout: 100 },
        breaker: { failures: 3, openMillis: 500 }
      })
      // Another connection pauses every client (this one too) for 1.5 s: Redis is up but silent.
      const admin = client.duplicate()
      yield* Effect.addFinalizer(() => Effect.sync(() => admin.disconnect()))
      // A duplicate connects lazily; without an offline queue a command before that would fail.
      yield* Effect.promise(() => admin.connect())
      yield* Effect.promise(() => admin.call("CLIENT", "PAUSE", "1500", "ALL"))
      const timed = (f: () => Promise<unknown>) =>
        Effect.promise(async () => {
          const start = performance.now()
          const error = await f().then(() => undefined, (e: unknown) => e)
          return { millis: performance.now() - start, error: error instanceof Error ? error.message : String(error) }
        })
      for (let i = 0; i < 3; i++) {
        const { error, millis } = yield* timed(() => client.get("k"))
        expect(error).toContain("timed out")
        expect(millis).toBeGreaterThanOrEqual(99)
      }
      const open = yield* timed(() => client.get("k"))
      expect(open.error).toContain("Redis unavailable")
      expect(open.millis).toBeLessThan(20)
      // After the pause the breaker lets commands through again.
      yield* Effect.sleep("1600 millis")
      expect(yield* Effect.promise(() => client.ping())).toBe("PONG")
    }).pipe(Effect.scoped))

  it.live("a reply that arrived while the application blocked its event loop is not a timeout", () =>
    Effect.gen(function*() {
      const { client } = yield* Redis.make({ url: Redacted.make(redisUrl()), redisOptions: { commandTimeout: 50 } })
      const block = (millis: number) => {
        const until = performance.now() + millis
        while (performance.now() < until) {
          // busy: a long synchronous task
        }
      }
      const reply = client.ping()
      block(200)
      expect(yield* Effect.promise(() => reply)).toBe("PONG")
      // ioredis' own command timeout fails the same exchange.
      const plain = client.duplicate({ commandTimeout: 50 })
      yield* Effect.addFinalizer(() => Effect.sync(() => plain.disconnect()))
      yield* Effect.promise(() => plain.connect())
      const raw = plain.ping().then(() => "answered", (e: unknown) => e instanceof Error ? e.message : "failed")
      block(200)
      expect(yield* Effect.promise(() => raw)).toBe("Command timed out")
    }).pipe(Effect.scoped))
})
