/**
 * A local fake Stripe API (PaymentIntents), for tests and for the demo server when no
 * `STRIPE_SECRET_KEY` is configured. It checks requests as https://api.stripe.com does
 * (authorization and key format, `Stripe-Version`, `Stripe-Account`, form encoding, unknown and
 * required parameters, idempotency keys) and answers with Stripe's bodies, statuses and headers
 * (`Request-Id`, `Idempotent-Replayed`), including card declines for Stripe's test payment
 * methods (`pm_card_visa` succeeds, `pm_card_chargeDeclined` is declined, …).
 *
 * Faults for tests (errors with or without `Stripe-Should-Retry`, 409, 429 with `Retry-After`,
 * dropped connections, answers lost after the request was processed) are injected with
 * `inject(...)` (once each) or `outage(...)` (until `recover()`); `requests()` is the wire log.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { FakeStripe, FakeStripeOptions } from "./internal/fakeStripe.js"
import { startFakeStripe } from "./internal/fakeStripe.js"

/**
 * @since 0.1.0
 * @category models
 */
export type { FakeStripe, FakeStripeOptions } from "./internal/fakeStripe.js"

/**
 * @since 0.1.0
 * @category models
 */
export type { Fault, RecordedRequest } from "./internal/fakeHttp.js"

/**
 * Faults with Stripe's own bodies: `apiError(status, shouldRetry?)`, `rateLimited(retryAfter?)`,
 * `conflict(shouldRetry?)`.
 *
 * @since 0.1.0
 * @category faults
 */
export { faults } from "./internal/fakeStripe.js"

/**
 * A test-mode secret key the sandbox accepts.
 *
 * @since 0.1.0
 * @category constants
 */
export { sandboxSecretKey } from "./internal/fakeStripe.js"

/**
 * Starts the sandbox (a free port of `127.0.0.1` by default); `close()` stops it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start: (options?: FakeStripeOptions) => Promise<FakeStripe> = startFakeStripe

/**
 * The sandbox for the life of the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: FakeStripeOptions = {}): Effect.Effect<FakeStripe, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => start(options)), (fake) => Effect.promise(() => fake.close()))
