/**
 * A cache for what other people's APIs answer: values typed by a `Schema` (encoded on write,
 * decoded on read), a time to live per entry, tags, and three backends ({@link Store}):
 *
 * - {@link layerStoreMemory}: a bounded, least-recently-used map in this process (the embedded default);
 * - {@link layerStoreRedis}: Redis through the shared {@link Redis.Redis} connection, shared by every instance;
 * - {@link layerStoreTwoTier}: a small memory L1 in front of Redis; writes and invalidations are published
 *   on a Redis channel and every other instance drops its L1 copy.
 *
 * {@link make} / {@link layer} build the cache on the store in context; {@link layerMemory},
 * {@link layerRedis} and {@link layerTwoTier} are both in one.
 *
 * {@link Service.getOrFetch} is cache-aside with the parts that make it safe under load:
 *
 * - **Stampede protection**: concurrent misses on one key run one fetch per process (the others
 *   join it) and, with Redis, one per cluster: a short lock (`SET NX PX` with a random token); the
 *   other instances poll for the value within `lockWait`, then fetch themselves.
 * - **Stale-if-error**: an expired entry is kept `staleFor` longer and served, marked `stale`, when
 *   the fetch fails (the upstream failing, or its circuit breaker open); `staleIf` narrows which
 *   failures qualify.
 * - **Refresh-ahead** (optional): a hit within `refreshAhead` of expiry starts one background refresh.
 * - **Fails open**: when Redis fails or is slower than `timeout`, reads are misses and writes are
 *   skipped (the calls go to the upstream); an L2 breaker then skips Redis for `cooldown`, so
 *   requests do not each wait for a connect timeout, and the first call after it tries again.
 *   Failures are counted in {@link Stats} and logged once per outage.
 * - An entry that no longer decodes (the Schema changed, the data is corrupt) is a miss: it is
 *   deleted and logged, never a crash.
 *
 * Invalidation by key, by pattern (`SCAN … MATCH` + `UNLINK` in batches, never `KEYS`), by tag,
 * and "related" (a resource, its lists and its sub-keys). `HttpCache.json` caches upstream GETs
 * with HTTP semantics (`Cache-Control`, `ETag` revalidation) on this cache.
 *
 * `effect/Cache` was weighed for the memory tier and not used: it takes one lookup function per
 * cache (here every call brings its own fetch), has no tags or pattern invalidation, and its hit
 * path is slower (`npm run bench -- cache`: 0.4–0.6 M `get`/s against 1.4–2.7 M hits/s for this
 * module's memory tier, in the same runs).
 *
 * @example
 * ```ts
 * import { HttpClientRequest } from "@effect/platform"
 * import { Cache, Http } from "@liaison/core"
 * import { Effect, Schema } from "effect"
 *
 * const User = Schema.Struct({ id: Schema.Number, name: Schema.String })
 *
 * const getUser = (id: number) =>
 *   Http.json(HttpClientRequest.get(`/users/${id}`), User).pipe(
 *     Cache.cached(`users:${id}`, { schema: User, ttl: "10 minutes", tags: ["users"] })
 *   )
 *
 * const program = getUser(7).pipe(
 *   Effect.provide(Cache.layerMemory()),
 *   Effect.provide(Http.layer({ baseUrl: "https://api.example.com" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/cacheStore.js"
import { millis } from "./internal/duration.js"
import { escapeGlob } from "./internal/glob.js"
import * as Invalid from "./internal/invalidOptions.js"
import type { InvalidOptions, StorageError } from "./LiaisonError.js"
import * as Redis from "./Redis.js"

// ---------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------

/**
 * Where a value came from: `hit` (the cache), `miss` (a fetch), `stale` (an expired entry served
 * because the fetch failed).
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "hit" | "miss" | "stale"

/**
 * A value and where it came from.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cached<A> {
  readonly value: A
  readonly status: Status
}

/**
 * An entry read back, fresh or within its grace period, as a {@link Loader} sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry<A> {
  readonly value: A
  /** Fresh until this time (epoch ms, Effect's clock). */
  readonly freshUntil: number
  /** Kept for stale-if-error until this time. */
  readonly staleUntil: number
  /** The validator it was stored with (HTTP `ETag`). */
  readonly etag: string | undefined
  readonly tags: ReadonlyArray<string>
}

/**
 * What a {@link Loader} produced and how to keep it: `ttlMillis` shortens the call's time to live
 * (never lengthens it); `storage` is `shared` (every tier, the default), `local` (only this
 * process' memory: never Redis) or `none` (not stored, and any stored copy is dropped);
 * `revalidated` says the value is the one held, confirmed by the source (served as a `hit`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded<A> {
  readonly value: A
  readonly ttlMillis?: number | undefined
  readonly etag?: string | undefined
  readonly storage?: "shared" | "local" | "none" | undefined
  readonly revalidated?: boolean | undefined
}

/**
 * Produces a value, given the entry held so far (expired, within its grace period) if any: the
 * general form of a fetch, e.g. to revalidate with its `etag`.
 *
 * @since 0.1.0
 * @category models
 */
export type Loader<A, E, R> = (previous: Option.Option<Entry<A>>) => Effect.Effect<Loaded<A>, E, R>

/**
 * @since 0.1.0
 * @category models
 */
export interface EntryOptions {
  /** How long the entry is fresh. Default: the layer's `ttl` (5 minutes). */
  readonly ttl?: Duration.DurationInput | undefined
  /** How long past expiry it is kept to be served if a fetch fails. Default: the layer's `staleFor`. */
  readonly staleFor?: Duration.DurationInput | undefined
  /** Tags to invalidate it by. */
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FetchOptions<A, I, E> extends EntryOptions {
  /** Types the value: encoded when stored, decoded when read. */
  readonly schema: Schema.Schema<A, I>
  /** A hit this close to expiry starts one background refresh. Default: off. */
  readonly refreshAhead?: Duration.DurationInput | undefined
  /** Which fetch failures may be answered with a stale entry. Default: every failure. */
  readonly staleIf?: ((error: E) => boolean) | undefined
}

/**
 * What to invalidate: keys; a Redis glob pattern over keys (`users:*`, `users:list:*`); a tag; or
 * a resource `resource:id` with its lists (`resource:list:*`) and its sub-keys (`resource:id:*`).
 *
 * @since 0.1.0
 * @category models
 */
export type Invalidation =
  | { readonly _tag: "Keys"; readonly keys: ReadonlyArray<string> }
  | { readonly _tag: "Pattern"; readonly pattern: string }
  | { readonly _tag: "Tag"; readonly tag: string }
  | { readonly _tag: "Related"; readonly resource: string; readonly id: string }

/**
 * Counters since the layer was built, and the state of its tiers.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Stats = Schema.Struct({
  /** Values served from the cache. */
  hits: Schema.Number,
  /** Lookups that found no fresh value. */
  misses: Schema.Number,
  /** Expired values served because a fetch failed. */
  stale: Schema.Number,
  /** Redis failures and timeouts, entries that did not decode, values that did not encode. */
  errors: Schema.Number,
  /** Fetches run (misses joined to another fetch, or answered by another instance, run none). */
  fetches: Schema.Number,
  /** Entries in this process' memory tier. */
  entries: Schema.Number,
  /** The Redis tier: answering, skipped after a failure, or not configured. */
  redis: Schema.Literal("up", "down", "none")
}).annotations({ identifier: "CacheStats" })

/**
 * @since 0.1.0
 * @category models
 */
export interface Stats extends Schema.Schema.Type<typeof Stats> {}

/**
 * Every read fails open: a cache problem is a miss, never a failure of the call.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** A fresh value, or `None`. */
  readonly get: <A, I>(key: string, schema: Schema.Schema<A, I>) => Effect.Effect<Option.Option<A>>
  /** Stores a value (write-through): other instances drop their local copies. */
  readonly set: <A, I>(
    key: string,
    schema: Schema.Schema<A, I>,
    value: A,
    options?: EntryOptions
  ) => Effect.Effect<void>
  /**
   * Deletes one key everywhere. Fails with a `StorageError` (store `"cache"`) when Redis cannot
   * be reached: the local copies are dropped anyway, the Redis entry lives until it expires.
   */
  readonly delete: (key: string) => Effect.Effect<void, StorageError>
  /** Cache-aside: a fresh value, or the fetch's (stored), or a stale one when the fetch fails. */
  readonly getOrFetch: <A, I, E, R>(
    key: string,
    fetch: Effect.Effect<A, E, R>,
    options: FetchOptions<A, I, E>
  ) => Effect.Effect<A, E, R>
  /** {@link Service.getOrFetch}, saying where the value came from. */
  readonly getOrFetchCached: <A, I, E, R>(
    key: string,
    fetch: Effect.Effect<A, E, R>,
    options: FetchOptions<A, I, E>
  ) => Effect.Effect<Cached<A>, E, R>
  /** The general form of {@link Service.getOrFetchCached}: the loader sees the expired entry. */
  readonly load: <A, I, E, R>(
    key: string,
    loader: Loader<A, E, R>,
    options: FetchOptions<A, I, E>
  ) => Effect.Effect<Cached<A>, E, R>
  /** Invalidates; succeeds with how many entries were removed (in Redis, when it is a tier). */
  readonly invalidate: (invalidation: Invalidation) => Effect.Effect<number, StorageError>
  /** Counters since the cache was built, and the state of its tiers. */
  readonly stats: Effect.Effect<Stats>
}

/**
 * @since 0.1.0
 * @category models
 */
export class Cache extends Context.Tag("@liaison/core/Cache")<Cache, Service>() {}

/**
 * A backend of caches: memory, Redis or two-tier. Built only by {@link layerStoreMemory},
 * {@link layerStoreRedis} and {@link layerStoreTwoTier} (its contract with the cache engine is not
 * public). Each cache made on it has its own memory tier and counters; Redis data is shared by
 * every cache on the same prefix.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreService {
  /** Which backend it is. */
  readonly backend: "memory" | "redis" | "two-tier"
}

/**
 * The backend {@link make} builds a cache on.
 *
 * @since 0.1.0
 * @category models
 */
export class Store extends Context.Tag("@liaison/core/Cache/Store")<Store, StoreService>() {}

// ---------------------------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------------------------

/**
 * The options of a cache, whatever its store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default time to live. Default 5 minutes. */
  readonly ttl?: Duration.DurationInput | undefined
  /** Default grace period past expiry, for stale-if-error. Default 10 minutes. */
  readonly staleFor?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StoreMemoryOptions {
  /** The most entries kept in memory; the least recently used go first. Default 10,000. */
  readonly maxEntries?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StoreRedisOptions {
  /** Prefix of every key; its `{…}` hash tag puts them in one Redis Cluster slot. Default `liaison:{cache}:`. */
  readonly prefix?: string | undefined
  /** A Redis command slower than this counts as a failure. Default 500 ms. */
  readonly timeout?: Duration.DurationInput | undefined
  /** After a Redis failure, Redis is skipped this long (the L2 breaker). Default 5 seconds. */
  readonly cooldown?: Duration.DurationInput | undefined
  /** How long a stampede lock is held at most. Default 10 seconds. */
  readonly lockTtl?: Duration.DurationInput | undefined
  /** How long another instance's fetch is waited for before fetching anyway. Default 5 seconds. */
  readonly lockWait?: Duration.DurationInput | undefined
  /** Keys per `SCAN` step and per `UNLINK` batch. Default 1000. */
  readonly batchSize?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StoreTwoTierOptions extends StoreRedisOptions {
  /** Entries in the memory L1. Default 10,000. */
  readonly maxEntries?: number | undefined
  /**
   * The longest an L1 copy counts as fresh before Redis is asked again: it bounds how stale a
   * copy can be when an invalidation message was missed (Redis down). Default 30 seconds.
   */
  readonly localTtl?: Duration.DurationInput | undefined
}

/**
 * The options of {@link layerMemory}: the cache's and its store's.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions extends Options, StoreMemoryOptions {}

/**
 * The options of {@link layerRedis}: the cache's and its store's.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisOptions extends Options, StoreRedisOptions {}

/**
 * The options of {@link layerTwoTier}: the cache's and its store's.
 *
 * @since 0.1.0
 * @category models
 */
export interface TwoTierOptions extends Options, StoreTwoTierOptions {}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  ttl: Duration.minutes(5),
  staleFor: Duration.minutes(10),
  maxEntries: 10_000,
  localTtl: Duration.seconds(30),
  prefix: "liaison:{cache}:",
  timeout: Duration.millis(500),
  cooldown: Duration.seconds(5),
  lockTtl: Duration.seconds(10),
  lockWait: Duration.seconds(5),
  batchSize: 1000
} as const

// ---------------------------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------------------------

/**
 * A cache on the {@link Store} in context. Its clock is Effect's (`TestClock` in tests); its
 * background fetches and (two-tier) subscriber live in the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, InvalidOptions, Store | Scope.Scope> =>
  Effect.gen(function*() {
    const ttlMillis = millis(options.ttl ?? defaults.ttl)
    const staleForMillis = millis(options.staleFor ?? defaults.staleFor)
    const invalid = Invalid.check([
      [Number.isFinite(ttlMillis) && ttlMillis > 0, "ttl", "must be a finite duration above zero"],
      [Number.isFinite(staleForMillis) && staleForMillis >= 0, "staleFor", "must be a finite duration"]
    ])
    if (invalid !== undefined) return yield* invalid
    return yield* internal.makeService(yield* Store, { ttlMillis, staleForMillis })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Cache, InvalidOptions, Store> =>
  Layer.scoped(Cache, make(options))

/**
 * The memory store: a bounded, least-recently-used map per cache, in this process.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreMemory = (options: StoreMemoryOptions = {}): Layer.Layer<Store, InvalidOptions> =>
  Layer.effect(Store, internal.memoryBackend(options, defaults))

/**
 * The Redis store, on the shared {@link Redis.Redis} connection: every hit is a Redis `GET`. Do
 * not give that connection an ioredis `keyPrefix`: pattern invalidation matches whole keys.
 * An entry read again unchanged is not decoded again: its hits share one value, as a memory
 * tier's do (cached values are to be treated as immutable).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreRedis = (options: StoreRedisOptions = {}): Layer.Layer<Store, InvalidOptions, Redis.Redis> =>
  Layer.effect(Store, Effect.flatMap(Redis.Redis, (redis) => internal.redisBackend(redis, options, defaults, false)))

/**
 * A memory L1 in front of Redis: hits on hot keys never leave the process; writes and
 * invalidations make every other instance drop its L1 copy (Redis pub/sub). Each cache opens a
 * second connection (`duplicate()`, closed with the cache) to subscribe; when it reconnects after
 * an outage, the whole L1 is dropped, as messages may have been missed.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStoreTwoTier = (
  options: StoreTwoTierOptions = {}
): Layer.Layer<Store, InvalidOptions, Redis.Redis> =>
  Layer.effect(Store, Effect.flatMap(Redis.Redis, (redis) => internal.redisBackend(redis, options, defaults, true)))

/**
 * The memory cache as one layer: the embedded default, per process.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<Cache, InvalidOptions> =>
  Layer.provide(layer(options), layerStoreMemory(options))

/**
 * The Redis cache as one layer, on the shared {@link Redis.Redis} connection.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisOptions = {}): Layer.Layer<Cache, InvalidOptions, Redis.Redis> =>
  Layer.provide(layer(options), layerStoreRedis(options))

/**
 * The two-tier cache as one layer (see {@link layerStoreTwoTier}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTwoTier = (options: TwoTierOptions = {}): Layer.Layer<Cache, InvalidOptions, Redis.Redis> =>
  Layer.provide(layer(options), layerStoreTwoTier(options))

// ---------------------------------------------------------------------------------------------
// config
// ---------------------------------------------------------------------------------------------

/**
 * The settings from the environment, each optional: `CACHE_TTL`, `CACHE_STALE_FOR`,
 * `CACHE_LOCAL_TTL` (durations such as `5 minutes`), `CACHE_MAX_ENTRIES`, `CACHE_REDIS_TIMEOUT`,
 * `CACHE_REDIS_COOLDOWN`. Give {@link layerConfig} your own `Config` to read other names.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<TwoTierOptions> = Config.all({
  ttl: Config.option(Config.duration("CACHE_TTL")),
  staleFor: Config.option(Config.duration("CACHE_STALE_FOR")),
  localTtl: Config.option(Config.duration("CACHE_LOCAL_TTL")),
  maxEntries: Config.option(Config.integer("CACHE_MAX_ENTRIES")),
  timeout: Config.option(Config.duration("CACHE_REDIS_TIMEOUT")),
  cooldown: Config.option(Config.duration("CACHE_REDIS_COOLDOWN"))
}).pipe(
  // Unset variables stay undefined: the constructors fill in the defaults.
  Config.map((options): TwoTierOptions => ({
    ttl: Option.getOrUndefined(options.ttl),
    staleFor: Option.getOrUndefined(options.staleFor),
    localTtl: Option.getOrUndefined(options.localTtl),
    maxEntries: Option.getOrUndefined(options.maxEntries),
    timeout: Option.getOrUndefined(options.timeout),
    cooldown: Option.getOrUndefined(options.cooldown)
  }))
)

/**
 * The cache (on the {@link Store} in context) configured by `config`, {@link config} by default.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<Cache, InvalidOptions | ConfigError.ConfigError, Store> => Layer.unwrapEffect(Effect.map(options, layer))

/**
 * A store configured by `config` ({@link config} by default): `"memory"` needs nothing,
 * `"redis"` and `"two-tier"` the shared {@link Redis.Redis}.
 *
 * @since 0.1.0
 * @category layers
 */
export function layerStoreConfig(
  backend: "memory",
  options?: Config.Config<StoreMemoryOptions>
): Layer.Layer<Store, InvalidOptions | ConfigError.ConfigError>
export function layerStoreConfig(
  backend: "redis" | "two-tier",
  options?: Config.Config<StoreTwoTierOptions>
): Layer.Layer<Store, InvalidOptions | ConfigError.ConfigError, Redis.Redis>
export function layerStoreConfig(
  backend: StoreService["backend"],
  options: Config.Config<StoreTwoTierOptions> = config
): Layer.Layer<Store, InvalidOptions | ConfigError.ConfigError, Redis.Redis> {
  return Layer.unwrapEffect(Effect.map(options, (resolved) =>
    backend === "memory"
      ? layerStoreMemory(resolved)
      : backend === "redis"
      ? layerStoreRedis(resolved)
      : layerStoreTwoTier(resolved)))
}

// ---------------------------------------------------------------------------------------------
// accessors and combinators
// ---------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category accessors
 */
export const get = <A, I>(key: string, schema: Schema.Schema<A, I>): Effect.Effect<Option.Option<A>, never, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.get(key, schema))

/**
 * @since 0.1.0
 * @category accessors
 */
export const set = <A, I>(
  key: string,
  schema: Schema.Schema<A, I>,
  value: A,
  options?: EntryOptions
): Effect.Effect<void, never, Cache> => Effect.flatMap(Cache, (cache) => cache.set(key, schema, value, options))

/**
 * @since 0.1.0
 * @category accessors
 */
export const getOrFetch = <A, I, E, R>(
  key: string,
  fetch: Effect.Effect<A, E, R>,
  options: FetchOptions<A, I, E>
): Effect.Effect<A, E, R | Cache> => Effect.flatMap(Cache, (cache) => cache.getOrFetch(key, fetch, options))

/**
 * @since 0.1.0
 * @category accessors
 */
export const getOrFetchCached = <A, I, E, R>(
  key: string,
  fetch: Effect.Effect<A, E, R>,
  options: FetchOptions<A, I, E>
): Effect.Effect<Cached<A>, E, R | Cache> =>
  Effect.flatMap(Cache, (cache) => cache.getOrFetchCached(key, fetch, options))

/**
 * Caches an effect under a key (cache-aside, see {@link Service.getOrFetch}); data-first or data-last.
 *
 * @since 0.1.0
 * @category combinators
 */
export const cached: {
  <A, I, E>(
    key: string,
    options: FetchOptions<A, I, E>
  ): <R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R | Cache>
  <A, I, E, R>(self: Effect.Effect<A, E, R>, key: string, options: FetchOptions<A, I, E>): Effect.Effect<
    A,
    E,
    R | Cache
  >
} = dual(
  3,
  <A, I, E, R>(self: Effect.Effect<A, E, R>, key: string, options: FetchOptions<A, I, E>) =>
    getOrFetch(key, self, options)
)

/**
 * Deletes one key everywhere.
 *
 * @since 0.1.0
 * @category combinators
 */
export const invalidateKey = (key: string): Effect.Effect<number, StorageError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.invalidate({ _tag: "Keys", keys: [key] }))

/**
 * Deletes every key matching a Redis glob pattern (`*`, `?`, `[a-z]`, `\` escapes): in Redis with
 * `SCAN … MATCH` and `UNLINK`, a batch at a time. It walks the whole keyspace, so prefer tags on
 * hot write paths.
 *
 * @since 0.1.0
 * @category combinators
 */
export const invalidatePattern = (pattern: string): Effect.Effect<number, StorageError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.invalidate({ _tag: "Pattern", pattern }))

/**
 * Deletes every entry stored with the tag.
 *
 * @since 0.1.0
 * @category combinators
 */
export const invalidateTag = (tag: string): Effect.Effect<number, StorageError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.invalidate({ _tag: "Tag", tag }))

/**
 * Deletes a resource's entry ({@link resourceKey}), its lists ({@link listKey}) and its sub-keys
 * (`resource:id:…`). The id is matched literally (a `*` in it is no wildcard).
 *
 * @since 0.1.0
 * @category combinators
 */
export const invalidateRelated = (resource: string, id: string | number): Effect.Effect<number, StorageError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.invalidate({ _tag: "Related", resource, id: String(id) }))

/**
 * @since 0.1.0
 * @category accessors
 */
export const stats: Effect.Effect<Stats, never, Cache> = Effect.flatMap(Cache, (cache) => cache.stats)

/**
 * The key of one resource: `users:7`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resourceKey = (resource: string, id: string | number): string => `${resource}:${id}`

/**
 * The key of a list of a resource, its parameters in a stable order:
 * `users:list:active=true&page=1`. Undefined parameters are left out.
 *
 * @since 0.1.0
 * @category constructors
 */
export const listKey = (
  resource: string,
  params: Readonly<Record<string, string | number | boolean | undefined>> = {}
): string => {
  const query = Object.keys(params).sort()
    .flatMap((name) => {
      const value = params[name]
      return value === undefined ? [] : [`${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`]
    })
    .join("&")
  return `${resource}:list:${query}`
}

/**
 * A Redis glob pattern that matches `text` literally.
 *
 * @since 0.1.0
 * @category constructors
 */
export const escapePattern: (text: string) => string = escapeGlob
