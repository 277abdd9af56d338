/**
 * Subscriptions: the checks a new one passes (the SSRF guard after DNS resolution) and the
 * public view of a stored one.
 *
 * This module imports the face's error class, which imports this module: the class is used only
 * inside functions, never while the modules load.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import type { StorageError } from "../../LiaisonError.js"
import type * as WebhookDelivery from "../../WebhookDelivery.js"
import { InvalidSubscription } from "../../WebhookDelivery.js"
import * as Webhooks from "../../Webhooks.js"
import * as Ssrf from "../ssrf.js"

/** @internal */
export const randomId = (prefix: string): string => `${prefix}_${randomBytes(12).toString("base64url")}`

/** @internal */
export const toSubscription = (stored: WebhookDelivery.StoredSubscription): WebhookDelivery.Subscription => ({
  id: stored.id,
  url: stored.url,
  events: stored.events,
  secret: Redacted.make(stored.secret),
  createdAt: stored.createdAt,
  disabled: stored.disabledAt === undefined
    ? Option.none()
    : Option.some({ at: stored.disabledAt, reason: stored.disabledReason ?? "" })
})

/**
 * Whether an active subscription wants events of `type`.
 *
 * @internal
 */
export const wants = (subscription: WebhookDelivery.StoredSubscription, type: string): boolean =>
  subscription.disabledAt === undefined && subscription.events.some((event) => event === "*" || event === type)

const refuse = (reason: string) => Effect.fail(new InvalidSubscription({ reason }))

/**
 * An http(s) URL without credentials whose host resolves only to addresses the policy allows.
 *
 * @internal
 */
export const checkUrl = (policy: Ssrf.Policy, raw: string): Effect.Effect<URL, InvalidSubscription> => {
  if (!URL.canParse(raw)) return refuse("the url is not a URL")
  const url = new URL(raw)
  if (url.protocol !== "http:" && url.protocol !== "https:") return refuse("the url must be http or https")
  if (url.username !== "" || url.password !== "") return refuse("the url must not carry credentials")
  return Effect.tryPromise(() => Ssrf.checkHost(policy, Ssrf.hostOf(url))).pipe(
    Effect.orElseSucceed(() => `${url.hostname} does not resolve`),
    Effect.flatMap((refusal) => refusal === undefined ? Effect.succeed(url) : refuse(`refused: ${refusal}`))
  )
}

const checkEvents = (events: ReadonlyArray<string>) => {
  const unique = [...new Set(events)]
  return unique.length === 0 || unique.some((event) => event.length === 0 || event.length > 200)
    ? refuse("events must list 1 or more types of 1 to 200 characters")
    : Effect.succeed(unique)
}

const checkSecret = (secret: Redacted.Redacted<string> | undefined) => {
  const value = secret === undefined ? `whsec_${randomBytes(24).toString("base64")}` : Redacted.value(secret)
  return Webhooks.isStandardSecret(value)
    ? Effect.succeed(value)
    : refuse("the secret must be whsec_ followed by base64")
}

/**
 * Checks and stores a new subscription under `name`.
 *
 * @internal
 */
export const subscribe = (
  store: WebhookDelivery.SubscriptionStoreService,
  name: string,
  policy: Ssrf.Policy,
  input: WebhookDelivery.SubscribeInput
): Effect.Effect<WebhookDelivery.Subscription, InvalidSubscription | StorageError> =>
  Effect.gen(function*() {
    const url = yield* checkUrl(policy, input.url)
    const events = yield* checkEvents(input.events)
    const secret = yield* checkSecret(input.secret)
    const stored: WebhookDelivery.StoredSubscription = {
      id: randomId("sub"),
      url: url.href,
      events,
      secret,
      createdAt: yield* Clock.currentTimeMillis
    }
    yield* store.put(name, stored)
    return toSubscription(stored)
  })

/**
 * Marks a subscription disabled (its receiver answered 410 Gone); nothing when it is gone.
 *
 * @internal
 */
export const disable = (
  store: WebhookDelivery.SubscriptionStoreService,
  name: string,
  id: string,
  reason: string,
  now: number
): Effect.Effect<void, StorageError> =>
  Effect.flatMap(store.get(name, id), (found) =>
    Option.match(found, {
      onNone: () => Effect.void,
      onSome: (subscription) => store.put(name, { ...subscription, disabledAt: now, disabledReason: reason })
    }))
