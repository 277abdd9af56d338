import { describe, expect, it } from "@effect/vitest"
import { Webhooks } from "@liaison/core"
import { Effect, Either, Redacted, Stream, TestClock } from "effect"

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
})

// ---------------------------------------------------------------------------------------------------------------
// Failures, sources and events
// ---------------------------------------------------------------------------------------------------------------

describe("Webhooks failures", () => {
  it.effect("generic (X-Webhook-Signature) and GitHub read their events", () =>
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

  it.effect("unusable keys and secrets are refused when the source is made", () =>
    Effect.gen(function*() {
      // Stripe's and SendGrid's sources: test/integrations/Webhooks.test.ts.
      const errors = yield* Effect.all([
        Effect.flip(Webhooks.standardWebhooks({ secret: Redacted.make("whsec_***") })),
        Effect.flip(Webhooks.standardWebhooks({})),
        Effect.flip(Webhooks.standardWebhooks({ publicKey: "whpk_AAAA" }))
      ])
      expect(errors.map((error) => error.option)).toEqual(["secret", "secret", "publicKey"])
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
