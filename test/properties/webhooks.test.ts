/**
 * Properties of every signature scheme: what is signed verifies; any change to the body, the
 * timestamp, the id or the signature is refused. Verification is synchronous, so each property runs
 * its checks with `Effect.runSync` on the live clock (timestamps are signed relative to it), which
 * keeps a hundred runs per property fast.
 */
import { describe, expect, it } from "@effect/vitest"
import type { LiaisonError } from "@liaison/core"
import { Webhooks } from "@liaison/core"
import { SendGridWebhook, StripeWebhook } from "@liaison/integrations"
import { Effect, Either, Exit, FastCheck as fc, Redacted } from "effect"
import { generateKeyPairSync } from "node:crypto"

/** Seconds since the epoch, now. */
const nowSeconds = () => Math.floor(Date.now() / 1000)
const { privateKey: ecPrivate, publicKey: ecPublic } = generateKeyPairSync("ec", { namedCurve: "P-256" })
const ecPublicBase64 = ecPublic.export({ format: "der", type: "spki" }).toString("base64")
const { privateKey: edPrivate, publicKey: edPublic } = generateKeyPairSync("ed25519")
const edSeed = edPrivate.export({ format: "der", type: "pkcs8" }).subarray(16).toString("base64")
const edPublicKey = `whpk_${edPublic.export({ format: "der", type: "spki" }).subarray(12).toString("base64")}`

const standardSecret = (raw: Uint8Array) => Redacted.make(`whsec_${Buffer.from(raw).toString("base64")}`)

const schemes = ["generic", "github", "stripe", "standard", "ed25519", "sendgrid"] as const
type Scheme = typeof schemes[number]

/** A signed request, and how to sign a variant of it. */
interface Case {
  readonly source: Effect.Effect<Webhooks.Source, LiaisonError.InvalidOptions>
  readonly sign: (
    input: { readonly body: Uint8Array; readonly timestamp: number; readonly id: string }
  ) => Record<string, string>
  /** The headers that carry the timestamp and the id, when the scheme signs them. */
  readonly timestampHeader: string | undefined
  readonly idHeader: string | undefined
  readonly signatureHeader: string
}

const cases = (secret: Uint8Array): Record<Scheme, Case> => {
  const text = Redacted.make(Buffer.from(secret).toString("hex"))
  return {
    generic: {
      source: Webhooks.generic({ secret: text }),
      sign: ({ body }) => ({ "x-webhook-signature": Webhooks.signHex(text, body) }),
      timestampHeader: undefined,
      idHeader: undefined,
      signatureHeader: "x-webhook-signature"
    },
    github: {
      source: Webhooks.github({ secret: text }),
      sign: ({ body }) => ({ "x-hub-signature-256": `sha256=${Webhooks.signHex(text, body)}` }),
      timestampHeader: undefined,
      idHeader: undefined,
      signatureHeader: "x-hub-signature-256"
    },
    stripe: {
      source: StripeWebhook.source({ secret: text }),
      sign: ({ body, timestamp }) => ({ "stripe-signature": StripeWebhook.sign({ secret: text, timestamp, body }) }),
      timestampHeader: "stripe-signature",
      idHeader: undefined,
      signatureHeader: "stripe-signature"
    },
    standard: {
      source: Webhooks.standardWebhooks({ secret: standardSecret(secret) }),
      sign: ({ body, id, timestamp }) => ({
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": Either.getOrThrow(
          Webhooks.signStandard({ secret: standardSecret(secret), id, timestamp, body })
        )
      }),
      timestampHeader: "webhook-timestamp",
      idHeader: "webhook-id",
      signatureHeader: "webhook-signature"
    },
    ed25519: {
      source: Webhooks.standardWebhooks({ publicKey: edPublicKey }),
      sign: ({ body, id, timestamp }) => ({
        "webhook-id": id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": Either.getOrThrow(
          Webhooks.signStandardAsymmetric({ privateKey: Redacted.make(`whsk_${edSeed}`), id, timestamp, body })
        )
      }),
      timestampHeader: "webhook-timestamp",
      idHeader: "webhook-id",
      signatureHeader: "webhook-signature"
    },
    sendgrid: {
      source: SendGridWebhook.source({ publicKey: ecPublicBase64 }),
      sign: ({ body, timestamp }) => ({
        "x-twilio-email-event-webhook-signature": SendGridWebhook.sign({ privateKey: ecPrivate, timestamp, body }),
        "x-twilio-email-event-webhook-timestamp": String(timestamp)
      }),
      timestampHeader: "x-twilio-email-event-webhook-timestamp",
      idHeader: undefined,
      signatureHeader: "x-twilio-email-event-webhook-signature"
    }
  }
}

const arbitraries = {
  secret: fc.uint8Array({ minLength: 16, maxLength: 48 }),
  body: fc.uint8Array({ minLength: 0, maxLength: 300 }),
  id: fc.stringMatching(/^msg_[A-Za-z0-9]{1,24}$/),
  offset: fc.integer({ min: -200, max: 200 })
}

const verifies = (source: Webhooks.Source, headers: Record<string, string>, body: Uint8Array): boolean =>
  Exit.isSuccess(Effect.runSyncExit(source.verify({ headers, body })))

/** Flips one bit of a copy. */
const flip = (bytes: Uint8Array, index: number, bit: number): Uint8Array => {
  const copy = Uint8Array.from(bytes)
  copy[index % copy.length]! ^= 1 << bit
  return copy
}

describe.each(schemes)("Webhooks properties (%s)", (scheme) => {
  it.prop(
    "sign → verify: what is signed verifies",
    { ...arbitraries },
    ({ body, id, offset, secret }) => {
      const now = nowSeconds()
      const test = cases(secret)[scheme]
      const source = Effect.runSync(test.source)
      const headers = test.sign({ body, id, timestamp: now + offset })
      expect(verifies(source, headers, body)).toBe(true)
    },
    { fastCheck: { numRuns: 100 } }
  )

  it.prop(
    "any change to the body is refused",
    { ...arbitraries, index: fc.nat(), bit: fc.integer({ min: 0, max: 7 }), extra: fc.uint8Array({ minLength: 1 }) },
    ({ bit, body, extra, id, index, secret }) => {
      const now = nowSeconds()
      const test = cases(secret)[scheme]
      const source = Effect.runSync(test.source)
      const headers = test.sign({ body, id, timestamp: now })
      if (body.length > 0) expect(verifies(source, headers, flip(body, index, bit))).toBe(false)
      expect(verifies(source, headers, new Uint8Array([...body, ...extra]))).toBe(false)
      if (body.length > 0) expect(verifies(source, headers, body.subarray(1))).toBe(false)
    },
    { fastCheck: { numRuns: 100 } }
  )

  it.prop(
    "any change to the signature, the timestamp or the id is refused",
    {
      ...arbitraries,
      index: fc.nat(),
      delta: fc.integer({ min: 1, max: 200 }),
      otherId: fc.stringMatching(/^msg_[A-Za-z0-9]{1,24}$/)
    },
    ({ body, delta, id, index, otherId, secret }) => {
      const now = nowSeconds()
      const test = cases(secret)[scheme]
      const source = Effect.runSync(test.source)
      const headers = test.sign({ body, id, timestamp: now })
      // One character of the signature changed (within its alphabet).
      const signature = headers[test.signatureHeader]!
      const digits = [...signature.matchAll(/[0-9a-f]/g)].map((match) => match.index!).filter((i) => i > 13)
      const at = digits[index % digits.length]!
      const altered = signature.slice(0, at) + (signature[at] === "0" ? "1" : "0") + signature.slice(at + 1)
      expect(verifies(source, { ...headers, [test.signatureHeader]: altered }, body)).toBe(false)
      // The timestamp moved, the signature kept.
      if (test.timestampHeader !== undefined) {
        const value = headers[test.timestampHeader]!
        const moved = value.replace(String(now), String(now - delta))
        expect(verifies(source, { ...headers, [test.timestampHeader]: moved }, body)).toBe(false)
      }
      // Another id, the signature kept.
      if (test.idHeader !== undefined && otherId !== id) {
        expect(verifies(source, { ...headers, [test.idHeader]: otherId }, body)).toBe(false)
      }
    },
    { fastCheck: { numRuns: 100 } }
  )
})
