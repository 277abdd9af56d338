/**
 * The server's webhooks: the inbound sources (their secrets from the environment, or documented
 * sandbox defaults printed at startup), the inbox and the deliveries (memory without Redis, Redis
 * with it), their workers, and the handlers of {@link WebhooksApi}.
 *
 * | variable | default | |
 * |---|---|---|
 * | `STRIPE_WEBHOOK_SECRET` | `whsec_liaison_sandbox_stripe` | redacted; Stripe's endpoint secret |
 * | `STANDARD_WEBHOOK_SECRET` | `whsec_bGlhaXNvbi1zYW5kYm94LXN0YW5kYXJkLXdlYmhvb2s=` | redacted; `whsec_` + base64 |
 * | `GITHUB_WEBHOOK_SECRET` | `liaison-sandbox-github-secret` | redacted |
 * | `SENDGRID_WEBHOOK_PUBLIC_KEY` | {@link sandboxSendGridPublicKey} | base64 DER of the P-256 verification key |
 * | `WEBHOOK_SECRET` | `liaison-sandbox-webhook-secret` | redacted; the generic `X-Webhook-Signature` scheme |
 * | `WEBHOOK_MAX_BODY_BYTES` | `1048576` | larger bodies are refused with 413 |
 * | `WEBHOOK_WORKERS` | `4` | inbound events processed at once |
 * | `WEBHOOK_DELIVERY_WORKERS` | `8` | outbound deliveries in flight at once |
 * | `WEBHOOK_RETENTION` | `7 days` | how long event and delivery records are kept |
 * | `WEBHOOK_ALLOW_LOOPBACK` | `false` | subscriptions may target loopback addresses |
 * | `WEBHOOK_ALLOW_PRIVATE_NETWORKS` | `false` | subscriptions may target private and link-local addresses |
 *
 * @since 0.1.0
 */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import { WebhookDelivery, WebhookInbox, Webhooks } from "@liaison/core"
import type { Redis } from "@liaison/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { Api } from "./Api.js"
import { readRawBody } from "./internal/rawBody.js"
import type { Source } from "./WebhooksApi.js"
import {
  SubscriptionRefused,
  WebhookBadRequest,
  WebhookNotFound,
  WebhookStoreUnavailable,
  WebhookTooLarge,
  WebhookUnauthorized
} from "./WebhooksApi.js"

// ---------------------------------------------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------------------------------------------

/**
 * The public half of the sandbox SendGrid key pair (base64 DER): the default of
 * `SENDGRID_WEBHOOK_PUBLIC_KEY`. Its private half is {@link sandboxSendGridPrivateKey}.
 *
 * @since 0.1.0
 * @category sandbox
 */
export const sandboxSendGridPublicKey =
  "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEz3du/y5Ry3TDcR/WTOzcUabogTdPMay291v+ojqQrrNWq5NghtysJVcoI0Jx8c6jF3gWJUrZFTyKc6u/VXqRZg=="

/**
 * The private half of the sandbox SendGrid key pair (base64 PKCS#8 DER), published so that anyone
 * can sign test events for a server on the sandbox default. Never use this pair for anything real.
 *
 * @since 0.1.0
 * @category sandbox
 */
export const sandboxSendGridPrivateKey =
  "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQga8zw4DGHpe1L/ldEkUFFL8/Um9S9/o+fpUPi38z7jaKhRANCAATPd27/LlHLdMNxH9ZM7NxRpuiBN08xrLb3W/6iOpCus1ark2CG3KwlVygjQnHxzqMXeBYlStkVPIpzq79VepFm"

/**
 * The sandbox defaults of the inbound secrets: public, printed at startup, for trying things out.
 *
 * @since 0.1.0
 * @category sandbox
 */
export const sandboxSecrets = {
  STRIPE_WEBHOOK_SECRET: "whsec_liaison_sandbox_stripe",
  STANDARD_WEBHOOK_SECRET: "whsec_bGlhaXNvbi1zYW5kYm94LXN0YW5kYXJkLXdlYmhvb2s=",
  GITHUB_WEBHOOK_SECRET: "liaison-sandbox-github-secret",
  SENDGRID_WEBHOOK_PUBLIC_KEY: sandboxSendGridPublicKey,
  WEBHOOK_SECRET: "liaison-sandbox-webhook-secret"
} as const

/**
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly stripeSecret: Redacted.Redacted<string>
  readonly standardSecret: Redacted.Redacted<string>
  readonly githubSecret: Redacted.Redacted<string>
  readonly sendGridPublicKey: string
  readonly genericSecret: Redacted.Redacted<string>
  readonly maxBodyBytes: number
  readonly workers: number
  readonly deliveryWorkers: number
  readonly retention: Duration.Duration
  readonly allowLoopback: boolean
  readonly allowPrivateNetworks: boolean
  /** The variables left unset, whose sandbox default is used. */
  readonly sandboxDefaults: ReadonlyArray<keyof typeof sandboxSecrets>
}

const secret = (name: keyof typeof sandboxSecrets) =>
  Config.map(Config.option(Config.redacted(name)), (value) => ({ name, value }))

const positive = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "Expected a positive integer", validation: (n) => n > 0 }),
    Config.withDefault(fallback)
  )

/**
 * Every webhook setting, from the environment.
 *
 * @since 0.1.0
 * @category config
 */
export const settings: Config.Config<Settings> = Config.all({
  secrets: Config.all([
    secret("STRIPE_WEBHOOK_SECRET"),
    secret("STANDARD_WEBHOOK_SECRET"),
    secret("GITHUB_WEBHOOK_SECRET"),
    secret("SENDGRID_WEBHOOK_PUBLIC_KEY"),
    secret("WEBHOOK_SECRET")
  ]),
  maxBodyBytes: positive("WEBHOOK_MAX_BODY_BYTES", Webhooks.defaultMaxBytes),
  workers: positive("WEBHOOK_WORKERS", 4),
  deliveryWorkers: positive("WEBHOOK_DELIVERY_WORKERS", 8),
  retention: Config.duration("WEBHOOK_RETENTION").pipe(Config.withDefault(Duration.days(7))),
  allowLoopback: Config.boolean("WEBHOOK_ALLOW_LOOPBACK").pipe(Config.withDefault(false)),
  allowPrivateNetworks: Config.boolean("WEBHOOK_ALLOW_PRIVATE_NETWORKS").pipe(Config.withDefault(false))
}).pipe(Config.map(({ secrets, ...rest }) => {
  const value = (name: keyof typeof sandboxSecrets) =>
    Option.getOrElse(
      secrets.find((entry) => entry.name === name)!.value,
      () => Redacted.make(sandboxSecrets[name])
    )
  return {
    ...rest,
    stripeSecret: value("STRIPE_WEBHOOK_SECRET"),
    standardSecret: value("STANDARD_WEBHOOK_SECRET"),
    githubSecret: value("GITHUB_WEBHOOK_SECRET"),
    sendGridPublicKey: Redacted.value(value("SENDGRID_WEBHOOK_PUBLIC_KEY")),
    genericSecret: value("WEBHOOK_SECRET"),
    sandboxDefaults: secrets.filter((entry) => Option.isNone(entry.value)).map((entry) => entry.name)
  }
}))

// ---------------------------------------------------------------------------------------------------------------
// services
// ---------------------------------------------------------------------------------------------------------------

/**
 * The verifiers of `POST /webhooks/{source}` and the body limit.
 *
 * @since 0.1.0
 * @category tags
 */
export class WebhookSources extends Context.Tag("@liaison/server/WebhookSources")<WebhookSources, {
  readonly sources: Readonly<Record<Source, Webhooks.Source>>
  readonly maxBodyBytes: number
}>() {}

const PaymentIntentEvent = Schema.Struct({
  id: Schema.String,
  data: Schema.Struct({
    object: Schema.Struct({ id: Schema.String, amount: Schema.Number, currency: Schema.String })
  })
})

const SendGridEvent = Schema.Struct({ sg_event_id: Schema.String, event: Schema.String, email: Schema.String })

/**
 * What the demo server does with the events it receives: it logs the ones it knows (decoded with
 * their Schemas); any other event is processed as it is.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handlers: ReadonlyArray<WebhookInbox.Handler<never>> = [
  WebhookInbox.on(
    "payment_intent.succeeded",
    PaymentIntentEvent,
    (event) =>
      Effect.logInfo(
        `stripe: payment ${event.data.object.id} succeeded: ${event.data.object.amount} ${event.data.object.currency}`
      ),
    { source: "stripe" }
  ),
  WebhookInbox.on(
    "payment_intent.payment_failed",
    PaymentIntentEvent,
    (event) => Effect.logInfo(`stripe: payment ${event.data.object.id} failed`),
    { source: "stripe" }
  ),
  WebhookInbox.on("bounce", SendGridEvent, (event) => Effect.logInfo(`sendgrid: ${event.sg_event_id} bounced`), {
    source: "sendgrid"
  })
]

const sourcesOf = (config: Settings) =>
  Effect.all({
    stripe: Webhooks.stripe({ secret: config.stripeSecret }),
    standard: Webhooks.standardWebhooks({ secret: config.standardSecret }),
    github: Webhooks.github({ secret: config.githubSecret }),
    sendgrid: Webhooks.sendGrid({ publicKey: config.sendGridPublicKey }),
    generic: Webhooks.generic({ secret: config.genericSecret })
  })

/**
 * The webhook services from {@link settings}: the sources, the inbox and the deliveries (memory when
 * `redis` is `None`, on that client otherwise), and their workers, which stop with the layer.
 * Prints which secrets are on their sandbox defaults.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  redis: Option.Option<Layer.Layer<Redis.Redis>>
): Layer.Layer<
  WebhookSources | WebhookInbox.WebhookInbox | WebhookDelivery.WebhookDelivery,
  ConfigError.ConfigError | Webhooks.InvalidOptions
> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const config = yield* settings
    for (const name of config.sandboxDefaults) {
      yield* Effect.logInfo(`webhooks: ${name} unset, using the sandbox default ${sandboxSecrets[name]}`)
    }
    const sources = yield* sourcesOf(config)
    const inboxOptions: WebhookInbox.Options = { retention: config.retention }
    const deliveryOptions: WebhookDelivery.Options = {
      retention: config.retention,
      allow: {
        loopback: config.allowLoopback,
        privateNetworks: config.allowPrivateNetworks,
        linkLocal: config.allowPrivateNetworks
      }
    }
    const stores = Option.match(redis, {
      onNone: () => Layer.merge(WebhookInbox.layerMemory(inboxOptions), WebhookDelivery.layerMemory(deliveryOptions)),
      onSome: (redis) =>
        Layer.merge(WebhookInbox.layerRedis(inboxOptions), WebhookDelivery.layerRedis(deliveryOptions)).pipe(
          Layer.provide(redis)
        )
    })
    const workers = Layer.scopedDiscard(Effect.all([
      WebhookInbox.run(handlers, { concurrency: config.workers }),
      WebhookDelivery.run({ concurrency: config.deliveryWorkers })
    ]))
    return Layer.merge(
      Layer.succeed(WebhookSources, { sources, maxBodyBytes: config.maxBodyBytes }),
      Layer.provideMerge(workers, stores)
    )
  }))

// ---------------------------------------------------------------------------------------------------------------
// handlers
// ---------------------------------------------------------------------------------------------------------------

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
  WebhookDelivery.WebhookDelivery
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
            WebhookStorageError: unavailable
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
