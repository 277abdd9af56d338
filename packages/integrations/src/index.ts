/**
 * Stripe and SendGrid clients on `@liaison/core` (coming: see the integrations issue).
 *
 * @since 0.1.0
 */

/**
 * The version of this package.
 *
 * @since 0.1.0
 */
export const version = "0.1.0"
