import { describe, expect, it } from "@effect/vitest"
import { Redis } from "@liaison/core"
import { Config, ConfigProvider, Effect, Exit, Redacted, Scope } from "effect"
import { freePort } from "../fixtures/ports.js"
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
})
