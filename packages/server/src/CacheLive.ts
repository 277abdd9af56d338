/**
 * The server's cache: its layer (memory without Redis; with Redis two-tier by default, or Redis
 * only with `CACHE_TIER=redis`) and the handlers of {@link CacheApi.CacheApi}.
 *
 * | variable | default | |
 * |---|---|---|
 * | `ADMIN_API_KEY` | none | redacted; the `X-API-Key` of `POST /cache/invalidate`; unset: that route answers 403 |
 * | `CACHE_TIER` | `two-tier` | with `REDIS_URL`: `two-tier` (memory L1 + Redis) or `redis` |
 * | `CACHE_TTL`, `CACHE_STALE_FOR`, `CACHE_LOCAL_TTL`, `CACHE_MAX_ENTRIES`, `CACHE_REDIS_TIMEOUT`, `CACHE_REDIS_COOLDOWN` | `Cache.defaults` | see `Cache.config` |
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Cache } from "@liaison/core"
import type { Redis } from "@liaison/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"
import { Api } from "./Api.js"
import { AdminDisabled, CacheUnavailable, Unauthorized } from "./CacheApi.js"

/**
 * `ADMIN_API_KEY`, redacted.
 *
 * @since 0.1.0
 * @category config
 */
export const adminApiKey: Config.Config<Option.Option<Redacted.Redacted<string>>> = Config.option(
  Config.redacted("ADMIN_API_KEY")
)

/**
 * `CACHE_TIER`: `two-tier` (default) or `redis`; used only when `REDIS_URL` is set.
 *
 * @since 0.1.0
 * @category config
 */
export const cacheTier: Config.Config<"two-tier" | "redis"> = Config.literal("two-tier", "redis")("CACHE_TIER").pipe(
  Config.withDefault("two-tier" as const)
)

/**
 * The cache the server's services share: memory when `redis` is `None`; otherwise on that Redis
 * client, two-tier or Redis-only per `CACHE_TIER`. Settings from `Cache.config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  redis: Option.Option<Layer.Layer<Redis.Redis>>
): Layer.Layer<Cache.Cache, ConfigError.ConfigError | Cache.InvalidOptions> =>
  Option.match(redis, {
    onNone: () => Cache.layerConfig("memory"),
    onSome: (redis) =>
      Layer.unwrapEffect(Effect.map(cacheTier, (tier) => Cache.layerConfig(tier))).pipe(Layer.provide(redis))
  })

/** Compares digests, so neither the time taken nor the lengths tell anything about the key. */
const sameSecret = (given: string, expected: Redacted.Redacted<string>): boolean => {
  const digest = (text: string) => createHash("sha256").update(text).digest()
  return timingSafeEqual(digest(given), digest(Redacted.value(expected)))
}

const invalidationOf = (
  request: { readonly key?: string; readonly pattern?: string; readonly tag?: string }
): Cache.Invalidation =>
  request.key !== undefined
    ? { _tag: "Keys", keys: [request.key] }
    : request.pattern !== undefined
    ? { _tag: "Pattern", pattern: request.pattern }
    : { _tag: "Tag", tag: request.tag ?? "" }

/**
 * `POST /cache/invalidate` and `GET /cache/stats`; the admin key is read (`ADMIN_API_KEY`) when
 * the layer is built. The key is compared in constant time; without one the route answers 403.
 *
 * @since 0.1.0
 * @category layers
 */
export const CacheApiLive: Layer.Layer<HttpApiGroup.ApiGroup<"liaison", "cache">, never, Cache.Cache> = HttpApiBuilder
  .group(Api, "cache", (handlers) =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      // A key that cannot be read disables the route: it fails closed.
      const key = yield* adminApiKey.pipe(
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning(`ADMIN_API_KEY unreadable, POST /cache/invalidate disabled: ${error}`),
            Option.none()
          )
        )
      )
      return handlers
        .handle("invalidate", ({ headers, payload }) =>
          Effect.gen(function*() {
            if (Option.isNone(key)) {
              return yield* new AdminDisabled({
                error: "admin_disabled",
                message: "POST /cache/invalidate is disabled: the server has no ADMIN_API_KEY"
              })
            }
            const given = headers["x-api-key"]
            if (given === undefined || !sameSecret(given, key.value)) {
              return yield* new Unauthorized({
                error: "unauthorized",
                message: "POST /cache/invalidate needs the admin key in the X-API-Key header"
              })
            }
            const removed = yield* cache.invalidate(invalidationOf(payload)).pipe(
              Effect.mapError((error) => new CacheUnavailable({ error: "cache_unavailable", message: error.message }))
            )
            return { removed }
          }))
        .handle("stats", () => cache.stats)
    }))
