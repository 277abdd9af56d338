/**
 * `GET /metrics`: every `liaison_*` metric (and any other `effect/Metric`) in Prometheus text
 * format. Open on a loopback address; on any other address it needs an API key, like the
 * state-changing routes (`Authorization: Bearer <key>` or `X-API-Key: <key>`, see `Credentials`).
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Unauthorized } from "../Credentials.js"
import { contentType } from "./Prometheus.js"

/**
 * The operator's credential on `/metrics`: checked only when the server is not on loopback.
 *
 * @since 0.1.0
 * @category models
 */
export class MetricsAccess extends HttpApiMiddleware.Tag<MetricsAccess>()("@liaison/server/MetricsAccess", {
  failure: Unauthorized,
  security: {
    bearer: HttpApiSecurity.bearer,
    apiKey: HttpApiSecurity.apiKey({ key: "X-API-Key", in: "header" })
  }
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class MetricsApi extends HttpApiGroup.make("metrics").add(
  HttpApiEndpoint.get("metrics", "/metrics")
    .addSuccess(HttpApiSchema.Text({ contentType }))
    .middleware(MetricsAccess)
    .annotate(OpenApi.Summary, "Every metric in Prometheus text format (an API key unless on loopback)")
) {}
