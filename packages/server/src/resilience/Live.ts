/**
 * The handler of `ResilienceApi.ResilienceApi`: the snapshots of the server's circuit
 * breakers and rate limiters.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { CircuitBreaker, RateLimit } from "@liaison/core"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import { Api } from "../Api.js"
import type { Authorization } from "../Credentials.js"

/**
 * `GET /resilience`.
 *
 * @since 0.1.0
 * @category layers
 */
export const ResilienceLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"liaison", "resilience">,
  never,
  CircuitBreaker.CircuitBreaker | RateLimit.RateLimit | Authorization
> = HttpApiBuilder.group(Api, "resilience", (handlers) =>
  Effect.gen(function*() {
    const breakers = yield* CircuitBreaker.CircuitBreaker
    const limiter = yield* RateLimit.RateLimit
    return handlers.handle("status", () => Effect.all({ breakers: breakers.snapshots, limiters: limiter.snapshots }))
  }))
