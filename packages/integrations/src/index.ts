/**
 * Stripe and SendGrid clients on `@liaison/core`.
 *
 * @since 0.1.0
 */

/**
 * The version of this package.
 *
 * @since 0.1.0
 */
export const version = "0.1.0"

/**
 * @since 0.1.0
 */
export * as Stripe from "./Stripe.js"

/**
 * @since 0.1.0
 */
export * as SendGrid from "./SendGrid.js"
