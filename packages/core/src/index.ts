/**
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as FanOut from "./FanOut.js"

/**
 * @since 0.1.0
 */
export * as Http from "./Http.js"

/**
 * @since 0.1.0
 */
export * as HttpError from "./HttpError.js"

/**
 * The library's own errors: `InvalidOptions`, `StorageError`.
 *
 * @since 0.1.0
 */
export * as LiaisonError from "./LiaisonError.js"

/**
 * @since 0.1.0
 */
export * as Redis from "./Redis.js"

/**
 * @since 0.1.0
 */
export * as Auth from "./Auth.js"

/**
 * @since 0.1.0
 */
export * as Cache from "./Cache.js"

/**
 * Upstream GETs cached with HTTP semantics (`Cache-Control`, `ETag` revalidation) on a `Cache`.
 *
 * @since 0.1.0
 */
export * as HttpCache from "./HttpCache.js"

/**
 * @since 0.1.0
 */
export * as CircuitBreaker from "./CircuitBreaker.js"

/**
 * @since 0.1.0
 */
export * as DurableQueue from "./DurableQueue.js"

/**
 * @since 0.1.0
 */
export * as Policy from "./Policy.js"

/**
 * @since 0.1.0
 */
export * as RateLimit from "./RateLimit.js"

/**
 * @since 0.1.0
 */
export * as Retry from "./Retry.js"

/**
 * @since 0.1.0
 */
export * as Webhooks from "./Webhooks.js"

/**
 * @since 0.1.0
 */
export * as WebhookInbox from "./WebhookInbox.js"

/**
 * @since 0.1.0
 */
export * as WebhookDelivery from "./WebhookDelivery.js"
