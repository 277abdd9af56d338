/**
 * The webhook endpoints.
 *
 * Inbound: `POST /webhooks/{source}` (`stripe`, `standard`, `github`, `sendgrid`, `generic`)
 * verifies the raw body's signature, records each event once and answers 200 at once (duplicates
 * too); workers process the events off the request path. `GET /webhooks/events/{id}` tells where
 * an event is: `received`, `processing`, `processed` or `failed`.
 *
 * Outbound: `POST`, `GET`, `DELETE /webhook-subscriptions`; `POST /events` `{ type, data }` queues
 * a signed delivery to every subscription that wants the type; `GET /webhook-deliveries/{id}`
 * shows a delivery's attempts.
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { WebhookDelivery, WebhookInbox } from "@liaison/core"
import * as Schema from "effect/Schema"
import * as ApiError from "../ApiError.js"
import { Authorization, JsonOnly } from "../Credentials.js"

/**
 * A header the scheme needs is missing, or the verified body is not the JSON the source sends (400).
 *
 * @since 0.1.0
 * @category errors
 */
export class WebhookBadRequest extends ApiError.make<WebhookBadRequest>()(
  "WebhookBadRequest",
  400,
  "A signature header is missing, or the signed body is not the JSON expected"
) {}

/**
 * The signature does not match, or its timestamp is outside the tolerance (401).
 *
 * @since 0.1.0
 * @category errors
 */
export class WebhookUnauthorized extends ApiError.make<WebhookUnauthorized>()(
  "WebhookUnauthorized",
  401,
  "The signature does not match the body, or its timestamp is too far from now"
) {}

/**
 * The body is over the limit (413).
 *
 * @since 0.1.0
 * @category errors
 */
export class WebhookTooLarge extends ApiError.make<WebhookTooLarge>()(
  "WebhookTooLarge",
  413,
  "The body is larger than WEBHOOK_MAX_BODY_BYTES"
) {}

/**
 * No such event or delivery (404).
 *
 * @since 0.1.0
 * @category errors
 */
export class WebhookNotFound extends ApiError.make<WebhookNotFound>()("WebhookNotFound", 404, "Not found") {}

/**
 * The subscription is refused: a URL that is not http(s), that does not resolve or that points at
 * a loopback, private, link-local or metadata address; a secret that is not `whsec_` + base64 (422).
 *
 * @since 0.1.0
 * @category errors
 */
export class SubscriptionRefused extends ApiError.make<SubscriptionRefused>()(
  "SubscriptionRefused",
  422,
  "The subscription's URL or secret is refused"
) {}

/**
 * The event or delivery store cannot be reached (503): the event was not recorded, so the
 * provider should (and will) send it again.
 *
 * @since 0.1.0
 * @category errors
 */
export class WebhookStoreUnavailable extends ApiError.make<WebhookStoreUnavailable>()(
  "WebhookStoreUnavailable",
  503,
  "The webhook store cannot be reached; retry later"
) {}

/**
 * The senders `POST /webhooks/{source}` verifies.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Source = Schema.Literal("stripe", "standard", "github", "sendgrid", "generic").annotations({
  description: "stripe: Stripe-Signature; standard: Standard Webhooks (webhook-id/-timestamp/-signature, v1 and " +
    "v1a); github: X-Hub-Signature-256; sendgrid: the signed Event Webhook (ECDSA); generic: X-Webhook-Signature " +
    "(hex HMAC-SHA256 of the body)"
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type Source = typeof Source.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const Received = Schema.Struct({
  received: Schema.Int,
  duplicates: Schema.Int,
  events: Schema.Array(Schema.Struct({ id: Schema.String, duplicate: Schema.Boolean }))
}).annotations({ identifier: "WebhookReceived" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const NewSubscription = Schema.Struct({
  url: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(2048)).annotations({
    description: "http(s) URL of the receiver",
    examples: ["https://example.com/webhooks"]
  }),
  events: Schema.Array(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))).pipe(
    Schema.minItems(1),
    Schema.maxItems(100)
  ).annotations({ description: "event types, or \"*\" for all", examples: [["order.paid"]] }),
  secret: Schema.optional(
    Schema.Redacted(Schema.String).annotations({ description: "whsec_ + base64; generated when absent" })
  )
}).annotations({ identifier: "NewWebhookSubscription" })

/**
 * A subscription as listed: never its secret.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SubscriptionView = Schema.Struct({
  id: Schema.String,
  url: Schema.String,
  events: Schema.Array(Schema.String),
  createdAt: Schema.Number,
  disabled: Schema.optional(Schema.Struct({ at: Schema.Number, reason: Schema.String }))
}).annotations({ identifier: "WebhookSubscription" })

/**
 * A subscription just made: its secret is shown this once.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CreatedSubscription = Schema.Struct({
  ...SubscriptionView.fields,
  secret: Schema.String.annotations({ description: "the signing secret: shown only now" })
}).annotations({ identifier: "CreatedWebhookSubscription" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const OutboundEvent = Schema.Struct({
  type: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  data: Schema.Unknown
}).annotations({ identifier: "OutboundEvent" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Emitted = Schema.Struct({
  eventId: Schema.String,
  deliveries: Schema.Array(Schema.Struct({ id: Schema.String, subscriptionId: Schema.String }))
}).annotations({ identifier: "EmittedEvent" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Removed = Schema.Struct({ status: Schema.Literal("deleted"), id: Schema.String }).annotations({
  identifier: "RemovedWebhookSubscription"
})

const IdPath = Schema.Struct({ id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(600)) })

/**
 * @since 0.1.0
 * @category schemas
 */
export class WebhooksApi extends HttpApiGroup.make("webhooks")
  .add(
    HttpApiEndpoint.get("event", "/webhooks/events/:id")
      .setPath(IdPath)
      .setUrlParams(Schema.Struct({ source: Schema.optional(Source) }))
      .addSuccess(WebhookInbox.EventStatus)
      .addError(WebhookNotFound)
      .addError(WebhookStoreUnavailable)
      .annotate(OpenApi.Summary, "Where an inbound event is: received, processing, processed or failed")
  )
  .add(
    HttpApiEndpoint.post("receive", "/webhooks/:source")
      .setPath(Schema.Struct({ source: Source }))
      .addSuccess(Received)
      .addError(WebhookBadRequest)
      .addError(WebhookUnauthorized)
      .addError(WebhookTooLarge)
      .addError(WebhookStoreUnavailable)
      .annotate(
        OpenApi.Summary,
        "Receive a webhook: verified over the raw body, each event recorded once, processed in the background"
      )
      .annotate(
        OpenApi.Description,
        "The body is read raw (any content type) and verified before anything else; a duplicate event is " +
          "acknowledged with 200 and not processed again."
      )
  )
  .annotate(OpenApi.Description, "Inbound webhooks, verified and processed exactly once")
{}

/**
 * @since 0.1.0
 * @category schemas
 */
export class WebhookSubscriptionsApi extends HttpApiGroup.make("webhookSubscriptions")
  .middleware(Authorization)
  .middleware(JsonOnly)
  .add(
    HttpApiEndpoint.post("subscribe", "/webhook-subscriptions")
      .setPayload(NewSubscription)
      .addSuccess(CreatedSubscription, { status: 201 })
      .addError(SubscriptionRefused)
      .annotate(OpenApi.Summary, "Subscribe a URL to event types (the SSRF guard checks it after DNS resolution)")
  )
  .add(
    HttpApiEndpoint.get("list", "/webhook-subscriptions")
      .addSuccess(Schema.Array(SubscriptionView))
      .annotate(OpenApi.Summary, "List the subscriptions (without their secrets)")
  )
  .add(
    HttpApiEndpoint.get("get", "/webhook-subscriptions/:id")
      .setPath(IdPath)
      .addSuccess(SubscriptionView)
      .addError(WebhookNotFound)
      .annotate(OpenApi.Summary, "One subscription (without its secret)")
  )
  .add(
    HttpApiEndpoint.del("unsubscribe", "/webhook-subscriptions/:id")
      .setPath(IdPath)
      .addSuccess(Removed)
      .addError(WebhookNotFound)
      .annotate(OpenApi.Summary, "Delete a subscription; its queued deliveries fail")
  )
  .add(
    HttpApiEndpoint.post("emit", "/events")
      .setPayload(OutboundEvent)
      .addSuccess(Emitted, { status: 202 })
      .annotate(OpenApi.Summary, "Emit an event: one signed, durable delivery per matching subscription")
  )
  .add(
    HttpApiEndpoint.get("delivery", "/webhook-deliveries/:id")
      .setPath(IdPath)
      .addSuccess(WebhookDelivery.DeliveryStatus)
      .addError(WebhookNotFound)
      .annotate(OpenApi.Summary, "A delivery and every attempt of it")
  )
  .addError(WebhookStoreUnavailable)
  .annotate(OpenApi.Description, "Outbound webhooks: subscriptions and signed deliveries with retries")
{}
