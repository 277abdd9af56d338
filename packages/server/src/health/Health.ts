/**
 * What `GET /health` reports: the server is up, and whether its Redis answers.
 *
 * Redis being down degrades, it does not crash: when `REDIS_URL` is set but Redis cannot be
 * reached at startup the server starts anyway, reports `redis: "down"`, and its shared client
 * keeps connecting in the background.
 *
 * @since 0.1.0
 */
import { Redis } from "@liaison/core"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
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
 * @category models
 */
export class Health extends Context.Tag("@liaison/server/Health")<Health, Service>() {}

/**
 * No Redis configured.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDisabled: Layer.Layer<Health> = Layer.succeed(
  Health,
  Health.of({ redis: Effect.succeed<RedisStatus>("disabled") })
)

/**
 * Pings the shared {@link Redis.Redis} client: `redis` is `ok` when a `PING` answers within
 * `pingTimeout` (default 1 second), `down` otherwise (the client keeps reconnecting on its own).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: {
  readonly pingTimeout?: Duration.DurationInput | undefined
} = {}): Layer.Layer<Health, never, Redis.Redis> =>
  Layer.effect(
    Health,
    Effect.map(Redis.Redis, (redis) =>
      Health.of({
        redis: Redis.ping.pipe(
          Effect.provideService(Redis.Redis, redis),
          Effect.timeout(options.pingTimeout ?? "1 second"),
          Effect.as<RedisStatus>("ok"),
          Effect.orElseSucceed((): RedisStatus => "down")
        )
      }))
  )
