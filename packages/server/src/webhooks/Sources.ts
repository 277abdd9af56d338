/**
 * The server's webhook services: the inbound sources (their secrets from the environment, or the
 * documented sandbox defaults of `sandbox/secrets`, printed at startup), the inbox and the
 * deliveries (on the server's `Stores`: memory, or Redis with `REDIS_URL`) and their workers.
 *
 * | variable | default | |
 * |---|---|---|
 * | `STRIPE_WEBHOOK_SECRET` | `whsec_liaison_sandbox_stripe` | redacted; Stripe's endpoint secret |
 * | `STANDARD_WEBHOOK_SECRET` | `whsec_bGlhaXNvbi1zYW5kYm94LXN0YW5kYXJkLXdlYmhvb2s=` | redacted; `whsec_` + base64 |
 * | `GITHUB_WEBHOOK_SECRET` | `liaison-sandbox-github-secret` | redacted |
 * | `SENDGRID_WEBHOOK_PUBLIC_KEY` | `sandboxSendGridPublicKey` | base64 DER of the P-256 verification key |
 * | `WEBHOOK_SECRET` | `liaison-sandbox-webhook-secret` | redacted; the generic `X-Webhook-Signature` scheme |
 * | `WEBHOOK_MAX_BODY_BYTES` | `1048576` | larger bodies are refused with 413 |
 * | `WEBHOOK_WORKERS` | `4` (`WebhookInbox.defaults`) | inbound events processed at once |
 * | `WEBHOOK_DELIVERY_WORKERS` | `8` (`WebhookDelivery.defaults`) | outbound deliveries in flight at once |
 * | `WEBHOOK_RETENTION` | `7 days` | how long event and delivery records are kept |
 * | `WEBHOOK_ALLOW_LOOPBACK` | `false` | subscriptions may target loopback addresses |
 * | `WEBHOOK_ALLOW_PRIVATE_NETWORKS` | `false` | subscriptions may target private and link-local addresses |
 *
 * @since 0.1.0
 */
import { WebhookDelivery, WebhookInbox, Webhooks } from "@liaison/core"
import type { DurableQueue, LiaisonError } from "@liaison/core"
import { SendGridWebhook, StripeWebhook } from "@liaison/integrations"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { positiveInt } from "../Config.js"
import { sandboxSecrets } from "../sandbox/secrets.js"
import type { Source } from "./Api.js"

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
  maxBodyBytes: positiveInt("WEBHOOK_MAX_BODY_BYTES", Webhooks.defaultMaxBytes),
  workers: positiveInt("WEBHOOK_WORKERS", WebhookInbox.defaults.concurrency),
  deliveryWorkers: positiveInt("WEBHOOK_DELIVERY_WORKERS", WebhookDelivery.defaults.concurrency),
  retention: Config.duration("WEBHOOK_RETENTION").pipe(Config.withDefault(WebhookInbox.defaults.retention)),
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

/**
 * The verifiers of `POST /webhooks/{source}` and the body limit.
 *
 * @since 0.1.0
 * @category models
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
 * @category constants
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
    stripe: StripeWebhook.source({ secret: config.stripeSecret }),
    standard: Webhooks.standardWebhooks({ secret: config.standardSecret }),
    github: Webhooks.github({ secret: config.githubSecret }),
    sendgrid: SendGridWebhook.source({ publicKey: config.sendGridPublicKey }),
    generic: Webhooks.generic({ secret: config.genericSecret })
  })

/** The inbox and the deliveries on the stores in context, their workers running with the layer. */
const services = (config: Settings) => {
  const inbox = WebhookInbox.layer({ retention: config.retention })
  const delivery = WebhookDelivery.layer({
    retention: config.retention,
    allow: {
      loopback: config.allowLoopback,
      privateNetworks: config.allowPrivateNetworks,
      linkLocal: config.allowPrivateNetworks
    }
  })
  const workers = Layer.scopedDiscard(Effect.all([
    WebhookInbox.run(handlers, { concurrency: config.workers }),
    WebhookDelivery.run({ concurrency: config.deliveryWorkers })
  ]))
  return Layer.provideMerge(workers, Layer.merge(inbox, delivery))
}

/**
 * The webhook services from {@link settings}: the sources, the inbox and the deliveries (on the
 * stores in context: see `Stores`), and their workers, which stop with the layer. Prints which
 * secrets are on their sandbox defaults.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  WebhookSources | WebhookInbox.WebhookInbox | WebhookDelivery.WebhookDelivery,
  ConfigError.ConfigError | LiaisonError.InvalidOptions,
  DurableQueue.Store | WebhookDelivery.SubscriptionStore
> = Layer.unwrapEffect(Effect.gen(function*() {
  const config = yield* settings
  for (const name of config.sandboxDefaults) {
    yield* Effect.logInfo(`webhooks: ${name} unset, using the sandbox default ${sandboxSecrets[name]}`)
  }
  const sources = yield* sourcesOf(config)
  return Layer.merge(
    Layer.succeed(WebhookSources, WebhookSources.of({ sources, maxBodyBytes: config.maxBodyBytes })),
    services(config)
  )
}))
