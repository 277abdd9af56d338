/**
 * The handlers of `CacheApi.CacheApi`. The cache itself is `Cache.layerConfig()` on the
 * store `Stores` chooses (memory, or with Redis two-tier by default, Redis only with
 * `CACHE_TIER=redis`).
 *
 * | variable | default | |
 * |---|---|---|
 * | `ADMIN_API_KEY` | none | redacted; the `X-API-Key` of `POST /cache/invalidate`; unset: that route answers 403 |
 * | `CACHE_TTL`, `CACHE_STALE_FOR` | `Cache.defaults` | see `Cache.config` |
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { Cache } from "@liaison/core"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"
import { Api } from "../Api.js"
import type { JsonOnly } from "../Credentials.js"
import { AdminDisabled, CacheUnavailable, Unauthorized } from "./Api.js"

/**
 * `ADMIN_API_KEY`, redacted.
 *
 * @since 0.1.0
 * @category config
 */
export const adminApiKey: Config.Config<Option.Option<Redacted.Redacted<string>>> = Config.option(
  Config.redacted("ADMIN_API_KEY")
)

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
export const CacheLive: Layer.Layer<HttpApiGroup.ApiGroup<"liaison", "cache">, never, Cache.Cache | JsonOnly> =
  HttpApiBuilder
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
