/**
 * One delivery attempt: sign, POST through `Http`, and say what came of it.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as DurableQueue from "../../DurableQueue.js"
import * as Http from "../../Http.js"
import * as HttpError from "../../HttpError.js"
import type * as WebhookDelivery from "../../WebhookDelivery.js"
import * as Webhooks from "../../Webhooks.js"
import { retryAfterMillis } from "../retryAfter.js"
import * as Ssrf from "../ssrf.js"
import { withSpan } from "../tracing.js"
import type { Settings } from "./options.js"
import { disable } from "./subscriptions.js"
import { countDelivery, deliveryOutcome } from "./telemetry.js"

/**
 * What deliveries need: the settings, the subscriptions and one `Http` whose every connection
 * passes the SSRF guard.
 *
 * @internal
 */
export interface Sender {
  readonly settings: Settings
  readonly store: WebhookDelivery.SubscriptionStoreService
  readonly http: Http.Service
}

/** How much of a receiver's answer is read (and thrown away) so its connection can be reused. */
const drainBytes = 65_536

/**
 * One `Http` for every delivery: its own pool, the attempt's time limit on every phase, and the
 * address guard of the policy.
 *
 * @internal
 */
export const makeHttp = (settings: Settings): Effect.Effect<Http.Service, never, Scope.Scope> =>
  Http.make({
    timeouts: {
      connect: Duration.min(settings.timeout, Duration.seconds(10)),
      read: settings.timeout,
      write: settings.timeout,
      pool: settings.timeout
    },
    pool: { maxConnections: 16, allowH2: false },
    addressGuard: settings.policy
  })

/**
 * The signed POST of a delivery, or `undefined` when the secret cannot sign.
 *
 * @internal
 */
export const request = (
  delivery: WebhookDelivery.Delivery,
  secret: Redacted.Redacted<string>,
  nowMillis: number
): HttpClientRequest.HttpClientRequest | undefined => {
  const timestamp = Math.floor(nowMillis / 1000)
  const body = new TextEncoder().encode(delivery.body)
  const signature = Webhooks.signStandard({ secret, id: delivery.eventId, timestamp, body })
  if (Either.isLeft(signature)) return undefined
  return HttpClientRequest.post(delivery.url).pipe(
    HttpClientRequest.setHeaders({
      "user-agent": "Liaison-Webhooks/0.1",
      "webhook-id": delivery.eventId,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signature.right,
      "x-webhook-signature": Webhooks.signHex(secret, body)
    }),
    HttpClientRequest.bodyUint8Array(body, "application/json")
  )
}

/** The receiver's answer: its status and how long it asks us to wait. */
interface Answer {
  readonly status: number
  readonly retryAfterMillis: number | undefined
}

/**
 * Sends one attempt within `timeout`; the answer's body is read up to 64 KiB and dropped.
 *
 * @internal
 */
export const send = (
  http: Http.Service,
  timeout: Duration.Duration,
  outgoing: HttpClientRequest.HttpClientRequest,
  nowMillis: number
): Effect.Effect<Answer, HttpError.HttpError> =>
  http.execute(outgoing).pipe(
    Effect.tap((response) =>
      response.stream.pipe(
        Stream.runFoldWhile(0, (read) => read < drainBytes, (read, chunk) => read + chunk.length),
        Effect.ignore
      )
    ),
    Effect.map((response) => ({
      status: response.status,
      retryAfterMillis: retryAfterMillis(response.headers, nowMillis)
    })),
    Effect.scoped,
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => HttpError.timeout(outgoing, "attempt", Duration.toMillis(timeout))
    })
  )

/**
 * A failed attempt: what {@link DurableQueue.retrying} makes of it (`verdict`), the error and
 * the facts recorded.
 *
 * @internal
 */
export interface Failure {
  readonly verdict: DurableQueue.Verdict
  readonly error: string
  readonly detail: DurableQueue.Detail
  /** The receiver answered 410 Gone: its subscription is disabled. */
  readonly gone?: boolean | undefined
}

/**
 * 2xx is delivered; 408, 425, 429 and 5xx are retried, no sooner than the receiver's
 * `Retry-After` (capped at `maxRetryAfterMillis`); 410 Gone fails and disables the subscription;
 * any other status fails at once.
 *
 * @internal
 */
export const classifyAnswer = (
  answer: Answer,
  durationMs: number,
  maxRetryAfterMillis: number
): Effect.Effect<DurableQueue.Outcome, Failure> => {
  const detail = { status: answer.status, durationMs }
  if (answer.status >= 200 && answer.status < 300) return Effect.succeed(DurableQueue.done({ detail }))
  const error = `the receiver answered ${answer.status}`
  if (HttpError.isTransientStatus(answer.status)) {
    const verdict: DurableQueue.Verdict = answer.retryAfterMillis === undefined
      ? "retry"
      : { retryAfterMillis: Math.min(answer.retryAfterMillis, maxRetryAfterMillis) }
    return Effect.fail({ verdict, error, detail })
  }
  return answer.status === 410
    ? Effect.fail({ verdict: "fail", error: `${error} (Gone): the subscription is disabled`, detail, gone: true })
    : Effect.fail({ verdict: "fail", error: `${error}, not retried`, detail })
}

const verdicts: Record<HttpError.Transience, DurableQueue.Verdict> = {
  transient: "retry",
  permanent: "fail",
  // Sent, perhaps received: retried all the same (receivers dedupe by `webhook-id`).
  unknown: "unknown"
}

/**
 * An attempt without an answer: what the SSRF guard refused fails (with the guard's reason,
 * found again without connecting); the rest by `HttpError.transience`.
 *
 * @internal
 */
export const classifyError = (
  policy: Ssrf.Policy,
  error: HttpError.HttpError,
  durationMs: number
): Effect.Effect<never, Failure> => {
  const detail = { durationMs }
  if (error._tag === "TransportError" && error.reason === "blocked") {
    return Effect.tryPromise(() => Ssrf.checkHost(policy, Ssrf.hostOf(new URL(error.url)))).pipe(
      Effect.orElseSucceed(() => undefined),
      Effect.flatMap((reason) =>
        Effect.fail<Failure>({
          verdict: "fail",
          error: `refused by the SSRF guard: ${reason ?? "the address is not allowed"}`,
          detail
        })
      )
    )
  }
  return Effect.fail({ verdict: verdicts[HttpError.transience(error)], error: error.message, detail })
}

/**
 * Signs and sends one attempt, and says what came of it.
 *
 * @internal
 */
export const attempt = (
  sender: Sender,
  delivery: WebhookDelivery.Delivery,
  secret: string
): Effect.Effect<DurableQueue.Outcome, Failure> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const outgoing = request(delivery, Redacted.make(secret), started)
    if (outgoing === undefined) return DurableQueue.failed({ error: "the subscription's secret is unusable" })
    const sent = yield* Effect.either(send(sender.http, sender.settings.timeout, outgoing, started))
    const durationMs = (yield* Clock.currentTimeMillis) - started
    return yield* Either.isRight(sent)
      ? classifyAnswer(sent.right, durationMs, sender.settings.maxRetryAfterMillis)
      : classifyError(sender.settings.policy, sent.left, durationMs)
  })

/** Why a queued delivery must not be sent at all, if it must not. */
const refusal = (
  policy: Ssrf.Policy,
  delivery: WebhookDelivery.Delivery,
  found: Option.Option<WebhookDelivery.StoredSubscription>
): string | undefined => {
  if (Option.isNone(found)) return "the subscription was removed"
  if (found.value.disabledAt !== undefined) return `the subscription is disabled: ${found.value.disabledReason ?? ""}`
  // A literal address never goes through the guarded lookup: check it here.
  const literal = URL.canParse(delivery.url)
    ? Ssrf.literalRefusal(policy, Ssrf.hostOf(new URL(delivery.url)))
    : "not a URL"
  return literal === undefined ? undefined : `refused by the SSRF guard: ${literal}`
}

/**
 * One attempt of a queued delivery: checks its subscription, sends, and disables a subscription
 * whose receiver answered 410 Gone. Settles the item itself unless the attempt failed.
 *
 * @internal
 */
export const handle = (
  sender: Sender,
  item: DurableQueue.Item<WebhookDelivery.Delivery>
): Effect.Effect<DurableQueue.Outcome, Failure> =>
  Effect.gen(function*() {
    const { name, policy } = sender.settings
    const delivery = item.value
    const found = yield* Effect.either(sender.store.get(name, delivery.subscriptionId))
    // Off the schedule: the receiver was not tried.
    if (Either.isLeft(found)) {
      return DurableQueue.retryAfter("5 seconds", { error: "the subscriptions could not be read" })
    }
    const refused = refusal(policy, delivery, found.right)
    if (refused !== undefined || Option.isNone(found.right)) {
      return DurableQueue.failed({ error: refused ?? "the subscription was removed" })
    }
    return yield* attempt(sender, delivery, found.right.value.secret).pipe(
      Effect.tapError((failure) => failure.gone === true ? disableGone(sender, delivery.subscriptionId) : Effect.void)
    )
  })

const disableGone = (sender: Sender, subscriptionId: string) =>
  Effect.flatMap(
    Clock.currentTimeMillis,
    (now) => disable(sender.store, sender.settings.name, subscriptionId, "the receiver answered 410 Gone", now)
  ).pipe(
    Effect.catchAllCause((cause) => Effect.logWarning("could not disable a subscription", Cause.pretty(cause)))
  )

/**
 * The queue's handler: {@link handle} on the schedule of delays, each jittered.
 *
 * @internal
 */
export const deliver = (sender: Sender) => {
  const { jitter, schedule } = sender.settings
  const retried = DurableQueue.retrying((item: DurableQueue.Item<WebhookDelivery.Delivery>) => handle(sender, item), {
    delays: schedule,
    jitter,
    classify: (failure) => failure.verdict,
    describe: (failure) => failure.error,
    detail: (failure) => failure.detail
  })
  return (item: DurableQueue.Item<WebhookDelivery.Delivery>): Effect.Effect<DurableQueue.Outcome> =>
    withSpan("liaison.webhook.deliver", "producer", (span) => {
      span?.attribute("liaison.webhook.delivery_id", item.id)
      span?.attribute("liaison.webhook.attempt", item.attempt)
      span?.attribute("liaison.webhook.type", item.value.type)
      return Effect.map(retried(item), (outcome) => {
        const counted = deliveryOutcome(outcome)
        countDelivery(counted)
        span?.attribute("liaison.webhook.outcome", counted)
        return outcome
      })
    })
}
