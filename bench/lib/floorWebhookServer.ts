/**
 * The platform's floor for `bench/webhooks.ts`: the same verify + claim as `bareWebhookServer.ts`, but as
 * a minimal `HttpApi` served by `@effect/platform-node` (`POST /webhooks/stripe`, the raw body read by the
 * platform, a success schema), none of Liaison's middleware, services, queue or workers. What it costs over
 * bare `node:http` is what the platform costs on this route.
 *
 *   STRIPE_WEBHOOK_SECRET=… [REDIS_URL=redis://…] tsx bench/lib/floorWebhookServer.ts
 *
 * Prints `{"url":…}` once listening.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { launchFloor } from "./floorServer.js"
import { makeClaim, verify } from "./stripeClaim.js"

class WebhooksApi extends HttpApiGroup.make("webhooks").add(
  HttpApiEndpoint.post("receive", "/webhooks/stripe")
    .addSuccess(Schema.Struct({ duplicate: Schema.Boolean }))
    .addError(HttpApiError.Unauthorized)
    .addError(HttpApiError.ServiceUnavailable)
) {}

class Api extends HttpApi.make("floor").add(WebhooksApi) {}

const { claim } = makeClaim()

const WebhooksLive = HttpApiBuilder.group(
  Api,
  "webhooks",
  (handlers) =>
    handlers.handle("receive", () =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const body = new Uint8Array(yield* Effect.orDie(request.arrayBuffer))
        if (!verify(String(request.headers["stripe-signature"] ?? ""), body)) {
          return yield* new HttpApiError.Unauthorized()
        }
        const event = JSON.parse(new TextDecoder().decode(body)) as { readonly id: string }
        const fresh = yield* Effect.tryPromise({
          try: () => claim(event.id),
          catch: () => new HttpApiError.ServiceUnavailable()
        })
        return { duplicate: !fresh }
      }))
)

launchFloor(HttpApiBuilder.api(Api).pipe(Layer.provide(WebhooksLive)))
