import { describe, expect, it } from "@effect/vitest"
import { Webhooks } from "@liaison/core"
import { Effect, Either, Redacted, Stream, TestClock } from "effect"
import { generateKeyPairSync } from "node:crypto"

const utf8 = (text: string) => new TextEncoder().encode(text)

/** Sets the test clock to a Unix time in seconds. */
const at = (seconds: number) => TestClock.setTime(seconds * 1000)

// ---------------------------------------------------------------------------------------------------------------
// Known-answer vectors, each from the scheme owner's own docs or tests
// ---------------------------------------------------------------------------------------------------------------

describe("Webhooks known-answer vectors", () => {
  // GitHub's documentation, "Testing the webhook payload validation":
  // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
  // (github/docs, content/webhooks/using-webhooks/validating-webhook-deliveries.md)
  const github = {
    secret: "It's a Secret to Everybody",
    payload: "Hello, World!",
    signature: "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
  }

  it.effect("GitHub: the documented secret and payload give the documented X-Hub-Signature-256", () =>
    Effect.gen(function*() {
      const secret = Redacted.make(github.secret)
      expect(`sha256=${Webhooks.signHex(secret, utf8(github.payload))}`).toBe(github.signature)
      const source = yield* Webhooks.github({ secret })
      const verified = yield* source.verify({
        headers: { "x-hub-signature-256": github.signature },
        body: utf8(github.payload)
      })
      expect(new TextDecoder().decode(verified.body)).toBe(github.payload)
      const tampered = yield* Effect.flip(source.verify({
        headers: { "x-hub-signature-256": github.signature },
        body: utf8("Hello, World?")
      }))
      expect(tampered._tag).toBe("InvalidSignature")
    }))

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
      const source = yield* Webhooks.stripe({ secret })
      const request = { headers: { "stripe-signature": stripeHeader }, body: utf8(stripeBody) }
      yield* at(1533204620 + 100)
      const events = yield* Webhooks.receive(source, request)
      expect(events.map((event) => [event.id, event.type])).toEqual([["evt_123", "customer.created"]])
      expect(Webhooks.signStripe({ secret, timestamp: 1533204620, body: utf8(stripeBody) })).toBe(
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

  // standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts ("sign function works"):
  // key whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330,
  // payload {"test": 2432232314} → v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
  const standard = {
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
    timestamp: 1614265330,
    payload: `{"test": 2432232314}`,
    v1: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    // libraries/go/webhook_asymmetric_test.go (TestAsymmetricWebhookSign): private key (ed25519 seed)
    // VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=, same id, timestamp and payload.
    privateKey: "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=",
    v1a: "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==",
    // Derived by us from that seed (the vector gives the private key only).
    publicKey: "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="
  }
  const standardHeaders = (signature: string) => ({
    "webhook-id": standard.id,
    "webhook-timestamp": String(standard.timestamp),
    "webhook-signature": signature
  })

  it.effect("Standard Webhooks v1: the reference library's signature, signed and verified", () =>
    Effect.gen(function*() {
      const secret = Redacted.make(standard.secret)
      expect(
        Webhooks.signStandard({ secret, id: standard.id, timestamp: standard.timestamp, body: utf8(standard.payload) })
      )
        .toEqual(Either.right(standard.v1))
      const source = yield* Webhooks.standardWebhooks({ secret })
      yield* at(standard.timestamp + 299)
      const verified = yield* source.verify({ headers: standardHeaders(standard.v1), body: utf8(standard.payload) })
      expect([verified.id, verified.timestamp]).toEqual([standard.id, standard.timestamp])
      // The reference tests' multi-signature header: one valid entry among wrong ones passes.
      const multi = [
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        standard.v1
      ].join(" ")
      yield* source.verify({ headers: standardHeaders(multi), body: utf8(standard.payload) })
      // The secret works without its prefix too.
      const bare = yield* Webhooks.standardWebhooks({ secret: Redacted.make(standard.secret.slice(6)) })
      yield* bare.verify({ headers: standardHeaders(standard.v1), body: utf8(standard.payload) })
      yield* at(standard.timestamp + 301)
      expect(
        (yield* Effect.flip(source.verify({ headers: standardHeaders(standard.v1), body: utf8(standard.payload) })))
          ._tag
      )
        .toBe("TimestampOutOfTolerance")
      yield* at(standard.timestamp - 301)
      expect(
        (yield* Effect.flip(source.verify({ headers: standardHeaders(standard.v1), body: utf8(standard.payload) })))
          ._tag
      )
        .toBe("TimestampOutOfTolerance")
    }))

  it.effect("Standard Webhooks v1a (ed25519): the reference library's signature, signed and verified", () =>
    Effect.gen(function*() {
      const signed = Webhooks.signStandardAsymmetric({
        privateKey: Redacted.make(standard.privateKey),
        id: standard.id,
        timestamp: standard.timestamp,
        body: utf8(standard.payload)
      })
      expect(signed).toEqual(Either.right(standard.v1a))
      const source = yield* Webhooks.standardWebhooks({ publicKey: standard.publicKey })
      yield* at(standard.timestamp)
      yield* source.verify({ headers: standardHeaders(standard.v1a), body: utf8(standard.payload) })
      const bad = yield* Effect.flip(source.verify({
        headers: standardHeaders("v1a,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="),
        body: utf8(standard.payload)
      }))
      expect(bad._tag).toBe("InvalidSignature")
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
      const source = yield* Webhooks.sendGrid({ publicKey: sendgrid.publicKey })
      const verified = yield* source.verify(sendgridRequest())
      expect(verified.timestamp).toBe(1588788367)
      const other = yield* Webhooks.sendGrid({ publicKey: sendgrid.otherKey })
      const failures = yield* Effect.all([
        Effect.flip(other.verify(sendgridRequest())),
        Effect.flip(source.verify(sendgridRequest({ payload: "payload" }))),
        Effect.flip(source.verify(sendgridRequest({ signature: sendgrid.badSignature }))),
        Effect.flip(source.verify(sendgridRequest({ timestamp: "timestamp" })))
      ])
      expect(failures.map((error) => error._tag)).toEqual(Array(4).fill("InvalidSignature"))
      // With a tolerance set, a signature this old is refused for its age.
      const strict = yield* Webhooks.sendGrid({ publicKey: sendgrid.publicKey, tolerance: "5 minutes" })
      yield* at(1588788367 + 301)
      expect((yield* Effect.flip(strict.verify(sendgridRequest())))._tag).toBe("TimestampOutOfTolerance")
    }))
})

// ---------------------------------------------------------------------------------------------------------------
// Failures, sources and events
// ---------------------------------------------------------------------------------------------------------------

describe("Webhooks failures", () => {
  const secret = Redacted.make("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

  it.effect("each failure is its own type with its own status; secrets never appear in messages", () =>
    Effect.gen(function*() {
      yield* at(1_700_000_000)
      const source = yield* Webhooks.stripe({ secret })
      const body = utf8(`{"id":"evt_1","type":"x"}`)
      const missing = yield* Effect.flip(Webhooks.receive(source, { headers: {}, body }))
      const malformed = yield* Effect.flip(
        Webhooks.receive(source, { headers: { "stripe-signature": "garbage" }, body })
      )
      const old = Webhooks.signStripe({ secret, timestamp: 1_700_000_000 - 301, body })
      const stale = yield* Effect.flip(Webhooks.receive(source, { headers: { "stripe-signature": old }, body }))
      const large = yield* Effect.flip(Webhooks.receive(source, { headers: {}, body }, { maxBytes: 10 }))
      const notJson = utf8("{not json")
      const signedGarbage = Webhooks.signStripe({ secret, timestamp: 1_700_000_000, body: notJson })
      const garbage = yield* Effect.flip(
        Webhooks.receive(source, { headers: { "stripe-signature": signedGarbage }, body: notJson })
      )
      const noType = utf8(`{"id":"evt_1"}`)
      const signedNoType = Webhooks.signStripe({ secret, timestamp: 1_700_000_000, body: noType })
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
      const signedOld = Webhooks.signStripe({ secret: old, timestamp: 1_700_000_000, body })
      const signedNew = Webhooks.signStripe({ secret: next, timestamp: 1_700_000_000, body }).split(",")[1]
      const source = yield* Webhooks.stripe({ secret: [next] })
      yield* source.verify({ headers: { "stripe-signature": `${signedOld},${signedNew}` }, body })
      const both = yield* Webhooks.stripe({ secret: [old, next] })
      yield* both.verify({ headers: { "stripe-signature": signedOld }, body })
    }))

  it.effect("generic (the lecture's X-Webhook-Signature) and GitHub read their events", () =>
    Effect.gen(function*() {
      const key = Redacted.make("s3cret")
      const body = utf8(`{"id":"evt_9","type":"payment.success","data":{}}`)
      const generic = yield* Webhooks.generic({ secret: key })
      const events = yield* Webhooks.receive(generic, {
        headers: { "x-webhook-signature": Webhooks.signHex(key, body) },
        body
      })
      expect(events.map((event) => [event.id, event.type])).toEqual([["evt_9", "payment.success"]])
      const github = yield* Webhooks.github({ secret: key })
      const push = utf8(`{"ref":"refs/heads/main"}`)
      const headers = {
        "x-hub-signature-256": `sha256=${Webhooks.signHex(key, push)}`,
        "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "x-github-event": "push"
      }
      const pushed = yield* Webhooks.receive(github, { headers, body: push })
      expect(pushed.map((event) => [event.id, event.type])).toEqual([["72d3162e-cc78-11e3-81ab-4c9367dc0958", "push"]])
      const noDelivery = yield* Effect.flip(
        Webhooks.receive(github, { headers: { ...headers, "x-github-delivery": undefined }, body: push })
      )
      expect(noDelivery._tag).toBe("InvalidPayload")
    }))

  it.effect("SendGrid: a batch is several events, each by its sg_event_id", () =>
    Effect.gen(function*() {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" })
      const source = yield* Webhooks.sendGrid({
        publicKey: publicKey.export({ format: "der", type: "spki" }).toString("base64")
      })
      const body = utf8(JSON.stringify([
        { sg_event_id: "a1", event: "delivered", email: "ann@example.com" },
        { sg_event_id: "b2", event: "bounce", email: "bob@example.com" }
      ]))
      const signature = Webhooks.signSendGrid({ privateKey, timestamp: 1_700_000_000, body })
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
      const errors = yield* Effect.all([
        Effect.flip(Webhooks.sendGrid({ publicKey: "not a key" })),
        Effect.flip(Webhooks.standardWebhooks({ secret: Redacted.make("whsec_***") })),
        Effect.flip(Webhooks.standardWebhooks({})),
        Effect.flip(Webhooks.stripe({ secret: Redacted.make("") })),
        Effect.flip(Webhooks.standardWebhooks({ publicKey: "whpk_AAAA" }))
      ])
      expect(errors.map((error) => error.option)).toEqual(["publicKey", "secret", "secret", "secret", "publicKey"])
      expect(Webhooks.isStandardSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).toBe(true)
      expect(Webhooks.isStandardSecret("whsec_not base64!")).toBe(false)
    }))

  it.effect("readBody stops at the limit", () =>
    Effect.gen(function*() {
      const chunks = Stream.make(new Uint8Array(6), new Uint8Array(6))
      expect((yield* Webhooks.readBody(chunks, 12)).length).toBe(12)
      const error = yield* Effect.flip(Webhooks.readBody(chunks, 11))
      expect([error._tag, error.maxBytes]).toEqual(["PayloadTooLarge", 11])
    }))
})
