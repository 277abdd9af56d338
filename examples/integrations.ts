/**
 * Stripe and SendGrid on one shared `Http` (one connection pool): create a PaymentIntent, send a
 * confirmation email, and handle each provider's typed errors.
 */
import { Http } from "@liaison/core"
import { SendGrid, Stripe } from "@liaison/integrations"
import { Effect, Layer } from "effect"

export const checkout = Effect.gen(function*() {
  const stripe = yield* Stripe.Stripe
  const intent = yield* stripe.paymentIntents.create(
    { amount: 2000, currency: "usd", metadata: { order_id: "6735" } },
    { idempotencyKey: "order-6735" } // optional: one is generated per call otherwise
  )
  const sendgrid = yield* SendGrid.SendGrid
  const { messageId } = yield* sendgrid.send({
    from: { email: "shop@example.com", name: "Shop" },
    to: [{ email: "ann@example.com" }],
    subject: "Your order",
    text: "Thank you!",
    html: "<p>Thank you!</p>"
  })
  return { clientSecret: intent.client_secret, messageId }
}).pipe(
  Effect.catchTags({
    StripeCardError: (error) => Effect.fail(`declined: ${error.message} (${error.decline_code})`),
    SendGridLimitExceeded: (error) => Effect.fail(error.message)
  }),
  // STRIPE_SECRET_KEY / STRIPE_API_BASE, SENDGRID_API_KEY / SENDGRID_API_BASE; one pool for both
  Effect.provide(Layer.merge(Stripe.layerConfig(), SendGrid.layerConfig()).pipe(Layer.provide(Http.layer())))
)
