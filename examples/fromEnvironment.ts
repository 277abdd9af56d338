/**
 * A resilient client configured from the environment in one line, e.g.
 *
 * ```sh
 * HTTP_BASE_URL=http://localhost:3000 HTTP_READ_TIMEOUT="5 seconds" \
 * UPSTREAM_TOTAL_TIMEOUT="20 seconds" UPSTREAM_RATE_LIMIT=50 RETRY_MAX_ATTEMPTS=4 \
 * BREAKER_FAILURE_THRESHOLD=3 BREAKER_OPEN_DURATION="30 seconds" \
 * npx tsx examples/fromEnvironment.ts
 * ```
 *
 * `Policy.layerClientConfig()` is `Http.layerConfig()` (`HTTP_*`) under `Policy.layerConfig()`
 * (`UPSTREAM_*`, `RETRY_*`) with a `CircuitBreaker.layerConfig()` registry (`BREAKER_*`) and, only
 * when `UPSTREAM_RATE_LIMIT` is set, an in-memory limiter. Unset variables keep the defaults; a
 * malformed one fails at start-up with a `ConfigError` naming it.
 *
 * A second client reads its own variables: the same layer under a nested `ConfigProvider`
 * (`BILLING_HTTP_BASE_URL`, `BILLING_UPSTREAM_RATE_LIMIT`, …).
 */
import { NodeRuntime } from "@effect/platform-node"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Http, HttpError, Policy } from "@liaison/core"
import { ConfigProvider, Console, Context, Effect, Layer, Schema } from "effect"

const User = Schema.Struct({ id: Schema.Number, username: Schema.String })

const HttpLive = Policy.layerClientConfig()

/** The billing API's client, configured by `BILLING_`-prefixed variables. */
class Billing extends Context.Tag("app/Billing")<Billing, Http.Service>() {}

const BillingLive = Layer.effect(Billing, Http.Http).pipe(
  Layer.provide(Policy.layerClientConfig()),
  // Only this layer's construction reads the nested names (`Layer.setConfigProvider` would leak
  // into the layers merged with it).
  Layer.locallyEffect(Effect.withConfigProvider(ConfigProvider.fromEnv().pipe(ConfigProvider.nested("BILLING"))))
)

const program = Http.json(HttpClientRequest.get("/users/1"), User).pipe(
  Effect.flatMap((user) => Console.log(`user ${user.id}: ${user.username}`)),
  Effect.catchIf(HttpError.isHttpError, (error) => Console.error(`upstream failed: ${error.message}`)),
  Effect.provide(Layer.merge(HttpLive, BillingLive))
)

NodeRuntime.runMain(program)
