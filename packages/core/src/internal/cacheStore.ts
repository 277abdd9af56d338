/**
 * The backends behind `Cache.Store` and the service built on one: a backend is a recipe (its
 * options checked when its layer is built) that gives each cache made on it its own tiers, so
 * the memory tier, the counters and the two-tier subscriber belong to one cache, while the
 * Redis data is shared by every cache (and instance) on the same prefix.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Cache from "../Cache.js"
import type { InvalidOptions } from "../LiaisonError.js"
import { StorageError } from "../LiaisonError.js"
import type * as Redis from "../Redis.js"
import { Engine } from "./cache.js"
import { MemoryStore } from "./cacheMemory.js"
import type { TierFailure } from "./cacheRedis.js"
import { RedisTier } from "./cacheRedis.js"
import { millis } from "./duration.js"
import * as Invalid from "./invalidOptions.js"

/** The tiers of one cache, and how long its stampede locks are held and waited for. @internal */
export interface Tiers {
  readonly local: MemoryStore | undefined
  /** Caps how long an L1 copy of a shared entry counts as fresh (two-tier). */
  readonly localMaxTtlMillis: number | undefined
  readonly shared: RedisTier | undefined
  readonly lockTtlMillis: number
  readonly lockWaitMillis: number
}

/**
 * A backend: `build` makes the tiers of one cache (given the cache's clock); `attach` runs, in
 * the cache's scope, what the engine needs besides (the two-tier invalidation subscriber).
 *
 * @internal
 */
export class Backend implements Cache.StoreService {
  constructor(
    readonly backend: Cache.StoreService["backend"],
    readonly build: (now: () => number) => Tiers,
    readonly attach: (engine: Engine, tiers: Tiers) => Effect.Effect<void, never, Scope.Scope>
  ) {}
}

const attachNothing = () => Effect.void

const validDuration = (value: number, option: string, positive = true) =>
  [
    Number.isFinite(value) && (positive ? value > 0 : value >= 0),
    option,
    positive ? "must be a finite duration above zero" : "must be a finite duration"
  ] as const

const validCount = (value: number, option: string) =>
  [Number.isSafeInteger(value) && value >= 1, option, "must be a whole number, at least 1"] as const

const orFail = (invalid: InvalidOptions | undefined): Effect.Effect<void, InvalidOptions> =>
  invalid === undefined ? Effect.void : Effect.fail(invalid)

// ---------------------------------------------------------------------------------------------
// backends

/** The memory backend: a bounded LRU map per cache. @internal */
export const memoryBackend = (
  options: Cache.StoreMemoryOptions,
  defaults: typeof Cache.defaults
): Effect.Effect<Backend, InvalidOptions> => {
  const maxEntries = options.maxEntries ?? defaults.maxEntries
  return Effect.as(
    orFail(Invalid.check([validCount(maxEntries, "maxEntries")])),
    new Backend("memory", () => ({
      local: new MemoryStore(maxEntries),
      localMaxTtlMillis: undefined,
      shared: undefined,
      lockTtlMillis: 0,
      lockWaitMillis: 0
    }), attachNothing)
  )
}

const resolveRedis = (options: Cache.StoreTwoTierOptions, defaults: typeof Cache.defaults) => ({
  timeout: millis(options.timeout ?? defaults.timeout),
  cooldown: millis(options.cooldown ?? defaults.cooldown),
  lockTtl: millis(options.lockTtl ?? defaults.lockTtl),
  lockWait: millis(options.lockWait ?? defaults.lockWait),
  localTtl: millis(options.localTtl ?? defaults.localTtl),
  maxEntries: options.maxEntries ?? defaults.maxEntries,
  batchSize: options.batchSize ?? defaults.batchSize,
  prefix: options.prefix ?? defaults.prefix
})

const checkRedis = (resolved: ReturnType<typeof resolveRedis>) =>
  Invalid.check([
    validDuration(resolved.timeout, "timeout"),
    validDuration(resolved.cooldown, "cooldown", false),
    validDuration(resolved.lockTtl, "lockTtl"),
    validDuration(resolved.lockWait, "lockWait", false),
    validDuration(resolved.localTtl, "localTtl"),
    validCount(resolved.maxEntries, "maxEntries"),
    validCount(resolved.batchSize, "batchSize"),
    [resolved.prefix.length > 0, "prefix", "must not be empty"]
  ])

/**
 * The Redis backend on the shared connection; with `twoTier`, a memory L1 in front of it, kept
 * in step by an invalidation channel.
 *
 * @internal
 */
export const redisBackend = (
  redis: Redis.Service,
  options: Cache.StoreTwoTierOptions,
  defaults: typeof Cache.defaults,
  twoTier: boolean
): Effect.Effect<Backend, InvalidOptions> => {
  const resolved = resolveRedis(options, defaults)
  const build = (now: () => number): Tiers => ({
    local: twoTier ? new MemoryStore(resolved.maxEntries) : undefined,
    localMaxTtlMillis: twoTier ? resolved.localTtl : undefined,
    shared: new RedisTier(redis, {
      prefix: resolved.prefix,
      timeoutMillis: resolved.timeout,
      cooldownMillis: resolved.cooldown,
      batchSize: resolved.batchSize
    }, now),
    lockTtlMillis: resolved.lockTtl,
    lockWaitMillis: resolved.lockWait
  })
  return Effect.as(
    orFail(checkRedis(resolved)),
    new Backend(twoTier ? "two-tier" : "redis", build, twoTier ? subscribe(redis) : attachNothing)
  )
}

/**
 * The two-tier subscriber: its own connection (subscriber mode, waiting rather than failing while
 * Redis is down), closed with the cache's scope. After a reconnection the whole L1 is dropped, as
 * messages may have been missed.
 */
const subscribe = (redis: Redis.Service) => (engine: Engine, tiers: Tiers): Effect.Effect<void, never, Scope.Scope> => {
  const channel = tiers.shared?.channel
  if (channel === undefined) return Effect.void
  return Effect.asVoid(Effect.acquireRelease(
    Effect.sync(() => {
      const subscriber = redis.client.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true })
      subscriber.on("error", () => {})
      let connectedBefore = false
      subscriber.on("ready", () => {
        if (connectedBefore) engine.dropAllLocal()
        connectedBefore = true
      })
      subscriber.on("message", (from: string, message: string) => {
        if (from === channel) engine.receive(message)
      })
      subscriber.subscribe(channel).catch(() => {})
      return subscriber
    }),
    (subscriber) => Effect.sync(() => subscriber.disconnect())
  ))
}

// ---------------------------------------------------------------------------------------------
// the service

const toStorageError = (failure: TierFailure) =>
  new StorageError({ store: "cache", operation: failure.operation, cause: failure })

const invalidateWith = (engine: Engine, invalidation: Cache.Invalidation) =>
  Effect.mapError(engine.invalidate(invalidation), toStorageError)

const fromEngine = (engine: Engine): Cache.Service => ({
  get: (key, schema) => engine.get(key, schema),
  set: (key, schema, value, options = {}) => engine.set(key, schema, value, options),
  delete: (key) => Effect.asVoid(invalidateWith(engine, { _tag: "Keys", keys: [key] })),
  getOrFetch: (key, fetch, options) => engine.lookupValue(key, options.schema, fetch, options),
  getOrFetchCached: (key, fetch, options) => engine.lookup(key, options.schema, fetch, options),
  load: (key, loader, options) =>
    engine.lookup(key, options.schema, (previous) => loader(Option.fromNullable(previous)), options),
  invalidate: (invalidation) => invalidateWith(engine, invalidation),
  stats: Effect.sync(() => engine.stats())
})

/**
 * A cache on a backend built by one of `Cache.layerStore*` (anything else is a defect: the store
 * contract is not public). Its clock is Effect's (`TestClock` in tests).
 *
 * @internal
 */
export const makeService = (
  store: Cache.StoreService,
  settings: { readonly ttlMillis: number; readonly staleForMillis: number }
): Effect.Effect<Cache.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (!(store instanceof Backend)) {
      return yield* Effect.dieMessage("Cache.Store: build it with Cache.layerStoreMemory, Redis or TwoTier")
    }
    const clock = yield* Effect.clock
    const scope = yield* Effect.scope
    const now = () => clock.unsafeCurrentTimeMillis()
    const tiers = store.build(now)
    const engine = new Engine({ ...settings, ...tiers, now, scope })
    // The process-wide entries gauge counts the caches still open.
    yield* Effect.addFinalizer(() => Effect.sync(() => tiers.local?.clear()))
    yield* store.attach(engine, tiers)
    return fromEngine(engine)
  })
