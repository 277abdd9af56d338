/**
 * What the platform-floor servers share: serve an `HttpApi` with `@effect/platform-node` on a free loopback
 * port and print `{"url":…}` once listening (what the benchmarks wait for).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createServer } from "node:http"

const printUrl = Layer.effectDiscard(
  Effect.flatMap(
    HttpServer.addressFormattedWith(Effect.succeed),
    (url) => Effect.sync(() => process.stdout.write(`${JSON.stringify({ url })}\n`))
  )
)

export const launchFloor = (api: Layer.Layer<HttpApi.Api>): void =>
  Layer.mergeAll(HttpApiBuilder.serve(), printUrl).pipe(
    Layer.provide(api),
    Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    Layer.launch,
    Effect.orDie,
    NodeRuntime.runMain
  )
