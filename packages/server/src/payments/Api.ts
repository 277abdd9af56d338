/**
 * `/payments`: Stripe PaymentIntents through `@liaison/integrations`' `Stripe` client (the real
 * Stripe with `STRIPE_SECRET_KEY`, else the built-in sandbox).
 *
 * - `POST /payments` → 201 `{ client_secret, payment_intent_id, status }`; with a `payment_method`
 *   the payment is confirmed at once. An `Idempotency-Key` header is passed on to Stripe, so a
 *   client retrying the same request creates one payment.
 * - `GET /payments/{id}`, `POST /payments/{id}/cancel`, `GET /payments?limit&starting_after`.
 *
 * A declined card is a 402 and an invalid request a 400, both with Stripe's message; an unknown
 * payment a 404; Stripe being down, slow or refusing the server's key a 5xx.
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { StripeSchema } from "@liaison/integrations"
import * as Schema from "effect/Schema"
import * as ApiError from "../ApiError.js"
import { Authorization, JsonOnly } from "../Credentials.js"

/**
 * A PaymentIntent id, e.g. `pi_3MtwBwLkdIwHu7ix28a3tqPa`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PaymentId = Schema.String.pipe(
  Schema.pattern(/^pi_[A-Za-z0-9]{1,64}$/, { message: () => "must be a PaymentIntent id (pi_…)" })
)

/**
 * The body of `POST /payments`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const NewPayment = Schema.Struct({
  /** In the smallest currency unit (cents). */
  amount: Schema.Int.pipe(
    Schema.between(50, 99_999_999, { message: () => "must be an integer from 50 to 99999999 (in cents)" })
  ),
  currency: Schema.String.pipe(
    Schema.pattern(/^[a-z]{3}$/, { message: () => "must be a lowercase three-letter ISO code, e.g. usd" })
  ),
  description: Schema.optionalWith(Schema.String.pipe(Schema.maxLength(1000)), { exact: true }),
  receipt_email: Schema.optionalWith(
    Schema.String.pipe(Schema.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { message: () => "must be an email address" })),
    { exact: true }
  ),
  /** A payment method (in the sandbox: `pm_card_visa`, `pm_card_chargeDeclined`, …): confirms at once. */
  payment_method: Schema.optionalWith(
    Schema.String.pipe(Schema.pattern(/^pm_[A-Za-z0-9_]{1,100}$/, { message: () => "must be a PaymentMethod id" })),
    { exact: true }
  ),
  metadata: Schema.optionalWith(
    Schema.Record({ key: Schema.String.pipe(Schema.maxLength(40)), value: Schema.String.pipe(Schema.maxLength(500)) }),
    { exact: true }
  )
}).annotations({ identifier: "NewPayment" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const CreatedPayment = Schema.Struct({
  client_secret: Schema.String,
  payment_intent_id: Schema.String,
  status: StripeSchema.PaymentIntentStatus
}).annotations({ identifier: "CreatedPayment" })

/**
 * A payment as the server shows it (no client secret).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Payment = Schema.Struct({
  id: Schema.String,
  status: StripeSchema.PaymentIntentStatus,
  amount: Schema.Int,
  amount_received: Schema.Int,
  currency: Schema.String,
  description: Schema.NullOr(Schema.String),
  metadata: Schema.Record({ key: Schema.String, value: Schema.String }),
  created: Schema.Int,
  cancellation_reason: Schema.NullOr(Schema.String),
  /** Why the last attempt failed, e.g. a decline, in Stripe's words. */
  last_payment_error: Schema.NullOr(Schema.String)
}).annotations({ identifier: "Payment" })

/**
 * @since 0.1.0
 * @category models
 */
export interface Payment extends Schema.Schema.Type<typeof Payment> {}

/**
 * @since 0.1.0
 * @category schemas
 */
export const PaymentPage = Schema.Struct({
  data: Schema.Array(Payment),
  has_more: Schema.Boolean,
  /** Pass as `starting_after` for the next page; null on the last one. */
  next_cursor: Schema.NullOr(Schema.String)
}).annotations({ identifier: "PaymentPage" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const CancelPayment = Schema.Struct({
  cancellation_reason: Schema.optionalWith(
    Schema.Literal("duplicate", "fraudulent", "requested_by_customer", "abandoned"),
    { exact: true }
  )
}).annotations({ identifier: "CancelPayment" })

const IntFromString = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^\d{1,3}$/, { message: () => "must be an integer" })),
  Schema.NumberFromString
)

/**
 * The query of `GET /payments`: `limit` 1 to 100 (default 10), `starting_after` a payment id.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PaymentFilter = Schema.Struct({
  limit: Schema.optionalWith(
    IntFromString.pipe(Schema.between(1, 100, { message: () => "must be between 1 and 100" })),
    { exact: true, default: () => 10 }
  ),
  starting_after: Schema.optionalWith(PaymentId, { exact: true })
}).annotations({ identifier: "PaymentFilter" })

/**
 * The card was declined (402), with Stripe's message for the customer; `error` is Stripe's code,
 * e.g. `card_declined`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PaymentDeclined extends ApiError.make<PaymentDeclined>()("PaymentDeclined", 402, "The card was declined", {
  /** The issuer's reason, e.g. `insufficient_funds`, when there is one. */
  decline_code: Schema.optional(Schema.String),
  payment_intent_id: Schema.optional(Schema.String)
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class PaymentsApi extends HttpApiGroup.make("payments")
  .middleware(Authorization)
  .middleware(JsonOnly)
  .add(
    HttpApiEndpoint.post("create", "/payments")
      .setPayload(NewPayment)
      .setHeaders(Schema.Struct({
        "idempotency-key": Schema.optionalWith(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(255)), {
          exact: true
        })
      }))
      .addSuccess(CreatedPayment, { status: 201 })
      .addError(PaymentDeclined)
      .annotate(
        OpenApi.Summary,
        "Create a payment (a Stripe PaymentIntent); confirms it when a payment_method is given"
      )
  )
  .add(
    HttpApiEndpoint.get("list", "/payments")
      .setUrlParams(PaymentFilter)
      .addSuccess(PaymentPage)
      .annotate(OpenApi.Summary, "List payments, newest first")
  )
  .add(
    HttpApiEndpoint.get("get", "/payments/:id")
      .setPath(Schema.Struct({ id: PaymentId }))
      .addSuccess(Payment)
      .annotate(OpenApi.Summary, "Get a payment")
  )
  .add(
    HttpApiEndpoint.post("cancel", "/payments/:id/cancel")
      .setPath(Schema.Struct({ id: PaymentId }))
      .setPayload(CancelPayment)
      .addSuccess(Payment)
      .annotate(OpenApi.Summary, "Cancel a payment that has not succeeded")
  )
  .addError(ApiError.UpstreamError)
  .annotate(OpenApi.Description, "Payments through Stripe (or the built-in Stripe sandbox)")
{}
