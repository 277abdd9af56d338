/**
 * Every call of an `Http` client behind one resilience policy: a rate limit, a total deadline,
 * retries with jitter, a circuit breaker per host and an attempt timeout.
 */
import { NodeRuntime } from "@effect/platform-node"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { CircuitBreaker, Http, HttpError, Policy, RateLimit } from "@liaison/core"
import { Console, Effect, Layer, Schema } from "effect"

const User = Schema.Struct({ id: Schema.Number, username: Schema.String })

const HttpLive = Policy.layer({
  rateLimit: { rule: RateLimit.tokenBucket({ limit: 50, interval: "1 second" }) }, // waits for a permit
  totalTimeout: "20 seconds",
  attemptTimeout: "5 seconds",
  retry: { maxAttempts: 4, base: "200 millis" }
}).pipe(
  Layer.provide([
    Http.layer({ baseUrl: "http://localhost:3000" }),
    CircuitBreaker.layer({ failureThreshold: 5, openDuration: "60 seconds" }),
    RateLimit.layerMemory() // or RateLimit.layerRedis() over a Redis layer: one limit for all instances
  ])
)

const program = Http.json(HttpClientRequest.get("/users/1"), User).pipe(
  Effect.flatMap((user) => Console.log(`user ${user.id}: ${user.username}`)),
  Effect.catchTags({
    CircuitOpen: (open) => Console.error(`upstream failing; next try in ${open.remainingMillis} ms`),
    RetryBudgetExhausted: (error) => Console.error(error.message)
  }),
  Effect.catchIf(HttpError.isHttpError, (error) => Console.error(`upstream failed: ${error.message}`)),
  Effect.provide(HttpLive)
)

NodeRuntime.runMain(program)
