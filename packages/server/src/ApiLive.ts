/**
 * The implementation of {@link Api.Api}: the handlers of every feature group (each in its
 * feature's `Live` module), composed into one `HttpApi` layer.
 *
 * @since 0.1.0
 */
import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type { Cache, CircuitBreaker, RateLimit, WebhookDelivery, WebhookInbox } from "@liaison/core"
import type { Stripe } from "@liaison/integrations"
import type * as ConfigError from "effect/ConfigError"
import * as Layer from "effect/Layer"
import { Api } from "./Api.js"
import { CacheLive } from "./cache/Live.js"
import * as Credentials from "./Credentials.js"
import type { Emails } from "./emails/Emails.js"
import { EmailsLive } from "./emails/Live.js"
import { FilesLive } from "./files/Live.js"
import type { Health } from "./health/Health.js"
import { HealthLive } from "./health/Live.js"
import type { MetricsAccess } from "./observability/Api.js"
import { MetricsLive } from "./observability/Live.js"
import { PaymentsLive } from "./payments/Live.js"
import type { Protected } from "./protected/Live.js"
import { ProtectedLive } from "./protected/Live.js"
import { ResilienceLive } from "./resilience/Live.js"
import type { CachedUsers } from "./users/CachedUsers.js"
import { UsersLive } from "./users/Live.js"
import type { Upstream } from "./users/Upstream.js"
import { WebhooksLive, WebhookSubscriptionsLive } from "./webhooks/Live.js"
import type { WebhookSources } from "./webhooks/Sources.js"

/**
 * The whole API, needing the services its handlers call.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  HttpApi.Api,
  ConfigError.ConfigError,
  | Upstream
  | Health
  | CircuitBreaker.CircuitBreaker
  | RateLimit.RateLimit
  | CachedUsers
  | Cache.Cache
  | Protected
  | WebhookSources
  | WebhookInbox.WebhookInbox
  | WebhookDelivery.WebhookDelivery
  | Stripe.Stripe
  | Emails
  | MetricsAccess
> = HttpApiBuilder.api(Api).pipe(
  Layer.provide([
    HealthLive,
    UsersLive,
    FilesLive,
    ResilienceLive,
    CacheLive,
    ProtectedLive,
    WebhooksLive,
    WebhookSubscriptionsLive,
    PaymentsLive,
    EmailsLive,
    MetricsLive
  ]),
  Layer.provide([Credentials.layer, Credentials.layerJsonOnly])
)
