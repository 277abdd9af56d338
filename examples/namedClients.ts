/**
 * Several upstreams in one program, each a named client: a Tag per client holding its own `Http`
 * (base URL, pool, resilience policy), while Stripe and SendGrid share one `Http` pool.
 *
 * - `Users` and `Billing` are `Http.Service`s under Tags of their own; a call picks its client
 *   with `Effect.provideServiceEffect(Http.Http, Users)` (here: the `users` / `billing` helpers).
 * - One `CircuitBreaker` registry serves both (breakers are per host, so they never mix), one
 *   `RateLimit` counts the billing API's limit (the users API has none, so needs no limiter).
 * - `Stripe.layer` and `SendGrid.layer` each take the `Http` in context: given the same
 *   `Http.layer()`, they share its connection pools (one per origin).
 */
import { NodeRuntime } from "@effect/platform-node"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { CircuitBreaker, Http, Policy, RateLimit } from "@liaison/core"
import { SendGrid, Stripe } from "@liaison/integrations"
import { Config, Console, Context, Effect, Layer, Redacted, Schema } from "effect"

/** The users API: its own base URL, a short deadline, no rate limit. */
class Users extends Context.Tag("app/Users")<Users, Http.Service>() {}

/** The billing API: a longer deadline and 20 calls per second. */
class Billing extends Context.Tag("app/Billing")<Billing, Http.Service>() {}

/** A named client: the `Http` built by `client` under `tag`. */
const named = <Id, E, R>(tag: Context.Tag<Id, Http.Service>, client: Layer.Layer<Http.Http, E, R>) =>
  Layer.effect(tag, Http.Http).pipe(Layer.provide(client))

const UsersLive = named(
  Users,
  Policy.layer({ totalTimeout: "5 seconds", attemptTimeout: "2 seconds" }).pipe(
    Layer.provide(Http.layer({ baseUrl: "http://localhost:3000" }))
  )
)

const BillingLive = named(
  Billing,
  Policy.layer({
    totalTimeout: "30 seconds",
    rateLimit: { rule: RateLimit.tokenBucket({ limit: 20, interval: "1 second" }) }
  }).pipe(Layer.provide(Http.layer({ baseUrl: "https://billing.example.com/v2", timeouts: { read: "20 seconds" } })))
)

/** Stripe and SendGrid over one `Http` (no base URL: each client sends to its own API). */
const ProvidersLive = Layer.mergeAll(
  Stripe.layer({ apiKey: Redacted.make("sk_test_example") }),
  SendGrid.layerConfig({
    apiKey: Config.redacted("SENDGRID_API_KEY").pipe(Config.withDefault(Redacted.make("SG.example")))
  })
).pipe(Layer.provide(Http.layer({ pool: { maxConnections: 20 } })))

const AppLive = Layer.mergeAll(UsersLive, BillingLive, ProvidersLive).pipe(
  // Shared by the named clients: one breaker registry, one limiter.
  Layer.provide([CircuitBreaker.layer({ failureThreshold: 5 }), RateLimit.layerMemory()])
)

const users = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideServiceEffect(effect, Http.Http, Users)
const billing = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideServiceEffect(effect, Http.Http, Billing)

const User = Schema.Struct({ id: Schema.Number, username: Schema.String, email: Schema.String })
const Invoice = Schema.Struct({ id: Schema.String, amount: Schema.Number, currency: Schema.String })

const program = Effect.gen(function*() {
  const user = yield* users(Http.json(HttpClientRequest.get("/users/1"), User))
  const invoice = yield* billing(Http.json(HttpClientRequest.get(`/invoices/latest?user=${user.id}`), Invoice))
  const stripe = yield* Stripe.Stripe
  const intent = yield* stripe.paymentIntents.create({
    amount: invoice.amount,
    currency: invoice.currency,
    metadata: { invoice: invoice.id }
  })
  const sendgrid = yield* SendGrid.SendGrid
  yield* sendgrid.send({
    from: { email: "billing@example.com" },
    to: [{ email: user.email }],
    subject: `Invoice ${invoice.id}`,
    text: `Payment ${intent.id} is ${intent.status}.`
  })
}).pipe(
  Effect.catchAll((error) => Console.error(`failed: ${error.message}`)),
  Effect.provide(AppLive)
)

NodeRuntime.runMain(program)
