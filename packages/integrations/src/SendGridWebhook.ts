/**
 * SendGrid's signed Event Webhook
 * (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features),
 * as a `Webhooks.Source` of `@liaison/core`: ECDSA (P-256, SHA-256) over `{timestamp}{body}`; the
 * base64 DER signature in `X-Twilio-Email-Event-Webhook-Signature`, the timestamp in
 * `X-Twilio-Email-Event-Webhook-Timestamp`, the public key the base64 DER (SubjectPublicKeyInfo)
 * "verification key" of SendGrid's settings. SendGrid documents no tolerance; set `tolerance` to
 * refuse old timestamps. The body is an array of events, each with `sg_event_id` and `event`.
 *
 * @example
 * ```ts
 * import { Webhooks } from "@liaison/core"
 * import { SendGridWebhook } from "@liaison/integrations"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const source = yield* SendGridWebhook.source({ publicKey: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE..." })
 *   const events = yield* Webhooks.receive(source, { headers, body })
 *   // events: [{ id: "<sg_event_id>", type: "delivered", payload: { … } }, …]
 * })
 * ```
 *
 * @since 0.1.0
 */
import { LiaisonError, Webhooks } from "@liaison/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { KeyObject } from "node:crypto"
import { createPublicKey, sign as signWith } from "node:crypto"
import * as Signing from "./internal/signing.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The base64 DER of the ECDSA P-256 verification key in SendGrid's Event Webhook settings. */
  readonly publicKey: string
  /** How far the timestamp may be from now, either way. Default: not checked (SendGrid sets none). */
  readonly tolerance?: Duration.DurationInput | undefined
}

/** An ECDSA P-256 public key from its base64 DER; `undefined` when it is not one. */
const ecdsaPublicKey = (base64Der: string): KeyObject | undefined => {
  const der = Webhooks.decodeBase64(base64Der.trim())
  if (der === undefined) return undefined
  try {
    const key = createPublicKey({ key: Buffer.from(der), format: "der", type: "spki" })
    return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1" ? key : undefined
  } catch {
    return undefined
  }
}

const verifier = (key: KeyObject, tolerance: number | undefined): Webhooks.Source["verify"] => (request) =>
  Effect.gen(function*() {
    const signature = yield* Webhooks.requireHeader(request, "x-twilio-email-event-webhook-signature")
    const rawTimestamp = yield* Webhooks.requireHeader(request, "x-twilio-email-event-webhook-timestamp")
    const der = Webhooks.decodeBase64(signature)
    const signed = Signing.concat(Signing.utf8(rawTimestamp), request.body)
    if (der === undefined || !Webhooks.verifySignature("sha256", signed, key, der)) {
      return yield* new Webhooks.InvalidSignature({ reason: "no ECDSA signature matches the body" })
    }
    const timestamp = yield* Webhooks.checkTimestamp(rawTimestamp, tolerance)
    return { body: request.body, id: undefined, timestamp }
  })

const readEvent = Webhooks.readEvent("sg_event_id", "event")

const events: Webhooks.Source["events"] = (_request, _verified, json) =>
  Array.isArray(json) && json.length > 0
    ? Effect.forEach(json, readEvent)
    : Effect.fail(new Webhooks.InvalidPayload({ reason: "expected a non-empty array of events" }))

/**
 * The source: `InvalidOptions` when the key is not an ECDSA P-256 public key or the tolerance is
 * negative.
 *
 * @since 0.1.0
 * @category constructors
 */
export const source = (options: Options): Effect.Effect<Webhooks.Source, LiaisonError.InvalidOptions> => {
  const key = ecdsaPublicKey(options.publicKey)
  const tolerance = options.tolerance === undefined ? undefined : Signing.seconds(options.tolerance)
  if (key === undefined) {
    const reason = "must be the base64 DER of an ECDSA P-256 public key"
    return Effect.fail(new LiaisonError.InvalidOptions({ option: "publicKey", reason }))
  }
  return Signing.validated(
    [[tolerance === undefined || (tolerance >= 0 && Number.isFinite(tolerance)), "tolerance", "must be >= 0"]],
    (): Webhooks.Source => ({ name: "sendgrid", verify: verifier(key, tolerance), events })
  )
}

/**
 * A SendGrid-style signature: the base64 DER ECDSA P-256 / SHA-256 signature of
 * `{timestamp}{body}` (for tests and sandboxes: SendGrid keeps its private key).
 *
 * @since 0.1.0
 * @category constructors
 */
export const sign = (options: {
  readonly privateKey: KeyObject
  readonly timestamp: number
  readonly body: Uint8Array
}): string =>
  signWith("sha256", Signing.concat(Signing.utf8(String(options.timestamp)), options.body), options.privateKey)
    .toString("base64")
