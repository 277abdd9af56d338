/**
 * Inbound webhooks: verify a Stripe delivery over its raw bytes, record each event once, and
 * process events off the request path with a handler per event type.
 */
import { WebhookInbox, Webhooks } from "@liaison/core"
import { StripeWebhook } from "@liaison/integrations"
import { Effect, Redacted, Schema } from "effect"

const PaymentIntent = Schema.Struct({
  data: Schema.Struct({ object: Schema.Struct({ id: Schema.String, amount: Schema.Number }) })
})

// In the endpoint: verify over the raw bytes, record (each event id claimed once), answer 200.
export const receive = (headers: Record<string, string | undefined>, body: Uint8Array) =>
  Effect.gen(function*() {
    const stripe = yield* StripeWebhook.source({ secret: Redacted.make(process.env.STRIPE_WEBHOOK_SECRET ?? "") })
    const events = yield* Webhooks.receive(stripe, { headers, body }) // 400 / 401 / 413 as typed errors
    const inbox = yield* WebhookInbox.WebhookInbox
    return yield* inbox.record("stripe", events) // [{ id, duplicate }]: a duplicate is acknowledged, not queued
  })

// Off the request path: workers run the handler of each event type, its payload decoded with a Schema.
export const workers = WebhookInbox.run([
  WebhookInbox.on("payment_intent.succeeded", PaymentIntent, (event) => Effect.log(`paid ${event.data.object.id}`), {
    source: "stripe"
  })
], { concurrency: 4 })

// Provide WebhookInbox.layerMemory() (one process) or WebhookInbox.layerRedis() + a Redis layer (many).
