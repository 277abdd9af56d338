/**
 * Calls an API with the credentials the environment names (`AUTH_SCHEME` and that scheme's
 * variables), each call authenticated first and retried around that: a retried call carries the
 * token that is current then.
 *
 *   AUTH_SCHEME=oauth2 OAUTH2_TOKEN_URL=https://id.example.com/oauth2/token OAUTH2_CLIENT_ID=my-service \
 *   OAUTH2_CLIENT_SECRET=… API_URL=https://api.example.com npx tsx --conditions=@liaison/source examples/auth.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Auth, Http, HttpError, Retry } from "@liaison/core"
import { Config, Console, Effect, Layer, Schema } from "effect"

const HttpLive = Retry.layer({ maxAttempts: 3 }).pipe(
  Layer.provide(Layer.unwrapEffect(Effect.map(Config.string("API_URL"), (baseUrl) => Auth.layerHttp({ baseUrl })))),
  // Or Auth.layer({ scheme: "oauth2", tokenUrl, clientId, clientSecret: Redacted.make(…), scope: ["orders:read"] })
  Layer.provide(Auth.layerConfig())
)

const program = Http.json(HttpClientRequest.get("/orders"), Schema.Unknown).pipe(
  Effect.flatMap((orders) => Console.log(orders)),
  Effect.catchTag("AuthError", (error) => Console.error(`authentication failed (${error.reason}): ${error.message}`)),
  Effect.catchIf(HttpError.isHttpError, (error) => Console.error(`upstream failed: ${error.message}`)),
  Effect.provide(HttpLive)
)

NodeRuntime.runMain(program)
