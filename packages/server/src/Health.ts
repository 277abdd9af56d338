/**
 * What `GET /health` reports: the server is up, and whether its Redis answers.
 *
 * Redis being down degrades, it does not crash: when `REDIS_URL` is set but Redis cannot be
 * reached at startup the server starts anyway, reports `redis: "down"` and keeps connecting
 * in the background.
 *
 * @since 0.1.0
 */
import { Redis } from "@liaison/core"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

/**
 * `disabled` when no Redis is configured.
 *
 * @since 0.1.0
 * @category models
 */
export const RedisStatus = Schema.Literal("ok", "down", "disabled")

/**
 * @since 0.1.0
 * @category models
 */
export type RedisStatus = typeof RedisStatus.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly redis: Effect.Effect<RedisStatus>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Health extends Context.Tag("@liaison/server/Health")<Health, Service>() {}

// Exponential from 1 second, then every minute.
const reconnect = Schedule.exponential("1 second").pipe(Schedule.union(Schedule.spaced("1 minute")))

/**
 * No Redis configured.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDisabled: Layer.Layer<Health> = Layer.succeed(Health, {
  redis: Effect.succeed<RedisStatus>("disabled")
})

/**
 * Connects to Redis with `@liaison/core`'s `Redis.make` (the connection is closed with the
 * layer); `redis` is `ok` when a `PING` answers within `pingTimeout` (default 1 second).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: {
  readonly url: Redacted.Redacted<string>
  readonly pingTimeout?: Duration.DurationInput | undefined
}): Layer.Layer<Health> =>
  Layer.scoped(
    Health,
    Effect.gen(function*() {
      const client = yield* Ref.make(Option.none<Redis.Service>())
      const connect = Redis.make({ url: options.url }).pipe(
        Effect.tap((redis) => Ref.set(client, Option.some(redis)))
      )
      yield* connect.pipe(
        Effect.catchAll((error) =>
          Effect.logWarning(`Redis is down, retrying in the background: ${error.message}`).pipe(
            Effect.zipRight(
              // Each failed attempt's client is already disconnected by `Redis.make`.
              Effect.forkScoped(Effect.retry(connect, reconnect))
            )
          )
        )
      )
      const ping = (redis: Redis.Service) =>
        Redis.ping.pipe(
          Effect.provideService(Redis.Redis, redis),
          Effect.timeout(options.pingTimeout ?? "1 second"),
          Effect.as<RedisStatus>("ok"),
          Effect.orElseSucceed((): RedisStatus => "down")
        )
      return {
        redis: Effect.flatMap(
          Ref.get(client),
          Option.match({ onNone: () => Effect.succeed<RedisStatus>("down"), onSome: ping })
        )
      }
    })
  )
