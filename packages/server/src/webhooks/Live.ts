/**
 * The handlers of `WebhooksApi.WebhooksApi` (inbound: verify, record once, report) and of
 * `WebhooksApi.WebhookSubscriptionsApi` (outbound: subscriptions, events, deliveries).
 *
 * @since 0.1.0
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { WebhookDelivery, WebhookInbox, Webhooks } from "@liaison/core"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { Api } from "../Api.js"
import type { Authorization, JsonOnly } from "../Credentials.js"
import { readRawBody } from "../internal/rawBody.js"
import type { Source } from "./Api.js"
import {
  SubscriptionRefused,
  WebhookBadRequest,
  WebhookNotFound,
  WebhookStoreUnavailable,
  WebhookTooLarge,
  WebhookUnauthorized
} from "./Api.js"
import { WebhookSources } from "./Sources.js"

const toAnswer = (error: Webhooks.WebhookError) => {
  const body = { message: error.message }
  switch (error._tag) {
    case "MissingHeader":
      return new WebhookBadRequest({ error: "missing_header", ...body })
    case "InvalidPayload":
      return new WebhookBadRequest({ error: "invalid_payload", ...body })
    case "InvalidSignature":
      return new WebhookUnauthorized({ error: "invalid_signature", ...body })
    case "TimestampOutOfTolerance":
      return new WebhookUnauthorized({ error: "timestamp_out_of_tolerance", ...body })
    case "PayloadTooLarge":
      return new WebhookTooLarge({ error: "payload_too_large", ...body })
  }
}

const unavailable = (error: { readonly message: string }) =>
  Effect.zipRight(
    Effect.logWarning(`webhooks: the store failed: ${error.message}`),
    Effect.fail(
      new WebhookStoreUnavailable({ error: "store_unavailable", message: "the webhook store cannot be reached" })
    )
  )

const notFound = (what: string) => new WebhookNotFound({ error: "not_found", message: `no such ${what}` })

const sourceNames: ReadonlyArray<Source> = ["stripe", "standard", "github", "sendgrid", "generic"]

/**
 * Reads the raw body and its headers: a `content-length` over `maxBytes` is refused before
 * reading; a body without one is cut off once it passes `maxBytes`.
 */
const rawRequest = (maxBytes: number) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const headers = request.headers as Readonly<Record<string, string | undefined>>
    const declared = Number(headers["content-length"] ?? "0")
    if (Number.isFinite(declared) && declared > maxBytes) return yield* new Webhooks.PayloadTooLarge({ maxBytes })
    const body = yield* readRawBody(NodeHttpServerRequest.toIncomingMessage(request), maxBytes)
    return { headers, body }
  })

/**
 * `POST /webhooks/{source}` and `GET /webhooks/events/{id}`.
 *
 * @since 0.1.0
 * @category layers
 */
export const WebhooksLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"liaison", "webhooks">,
  never,
  WebhookSources | WebhookInbox.WebhookInbox
> = HttpApiBuilder.group(Api, "webhooks", (handlers) =>
  Effect.gen(function*() {
    const { maxBodyBytes, sources } = yield* WebhookSources
    const inbox = yield* WebhookInbox.WebhookInbox
    return handlers
      .handle("receive", ({ path }) =>
        Effect.gen(function*() {
          // Verified before anything else is done with it.
          const events = yield* rawRequest(maxBodyBytes).pipe(
            Effect.flatMap((request) => Webhooks.receive(sources[path.source], request, { maxBytes: maxBodyBytes })),
            Effect.mapError(toAnswer)
          )
          const recorded = yield* inbox.record(path.source, events).pipe(Effect.catchAll(unavailable))
          return {
            received: recorded.length,
            duplicates: recorded.filter((event) => event.duplicate).length,
            events: recorded
          }
        }))
      .handle("event", ({ path, urlParams }) =>
        Effect.gen(function*() {
          const candidates = urlParams.source === undefined ? sourceNames : [urlParams.source]
          for (const source of candidates) {
            const status = yield* inbox.status(source, path.id).pipe(Effect.catchAll(unavailable))
            if (Option.isSome(status)) return status.value
          }
          return yield* notFound("event")
        }))
  }))

const view = (subscription: WebhookDelivery.Subscription) => ({
  id: subscription.id,
  url: subscription.url,
  events: subscription.events,
  createdAt: subscription.createdAt,
  ...Option.match(subscription.disabled, { onNone: () => ({}), onSome: (disabled) => ({ disabled }) })
})

/**
 * The subscriptions, `POST /events` and `GET /webhook-deliveries/{id}`.
 *
 * @since 0.1.0
 * @category layers
 */
export const WebhookSubscriptionsLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"liaison", "webhookSubscriptions">,
  never,
  WebhookDelivery.WebhookDelivery | Authorization | JsonOnly
> = HttpApiBuilder.group(Api, "webhookSubscriptions", (handlers) =>
  Effect.gen(function*() {
    const delivery = yield* WebhookDelivery.WebhookDelivery
    return handlers
      .handle("subscribe", ({ payload }) =>
        delivery.subscribe(payload).pipe(
          Effect.map((subscription) => ({ ...view(subscription), secret: Redacted.value(subscription.secret) })),
          Effect.catchTags({
            InvalidSubscription: (error) =>
              Effect.fail(new SubscriptionRefused({ error: "subscription_refused", message: error.message })),
            StorageError: unavailable
          })
        ))
      .handle(
        "list",
        () => Effect.map(delivery.subscriptions, (all) => all.map(view)).pipe(Effect.catchAll(unavailable))
      )
      .handle("get", ({ path }) =>
        delivery.subscription(path.id).pipe(
          Effect.catchAll(unavailable),
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(notFound("subscription")),
            onSome: (subscription) => Effect.succeed(view(subscription))
          }))
        ))
      .handle("unsubscribe", ({ path }) =>
        delivery.unsubscribe(path.id).pipe(
          Effect.catchAll(unavailable),
          Effect.flatMap((removed) =>
            removed
              ? Effect.succeed({ status: "deleted" as const, id: path.id })
              : Effect.fail(notFound("subscription"))
          )
        ))
      .handle("emit", ({ payload }) =>
        delivery.emit(payload.type, payload.data).pipe(
          // A JSON body always serializes back.
          Effect.catchTag("InvalidEvent", Effect.die),
          Effect.catchAll(unavailable)
        ))
      .handle("delivery", ({ path }) =>
        delivery.delivery(path.id).pipe(
          Effect.catchAll(unavailable),
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail(notFound("delivery")),
            onSome: Effect.succeed
          }))
        ))
  }))
