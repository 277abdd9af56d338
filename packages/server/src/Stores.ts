/**
 * Where the server keeps its state, chosen once: {@link layerMemory} (the embedded default:
 * `npm start` needs nothing else) or {@link layerRedis} (every instance sharing one Redis behaves
 * as one). Each provides the backend of every stateful service the server uses: the rate limits,
 * the cache, the durable queues (inbound webhooks, outbound deliveries, emails), the webhook
 * subscriptions, the OAuth2 tokens, the circuit breakers' shared state and the retry budgets. The services
 * themselves take their store from context.
 *
 * | variable | default | |
 * |---|---|---|
 * | `CACHE_TIER` | `two-tier` | with Redis: `two-tier` (memory L1 + Redis) or `redis` |
 * | `REDIS_KEY_PREFIX` | `liaison` | the first part of every Redis key (several deployments, or test runs, on one Redis) |
 * | `CACHE_MAX_ENTRIES`, `CACHE_LOCAL_TTL`, `CACHE_REDIS_TIMEOUT`, `CACHE_REDIS_COOLDOWN` | `Cache.defaults` | see `Cache.config` |
 *
 * @since 0.1.0
 */
import { Auth, Cache, CircuitBreaker, DurableQueue, RateLimit, Retry, WebhookDelivery } from "@liaison/core"
import type { LiaisonError, Redis } from "@liaison/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/**
 * Every backend the server's services take from context.
 *
 * @since 0.1.0
 * @category models
 */
export type Stores =
  | RateLimit.Store
  | Cache.Store
  | DurableQueue.Store
  | WebhookDelivery.SubscriptionStore
  | Auth.TokenStore
  | CircuitBreaker.Store
  | Retry.BudgetStore

/**
 * `CACHE_TIER`: `two-tier` (default) or `redis`; read only with Redis.
 *
 * @since 0.1.0
 * @category config
 */
export const cacheTier: Config.Config<"two-tier" | "redis"> = Config.literal("two-tier", "redis")("CACHE_TIER").pipe(
  Config.withDefault("two-tier" as const)
)

/**
 * `REDIS_KEY_PREFIX`: the first part of every key the stores write (default `liaison`).
 *
 * @since 0.1.0
 * @category config
 */
export const redisKeyPrefix: Config.Config<string> = Config.string("REDIS_KEY_PREFIX").pipe(
  Config.validate({
    message: "Expected 1 to 64 of A-Z, a-z, 0-9, ':', '.', '_', '-'",
    validation: (prefix) => /^[A-Za-z0-9:._-]{1,64}$/.test(prefix)
  }),
  Config.withDefault("liaison")
)

/**
 * Every store in this process' memory: lost with it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Stores, LiaisonError.InvalidOptions | ConfigError.ConfigError> = Layer.mergeAll(
  RateLimit.layerStoreMemory,
  Cache.layerStoreConfig("memory"),
  DurableQueue.layerStoreMemory,
  WebhookDelivery.layerSubscriptionStoreMemory,
  Auth.layerTokenStoreMemory,
  CircuitBreaker.layerStoreMemory,
  Retry.layerBudgetStoreMemory
)

/**
 * Every store on the shared {@link Redis.Redis} client; the cache two-tier or Redis-only per
 * `CACHE_TIER`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis: Layer.Layer<
  Stores,
  LiaisonError.InvalidOptions | ConfigError.ConfigError,
  Redis.Redis
> = Layer.unwrapEffect(Effect.map(Effect.all([redisKeyPrefix, cacheTier]), ([prefix, tier]) =>
  Layer.mergeAll(
    RateLimit.layerStoreRedis({ prefix: `${prefix}:ratelimit:` }),
    Cache.layerStoreConfig(
      tier,
      Config.map(Cache.config, (options) => ({ ...options, prefix: `${prefix}:{cache}:` }))
    ),
    DurableQueue.layerStoreRedis({ prefix }),
    WebhookDelivery.layerSubscriptionStoreRedis({ prefix }),
    Auth.layerTokenStoreRedis({ prefix }),
    // One breaker state per upstream for every instance (see docs/Resilience.md, the shared breaker).
    CircuitBreaker.layerStoreRedis({ prefix: `${prefix}:breaker:` }),
    // One retry budget per upstream host for every instance: retries cannot multiply with N.
    Retry.layerBudgetStoreRedis({ prefix: `${prefix}:retry-budget:` })
  )))
