/**
 * `GET /health`: the server is up, and whether its Redis answers.
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Schema from "effect/Schema"
import { RedisStatus } from "./Health.js"

/**
 * @since 0.1.0
 * @category schemas
 */
export const HealthStatus = Schema.Struct({
  status: Schema.Literal("ok"),
  redis: RedisStatus
}).annotations({ identifier: "HealthStatus" })

/**
 * @since 0.1.0
 * @category schemas
 */
export class HealthApi extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("health", "/health")
    .addSuccess(HealthStatus)
    .annotate(OpenApi.Summary, "Liveness, and whether Redis answers")
) {}
