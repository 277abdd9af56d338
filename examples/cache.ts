/**
 * Caching: cache-aside with stale-if-error, a write that invalidates related keys, an upstream GET
 * cached with HTTP semantics, and the two-tier cache on Redis.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Cache, Http, HttpCache, Redis } from "@liaison/core"
import { Effect, Layer, Schema } from "effect"

const User = Schema.Struct({ id: Schema.Number, name: Schema.String })

// Cache-aside: the cache, else the upstream (stored for 10 minutes, tagged "users").
export const getUser = (id: number) =>
  Http.json(HttpClientRequest.get(`/users/${id}`), User).pipe(
    Cache.cached(Cache.resourceKey("users", id), {
      schema: User,
      ttl: "10 minutes",
      tags: ["users"],
      // stale-if-error: serve an expired copy when the upstream fails, but not when it says 4xx
      staleIf: (error) => !(error._tag === "StatusError" && error.status < 500)
    })
  )

// A write: write the new value through, drop the user's lists and sub-keys.
export const renamed = (user: typeof User.Type) =>
  Cache.invalidateRelated("users", user.id).pipe(
    Effect.zipRight(Cache.set(Cache.resourceKey("users", user.id), User, user))
  )

// An upstream GET cached with HTTP semantics (Cache-Control, ETag → If-None-Match → 304).
export const catalog = HttpCache.json(HttpClientRequest.get("/catalog"), Schema.Array(Schema.String), {
  key: "catalog"
})

export const CacheLive = Cache.layerTwoTier().pipe(Layer.provide(Redis.layerConfig())) // or Cache.layerMemory()
