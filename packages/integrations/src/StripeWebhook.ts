/**
 * Stripe's signed webhooks (https://docs.stripe.com/webhooks#verify-manually), as a
 * `Webhooks.Source` of `@liaison/core`: `Stripe-Signature: t=<seconds>,v1=<hex>[,v1=<hex>…]`, the
 * hex HMAC-SHA256 of `{t}.{body}` keyed with the endpoint secret (`whsec_…`, used as it is). Any
 * `v1` matching any secret passes (secret rotation); `t` must be within the tolerance of now
 * (300 s by default, either way). Each request is one event `{ id, type, … }`.
 *
 * @example
 * ```ts
 * import { Webhooks } from "@liaison/core"
 * import { StripeWebhook } from "@liaison/integrations"
 * import { Effect, Redacted } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const source = yield* StripeWebhook.source({ secret: Redacted.make("whsec_...") })
 *   const events = yield* Webhooks.receive(source, { headers, body })
 *   // events: [{ id: "evt_…", type: "payment_intent.succeeded", payload: { … } }]
 * })
 * ```
 *
 * @since 0.1.0
 */
import type { LiaisonError } from "@liaison/core"
import { Webhooks } from "@liaison/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Signing from "./internal/signing.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The endpoint's signing secret; several while rotating (any one matching passes). */
  readonly secret: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>>
  /** How far `t` may be from now, either way. Default {@link defaults}`.tolerance` (300 s). */
  readonly tolerance?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  /** Stripe's own libraries' tolerance. */
  tolerance: "300 seconds"
} as const

/** `t` and the `v1` signatures of a `Stripe-Signature` value (other schemes, e.g. `v0`, ignored). */
const parseHeader = (value: string): { readonly t: string | undefined; readonly v1: ReadonlyArray<Uint8Array> } => {
  let t: string | undefined
  const v1: Array<Uint8Array> = []
  for (const part of value.split(",")) {
    const at = part.indexOf("=")
    if (at <= 0) continue
    const key = part.slice(0, at).trim()
    const item = part.slice(at + 1).trim()
    if (key === "t") t = item
    else if (key === "v1") {
      const decoded = Webhooks.decodeHexDigest(item)
      if (decoded !== undefined) v1.push(decoded)
    }
  }
  return { t, v1 }
}

const verifier = (
  secrets: ReadonlyArray<Redacted.Redacted<string>>,
  tolerance: number
): Webhooks.Source["verify"] =>
(request) =>
  Effect.gen(function*() {
    const { t, v1 } = parseHeader(yield* Webhooks.requireHeader(request, "stripe-signature"))
    if (t === undefined || v1.length === 0) {
      return yield* new Webhooks.InvalidSignature({ reason: "Stripe-Signature has no t= or no v1= signature" })
    }
    const signed = Signing.concat(Signing.utf8(`${t}.`), request.body)
    const expected = secrets.map((secret) => Webhooks.hmacSha256(Redacted.value(secret), signed))
    if (!v1.some((given) => expected.some((mac) => Webhooks.constantTimeEqual(mac, given)))) {
      return yield* new Webhooks.InvalidSignature({ reason: "no v1 signature matches the body" })
    }
    const timestamp = yield* Webhooks.checkTimestamp(t, tolerance)
    return { body: request.body, id: undefined, timestamp }
  })

/**
 * The source: `InvalidOptions` when a secret is empty or the tolerance is negative.
 *
 * @since 0.1.0
 * @category constructors
 */
export const source = (options: Options): Effect.Effect<Webhooks.Source, LiaisonError.InvalidOptions> => {
  const secrets = Signing.secretList(options.secret)
  const tolerance = Signing.seconds(options.tolerance ?? defaults.tolerance)
  return Signing.validated(
    [
      [secrets.length > 0 && secrets.every((s) => Redacted.value(s) !== ""), "secret", "must not be empty"],
      [tolerance >= 0 && Number.isFinite(tolerance), "tolerance", "must be finite and >= 0"]
    ],
    (): Webhooks.Source => ({
      name: "stripe",
      verify: verifier(secrets, tolerance),
      events: Webhooks.singleEvent("id", "type")
    })
  )
}

/**
 * A `Stripe-Signature` header value for `body` at `timestamp` (seconds), as Stripe signs (for
 * tests, sandboxes and forwarding).
 *
 * @since 0.1.0
 * @category constructors
 */
export const sign = (options: {
  readonly secret: Redacted.Redacted<string>
  readonly timestamp: number
  readonly body: Uint8Array
}): string => {
  const mac = Webhooks.hmacSha256(
    Redacted.value(options.secret),
    Signing.concat(Signing.utf8(`${options.timestamp}.`), options.body)
  )
  return `t=${options.timestamp},v1=${Buffer.from(mac).toString("hex")}`
}
