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
 * @since 0.1.0
 */
export * as Redis from "./Redis.js"

/**
 * @since 0.1.0
 */
export * as CircuitBreaker from "./CircuitBreaker.js"

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
