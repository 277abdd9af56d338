import { describe, expect, it } from "@effect/vitest"
import { Redis } from "@liaison/core"
import { Config, ConfigProvider, Effect, Exit, Redacted, Scope } from "effect"
import { freePort } from "../fixtures/ports.js"
import { redisUrl } from "../setup/redisUrl.js"

describe("Redis", () => {
  it.scoped("connects to the test's private redis-server and answers commands", () =>
    Effect.gen(function*() {
      const url = Redacted.make(redisUrl())
      const redis = yield* Redis.make({ url })
      yield* Redis.ping.pipe(Effect.provideService(Redis.Redis, redis))
      const key = `liaison:test:${Math.random()}`
      yield* Redis.use("SET", (client) => client.set(key, "v", "EX", 10)).pipe(
        Effect.provideService(Redis.Redis, redis)
      )
      expect(yield* Redis.use("GET", (client) => client.get(key)).pipe(Effect.provideService(Redis.Redis, redis))).toBe(
        "v"
      )
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
