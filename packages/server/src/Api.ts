/**
 * The public API of the demo server as an `HttpApi`: the feature groups, composed. Each group
 * (its endpoints, inputs, answers and errors) is in its feature's `Api` module; the handlers are
 * in its `Live` module, composed by `ApiLive`. The OpenAPI document (`/openapi.json`, Swagger UI
 * at `/docs`) is derived from this definition.
 *
 * Input that does not decode is a 400 `HttpApiDecodeError` whose `issues` name the offending
 * field (`path`) and whose `message` says what is wrong with it; upstream failures are the
 * `ApiError.UpstreamError` answers.
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as OpenApi from "@effect/platform/OpenApi"
import { CacheApi } from "./cache/Api.js"
import { EmailsApi } from "./emails/Api.js"
import { FilesApi } from "./files/Api.js"
import { HealthApi } from "./health/Api.js"
import { MetricsApi } from "./observability/Api.js"
import { PaymentsApi } from "./payments/Api.js"
import { ProtectedApi } from "./protected/Api.js"
import { ResilienceApi } from "./resilience/Api.js"
import { UsersApi } from "./users/Api.js"
import { WebhooksApi, WebhookSubscriptionsApi } from "./webhooks/Api.js"

/**
 * @since 0.1.0
 * @category schemas
 */
export class Api extends HttpApi.make("liaison")
  .add(HealthApi)
  .add(UsersApi)
  .add(FilesApi)
  .add(ResilienceApi)
  .add(CacheApi)
  .add(ProtectedApi)
  .add(WebhooksApi)
  .add(WebhookSubscriptionsApi)
  .add(PaymentsApi)
  .add(EmailsApi)
  .add(MetricsApi)
  .annotate(OpenApi.Title, "Liaison demo server")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(
    OpenApi.Description,
    "The Liaison library over HTTP: a users API proxied to one configured upstream, with timeouts, " +
      "bounded fan-out and streaming."
  )
{}
