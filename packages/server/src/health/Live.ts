/**
 * The handler of `HealthApi.HealthApi`.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import { Api } from "../Api.js"
import { Health } from "./Health.js"

/**
 * `GET /health`.
 *
 * @since 0.1.0
 * @category layers
 */
export const HealthLive: Layer.Layer<HttpApiGroup.ApiGroup<"liaison", "health">, never, Health> = HttpApiBuilder.group(
  Api,
  "health",
  (handlers) =>
    Effect.map(
      Health,
      (health) =>
        handlers.handle("health", () => Effect.map(health.redis, (redis) => ({ status: "ok" as const, redis })))
    )
)
