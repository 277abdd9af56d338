/**
 * The handler of `GET /metrics` and its access check.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Api } from "../Api.js"
import * as Credentials from "../Credentials.js"
import { isLoopback } from "../Safety.js"
import { MetricsAccess } from "./Api.js"
import * as Prometheus from "./Prometheus.js"

/**
 * `GET /metrics`: the registry rendered at each scrape.
 *
 * @since 0.1.0
 * @category layers
 */
export const MetricsLive: Layer.Layer<HttpApiGroup.ApiGroup<"liaison", "metrics">, never, MetricsAccess> =
  HttpApiBuilder.group(
    Api,
    "metrics",
    (handlers) => handlers.handle("metrics", () => Effect.sync(Prometheus.render))
  )

const open: MetricsAccess["Type"] = { bearer: () => Effect.void, apiKey: () => Effect.void }

/**
 * Anyone on a loopback `host` (only local processes reach it); beyond it, a key from `API_KEYS`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAccess = (host: string): Layer.Layer<MetricsAccess, ConfigError.ConfigError> =>
  Layer.effect(
    MetricsAccess,
    isLoopback(host) ? Effect.succeed(open) : Effect.map(Credentials.apiKeys, Credentials.make)
  )
