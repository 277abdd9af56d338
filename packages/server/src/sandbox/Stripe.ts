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
 * Built like every sandbox: a pure state machine (`internal/stripeIntents.ts`, and the request
 * checks around it in `internal/stripe.ts`) served by `@effect/platform-node` for the life of a
 * scope (`internal/serve.ts`).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { FakeControls, Fault } from "./internal/serve.js"
import { start as startServed } from "./internal/serve.js"
import { serveStripe } from "./internal/stripe.js"
import { count } from "./internal/stripeIntents.js"
import { docUrl } from "./internal/stripeParams.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface FakeStripeOptions {
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** Accept only this secret key. Default: any well-formed `sk_test_…` key (and `rk_test_…`). */
  readonly apiKey?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FakeStripe extends FakeControls {
  /** PaymentIntents created so far, on every account. */
  readonly paymentIntentCount: () => number
}

/**
 * @since 0.1.0
 * @category models
 */
export type { Fault, RecordedRequest } from "./internal/serve.js"

/**
 * A test-mode secret key the sandbox accepts.
 *
 * @since 0.1.0
 * @category constants
 */
export { sandboxSecretKey } from "./secrets.js"

const conflictMessage = "There is currently another in-progress request using this Idempotent Key (that probably " +
  "means you submitted twice, and the other request is still going through): please try again later."

/**
 * Faults with Stripe's own bodies: `apiError(status, shouldRetry?)`, `rateLimited(retryAfter?)`,
 * `conflict(shouldRetry?)`.
 *
 * @since 0.1.0
 * @category constants
 */
export const faults = {
  /** A Stripe-side failure (`api_error`); `shouldRetry` sets `Stripe-Should-Retry`. */
  apiError: (status = 500, shouldRetry?: boolean): Fault => ({
    _tag: "Respond",
    status,
    body: { error: { type: "api_error", message: "An unknown error occurred" } },
    headers: shouldRetry === undefined ? {} : { "stripe-should-retry": String(shouldRetry) }
  }),
  /** 429 `rate_limit`, with `Retry-After` seconds when given. */
  rateLimited: (retryAfterSeconds?: number): Fault => ({
    _tag: "Respond",
    status: 429,
    body: {
      error: {
        type: "invalid_request_error",
        code: "rate_limit",
        doc_url: docUrl("rate_limit"),
        message: "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
      }
    },
    headers: retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) }
  }),
  /** 409: another request with the same key is still running, or a lock timed out. */
  conflict: (shouldRetry?: boolean): Fault => ({
    _tag: "Respond",
    status: 409,
    body: {
      error: {
        type: "idempotency_error",
        code: "idempotency_key_in_use",
        doc_url: docUrl("idempotency_key_in_use"),
        message: conflictMessage
      }
    },
    headers: shouldRetry === undefined ? {} : { "stripe-should-retry": String(shouldRetry) }
  })
} as const

/**
 * Starts the sandbox (a free port of `127.0.0.1` by default); `close()` stops it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (options: FakeStripeOptions = {}): Promise<FakeStripe> => {
  const { state, ...controls } = await startServed(serveStripe(options))
  return { ...controls, paymentIntentCount: () => count(state().intents) }
}

/**
 * The sandbox for the life of the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: FakeStripeOptions = {}): Effect.Effect<FakeStripe, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => start(options)), (fake) => Effect.promise(() => fake.close()))
