/**
 * OAuth2 client credentials, written out: every call authenticated first, then retried around
 * that, so a retried call carries the token that is current then. `examples/auth.ts` is the same
 * client configured from the environment.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Auth, Http, Retry } from "@liaison/core"
import { Effect, Layer, Redacted, Schema } from "effect"

const HttpLive = Retry.layer({ maxAttempts: 3 }).pipe(
  Layer.provide(Auth.layerHttp({ baseUrl: "https://api.example.com" })),
  Layer.provide(Auth.layer({
    scheme: "oauth2",
    tokenUrl: "https://id.example.com/oauth2/token",
    clientId: "my-service",
    clientSecret: Redacted.make(process.env.CLIENT_SECRET ?? ""),
    scope: ["orders:read"]
  }))
  // or { scheme: "bearer", token }, { scheme: "api-key", key, in: "query" }, { scheme: "basic", username, password };
  // or Auth.layerConfig(): the scheme named by AUTH_SCHEME, from the variables in docs/Auth.md
)

export const orders = Http.json(HttpClientRequest.get("/orders"), Schema.Array(Schema.Unknown)).pipe(
  Effect.catchTag("AuthError", (error) => Effect.logError(error.message)), // reason: token_endpoint | token_response | rejected
  Effect.provide(HttpLive)
)
