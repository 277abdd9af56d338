import { describe, expect, it, layer } from "@effect/vitest"
import { StripeError } from "@liaison/integrations"
import { PaymentsLive, StripeSandbox } from "@liaison/server"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { blamedFields, call, jsonBody, serverLayer } from "./support.js"

/** The server with `env` as its whole environment (no Stripe key: the built-in sandbox). */
const withEnv = (env: Record<string, string>) =>
  serverLayer().pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))))

const post = (path: string, body: unknown, headers: Record<string, string> = {}) => {
  const init = jsonBody("POST", body)
  return call(path, { ...init, headers: { ...init.headers, ...headers } })
}

interface Created {
  readonly client_secret: string
  readonly payment_intent_id: string
  readonly status: string
}

layer(withEnv({}), { excludeTestServices: true })("the server's payments (the built-in Stripe sandbox)", (it) => {
  describe("POST /payments", () => {
    it.effect("creates a PaymentIntent: its client_secret and id", () =>
      Effect.gen(function*() {
        const reply = yield* post("/payments", { amount: 2000, currency: "usd", metadata: { order_id: "6735" } })
        expect(reply.status).toBe(201)
        const created = reply.json as Created
        expect(created.payment_intent_id).toMatch(/^pi_/)
        expect(created.client_secret).toMatch(new RegExp(`^${created.payment_intent_id}_secret_`))
        expect(created.status).toBe("requires_payment_method")
        const fetched = yield* call(`/payments/${created.payment_intent_id}`)
        expect(fetched.status).toBe(200)
        expect(fetched.json).toMatchObject({
          id: created.payment_intent_id,
          amount: 2000,
          amount_received: 0,
          currency: "usd",
          metadata: { order_id: "6735" }
        })
        expect(fetched.text).not.toContain("secret")
      }))

    it.effect("with a payment_method it is confirmed at once", () =>
      Effect.gen(function*() {
        const reply = yield* post("/payments", { amount: 1500, currency: "eur", payment_method: "pm_card_visa" })
        expect(reply.status).toBe(201)
        const { payment_intent_id } = reply.json as Created
        expect(reply.json).toMatchObject({ status: "succeeded" })
        const fetched = yield* call(`/payments/${payment_intent_id}`)
        expect(fetched.json).toMatchObject({ status: "succeeded", amount_received: 1500 })
      }))

    it.effect("a declined card is a 402 with Stripe's message", () =>
      Effect.gen(function*() {
        const reply = yield* post("/payments", {
          amount: 1500,
          currency: "usd",
          payment_method: "pm_card_chargeDeclinedInsufficientFunds"
        })
        expect(reply.status).toBe(402)
        expect(reply.json).toMatchObject({
          _tag: "PaymentDeclined",
          error: "card_declined",
          message: "Your card has insufficient funds.",
          decline_code: "insufficient_funds"
        })
        const id = (reply.json as { readonly payment_intent_id: string }).payment_intent_id
        const fetched = yield* call(`/payments/${id}`)
        expect(fetched.json).toMatchObject({
          status: "requires_payment_method",
          last_payment_error: "Your card has insufficient funds."
        })
      }))

    it.effect("an invalid request is a 400 with Stripe's message; bad input never reaches Stripe", () =>
      Effect.gen(function*() {
        const currency = yield* post("/payments", { amount: 2000, currency: "xyz" })
        expect(currency.status).toBe(400)
        expect(currency.json).toMatchObject({ _tag: "UpstreamBadRequest" })
        expect((currency.json as { readonly message: string }).message).toMatch(/^Invalid currency: xyz/)
        const unknownMethod = yield* post("/payments", { amount: 2000, currency: "usd", payment_method: "pm_nope" })
        expect(unknownMethod.status).toBe(400)
        expect(unknownMethod.json).toMatchObject({
          error: "resource_missing",
          message: "No such PaymentMethod: 'pm_nope'"
        })
        const tooSmall = yield* post("/payments", { amount: 10, currency: "usd" })
        expect(tooSmall.status).toBe(400)
        expect(blamedFields(tooSmall)).toEqual(["amount"])
        expect(blamedFields(yield* post("/payments", { amount: 2000, currency: "USD" }))).toEqual(["currency"])
      }))

    it.effect("the same Idempotency-Key twice creates one payment", () =>
      Effect.gen(function*() {
        const key = randomUUID()
        const first = yield* post("/payments", { amount: 4200, currency: "usd" }, { "idempotency-key": key })
        const second = yield* post("/payments", { amount: 4200, currency: "usd" }, { "idempotency-key": key })
        expect(second.status).toBe(201)
        expect((second.json as Created).payment_intent_id).toBe((first.json as Created).payment_intent_id)
        const other = yield* post("/payments", { amount: 9999, currency: "usd" }, { "idempotency-key": key })
        expect(other.status).toBe(409)
        expect(other.json).toMatchObject({ _tag: "Conflict", error: "idempotency_error" })
      }))
  })

  describe("GET /payments/{id}, POST /payments/{id}/cancel", () => {
    it.effect("an unknown payment is a 404 with Stripe's message; a malformed id a 400", () =>
      Effect.gen(function*() {
        const unknown = yield* call("/payments/pi_doesNotExist")
        expect(unknown.status).toBe(404)
        expect(unknown.json).toMatchObject({
          error: "resource_missing",
          message: "No such payment_intent: 'pi_doesNotExist'"
        })
        expect((yield* call("/payments/not-an-id")).status).toBe(400)
      }))

    it.effect("cancel with a reason; canceling a canceled payment is a 400", () =>
      Effect.gen(function*() {
        const { payment_intent_id } = (yield* post("/payments", { amount: 800, currency: "gbp" })).json as Created
        const canceled = yield* post(`/payments/${payment_intent_id}/cancel`, { cancellation_reason: "duplicate" })
        expect(canceled.status).toBe(200)
        expect(canceled.json).toMatchObject({ status: "canceled", cancellation_reason: "duplicate" })
        const again = yield* post(`/payments/${payment_intent_id}/cancel`, {})
        expect(again.status).toBe(400)
        expect(again.json).toMatchObject({ error: "payment_intent_unexpected_state" })
        const badReason = yield* post(`/payments/${payment_intent_id}/cancel`, { cancellation_reason: "bored" })
        expect(blamedFields(badReason)).toEqual(["cancellation_reason"])
      }))
  })

  describe("GET /payments", () => {
    it.effect("pages newest first: limit, has_more, next_cursor → starting_after", () =>
      Effect.gen(function*() {
        const ids: Array<string> = []
        for (let n = 0; n < 3; n++) {
          ids.push(((yield* post("/payments", { amount: 100 + n, currency: "usd" })).json as Created).payment_intent_id)
        }
        const first = yield* call("/payments?limit=2")
        expect(first.status).toBe(200)
        const page = first.json as {
          readonly data: ReadonlyArray<{ readonly id: string }>
          readonly has_more: boolean
          readonly next_cursor: string | null
        }
        expect(page.data.map((payment) => payment.id)).toEqual([ids[2], ids[1]])
        expect(page.has_more).toBe(true)
        expect(page.next_cursor).toBe(ids[1])
        const next = yield* call(`/payments?limit=2&starting_after=${page.next_cursor}`)
        expect((next.json as typeof page).data[0]?.id).toBe(ids[0])
        expect(blamedFields(yield* call("/payments?limit=500"))).toEqual(["limit"])
      }))
  })
})

/** A sandbox the test controls, and the server pointed at it as at a real Stripe. */
class FakeStripe extends Context.Tag("test/FakeStripe")<FakeStripe, StripeSandbox.FakeStripe>() {}

const withFakeStripe = Layer.unwrapScoped(Effect.map(StripeSandbox.make(), (fake) =>
  Layer.merge(
    Layer.succeed(FakeStripe, fake),
    withEnv({ STRIPE_SECRET_KEY: StripeSandbox.sandboxSecretKey, STRIPE_API_BASE: fake.url })
  )))

layer(withFakeStripe, { excludeTestServices: true })("the server's payments when Stripe fails", (it) => {
  it.effect("STRIPE_SECRET_KEY and STRIPE_API_BASE are used; Stripe failing is a 502", () =>
    Effect.gen(function*() {
      const fake = yield* FakeStripe
      const ok = yield* post("/payments", { amount: 2000, currency: "usd" })
      expect(ok.status).toBe(201)
      expect(fake.requests().at(-1)?.headers.authorization).toBe(`Bearer ${StripeSandbox.sandboxSecretKey}`)
      fake.outage(StripeSandbox.faults.apiError(500, false))
      const failed = yield* post("/payments", { amount: 2000, currency: "usd" })
      fake.recover()
      expect(failed.status).toBe(502)
      expect(failed.json).toMatchObject({ _tag: "BadGateway", error: "payment_provider_error" })
    }))

  it.effect("connections Stripe drops are retried, then a 502", () =>
    Effect.gen(function*() {
      const fake = yield* FakeStripe
      fake.outage({ _tag: "Drop" })
      const reply = yield* call("/payments/pi_whatever")
      fake.recover()
      expect(reply.status).toBe(502)
      expect(reply.json).toMatchObject({ _tag: "BadGateway", error: "upstream_unavailable" })
      expect(fake.requests().filter((request) => request.path === "/v1/payment_intents/pi_whatever")).toHaveLength(3)
    }))
})

describe("PaymentsLive.fromStripeError", () => {
  const fields = { status: 401, type: "invalid_request_error", message: "Invalid API Key provided: sk_live_****1234" }

  it("a key Stripe refuses is the server's problem: 502, Stripe's message (with the masked key) not passed on", () => {
    const answer = PaymentsLive.fromStripeError(new StripeError.AuthenticationError(fields))
    expect(answer).toMatchObject({ _tag: "BadGateway", error: "payment_provider_refused" })
    expect(answer.message).not.toContain("sk_live")
    expect(PaymentsLive.fromStripeError(new StripeError.PermissionError({ ...fields, status: 403 })))
      .toMatchObject({ _tag: "BadGateway" })
    expect(PaymentsLive.fromStripeError(new StripeError.RateLimitError({ ...fields, status: 429 })))
      .toMatchObject({ _tag: "TooManyRequests" })
  })
})
