/**
 * Shown in docs/observability.md, kept compiling by `npm run check`: a program's calls through
 * Liaison, its telemetry exported at the edge — `GET /metrics` for Prometheus on a loopback port,
 * logs and OTLP from the environment:
 *
 * ```sh
 * HTTP_BASE_URL=http://localhost:3000 LOG_FORMAT=json \
 * OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_SERVICE_NAME=my-app \
 * npx tsx examples/telemetry.ts
 * ```
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Http, Policy } from "@liaison/core"
import { Prometheus, Telemetry } from "@liaison/server"
import { Effect, Layer, Schedule, Schema } from "effect"
import { createServer } from "node:http"

const User = Schema.Struct({ id: Schema.Number, username: Schema.String })

/** Every `liaison_*` metric (and the program's own `effect/Metric`s), rendered at each scrape. */
const MetricsLive = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/metrics",
    Effect.sync(() => HttpServerResponse.text(Prometheus.render(), { contentType: Prometheus.contentType }))
  ),
  HttpServer.serve(),
  Layer.provide(NodeHttpServer.layer(createServer, { port: 9464, host: "127.0.0.1" }))
)

/** A call every 10 seconds: each is a `liaison.call` span with its attempts, and updates the metrics. */
const PollLive = Layer.scopedDiscard(Effect.forkScoped(
  Http.json(HttpClientRequest.get("/users/1"), User).pipe(
    Effect.tap((user) => Effect.logInfo(`user ${user.id}: ${user.username}`)),
    Effect.catchAll((error) => Effect.logWarning(`upstream failed: ${error.message}`)),
    Effect.repeat(Schedule.spaced("10 seconds"))
  )
)).pipe(Layer.provide(Policy.layerClientConfig()))

// The logger (`LOG_FORMAT`, `LOG_LEVEL`) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the OTLP
// exporter, provided under everything else so that every span, metric and log goes through them.
Layer.launch(Layer.merge(MetricsLive, PollLive).pipe(Layer.provide(Telemetry.layerConfig))).pipe(NodeRuntime.runMain)
