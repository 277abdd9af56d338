import { afterAll, beforeAll, beforeEach, describe, expect, it } from "@effect/vitest"
import { Http } from "@liaison/core"
import { Stripe, StripeError, StripeSchema } from "@liaison/integrations"
import { StripeSandbox } from "@liaison/server"
import { Cause, Chunk, ConfigProvider, Effect, Either, Exit, Layer, Redacted, Schema, Stream } from "effect"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import { drive, driven, failure, farTimeouts, requestsSince } from "./support.js"

let fake: StripeSandbox.FakeStripe
beforeAll(async () => {
  fake = await StripeSandbox.start()
})
afterAll(() => fake.close())
beforeEach(() => fake.recover())

const client = (options: Partial<Stripe.Options> = {}) =>
  Stripe.layerStandalone({
    apiKey: Redacted.make(StripeSandbox.sandboxSecretKey),
    apiBase: fake.url,
    http: { timeouts: farTimeouts },
    ...options
  })

const run = <A, E>(effect: Effect.Effect<A, E, Stripe.Stripe>, options: Partial<Stripe.Options> = {}) =>
  Effect.provide(effect, client(options))

const stripe = Stripe.Stripe

/** The requests the fake receives from now on. */
const since = () => requestsSince(fake)

const seen = () => fake.requests().length

describe("Stripe PaymentIntents against the sandbox", () => {
  it.effect("create: Stripe's form encoding, headers and a decoded PaymentIntent", () =>
    Effect.gen(function*() {
      const wire = since()
      const intent = yield* (yield* stripe).paymentIntents.create({
        amount: 2000,
        currency: "usd",
        description: "Order 6735",
        metadata: { order_id: "6735" },
        payment_method_types: ["card"]
      })
      expect(intent).toMatchObject({
        object: "payment_intent",
        amount: 2000,
        amount_received: 0,
        currency: "usd",
        status: "requires_payment_method",
        description: "Order 6735",
        metadata: { order_id: "6735" },
        payment_method_types: ["card"]
      })
      expect(intent.id).toMatch(/^pi_/)
      expect(intent.client_secret).toMatch(new RegExp(`^${intent.id}_secret_`))
      const [request] = wire()
      expect(request?.method).toBe("POST")
      expect(request?.path).toBe("/v1/payment_intents")
      expect(request?.body).toBe(
        "amount=2000&currency=usd&description=Order%206735&metadata[order_id]=6735&payment_method_types[0]=card"
      )
      expect(request?.headers).toMatchObject({
        authorization: `Bearer ${StripeSandbox.sandboxSecretKey}`,
        "content-type": "application/x-www-form-urlencoded",
        "stripe-version": Stripe.defaults.apiVersion
      })
      expect(request?.headers["idempotency-key"]).toMatch(/^liaison-[0-9a-f-]{36}$/)
    }).pipe(run))

  it.effect("retrieve, update (null unsets), confirm, and GETs carry no idempotency key", () =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      const created = yield* paymentIntents.create({
        amount: 1000,
        currency: "eur",
        description: "to clear",
        metadata: { keep: "1", drop: "2" }
      })
      const wire = since()
      const fetched = yield* paymentIntents.retrieve(created.id)
      expect(fetched.id).toBe(created.id)
      expect(wire()[0]?.headers["idempotency-key"]).toBeUndefined()
      const updated = yield* paymentIntents.update(created.id, {
        amount: 1500,
        description: null,
        metadata: { drop: null, added: "3" }
      })
      expect(updated).toMatchObject({ amount: 1500, description: null, metadata: { keep: "1", added: "3" } })
      expect(wire()[1]?.body).toBe("amount=1500&description=&metadata[drop]=&metadata[added]=3")
      const confirmed = yield* paymentIntents.confirm(created.id, { payment_method: "pm_card_visa" })
      expect(confirmed).toMatchObject({ status: "succeeded", amount_received: 1500, payment_method: "pm_card_visa" })
      expect(confirmed.latest_charge).toMatch(/^ch_/)
    }).pipe(run))

  it.effect("manual capture: requires_capture, then a partial capture", () =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      const authorized = yield* paymentIntents.create({
        amount: 5000,
        currency: "usd",
        capture_method: "manual",
        payment_method: "pm_card_mastercard",
        confirm: true
      })
      expect(authorized).toMatchObject({ status: "requires_capture", amount_capturable: 5000, amount_received: 0 })
      const captured = yield* paymentIntents.capture(authorized.id, { amount_to_capture: 4200 })
      expect(captured).toMatchObject({ status: "succeeded", amount_received: 4200, amount_capturable: 0 })
    }).pipe(run))

  it.effect("cancel with a cancellation_reason; canceling twice is an invalid request", () =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      const created = yield* paymentIntents.create({ amount: 700, currency: "gbp" })
      const canceled = yield* paymentIntents.cancel(created.id, { cancellation_reason: "requested_by_customer" })
      expect(canceled).toMatchObject({ status: "canceled", cancellation_reason: "requested_by_customer" })
      expect(canceled.canceled_at).toBeGreaterThan(0)
      const again = yield* failure(paymentIntents.cancel(created.id))
      expect(again instanceof StripeError.InvalidRequestError).toBe(true)
      expect(again).toMatchObject({ status: 400, code: "payment_intent_unexpected_state" })
    }).pipe(run))
})

describe("Stripe errors, typed by Stripe's error type", () => {
  it.effect("card_error (402): code, decline_code, doc_url, message, Request-Id and the PaymentIntent", () =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      const created = yield* paymentIntents.create({ amount: 2500, currency: "usd" })
      const wire = since()
      const error = yield* failure(paymentIntents.confirm(created.id, { payment_method: "pm_card_chargeDeclined" }))
      expect(error instanceof StripeError.CardError).toBe(true)
      expect(error).toMatchObject({
        _tag: "StripeCardError",
        status: 402,
        type: "card_error",
        code: "card_declined",
        decline_code: "generic_decline",
        doc_url: "https://stripe.com/docs/error-codes/card-declined",
        message: "Your card was declined.",
        payment_intent_id: created.id
      })
      expect(error._tag === "StripeCardError" && error.request_id).toMatch(/^req_/)
      // A card decline is final: not retried.
      expect(wire()).toHaveLength(1)
      const after = yield* paymentIntents.retrieve(created.id)
      expect(after.status).toBe("requires_payment_method")
      expect(after.last_payment_error).toMatchObject({ code: "card_declined", decline_code: "generic_decline" })
    }).pipe(run))

  it.effect("invalid_request_error: a missing parameter (400) names it; an unknown id is a 404", () =>
    Effect.gen(function*() {
      const { paymentIntents, request } = yield* stripe
      const missing = yield* failure(request({
        method: "POST",
        path: "/v1/payment_intents",
        params: { amount: 2000 },
        schema: StripeSchema.PaymentIntent
      }))
      expect(missing instanceof StripeError.InvalidRequestError).toBe(true)
      expect(missing).toMatchObject({
        status: 400,
        code: "parameter_missing",
        param: "currency",
        message: "Missing required param: currency."
      })
      const unknown = yield* failure(paymentIntents.retrieve("pi_doesNotExist"))
      expect(unknown instanceof StripeError.InvalidRequestError).toBe(true)
      expect(unknown).toMatchObject({
        status: 404,
        code: "resource_missing",
        message: "No such payment_intent: 'pi_doesNotExist'"
      })
      const tooSmall = yield* failure(paymentIntents.create({ amount: 10, currency: "usd" }))
      expect(tooSmall).toMatchObject({ _tag: "StripeInvalidRequestError", code: "amount_too_small", param: "amount" })
    }).pipe(run))

  it.effect("authentication_error (401) for a key Stripe does not take (a live key in test mode)", () =>
    Effect.gen(function*() {
      const error = yield* failure((yield* stripe).paymentIntents.list())
      expect(error instanceof StripeError.AuthenticationError).toBe(true)
      expect(error).toMatchObject({ status: 401, type: "invalid_request_error" })
      // Stripe masks the key in its message.
      expect(error.message).toMatch(/^Invalid API Key provided: sk_live_\*+0000$/)
    }).pipe((effect) => Effect.provide(effect, client({ apiKey: Redacted.make("sk_live_51Hx000000000000000000") }))))

  it.effect("permission_error (403): a restricted read-only key may list but not create", () =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      yield* paymentIntents.list({ limit: 1 })
      const error = yield* failure(paymentIntents.create({ amount: 2000, currency: "usd" }))
      expect(error instanceof StripeError.PermissionError).toBe(true)
      expect(error).toMatchObject({ status: 403 })
    }).pipe((effect) => Effect.provide(effect, client({ apiKey: Redacted.make("rk_test_readOnly00000000000") }))))

  it.effect("idempotency_error: the same Idempotency-Key with other parameters", () =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      const first = yield* paymentIntents.create({ amount: 2000, currency: "usd" }, { idempotencyKey: "order-6735" })
      const replay = yield* paymentIntents.create({ amount: 2000, currency: "usd" }, { idempotencyKey: "order-6735" })
      expect(replay.id).toBe(first.id)
      const error = yield* failure(
        paymentIntents.create({ amount: 9999, currency: "usd" }, { idempotencyKey: "order-6735" })
      )
      expect(error instanceof StripeError.IdempotencyError).toBe(true)
      expect(error).toMatchObject({ status: 400, type: "idempotency_error" })
    }).pipe(run))

  it.effect("rate_limit (429): backs off, then a RateLimitError once the retries are spent", () =>
    Effect.gen(function*() {
      fake.inject(
        StripeSandbox.faults.rateLimited(),
        StripeSandbox.faults.rateLimited(),
        StripeSandbox.faults.rateLimited()
      )
      const wire = since()
      const error = yield* driven(failure((yield* stripe).paymentIntents.list()))
      expect(error instanceof StripeError.RateLimitError).toBe(true)
      expect(error).toMatchObject({ status: 429, code: "rate_limit" })
      expect(wire()).toHaveLength(3)
    }).pipe(run))

  it.effect("api_error (5xx) with Stripe-Should-Retry: false is not retried", () =>
    Effect.gen(function*() {
      fake.inject(StripeSandbox.faults.apiError(500, false))
      const wire = since()
      const error = yield* failure((yield* stripe).paymentIntents.create({ amount: 2000, currency: "usd" }))
      expect(error instanceof StripeError.ApiError).toBe(true)
      expect(error).toMatchObject({ status: 500, type: "api_error" })
      expect(wire()).toHaveLength(1)
    }).pipe(run))
})

describe("Stripe retries: the same Idempotency-Key on every attempt", () => {
  const keysOf = (requests: ReadonlyArray<StripeSandbox.RecordedRequest>) =>
    requests.map((request) => request.headers["idempotency-key"])

  it.effect("a 5xx is retried with the same key, and the PaymentIntent is created once", () =>
    Effect.gen(function*() {
      fake.inject(StripeSandbox.faults.apiError(503), StripeSandbox.faults.apiError(500))
      const before = fake.paymentIntentCount()
      const wire = since()
      const intent = yield* driven((yield* stripe).paymentIntents.create({ amount: 2000, currency: "usd" }))
      const keys = keysOf(wire())
      expect(keys).toHaveLength(3)
      expect(new Set(keys).size).toBe(1)
      expect(fake.paymentIntentCount()).toBe(before + 1)
      expect(intent.status).toBe("requires_payment_method")
    }).pipe(run))

  it.effect("an answer lost after Stripe processed the request: the retry replays it, nothing twice", () =>
    Effect.gen(function*() {
      fake.inject({ _tag: "DropAfterProcessing" })
      const before = fake.paymentIntentCount()
      const wire = since()
      const intent = yield* driven((yield* stripe).paymentIntents.create({ amount: 3100, currency: "usd" }))
      const requests = wire()
      expect(requests).toHaveLength(2)
      expect(requests[0]?.headers["idempotency-key"]).toBe(requests[1]?.headers["idempotency-key"])
      expect(fake.paymentIntentCount()).toBe(before + 1)
      const again = yield* (yield* stripe).paymentIntents.retrieve(intent.id)
      expect(again.amount).toBe(3100)
    }).pipe(run))

  it.effect("a dropped connection is retried; so is a GET", () =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      const created = yield* paymentIntents.create({ amount: 2000, currency: "usd" })
      fake.inject({ _tag: "Drop" }, StripeSandbox.faults.apiError(502))
      const wire = since()
      const fetched = yield* driven(paymentIntents.retrieve(created.id))
      expect(fetched.id).toBe(created.id)
      expect(wire().map((request) => request.method)).toEqual(["GET", "GET", "GET"])
    }).pipe(run))

  it.effect("409 is retried; Stripe-Should-Retry: true retries even a 400", () =>
    Effect.gen(function*() {
      fake.inject(StripeSandbox.faults.conflict(), {
        _tag: "Respond",
        status: 400,
        body: { error: { type: "invalid_request_error", message: "lock timeout" } },
        headers: { "stripe-should-retry": "true" }
      })
      const wire = since()
      yield* driven((yield* stripe).paymentIntents.create({ amount: 2000, currency: "usd" }))
      const keys = keysOf(wire())
      expect(keys).toHaveLength(3)
      expect(new Set(keys).size).toBe(1)
    }).pipe(run))

  it.effect("Stripe-Should-Retry: false stops a retry a 409 would get", () =>
    Effect.gen(function*() {
      fake.inject(StripeSandbox.faults.conflict(false))
      const wire = since()
      const error = yield* failure((yield* stripe).paymentIntents.create({ amount: 2000, currency: "usd" }))
      expect(error instanceof StripeError.IdempotencyError).toBe(true)
      expect(error).toMatchObject({ status: 409, code: "idempotency_key_in_use" })
      expect(wire()).toHaveLength(1)
    }).pipe(run))

  it.effect("429 with Retry-After: 7 waits 7 seconds before the next attempt", () =>
    Effect.gen(function*() {
      fake.inject(StripeSandbox.faults.rateLimited(7))
      const { arrivals, exit } = yield* drive((yield* stripe).paymentIntents.list({ limit: 1 }), seen)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(arrivals).toHaveLength(2)
      expect((arrivals[1] as number) - (arrivals[0] as number)).toBe(7000)
    }).pipe(run))

  it.effect("backoff is exponential with jitter and bounded by maxNetworkRetries", () =>
    Effect.gen(function*() {
      fake.inject(...Array.from({ length: 5 }, () => StripeSandbox.faults.apiError(500)))
      const { arrivals, exit } = yield* drive((yield* stripe).paymentIntents.list({ limit: 1 }), seen)
      expect(Exit.isFailure(exit)).toBe(true)
      // 1 attempt + 3 retries; waits 500 ms × 2^n jittered to 50–100 % (capped at 5 s).
      expect(arrivals).toHaveLength(4)
      const waits = arrivals.slice(1).map((at, index) => at - (arrivals[index] as number))
      waits.forEach((wait, index) => {
        const nominal = 500 * 2 ** index
        expect(wait).toBeGreaterThanOrEqual(nominal / 2)
        expect(wait).toBeLessThanOrEqual(nominal)
      })
      fake.recover()
    }).pipe((effect) => Effect.provide(effect, client({ maxNetworkRetries: 3 }))))
})

describe("Stripe: a GET's client_secret never reaches an error or a span", () => {
  const secret = "pi_1_secret_5ecr3tV4lue"

  /** Retrieves with a client_secret after `faults`; the error and every span must not show it. */
  const expectNoSecret = (faults: ReadonlyArray<StripeSandbox.Fault>, tag: string) =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      const created = yield* paymentIntents.create({ amount: 2000, currency: "usd" })
      fake.inject(...faults)
      const wire = since()
      const { spans, text, tracer } = recordingTracer()
      const { exit } = yield* drive(
        paymentIntents.retrieve(created.id, { client_secret: secret }).pipe(Effect.withTracer(tracer))
      )
      expect(wire()[0]?.query).toContain("client_secret=")
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isSuccess(exit)) return
      const error = Cause.squash(exit.cause)
      expect(error).toMatchObject({ _tag: tag })
      const shown = [JSON.stringify(error), String(error), Cause.pretty(exit.cause)].join("\n")
      expect(shown).not.toContain(secret)
      expect(spans.map((span) => span.name)).toContain("Stripe.attempt")
      expect(text()).not.toContain(secret)
    })

  it.effect("Retry-After over maxRetryAfter: RetryAfterTooLong", () =>
    expectNoSecret([StripeSandbox.faults.rateLimited(3600)], "RetryAfterTooLong").pipe(run))

  it.effect("an answer that does not decode: DecodeError", () =>
    expectNoSecret([{ _tag: "Respond", status: 200, body: { id: secret, object: "payment_intent" } }], "DecodeError")
      .pipe(run))

  it.effect("connections dropped until the retries are spent: TransportError", () =>
    expectNoSecret([{ _tag: "Drop" }, { _tag: "Drop" }, { _tag: "Drop" }], "TransportError").pipe(run))

  it.effect("each attempt is a Stripe.attempt span numbered within its call", () =>
    Effect.gen(function*() {
      fake.inject(StripeSandbox.faults.apiError(500), StripeSandbox.faults.apiError(503))
      const { spans, tracer } = recordingTracer()
      yield* driven((yield* stripe).paymentIntents.list({ limit: 1 }).pipe(Effect.withTracer(tracer)))
      const attempts = spans.filter((span) => span.name === "Stripe.attempt")
      expect(attempts.map((span) => span.attributes.get("stripe.attempt"))).toEqual([1, 2, 3])
      expect(attempts.map((span) => span.attributes.get("url.full"))).toEqual(
        Array(3).fill(`${fake.url}/v1/payment_intents`)
      )
    }).pipe(run))
})

describe("Stripe Connect and pagination", () => {
  it.effect("Stripe-Account: a connected account's objects are its own", () =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      const wire = since()
      const intent = yield* paymentIntents.create({ amount: 2000, currency: "usd" }, {
        stripeAccount: "acct_1Connected"
      })
      expect(wire()[0]?.headers["stripe-account"]).toBe("acct_1Connected")
      const platform = yield* failure(paymentIntents.retrieve(intent.id))
      expect(platform).toMatchObject({ _tag: "StripeInvalidRequestError", status: 404 })
      const connected = yield* paymentIntents.retrieve(intent.id, {}, { stripeAccount: "acct_1Connected" })
      expect(connected.id).toBe(intent.id)
    }).pipe(run))

  it.effect("list pages with limit / starting_after / ending_before; autoPaginate walks every page", () =>
    Effect.gen(function*() {
      const { paymentIntents } = yield* stripe
      const options = { stripeAccount: "acct_1Pagination" }
      const created: Array<string> = []
      for (let n = 0; n < 25; n++) {
        created.push((yield* paymentIntents.create({ amount: 100 + n, currency: "usd" }, options)).id)
      }
      const newestFirst = [...created].reverse()
      const first = yield* paymentIntents.list({ limit: 10 }, options)
      expect(first.data.map((intent) => intent.id)).toEqual(newestFirst.slice(0, 10))
      expect(first.has_more).toBe(true)
      const second = yield* paymentIntents.list({ limit: 10, starting_after: first.data[9]?.id as string }, options)
      expect(second.data.map((intent) => intent.id)).toEqual(newestFirst.slice(10, 20))
      const back = yield* paymentIntents.list({ limit: 5, ending_before: second.data[0]?.id as string }, options)
      expect(back.data.map((intent) => intent.id)).toEqual(newestFirst.slice(5, 10))
      expect(back.has_more).toBe(true)

      const wire = since()
      const all = yield* Stream.runCollect(paymentIntents.autoPaginate({ limit: 10 }, options))
      expect(Chunk.toReadonlyArray(all).map((intent) => intent.id)).toEqual(newestFirst)
      expect(wire().map((request) => decodeURIComponent(request.query))).toEqual([
        "limit=10",
        `limit=10&starting_after=${newestFirst[9]}`,
        `limit=10&starting_after=${newestFirst[19]}`
      ])

      const backwards = yield* Stream.runCollect(
        paymentIntents.autoPaginate({ limit: 10, ending_before: created[0] as string }, options)
      )
      const ids = Chunk.toReadonlyArray(backwards).map((intent) => intent.id)
      expect(ids).toHaveLength(24)
      expect(new Set(ids)).toEqual(new Set(created.slice(1)))
    }).pipe(run))

  it.effect("parameters that do not encode fail before any request", () =>
    Effect.gen(function*() {
      const wire = since()
      const error = yield* failure(
        (yield* stripe).paymentIntents.create({ amount: Number.POSITIVE_INFINITY, currency: "usd" })
      )
      expect(error).toMatchObject({ _tag: "InvalidRequest" })
      expect(wire()).toHaveLength(0)
    }).pipe(run))
})

describe("Stripe models", () => {
  it("a PaymentIntent tolerates fields it does not know; nullable ones Stripe leaves out are null", () => {
    const decode = Schema.decodeUnknownEither(StripeSchema.PaymentIntent)
    const minimal = {
      id: "pi_1",
      object: "payment_intent",
      amount: 2000,
      amount_received: 0,
      currency: "usd",
      status: "processing",
      created: 1_700_000_000,
      livemode: false,
      metadata: {},
      automatic_payment_methods: { enabled: true },
      next_action: null,
      customer: { id: "cus_1", object: "customer", email: "ann@example.com" }
    }
    const decoded = Either.getOrThrow(decode(minimal))
    expect(decoded).toMatchObject({ client_secret: null, description: null, customer: "cus_1", amount_capturable: 0 })
    expect(Either.isLeft(decode({ ...minimal, status: "almost_done" }))).toBe(true)
  })
})

describe("Stripe layerConfig", () => {
  it.effect("reads STRIPE_SECRET_KEY and STRIPE_API_BASE", () =>
    Effect.gen(function*() {
      const intents = yield* (yield* stripe).paymentIntents.list({ limit: 1 })
      expect(intents.object).toBe("list")
    }).pipe(
      Effect.provide(
        Stripe.layerConfig().pipe(
          Layer.provide(Http.layer({ timeouts: farTimeouts })),
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
            new Map([["STRIPE_SECRET_KEY", StripeSandbox.sandboxSecretKey], ["STRIPE_API_BASE", fake.url]])
          )))
        )
      )
    ))
})
