/**
 * Where the server keeps its state, chosen once: {@link layerMemory} (the embedded default:
 * `npm start` needs nothing else) or {@link layerRedis} (every instance sharing one Redis behaves
 * as one). Each provides the backend of every stateful service the server uses: the rate limits,
 * the cache, the durable queues (inbound webhooks, outbound deliveries, emails), the webhook
 * subscriptions and the OAuth2 tokens. The services themselves take their store from context.
 *
 * | variable | default | |
 * |---|---|---|
 * | `CACHE_TIER` | `two-tier` | with Redis: `two-tier` (memory L1 + Redis) or `redis` |
 * | `CACHE_MAX_ENTRIES`, `CACHE_LOCAL_TTL`, `CACHE_REDIS_TIMEOUT`, `CACHE_REDIS_COOLDOWN` | `Cache.defaults` | see `Cache.config` |
 *
 * @since 0.1.0
 */
import { Auth, Cache, DurableQueue, RateLimit, WebhookDelivery } from "@liaison/core"
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
  Auth.layerTokenStoreMemory
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
> = Layer.mergeAll(
  RateLimit.layerStoreRedis(),
  Layer.unwrapEffect(Effect.map(cacheTier, (tier) => Cache.layerStoreConfig(tier))),
  DurableQueue.layerStoreRedis(),
  WebhookDelivery.layerSubscriptionStoreRedis(),
  Auth.layerTokenStoreRedis()
)
