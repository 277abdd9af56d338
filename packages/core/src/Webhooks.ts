/**
 * Inbound webhooks: verify that a request comes from who it says, over the raw body bytes,
 * and read its events. Outbound: sign what you send the same ways.
 *
 * Sources (each a verifier plus the way its events are read):
 *
 * - {@link generic}: HMAC-SHA256 hex of the body in one header (`X-Webhook-Signature` by default,
 *   the simplest shared-secret scheme, GitHub's without the prefix); events `{ id, type, ... }`.
 * - {@link standardWebhooks}: `webhook-id`, `webhook-timestamp`, `webhook-signature`
 *   (space-separated `v1,…` HMAC-SHA256 with `whsec_` base64 secrets, and `v1a,…` ed25519 with
 *   `whpk_` public keys) over `{id}.{timestamp}.{body}`; ±300 s.
 * - {@link github}: `X-Hub-Signature-256: sha256=…`; the event id and type from
 *   `X-GitHub-Delivery` and `X-GitHub-Event`.
 *
 * A provider's own scheme lives beside its client: `@liaison/integrations`' `StripeWebhook` and
 * `SendGridWebhook` are sources built from the parts exported here ({@link requireHeader},
 * {@link checkTimestamp}, {@link hmacSha256}, {@link constantTimeEqual}, {@link singleEvent}, …).
 *
 * Every comparison is in constant time; secrets are `Redacted` and never appear in errors.
 * Failures are distinct: a missing header (400), a bad signature (401), a timestamp outside the
 * tolerance (401), a body over the limit (413), a body that is not the JSON expected once the
 * signature is good (400) — see {@link toHttpStatus}.
 *
 * @example
 * ```ts
 * import { Webhooks } from "@liaison/core"
 * import { Effect, Redacted } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const source = yield* Webhooks.github({ secret: Redacted.make(process.env.GITHUB_WEBHOOK_SECRET ?? "") })
 *   const events = yield* Webhooks.receive(source, { headers, body })
 *   // events: [{ id: "72d3162e-…", type: "push", payload: { … } }]
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { KeyObject } from "node:crypto"
import { createHmac, createPrivateKey, createPublicKey, sign, timingSafeEqual, verify } from "node:crypto"
import * as Invalid from "./internal/invalidOptions.js"
import { withSpan } from "./internal/tracing.js"
import { countReceived } from "./internal/webhookDelivery/telemetry.js"
import { InvalidOptions } from "./LiaisonError.js"

// ---------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * A header the scheme needs is missing (400).
 *
 * @since 0.1.0
 * @category errors
 */
export class MissingHeader extends Schema.TaggedError<MissingHeader>("@liaison/core/Webhooks/MissingHeader")(
  "MissingHeader",
  { header: Schema.String }
) {
  override get message(): string {
    return `the ${this.header} header is missing`
  }
}

/**
 * The signature does not match the body, or cannot be read (401).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSignature extends Schema.TaggedError<InvalidSignature>("@liaison/core/Webhooks/InvalidSignature")(
  "InvalidSignature",
  { reason: Schema.String }
) {
  override get message(): string {
    return `invalid webhook signature: ${this.reason}`
  }
}

/**
 * The signed timestamp is too far from now: a replay, or a clock far off (401).
 *
 * @since 0.1.0
 * @category errors
 */
export class TimestampOutOfTolerance
  extends Schema.TaggedError<TimestampOutOfTolerance>("@liaison/core/Webhooks/TimestampOutOfTolerance")(
    "TimestampOutOfTolerance",
    { timestamp: Schema.Number, toleranceSeconds: Schema.Number }
  )
{
  override get message(): string {
    return `the webhook timestamp ${this.timestamp} is more than ${this.toleranceSeconds} s from now`
  }
}

/**
 * The body is larger than allowed (413).
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>("@liaison/core/Webhooks/PayloadTooLarge")(
  "PayloadTooLarge",
  { maxBytes: Schema.Number }
) {
  override get message(): string {
    return `the webhook body is larger than ${this.maxBytes} bytes`
  }
}

/**
 * The signature is good but the body is not the JSON the source sends (400).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPayload extends Schema.TaggedError<InvalidPayload>("@liaison/core/Webhooks/InvalidPayload")(
  "InvalidPayload",
  { reason: Schema.String }
) {
  override get message(): string {
    return `invalid webhook payload: ${this.reason}`
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type VerificationError = MissingHeader | InvalidSignature | TimestampOutOfTolerance

/**
 * @since 0.1.0
 * @category errors
 */
export type WebhookError = VerificationError | PayloadTooLarge | InvalidPayload

/**
 * The Schema of {@link WebhookError}, for APIs that send these errors over a wire.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WebhookError: Schema.Union<
  [
    typeof MissingHeader,
    typeof InvalidSignature,
    typeof TimestampOutOfTolerance,
    typeof PayloadTooLarge,
    typeof InvalidPayload
  ]
> = Schema.Union(MissingHeader, InvalidSignature, TimestampOutOfTolerance, PayloadTooLarge, InvalidPayload)

/**
 * What a server answers: missing header 400, bad signature 401, timestamp out of tolerance
 * 401, too large 413, bad payload 400.
 *
 * @since 0.1.0
 * @category accessors
 */
export const toHttpStatus = (error: WebhookError): 400 | 401 | 413 => {
  switch (error._tag) {
    case "MissingHeader":
    case "InvalidPayload":
      return 400
    case "InvalidSignature":
    case "TimestampOutOfTolerance":
      return 401
    case "PayloadTooLarge":
      return 413
  }
}

// ---------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------

/**
 * A request as received: header names in lower case, the body's raw bytes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: Uint8Array
}

/**
 * What a verifier vouches for: the body, and the id and timestamp the signature covers, if any.
 *
 * @since 0.1.0
 * @category models
 */
export interface Verified {
  readonly body: Uint8Array
  readonly id: string | undefined
  /** Seconds since the epoch. */
  readonly timestamp: number | undefined
}

/**
 * One event of a verified request.
 *
 * @since 0.1.0
 * @category models
 */
export interface Event {
  /** The provider's id of the event: the key of exactly-once processing. */
  readonly id: string
  readonly type: string
  /** The event's JSON. */
  readonly payload: unknown
}

/**
 * A webhook sender: how its requests are verified and how their events are read.
 *
 * @since 0.1.0
 * @category models
 */
export interface Source {
  readonly name: string
  readonly verify: (request: Request) => Effect.Effect<Verified, VerificationError>
  /** The events of a verified request, from its parsed JSON body. */
  readonly events: (
    request: Request,
    verified: Verified,
    json: unknown
  ) => Effect.Effect<ReadonlyArray<Event>, InvalidPayload>
}

// ---------------------------------------------------------------------------------------------------------------
// primitives
// ---------------------------------------------------------------------------------------------------------------

const encoder = new TextEncoder()
const bytes = (text: string): Uint8Array => encoder.encode(text)

const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(parts)

/**
 * The HMAC-SHA256 of `data` keyed with `key` (a string key is used as its UTF-8 bytes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const hmacSha256 = (key: Uint8Array | string, data: Uint8Array): Uint8Array => hmac(key, data)

const hmac = (key: Uint8Array | string, data: Uint8Array): Buffer => createHmac("sha256", key).update(data).digest()

const hexDigest = /^[0-9a-fA-F]{64}$/
const base64Text = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * Decodes a hex HMAC-SHA256 (64 hex digits); `undefined` when it is not one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeHexDigest = (text: string): Uint8Array | undefined => fromHex(text)

const fromHex = (text: string): Buffer | undefined => (hexDigest.test(text) ? Buffer.from(text, "hex") : undefined)

/**
 * Decodes base64 strictly (the alphabet, padding, then a round trip); `undefined` when it is
 * not base64. A signature that decodes loosely must not pass as another one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeBase64 = (text: string): Uint8Array | undefined => fromBase64(text)

const fromBase64 = (text: string): Buffer | undefined => {
  if (text.length % 4 !== 0 || !base64Text.test(text)) return undefined
  const decoded = Buffer.from(text, "base64")
  return decoded.toString("base64") === text ? decoded : undefined
}

/**
 * `crypto.verify` of an asymmetric signature, `false` for a signature it cannot even parse (a
 * malformed DER throws).
 *
 * @since 0.1.0
 * @category guards
 */
export const verifySignature = (
  algorithm: string | null,
  data: Uint8Array,
  key: KeyObject,
  signature: Uint8Array
): boolean => {
  try {
    return verify(algorithm, data, key, signature)
  } catch {
    return false
  }
}

const safeVerify = verifySignature

/**
 * Compares two MACs in constant time for equal lengths (a length mismatch says nothing about a
 * secret).
 *
 * @since 0.1.0
 * @category guards
 */
export const constantTimeEqual = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && timingSafeEqual(a, b)

const sameBytes = constantTimeEqual

/**
 * A header of the request, or {@link MissingHeader} when it is absent or empty.
 *
 * @since 0.1.0
 * @category accessors
 */
export const requireHeader = (request: Request, name: string): Effect.Effect<string, MissingHeader> => {
  const value = request.headers[name]
  return value === undefined || value === "" ? Effect.fail(new MissingHeader({ header: name })) : Effect.succeed(value)
}

const header = requireHeader

const secretsOf = (
  secret: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>>
): ReadonlyArray<Redacted.Redacted<string>> => (Redacted.isRedacted(secret) ? [secret] : secret)

const toleranceSeconds = (tolerance: Duration.DurationInput | undefined, fallback: number) =>
  tolerance === undefined ? fallback : Duration.toSeconds(Duration.decode(tolerance))

/** Integer seconds since the epoch, as sent in a header. */
const integerSeconds = /^\d{1,15}$/

/**
 * Reads a signed timestamp (integer seconds since the epoch, as sent in a header) and, with a
 * tolerance in seconds, checks it is that close to the `Clock`'s now, either way.
 *
 * @since 0.1.0
 * @category guards
 */
export const checkTimestamp = (
  raw: string,
  tolerance: number | undefined
): Effect.Effect<number, InvalidSignature | TimestampOutOfTolerance> => {
  if (!integerSeconds.test(raw)) return Effect.fail(new InvalidSignature({ reason: "the timestamp is not an integer" }))
  const timestamp = Number(raw)
  if (tolerance === undefined) return Effect.succeed(timestamp)
  return Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Math.abs(now / 1000 - timestamp) > tolerance
      ? Effect.fail(new TimestampOutOfTolerance({ timestamp, toleranceSeconds: tolerance }))
      : Effect.succeed(timestamp))
}

const noMatch = (scheme: string) => new InvalidSignature({ reason: `no ${scheme} signature matches the body` })

const checks = Invalid.check

const failWith = <A>(error: InvalidOptions | undefined, value: () => A): Effect.Effect<A, InvalidOptions> =>
  error === undefined ? Effect.sync(value) : Effect.fail(error)

// ---------------------------------------------------------------------------------------------------------------
// JSON and events
// ---------------------------------------------------------------------------------------------------------------

const decoder = new TextDecoder("utf-8", { fatal: true })

/**
 * Parses a body as UTF-8 JSON, or fails with {@link InvalidPayload}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseJson = (body: Uint8Array): Effect.Effect<unknown, InvalidPayload> =>
  Effect.try({
    try: (): unknown => JSON.parse(decoder.decode(body)),
    catch: (cause) =>
      new InvalidPayload({ reason: cause instanceof SyntaxError ? `not JSON: ${cause.message}` : "not UTF-8 text" })
  })

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const nonEmptyString = (u: unknown): u is string => typeof u === "string" && u.length > 0 && u.length <= 512

/**
 * Reads one event from a JSON object whose `idField` and `typeField` are non-empty strings (at
 * most 512 characters), or fails with {@link InvalidPayload}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const readEvent =
  (idField: string, typeField: string) => (json: unknown): Effect.Effect<Event, InvalidPayload> =>
    isRecord(json) && nonEmptyString(json[idField]) && nonEmptyString(json[typeField])
      ? Effect.succeed({ id: json[idField], type: json[typeField], payload: json })
      : Effect.fail(new InvalidPayload({ reason: `expected an object with string "${idField}" and "${typeField}"` }))

/**
 * The `events` of a source whose body is one event object (see {@link readEvent}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const singleEvent = (idField: string, typeField: string): Source["events"] => {
  const read = readEvent(idField, typeField)
  return (_request, _verified, json) => Effect.map(read(json), (event) => [event])
}

const single = singleEvent

// ---------------------------------------------------------------------------------------------------------------
// sources
// ---------------------------------------------------------------------------------------------------------------

/**
 * The simplest shared-secret scheme: the hex HMAC-SHA256 of the body (the secret's UTF-8 bytes as
 * the key) in one header, `X-Webhook-Signature` by default, optionally after a prefix such as
 * `sha256=` (GitHub's).
 * Events are `{ id, type, ... }` objects. Several secrets: any one matching passes (rotation).
 *
 * @since 0.1.0
 * @category constructors
 */
export const generic = (options: {
  readonly secret: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>>
  /** Default `x-webhook-signature`. */
  readonly header?: string | undefined
  /** Default empty; GitHub's is `sha256=`. */
  readonly prefix?: string | undefined
  readonly name?: string | undefined
}): Effect.Effect<Source, InvalidOptions> => {
  const secrets = secretsOf(options.secret)
  const name = (options.header ?? "x-webhook-signature").toLowerCase()
  const prefix = options.prefix ?? ""
  return failWith(
    checks([[secrets.length > 0 && secrets.every((s) => Redacted.value(s) !== ""), "secret", "must not be empty"]]),
    (): Source => ({
      name: options.name ?? "generic",
      verify: (request) =>
        Effect.flatMap(header(request, name), (value) => {
          const given = value.startsWith(prefix) ? fromHex(value.slice(prefix.length)) : undefined
          if (given === undefined) {
            return Effect.fail(new InvalidSignature({ reason: `${name} is not a hex HMAC-SHA256` }))
          }
          return secrets.some((secret) => sameBytes(hmac(Redacted.value(secret), request.body), given))
            ? Effect.succeed({ body: request.body, id: undefined, timestamp: undefined })
            : Effect.fail(noMatch("HMAC-SHA256"))
        }),
      events: single("id", "type")
    })
  )
}

/**
 * GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`. The event's id is the
 * `X-GitHub-Delivery` header, its type the `X-GitHub-Event` header.
 *
 * @since 0.1.0
 * @category constructors
 */
export const github = (options: {
  readonly secret: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>>
}): Effect.Effect<Source, InvalidOptions> =>
  Effect.map(generic({ secret: options.secret, header: "x-hub-signature-256", prefix: "sha256=" }), (source) => ({
    ...source,
    name: "github",
    events: (request, _verified, json) => {
      const id = request.headers["x-github-delivery"]
      const type = request.headers["x-github-event"]
      return nonEmptyString(id) && nonEmptyString(type)
        ? Effect.succeed([{ id, type, payload: json }])
        : Effect.fail(new InvalidPayload({ reason: "X-GitHub-Delivery and X-GitHub-Event are required" }))
    }
  }))

const standardPrefix = "whsec_"
const publicKeyPrefix = "whpk_"

/** The raw key of a `whsec_<base64>` secret (the prefix is optional). */
const standardKey = (secret: string): Buffer | undefined =>
  fromBase64(secret.startsWith(standardPrefix) ? secret.slice(standardPrefix.length) : secret)

/** An ed25519 public key from `whpk_<base64 of the 32 raw bytes>`. */
const ed25519PublicKey = (key: string): KeyObject | undefined => {
  const raw = fromBase64(key.startsWith(publicKeyPrefix) ? key.slice(publicKeyPrefix.length) : key)
  if (raw === undefined || raw.length !== 32) return undefined
  try {
    // SubjectPublicKeyInfo of an ed25519 key: a fixed 12-byte prefix, then the raw key.
    return createPublicKey({
      key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]),
      format: "der",
      type: "spki"
    })
  } catch {
    return undefined
  }
}

const headerOf = (request: Request, names: ReadonlyArray<string>): Effect.Effect<string, MissingHeader> => {
  for (const name of names) {
    const value = request.headers[name]
    if (value !== undefined && value !== "") return Effect.succeed(value)
  }
  return Effect.fail(new MissingHeader({ header: names[0]! }))
}

/**
 * Standard Webhooks (and Svix, whose `svix-*` headers are read when the `webhook-*` ones are
 * absent): the content `{webhook-id}.{webhook-timestamp}.{body}` is signed `v1` (base64
 * HMAC-SHA256 keyed with the base64-decoded `whsec_` secret) and/or `v1a` (base64 ed25519 with
 * a `whpk_` public key); `webhook-signature` lists signatures separated by spaces, and any one
 * matching passes. The timestamp must be within `tolerance` of now (default 300 s). The event's id
 * is `webhook-id`; its type the body's `type`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const standardWebhooks = (options: {
  readonly secret?: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>> | undefined
  readonly publicKey?: string | ReadonlyArray<string> | undefined
  readonly tolerance?: Duration.DurationInput | undefined
}): Effect.Effect<Source, InvalidOptions> => {
  const secrets = options.secret === undefined ? [] : secretsOf(options.secret)
  const keys = secrets.map((secret) => standardKey(Redacted.value(secret)))
  const publicKeys = options.publicKey === undefined
    ? []
    : (typeof options.publicKey === "string" ? [options.publicKey] : options.publicKey).map(ed25519PublicKey)
  const tolerance = toleranceSeconds(options.tolerance, 300)
  return failWith(
    checks([
      [secrets.length + publicKeys.length > 0, "secret", "a secret or a public key is needed"],
      [keys.every((key) => key !== undefined && key.length > 0), "secret", "must be whsec_ followed by base64"],
      [publicKeys.every((key) => key !== undefined), "publicKey", "must be whpk_ followed by a base64 ed25519 key"],
      [tolerance >= 0 && Number.isFinite(tolerance), "tolerance", "must be finite and >= 0"]
    ]),
    (): Source => ({
      name: "standard",
      verify: (request) =>
        Effect.gen(function*() {
          const id = yield* headerOf(request, ["webhook-id", "svix-id"])
          const rawTimestamp = yield* headerOf(request, ["webhook-timestamp", "svix-timestamp"])
          const list = yield* headerOf(request, ["webhook-signature", "svix-signature"])
          const content = concat(bytes(`${id}.${rawTimestamp}.`), request.body)
          let macs: ReadonlyArray<Buffer> | undefined
          const matches = list.split(" ").some((entry) => {
            const comma = entry.indexOf(",")
            const version = entry.slice(0, comma)
            const given = comma > 0 ? fromBase64(entry.slice(comma + 1)) : undefined
            if (given === undefined) return false
            if (version === "v1") {
              macs ??= keys.map((key) => hmac(key!, content))
              return macs.some((mac) => sameBytes(mac, given))
            }
            if (version === "v1a" && given.length === 64) {
              return publicKeys.some((key) => safeVerify(null, content, key!, given))
            }
            return false
          })
          if (!matches) return yield* noMatch("v1 or v1a")
          const timestamp = yield* checkTimestamp(rawTimestamp, tolerance)
          return { body: request.body, id, timestamp }
        }),
      events: (_request, verified, json) =>
        isRecord(json) && nonEmptyString(json["type"]) && verified.id !== undefined
          ? Effect.succeed([{ id: verified.id, type: json["type"], payload: json }])
          : Effect.fail(new InvalidPayload({ reason: `expected an object with a string "type"` }))
    })
  )
}

// ---------------------------------------------------------------------------------------------------------------
// receiving
// ---------------------------------------------------------------------------------------------------------------

/**
 * Reads a body as it streams in, failing with {@link PayloadTooLarge} as soon as it passes
 * `maxBytes` (the rest is never buffered).
 *
 * @since 0.1.0
 * @category accessors
 */
export const readBody = <E, R>(
  body: Stream.Stream<Uint8Array, E, R>,
  maxBytes: number
): Effect.Effect<Uint8Array, E | PayloadTooLarge, R> =>
  body.pipe(
    Stream.mapAccumEffect(0, (total, chunk): Effect.Effect<readonly [number, Uint8Array], PayloadTooLarge> =>
      total + chunk.length > maxBytes
        ? Effect.fail(new PayloadTooLarge({ maxBytes }))
        : Effect.succeed([total + chunk.length, chunk] as const)),
    Stream.runCollect,
    Effect.map((chunks) =>
      concat(...Chunk.toReadonlyArray(chunks))
    )
  )

/**
 * Verifies a request and reads its events: the size limit (default 1 MiB), then the signature,
 * then the JSON. Nothing of the body is trusted before its signature is.
 *
 * @since 0.1.0
 * @category accessors
 */
export const receive = (
  source: Source,
  request: Request,
  options: { readonly maxBytes?: number | undefined } = {}
): Effect.Effect<ReadonlyArray<Event>, WebhookError> =>
  withSpan("liaison.webhook.verify", "internal", (span) => {
    span?.attribute("liaison.webhook.source", source.name)
    return Effect.matchEffect(receiveUntraced(source, request, options.maxBytes ?? defaultMaxBytes), {
      onFailure: (error) => {
        countReceived(source.name, "rejected")
        span?.attribute("liaison.webhook.outcome", "rejected")
        span?.attribute("error.type", error._tag)
        return Effect.fail(error)
      },
      onSuccess: (events) => {
        countReceived(source.name, "verified")
        span?.attribute("liaison.webhook.outcome", "verified")
        return Effect.succeed(events)
      }
    })
  })

const receiveUntraced = (
  source: Source,
  request: Request,
  maxBytes: number
): Effect.Effect<ReadonlyArray<Event>, WebhookError> =>
  Effect.gen(function*() {
    if (request.body.length > maxBytes) return yield* new PayloadTooLarge({ maxBytes })
    const verified = yield* source.verify(request)
    const json = yield* parseJson(verified.body)
    return yield* source.events(request, verified, json)
  })

/**
 * The default body limit of {@link receive}: 1 MiB (Stripe and GitHub stay well under it; GitHub
 * caps payloads at 25 MB, so raise it for large pushes).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxBytes = 1024 * 1024

// ---------------------------------------------------------------------------------------------------------------
// signing
// ---------------------------------------------------------------------------------------------------------------

/**
 * The {@link generic} `X-Webhook-Signature` (and GitHub's, after `sha256=`): the hex HMAC-SHA256
 * of the body keyed with the secret's UTF-8 bytes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const signHex = (secret: Redacted.Redacted<string>, body: Uint8Array): string =>
  hmac(Redacted.value(secret), body).toString("hex")

/**
 * A Standard Webhooks `v1,<base64>` signature of `{id}.{timestamp}.{body}` with a `whsec_` secret;
 * `InvalidOptions` when the secret is not base64 (see {@link isStandardSecret}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const signStandard = (options: {
  readonly secret: Redacted.Redacted<string>
  readonly id: string
  readonly timestamp: number
  readonly body: Uint8Array
}): Either.Either<string, InvalidOptions> => {
  const key = standardKey(Redacted.value(options.secret))
  return key === undefined || key.length === 0
    ? Either.left(new InvalidOptions({ option: "secret", reason: "must be whsec_ followed by base64" }))
    : Either.right(
      `v1,${hmac(key, concat(bytes(`${options.id}.${options.timestamp}.`), options.body)).toString("base64")}`
    )
}

/**
 * A Standard Webhooks `v1a,<base64>` ed25519 signature with a `whsk_` private key (base64 of the
 * 32-byte seed); `InvalidOptions` when the key is not one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const signStandardAsymmetric = (options: {
  readonly privateKey: Redacted.Redacted<string>
  readonly id: string
  readonly timestamp: number
  readonly body: Uint8Array
}): Either.Either<string, InvalidOptions> => {
  const raw = Redacted.value(options.privateKey)
  const seed = fromBase64(raw.startsWith("whsk_") ? raw.slice(5) : raw)
  if (seed === undefined || seed.length !== 32) {
    return Either.left(new InvalidOptions({ option: "privateKey", reason: "must be whsk_ followed by a base64 seed" }))
  }
  // PKCS#8 of an ed25519 key: a fixed 16-byte prefix, then the seed.
  const key = createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
    format: "der",
    type: "pkcs8"
  })
  const content = concat(bytes(`${options.id}.${options.timestamp}.`), options.body)
  return Either.right(`v1a,${sign(null, content, key).toString("base64")}`)
}

/**
 * Whether a string is a usable Standard Webhooks secret (`whsec_` + base64, or bare base64).
 *
 * @since 0.1.0
 * @category guards
 */
export const isStandardSecret = (secret: string): boolean => {
  const key = standardKey(secret)
  return key !== undefined && key.length > 0
}
