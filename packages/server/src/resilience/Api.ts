/**
 * `GET /resilience`: the state of every circuit breaker and rate limiter of the server's
 * upstream calls.
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Schema from "effect/Schema"
import { Authorization } from "../Credentials.js"

/**
 * @since 0.1.0
 * @category schemas
 */
export const BreakerStatus = Schema.Struct({
  key: Schema.String,
  state: Schema.Literal("Closed", "Open", "HalfOpen"),
  consecutiveFailures: Schema.Int,
  windowCalls: Schema.Int,
  windowFailures: Schema.Int,
  /** Until the next probe; `null` when isolated by hand. */
  remainingOpenMillis: Schema.NullOr(Schema.Number),
  probesAdmitted: Schema.Int,
  probeSuccesses: Schema.Int
}).annotations({ identifier: "BreakerStatus" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const LimiterStatus = Schema.Struct({
  key: Schema.String,
  algorithm: Schema.Literal("TokenBucket", "SlidingWindow"),
  limit: Schema.Number,
  remaining: Schema.Number
}).annotations({ identifier: "LimiterStatus" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const ResilienceStatus = Schema.Struct({
  breakers: Schema.Array(BreakerStatus),
  limiters: Schema.Array(LimiterStatus)
}).annotations({ identifier: "ResilienceStatus" })

/**
 * @since 0.1.0
 * @category schemas
 */
export class ResilienceApi extends HttpApiGroup.make("resilience").middleware(Authorization).add(
  HttpApiEndpoint.get("status", "/resilience")
    .addSuccess(ResilienceStatus)
    .annotate(OpenApi.Summary, "Every circuit breaker and rate limiter guarding the upstream calls")
) {}
