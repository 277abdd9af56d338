/**
 * The webhook verifiers of `@liaison/integrations`: `StripeWebhook` and `SendGridWebhook`, as
 * `Webhooks.Source`s of `@liaison/core` (known-answer vectors from each provider's own libraries,
 * failures, rotation, batches, unusable options).
 */
import { describe, expect, it } from "@effect/vitest"
import { Webhooks } from "@liaison/core"
import { SendGridWebhook, StripeWebhook } from "@liaison/integrations"
import { Effect, Redacted, TestClock } from "effect"
import { generateKeyPairSync } from "node:crypto"

const utf8 = (text: string) => new TextEncoder().encode(text)

/** Sets the test clock to a Unix time in seconds. */
const at = (seconds: number) => TestClock.setTime(seconds * 1000)

describe("StripeWebhook and SendGridWebhook known-answer vectors", () => {
  // stripe/stripe-dotnet, src/StripeTests/Services/Events/EventUtilityTest.cs: timestamp 1533204620,
  // secret "webhook_secret", the body src/StripeTests/Resources/event_test_signature.json (LF line
  // endings, trailing newline), header "t=1533204620,v1=2220f87e…,v0=63f3a723…", valid at +100 s
  // with a 300 s tolerance and refused at +400 s.
  const stripeBody = `{
  "id": "evt_123",
  "object": "event",
  "account": "acct_123",
  "api_version": "2017-05-25",
  "created": 1533204620,
  "data": {
    "object": {
      "id": "cus_123",
      "object": "customer",
      "created": 123456789,
      "email": "test@stripe.com",
      "livemode": false,
      "metadata": {}
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": "req_123",
    "idempotency_key": "idempotency-key-123"
  },
  "type": "customer.created"
}
`
  const stripeHeader = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7," +
    "v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef"

  it.effect("Stripe: stripe-dotnet's signed event verifies within the tolerance and not after it", () =>
    Effect.gen(function*() {
      const secret = Redacted.make("webhook_secret")
      const source = yield* StripeWebhook.source({ secret })
      const request = { headers: { "stripe-signature": stripeHeader }, body: utf8(stripeBody) }
      yield* at(1533204620 + 100)
      const events = yield* Webhooks.receive(source, request)
      expect(events.map((event) => [event.id, event.type])).toEqual([["evt_123", "customer.created"]])
      expect(StripeWebhook.sign({ secret, timestamp: 1533204620, body: utf8(stripeBody) })).toBe(
        "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7"
      )
      yield* at(1533204620 + 400)
      const late = yield* Effect.flip(source.verify(request))
      expect(late._tag).toBe("TimestampOutOfTolerance")
      const changed = yield* Effect.flip(
        source.verify({ ...request, body: utf8(`${stripeBody}this_changes_the_json`) })
      )
      expect(changed._tag).toBe("InvalidSignature")
    }))

  // sendgrid/sendgrid-nodejs, packages/eventwebhook/src/eventwebhook.spec.js: PUBLIC_KEY, SIGNATURE,
  // TIMESTAMP 1588788367 and PAYLOAD JSON.stringify({category:'example_payload',event:'test_event',
  // message_id:'message_id'}); the same spec's other key, bad payload, bad signature and bad timestamp fail.
  const sendgrid = {
    publicKey:
      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==",
    otherKey:
      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==",
    signature: "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=",
    badSignature: "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=",
    timestamp: "1588788367",
    payload: JSON.stringify({ category: "example_payload", event: "test_event", message_id: "message_id" })
  }
  const sendgridRequest = (overrides: { signature?: string; timestamp?: string; payload?: string } = {}) => ({
    headers: {
      "x-twilio-email-event-webhook-signature": overrides.signature ?? sendgrid.signature,
      "x-twilio-email-event-webhook-timestamp": overrides.timestamp ?? sendgrid.timestamp
    },
    body: utf8(overrides.payload ?? sendgrid.payload)
  })

  it.effect("SendGrid: the library's signed payload verifies; its negative cases fail", () =>
    Effect.gen(function*() {
      const source = yield* SendGridWebhook.source({ publicKey: sendgrid.publicKey })
      const verified = yield* source.verify(sendgridRequest())
      expect(verified.timestamp).toBe(1588788367)
      const other = yield* SendGridWebhook.source({ publicKey: sendgrid.otherKey })
      const failures = yield* Effect.all([
        Effect.flip(other.verify(sendgridRequest())),
        Effect.flip(source.verify(sendgridRequest({ payload: "payload" }))),
        Effect.flip(source.verify(sendgridRequest({ signature: sendgrid.badSignature }))),
        Effect.flip(source.verify(sendgridRequest({ timestamp: "timestamp" })))
      ])
      expect(failures.map((error) => error._tag)).toEqual(Array(4).fill("InvalidSignature"))
      // With a tolerance set, a signature this old is refused for its age.
      const strict = yield* SendGridWebhook.source({ publicKey: sendgrid.publicKey, tolerance: "5 minutes" })
      yield* at(1588788367 + 301)
      expect((yield* Effect.flip(strict.verify(sendgridRequest())))._tag).toBe("TimestampOutOfTolerance")
    }))
})

describe("StripeWebhook and SendGridWebhook failures", () => {
  const secret = Redacted.make("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

  it.effect("each failure is its own type with its own status; secrets never appear in messages", () =>
    Effect.gen(function*() {
      yield* at(1_700_000_000)
      const source = yield* StripeWebhook.source({ secret })
      const body = utf8(`{"id":"evt_1","type":"x"}`)
      const missing = yield* Effect.flip(Webhooks.receive(source, { headers: {}, body }))
      const malformed = yield* Effect.flip(
        Webhooks.receive(source, { headers: { "stripe-signature": "garbage" }, body })
      )
      const old = StripeWebhook.sign({ secret, timestamp: 1_700_000_000 - 301, body })
      const stale = yield* Effect.flip(Webhooks.receive(source, { headers: { "stripe-signature": old }, body }))
      const large = yield* Effect.flip(Webhooks.receive(source, { headers: {}, body }, { maxBytes: 10 }))
      const notJson = utf8("{not json")
      const signedGarbage = StripeWebhook.sign({ secret, timestamp: 1_700_000_000, body: notJson })
      const garbage = yield* Effect.flip(
        Webhooks.receive(source, { headers: { "stripe-signature": signedGarbage }, body: notJson })
      )
      const noType = utf8(`{"id":"evt_1"}`)
      const signedNoType = StripeWebhook.sign({ secret, timestamp: 1_700_000_000, body: noType })
      const shapeless = yield* Effect.flip(
        Webhooks.receive(source, { headers: { "stripe-signature": signedNoType }, body: noType })
      )
      const errors = [missing, malformed, stale, large, garbage, shapeless]
      expect(errors.map((error) => [error._tag, Webhooks.toHttpStatus(error)])).toEqual([
        ["MissingHeader", 400],
        ["InvalidSignature", 401],
        ["TimestampOutOfTolerance", 401],
        ["PayloadTooLarge", 413],
        ["InvalidPayload", 400],
        ["InvalidPayload", 400]
      ])
      for (const error of errors) expect(error.message).not.toContain("MfKQ9r8")
    }))

  it.effect("Stripe: a rotated secret still verifies, any matching v1 passes", () =>
    Effect.gen(function*() {
      yield* at(1_700_000_000)
      const old = Redacted.make("whsec_old")
      const next = Redacted.make("whsec_new")
      const body = utf8(`{"id":"evt_1","type":"x"}`)
      const signedOld = StripeWebhook.sign({ secret: old, timestamp: 1_700_000_000, body })
      const signedNew = StripeWebhook.sign({ secret: next, timestamp: 1_700_000_000, body }).split(",")[1]
      const source = yield* StripeWebhook.source({ secret: [next] })
      yield* source.verify({ headers: { "stripe-signature": `${signedOld},${signedNew}` }, body })
      const both = yield* StripeWebhook.source({ secret: [old, next] })
      yield* both.verify({ headers: { "stripe-signature": signedOld }, body })
    }))

  it.effect("SendGrid: a batch is several events, each by its sg_event_id", () =>
    Effect.gen(function*() {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
      const source = yield* SendGridWebhook.source({
        publicKey: publicKey.export({ format: "der", type: "spki" }).toString("base64")
      })
      const body = utf8(JSON.stringify([
        { sg_event_id: "a1", event: "delivered", email: "ann@example.com" },
        { sg_event_id: "b2", event: "bounce", email: "bob@example.com" }
      ]))
      const signature = SendGridWebhook.sign({ privateKey, timestamp: 1_700_000_000, body })
      const events = yield* Webhooks.receive(source, {
        headers: {
          "x-twilio-email-event-webhook-signature": signature,
          "x-twilio-email-event-webhook-timestamp": "1700000000"
        },
        body
      })
      expect(events.map((event) => [event.id, event.type])).toEqual([["a1", "delivered"], ["b2", "bounce"]])
    }))

  it.effect("unusable keys and secrets are refused when the source is made", () =>
    Effect.gen(function*() {
      // Standard Webhooks' refusals: test/core/Webhooks.test.ts.
      const errors = yield* Effect.all([
        Effect.flip(SendGridWebhook.source({ publicKey: "not a key" })),
        Effect.flip(StripeWebhook.source({ secret: Redacted.make("") }))
      ])
      expect(errors.map((error) => error.option)).toEqual(["publicKey", "secret"])
    }))
})
