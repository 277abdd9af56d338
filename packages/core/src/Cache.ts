/**
 * A cache for what other people's APIs answer: values typed by a `Schema` (encoded on write,
 * decoded on read), a time to live per entry, tags, and three layers:
 *
 * - {@link layerMemory}: a bounded, least-recently-used map in this process (the embedded default);
 * - {@link layerRedis}: Redis through the shared {@link Redis.Redis} client, shared by every instance;
 * - {@link layerTwoTier}: a small memory L1 in front of Redis; writes and invalidations are published
 *   on a Redis channel and every other instance drops its L1 copy.
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
 * and "related" (a resource, its lists and its sub-keys); {@link json} caches upstream GETs with
 * HTTP semantics (`Cache-Control`, `ETag` revalidation).
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
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Http from "./Http.js"
import type { HttpError } from "./HttpError.js"
import * as internal from "./internal/cache.js"
import { MemoryStore } from "./internal/cacheMemory.js"
import { RedisTier } from "./internal/cacheRedis.js"
import { escapeGlob } from "./internal/glob.js"
import * as HttpInternal from "./internal/httpClient.js"
import * as Invalid from "./internal/invalidOptions.js"
import * as Redis from "./Redis.js"

// ---------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------

/**
 * An invalidation could not reach Redis (the local copies were dropped anyway); the entries
 * there live until they expire unless it is retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheError extends Data.TaggedError("CacheError")<{
  readonly operation: string
  readonly reason: string
}> {
  override get message(): string {
    return `cache ${this.operation} failed: ${this.reason}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export const InvalidOptions = Invalid.InvalidOptions

/**
 * @since 0.1.0
 * @category errors
 */
export type InvalidOptions = Invalid.InvalidOptions

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
  /** Deletes one key everywhere. */
  readonly delete: (key: string) => Effect.Effect<void, CacheError>
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
  readonly invalidate: (invalidation: Invalidation) => Effect.Effect<number, CacheError>
  readonly stats: Effect.Effect<Stats>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Cache extends Context.Tag("@liaison/core/Cache")<Cache, Service>() {}

// ---------------------------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /** Default time to live. Default 5 minutes. */
  readonly ttl?: Duration.DurationInput | undefined
  /** Default grace period past expiry, for stale-if-error. Default 10 minutes. */
  readonly staleFor?: Duration.DurationInput | undefined
  /** The most entries kept in memory; the least recently used go first. Default 10,000. */
  readonly maxEntries?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisOptions {
  readonly ttl?: Duration.DurationInput | undefined
  readonly staleFor?: Duration.DurationInput | undefined
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
export interface TwoTierOptions extends RedisOptions {
  /** Entries in the memory L1. Default 10,000. */
  readonly maxEntries?: number | undefined
  /**
   * The longest an L1 copy counts as fresh before Redis is asked again: it bounds how stale a
   * copy can be when an invalidation message was missed (Redis down). Default 30 seconds.
   */
  readonly localTtl?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category defaults
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

const millis = (input: Duration.DurationInput | undefined, fallback: Duration.Duration): number =>
  Duration.toMillis(input === undefined ? fallback : Duration.decode(input))

const validDuration = (value: number, option: string, positive = true) =>
  [
    Number.isFinite(value) && (positive ? value > 0 : value >= 0),
    option,
    positive
      ? "must be a finite duration above zero"
      : "must be a finite duration"
  ] as const

const validCount = (value: number, option: string) =>
  [Number.isSafeInteger(value) && value >= 1, option, "must be a whole number, at least 1"] as const

// ---------------------------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------------------------

const fromEngine = (engine: internal.Engine): Service => {
  const schemaOf = <A, I>(schema: Schema.Schema<A, I>) => schema as unknown as Schema.Schema<A, unknown>
  return {
    get: (key, schema) => engine.get(key, schemaOf(schema)),
    set: (key, schema, value, options = {}) => engine.set(key, schemaOf(schema), value, options),
    delete: (key) => Effect.asVoid(invalidateWith(engine, { _tag: "Keys", keys: [key] })),
    getOrFetch: (key, fetch, options) => engine.lookupValue(key, schemaOf(options.schema), fetch, options),
    getOrFetchCached: (key, fetch, options) => engine.lookup(key, schemaOf(options.schema), fetch, options),
    load: (key, loader, options) =>
      engine.lookup(key, schemaOf(options.schema), (previous) => loader(Option.fromNullable(previous)), options),
    invalidate: (invalidation) => invalidateWith(engine, invalidation),
    stats: Effect.sync(() => engine.stats())
  }
}

const invalidateWith = (engine: internal.Engine, invalidation: Invalidation) =>
  Effect.mapError(
    engine.invalidate(invalidation),
    (failure) => new CacheError({ operation: failure.operation, reason: failure.reason })
  )

const engineContext = Effect.all({ clock: Effect.clock, scope: Effect.scope })

/**
 * The memory cache: bounded, least recently used first out, a time to live per entry. Its
 * clock is Effect's (`TestClock` in tests).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MemoryOptions = {}): Effect.Effect<Service, InvalidOptions, Scope.Scope> =>
  Effect.gen(function*() {
    const ttlMillis = millis(options.ttl, defaults.ttl)
    const staleForMillis = millis(options.staleFor, defaults.staleFor)
    const maxEntries = options.maxEntries ?? defaults.maxEntries
    const invalid = Invalid.check([
      validDuration(ttlMillis, "ttl"),
      validDuration(staleForMillis, "staleFor", false),
      validCount(maxEntries, "maxEntries")
    ])
    if (invalid !== undefined) return yield* invalid
    const { clock, scope } = yield* engineContext
    const engine = new internal.Engine({
      ttlMillis,
      staleForMillis,
      local: new MemoryStore(maxEntries),
      localMaxTtlMillis: undefined,
      shared: undefined,
      lockTtlMillis: 0,
      lockWaitMillis: 0,
      now: () => clock.unsafeCurrentTimeMillis(),
      scope
    })
    return fromEngine(engine)
  })

/**
 * The Redis cache (with `local`, two-tier): Redis through the shared {@link Redis.Redis} client.
 * Do not give that client an ioredis `keyPrefix`: pattern invalidation matches whole keys.
 *
 * With `local`, a second connection (`client.duplicate()`, closed with the scope) subscribes to
 * the invalidation channel; when it reconnects after an outage, the whole L1 is dropped, as
 * messages may have been missed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRedis = (
  options: RedisOptions & { readonly local?: Pick<TwoTierOptions, "maxEntries" | "localTtl"> | undefined } = {}
): Effect.Effect<Service, InvalidOptions, Redis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = {
      ttl: millis(options.ttl, defaults.ttl),
      staleFor: millis(options.staleFor, defaults.staleFor),
      timeout: millis(options.timeout, defaults.timeout),
      cooldown: millis(options.cooldown, defaults.cooldown),
      lockTtl: millis(options.lockTtl, defaults.lockTtl),
      lockWait: millis(options.lockWait, defaults.lockWait),
      localTtl: millis(options.local?.localTtl, defaults.localTtl),
      maxEntries: options.local?.maxEntries ?? defaults.maxEntries,
      batchSize: options.batchSize ?? defaults.batchSize,
      prefix: options.prefix ?? defaults.prefix
    }
    const invalid = Invalid.check([
      validDuration(resolved.ttl, "ttl"),
      validDuration(resolved.staleFor, "staleFor", false),
      validDuration(resolved.timeout, "timeout"),
      validDuration(resolved.cooldown, "cooldown", false),
      validDuration(resolved.lockTtl, "lockTtl"),
      validDuration(resolved.lockWait, "lockWait", false),
      validDuration(resolved.localTtl, "localTtl"),
      validCount(resolved.maxEntries, "maxEntries"),
      validCount(resolved.batchSize, "batchSize"),
      [resolved.prefix.length > 0, "prefix", "must not be empty"]
    ])
    if (invalid !== undefined) return yield* invalid
    const { client } = yield* Redis.Redis
    const { clock, scope } = yield* engineContext
    const now = () => clock.unsafeCurrentTimeMillis()
    const tier = new RedisTier(client, {
      prefix: resolved.prefix,
      timeoutMillis: resolved.timeout,
      cooldownMillis: resolved.cooldown,
      batchSize: resolved.batchSize
    }, now)
    const engine = new internal.Engine({
      ttlMillis: resolved.ttl,
      staleForMillis: resolved.staleFor,
      local: options.local === undefined ? undefined : new MemoryStore(resolved.maxEntries),
      localMaxTtlMillis: options.local === undefined ? undefined : resolved.localTtl,
      shared: tier,
      lockTtlMillis: resolved.lockTtl,
      lockWaitMillis: resolved.lockWait,
      now,
      scope
    })
    if (options.local !== undefined) {
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          // Subscriber mode: its own connection, waiting (not failing) while Redis is down.
          const subscriber = client.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true })
          subscriber.on("error", () => {})
          let connectedBefore = false
          subscriber.on("ready", () => {
            if (connectedBefore) engine.dropAllLocal()
            connectedBefore = true
          })
          subscriber.on("message", (channel: string, message: string) => {
            if (channel === tier.channel) engine.receive(message)
          })
          subscriber.subscribe(tier.channel).catch(() => {})
          return subscriber
        }),
        (subscriber) => Effect.sync(() => subscriber.disconnect())
      )
    }
    return fromEngine(engine)
  })

// ---------------------------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------------------------

/**
 * The memory cache as a layer: the embedded default, per process.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<Cache, InvalidOptions> =>
  Layer.scoped(Cache, make(options))

/**
 * The Redis cache as a layer, on the shared {@link Redis.Redis} client: every hit is a Redis `GET`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (options: RedisOptions = {}): Layer.Layer<Cache, InvalidOptions, Redis.Redis> =>
  Layer.scoped(Cache, makeRedis(options))

/**
 * A memory L1 in front of Redis: hits on hot keys never leave the process; writes and
 * invalidations make every other instance drop its L1 copy (Redis pub/sub).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTwoTier = (options: TwoTierOptions = {}): Layer.Layer<Cache, InvalidOptions, Redis.Redis> =>
  Layer.scoped(
    Cache,
    makeRedis({ ...options, local: { maxEntries: options.maxEntries, localTtl: options.localTtl } })
  )

/**
 * The settings from the environment, each optional: `CACHE_TTL`, `CACHE_STALE_FOR`,
 * `CACHE_LOCAL_TTL` (durations such as `5 minutes`), `CACHE_MAX_ENTRIES`, `CACHE_REDIS_TIMEOUT`,
 * `CACHE_REDIS_COOLDOWN`.
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
 * The layer of one tier, configured by {@link config}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: {
  (tier: "memory"): Layer.Layer<Cache, InvalidOptions | ConfigError.ConfigError>
  (tier: "redis" | "two-tier"): Layer.Layer<Cache, InvalidOptions | ConfigError.ConfigError, Redis.Redis>
} = ((tier: "memory" | "redis" | "two-tier") =>
  Layer.unwrapEffect(
    Effect.map(config, (options) =>
      tier === "memory"
        ? layerMemory(options)
        : tier === "redis"
        ? layerRedis(options)
        : layerTwoTier(options))
  )) as {
    (tier: "memory"): Layer.Layer<Cache, InvalidOptions | ConfigError.ConfigError>
    (tier: "redis" | "two-tier"): Layer.Layer<Cache, InvalidOptions | ConfigError.ConfigError, Redis.Redis>
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
 * @category invalidation
 */
export const invalidateKey = (key: string): Effect.Effect<number, CacheError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.invalidate({ _tag: "Keys", keys: [key] }))

/**
 * Deletes every key matching a Redis glob pattern (`*`, `?`, `[a-z]`, `\` escapes): in Redis with
 * `SCAN … MATCH` and `UNLINK`, a batch at a time. It walks the whole keyspace, so prefer tags on
 * hot write paths.
 *
 * @since 0.1.0
 * @category invalidation
 */
export const invalidatePattern = (pattern: string): Effect.Effect<number, CacheError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.invalidate({ _tag: "Pattern", pattern }))

/**
 * Deletes every entry stored with the tag.
 *
 * @since 0.1.0
 * @category invalidation
 */
export const invalidateTag = (tag: string): Effect.Effect<number, CacheError, Cache> =>
  Effect.flatMap(Cache, (cache) => cache.invalidate({ _tag: "Tag", tag }))

/**
 * Deletes a resource's entry ({@link resourceKey}), its lists ({@link listKey}) and its sub-keys
 * (`resource:id:…`). The id is matched literally (a `*` in it is no wildcard).
 *
 * @since 0.1.0
 * @category invalidation
 */
export const invalidateRelated = (resource: string, id: string | number): Effect.Effect<number, CacheError, Cache> =>
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
 * @category keys
 */
export const resourceKey = (resource: string, id: string | number): string => `${resource}:${id}`

/**
 * The key of a list of a resource, its parameters in a stable order:
 * `users:list:active=true&page=1`. Undefined parameters are left out.
 *
 * @since 0.1.0
 * @category keys
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
 * @category keys
 */
export const escapePattern: (text: string) => string = escapeGlob

// ---------------------------------------------------------------------------------------------
// HTTP semantics
// ---------------------------------------------------------------------------------------------

/**
 * How an upstream response may be cached, from its headers:
 *
 * - `storage`: `none` for `Cache-Control: no-store` (or `Vary: *`); `local` for `private` (never
 *   the shared Redis tier); `shared` otherwise;
 * - `ttlMillis`: the freshness lifetime, `s-maxage` (shared) or `max-age`, less the `Age` header;
 *   0 for `no-cache` (stored, but revalidated on every use); `undefined` when none is given;
 * - `etag`: the validator to revalidate with (`If-None-Match`).
 *
 * @since 0.1.0
 * @category http
 */
export interface HttpPolicy {
  readonly storage: "shared" | "local" | "none"
  readonly ttlMillis: number | undefined
  readonly etag: string | undefined
}

const directives = (header: string): Map<string, string | undefined> => {
  const found = new Map<string, string | undefined>()
  // Commas inside quoted values (`private="set-cookie, x-id"`) do not split.
  for (const part of header.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
    const [rawName = "", ...rest] = part.split("=")
    const name = rawName.trim().toLowerCase()
    if (name === "" || found.has(name)) continue
    const value = rest.length === 0 ? undefined : rest.join("=").trim().replace(/^"(.*)"$/, "$1")
    found.set(name, value)
  }
  return found
}

/** Seconds as a delta: digits only; anything else (a malformed max-age) counts as 0, i.e. stale. */
const deltaSeconds = (value: string | undefined): number =>
  value !== undefined && /^\d+$/.test(value) ? Number(value) : 0

/**
 * Reads an upstream response's caching headers (names in lower case, as `Http` gives them).
 *
 * @since 0.1.0
 * @category http
 */
export const httpPolicy = (headers: Readonly<Record<string, string>>): HttpPolicy => {
  const control = directives(headers["cache-control"] ?? "")
  const etag = headers["etag"]
  const storage = control.has("no-store") || (headers["vary"] ?? "").trim() === "*"
    ? "none"
    : control.has("private")
    ? "local"
    : "shared"
  const age = deltaSeconds(headers["age"])
  const lifetime = control.has("no-cache")
    ? 0
    : storage === "shared" && control.has("s-maxage")
    ? deltaSeconds(control.get("s-maxage"))
    : control.has("max-age")
    ? deltaSeconds(control.get("max-age"))
    : undefined
  return {
    storage,
    ttlMillis: lifetime === undefined ? undefined : Math.max(0, lifetime - age) * 1000,
    etag: etag === undefined || etag === "" ? undefined : etag
  }
}

/**
 * @since 0.1.0
 * @category http
 */
export interface JsonOptions extends EntryOptions {
  /** The cache key (a URL may carry an API key: it is never used as a key by default). */
  readonly key: string
  readonly refreshAhead?: Duration.DurationInput | undefined
  /** Which failures may be answered with a stale entry. Default: every failure. */
  readonly staleIf?: ((error: HttpError) => boolean) | undefined
}

const revalidate = <A, I>(
  request: HttpClientRequest.HttpClientRequest,
  schema: Schema.Schema<A, I>,
  previous: Option.Option<Entry<A>>
): Effect.Effect<Loaded<A>, HttpError, Http.Http> =>
  Effect.flatMap(Http.Http, (http) => {
    const etag = Option.getOrUndefined(Option.flatMapNullable(previous, (entry) => entry.etag))
    const sent = etag === undefined ? request : HttpClientRequest.setHeader(request, "if-none-match", etag)
    return http.execute(sent).pipe(
      Effect.flatMap((response): Effect.Effect<Loaded<A>, HttpError> => {
        const policy = httpPolicy(response.headers)
        const keep = { ttlMillis: policy.ttlMillis, storage: policy.storage }
        if (response.status === 304 && Option.isSome(previous) && etag !== undefined) {
          return Effect.succeed({ ...keep, value: previous.value.value, etag: policy.etag ?? etag, revalidated: true })
        }
        if (response.status < 200 || response.status >= 300) {
          return HttpInternal.statusError(request, response, http.options.maxErrorBodyBytes)
        }
        return response.text.pipe(
          Effect.flatMap((text) =>
            Effect.try({
              try: (): unknown => JSON.parse(text),
              catch: (cause) =>
                HttpInternal.decodeError(request, response.status, `invalid JSON: ${(cause as Error).message}`)
            })
          ),
          Effect.flatMap((body) =>
            Effect.mapError(
              Schema.decodeUnknown(schema)(body),
              (error) => HttpInternal.decodeError(request, response.status, HttpInternal.describeParseError(error))
            )
          ),
          Effect.map((value) => ({ ...keep, value, etag: policy.etag }))
        )
      }),
      Effect.scoped,
      HttpInternal.withTotalTimeout(request, http.options.timeouts.total)
    )
  })

/**
 * A cached upstream GET of JSON, with HTTP semantics: `Cache-Control: no-store` is not stored,
 * `private` stays out of the shared Redis tier, `max-age` / `s-maxage` bound the time to live
 * (never beyond `ttl`), and an expired entry with an `ETag` is revalidated with `If-None-Match`:
 * a 304 refreshes it without a body (its status is then `hit`). Failures are
 * `HttpError`s, answered from a stale entry when there is one (stale-if-error).
 *
 * @since 0.1.0
 * @category http
 */
export const json = <A, I>(
  request: HttpClientRequest.HttpClientRequest,
  schema: Schema.Schema<A, I>,
  options: JsonOptions
): Effect.Effect<Cached<A>, HttpError, Cache | Http.Http> =>
  Effect.flatMap(
    Cache,
    (cache) => cache.load(options.key, (previous) => revalidate(request, schema, previous), { ...options, schema })
  )
