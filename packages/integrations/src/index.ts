/**
 * Stripe and SendGrid clients on `@liaison/core`, each in four modules: the client, its errors,
 * its schemas and its webhook verifier.
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
 * The Stripe client: PaymentIntents, any endpoint, Stripe's retries and idempotency.
 *
 * @since 0.1.0
 */
export * as Stripe from "./Stripe.js"

/**
 * Stripe's errors, one class per error `type`, and the rules that read a non-2xx answer.
 *
 * @since 0.1.0
 */
export * as StripeError from "./StripeError.js"

/**
 * Stripe's objects (PaymentIntent, List) and parameters, with Stripe's form encoding.
 *
 * @since 0.1.0
 */
export * as StripeSchema from "./StripeSchema.js"

/**
 * Stripe's signed webhooks (`Stripe-Signature`) as a `Webhooks.Source`.
 *
 * @since 0.1.0
 */
export * as StripeWebhook from "./StripeWebhook.js"

/**
 * The SendGrid mail client: validation, SendGrid's limits, rate limit and retries.
 *
 * @since 0.1.0
 */
export * as SendGrid from "./SendGrid.js"

/**
 * SendGrid's errors: a message refused before sending, or SendGrid's own answer.
 *
 * @since 0.1.0
 */
export * as SendGridError from "./SendGridError.js"

/**
 * SendGrid's mail send as Schemas: the message, its parts, SendGrid's limits and the payload.
 *
 * @since 0.1.0
 */
export * as SendGridSchema from "./SendGridSchema.js"

/**
 * SendGrid's signed Event Webhook (ECDSA) as a `Webhooks.Source`.
 *
 * @since 0.1.0
 */
export * as SendGridWebhook from "./SendGridWebhook.js"
