/**
 * The users resource, cache-aside over the {@link Upstream}:
 *
 * - `get` reads `users:{id}` from the cache, else from the upstream (one fetch per key however
 *   many ask at once), and keeps it `CACHE_USERS_TTL` (10 minutes); when the upstream fails (5xx,
 *   unreachable, timed out, its breaker open, rate limited) an expired copy is served, marked
 *   stale, within the cache's `staleFor`. A 4xx answer (a 404: the user is gone) is never
 *   answered from the cache.
 * - `list` caches each page under `users:list:{query}` for 1 minute.
 * - `replace` / `update` write the new user through; `create`, `replace`, `update` and `remove`
 *   invalidate the related entries: the user, its sub-keys and every list.
 *
 * A write whose cache invalidation fails (Redis down) still succeeds: the upstream has the new
 * state; the failure is logged and stale copies expire with their time to live.
 *
 * @since 0.1.0
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cache } from "@liaison/core"
import type { HttpError } from "@liaison/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { Upstream } from "./Upstream.js"
import type { NewUser, UserFilter, UserPatch, UserReplace } from "./Users.js"
import * as Users from "./Users.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly get: (id: number) => Effect.Effect<Users.User, HttpError.HttpError>
  /** `get`, saying whether the answer came from the cache. */
  readonly getCached: (id: number) => Effect.Effect<Cache.Cached<Users.User>, HttpError.HttpError>
  readonly list: (filter: UserFilter) => Effect.Effect<Users.UserPage, HttpError.HttpError>
  readonly create: (input: NewUser) => Effect.Effect<Users.User, HttpError.HttpError>
  readonly replace: (id: number, input: UserReplace) => Effect.Effect<Users.User, HttpError.HttpError>
  readonly update: (id: number, input: UserPatch) => Effect.Effect<Users.User, HttpError.HttpError>
  readonly remove: (id: number) => Effect.Effect<void, HttpError.HttpError>
}

/**
 * @since 0.1.0
 * @category models
 */
export class CachedUsers extends Context.Tag("@liaison/server/CachedUsers")<CachedUsers, Service>() {}

/**
 * The resource name in cache keys (`users:7`, `users:list:…`) and the tag every user entry carries.
 *
 * @since 0.1.0
 * @category constants
 */
export const resource = "users"

/**
 * `CACHE_USERS_TTL`: how long a cached user stays fresh. Default 10 minutes.
 * A page of users stays fresh 1 minute, or as long as a user when that is shorter.
 *
 * @since 0.1.0
 * @category config
 */
export const usersTtl: Config.Config<Duration.Duration> = Config.duration("CACHE_USERS_TTL").pipe(
  Config.withDefault(Duration.minutes(10))
)

/** The upstream's own failures may be answered from a stale copy; its 4xx (a 404: gone) may not. */
const upstreamsFault = (error: HttpError.HttpError): boolean =>
  !(error._tag === "StatusError" && error.status >= 400 && error.status < 500 && error.status !== 429)

/**
 * Builds the service over the {@link Upstream} and the {@link Cache.Cache}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Service, ConfigError.ConfigError, Upstream | Cache.Cache> = Effect.gen(function*() {
  const upstream = yield* Upstream
  const cache = yield* Cache.Cache
  const ttl = yield* usersTtl
  const userOptions = { schema: Users.User, ttl, tags: [resource], staleIf: upstreamsFault }
  const listOptions = {
    schema: Users.UserPage,
    ttl: Duration.min(ttl, Duration.minutes(1)),
    tags: [`${resource}:lists`],
    staleIf: upstreamsFault
  }

  /** Drops the user, its sub-keys and every list; a cache that cannot be reached is logged, not fatal. */
  const invalidate = (id: number) =>
    cache.invalidate({ _tag: "Related", resource, id: String(id) }).pipe(
      Effect.catchAll((error) => Effect.logWarning(`users cache: ${error.message}; stale copies expire on their own`))
    )

  /** Write-through: the related entries go, the new user is stored. */
  const written = (user: Users.User) =>
    Effect.zipRight(invalidate(user.id), cache.set(Cache.resourceKey(resource, user.id), Users.User, user, userOptions))

  return CachedUsers.of({
    get: (id) => cache.getOrFetch(Cache.resourceKey(resource, id), upstream.get(id), userOptions),
    getCached: (id) => cache.getOrFetchCached(Cache.resourceKey(resource, id), upstream.get(id), userOptions),
    list: (filter) => cache.getOrFetch(Cache.listKey(resource, filter), upstream.list(filter), listOptions),
    create: (input) => Effect.tap(upstream.create(input), written),
    replace: (id, input) => Effect.tap(upstream.replace(id, input), written),
    update: (id, input) => Effect.tap(upstream.update(id, input), written),
    remove: (id) => Effect.tap(upstream.remove(id), () => invalidate(id))
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<CachedUsers, ConfigError.ConfigError, Upstream | Cache.Cache> = Layer.effect(
  CachedUsers,
  make
)

/**
 * Answers with the value encoded by `schema` and an `x-cache: hit | miss | stale` header, as the
 * response itself (a pre-response handler would cost a copy of the fiber's locals per request).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withCacheHeader = <A, I>(schema: Schema.Schema<A, I>) => {
  const encode = Schema.encodeSync(schema)
  return <E, R>(
    self: Effect.Effect<Cache.Cached<A>, E, R>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
    Effect.map(
      self,
      ({ status, value }) => HttpServerResponse.unsafeJson(encode(value), { headers: { "x-cache": status } })
    )
}
