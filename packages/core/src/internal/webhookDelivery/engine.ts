/**
 * The delivery service's engine: its state is one record ({@link Engine}) that the face's
 * service methods hand to these functions.
 *
 * The queue's own failures pass through as they are (`StorageError` of store `durable-queue`);
 * the subscriptions' are `StorageError`s of store `webhooks`.
 *
 * This module imports the face's schema and error class, and the face imports this module:
 * they are used only inside functions, never while the modules load.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as DurableQueue from "../../DurableQueue.js"
import type { InvalidOptions, StorageError } from "../../LiaisonError.js"
import type * as WebhookDelivery from "../../WebhookDelivery.js"
import { Delivery, InvalidEvent } from "../../WebhookDelivery.js"
import type { Sender } from "./deliver.js"
import { deliver, makeHttp } from "./deliver.js"
import { resolve } from "./options.js"
import { randomId, toSubscription, wants } from "./subscriptions.js"

/**
 * Everything a delivery service holds.
 *
 * @internal
 */
export interface Engine extends Sender {
  readonly queue: DurableQueue.Queue<WebhookDelivery.Delivery>
}

/**
 * Resolves the options and builds the queue and the guarded `Http` (closed with the scope).
 *
 * @internal
 */
export const make = (
  options: WebhookDelivery.Options,
  defaults: WebhookDelivery.Defaults,
  store: WebhookDelivery.SubscriptionStoreService
): Effect.Effect<Engine, InvalidOptions, DurableQueue.Store | Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolve(options, defaults)
    const queue = yield* DurableQueue.make(settings.name, Delivery, {
      retention: settings.retention,
      pollInterval: settings.pollInterval,
      // Leased for longer than an attempt may take.
      lease: Duration.sum(settings.timeout, "15 seconds"),
      // Room for leases lost and subscriptions that could not be read, besides the schedule.
      maxAttempts: settings.schedule.length + 4
    })
    const http = yield* makeHttp(settings)
    return { settings, store, http, queue }
  })

/** @internal */
export const subscriptions = (
  engine: Engine
): Effect.Effect<ReadonlyArray<WebhookDelivery.Subscription>, StorageError> =>
  Effect.map(engine.store.list(engine.settings.name), (all) => all.map(toSubscription))

/** @internal */
export const subscription = (
  engine: Engine,
  id: string
): Effect.Effect<Option.Option<WebhookDelivery.Subscription>, StorageError> =>
  Effect.map(engine.store.get(engine.settings.name, id), Option.map(toSubscription))

/**
 * Queues one delivery of the event per active subscription that wants its type, all with the
 * same body and event id.
 *
 * @internal
 */
export const emit = (
  engine: Engine,
  type: string,
  data: unknown
): Effect.Effect<WebhookDelivery.Emitted, InvalidEvent | StorageError> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const eventId = randomId("msg")
    const body = yield* Effect.try({
      try: () => JSON.stringify({ id: eventId, type, timestamp: new Date(now).toISOString(), data }),
      catch: () => new InvalidEvent({ reason: "the data is not serializable as JSON" })
    })
    const targets = (yield* engine.store.list(engine.settings.name)).filter((s) => wants(s, type))
    const deliveries = yield* Effect.forEach(targets, (target) => {
      const id = randomId("dlv")
      const delivery = { subscriptionId: target.id, eventId, type, url: target.url, body, createdAt: now }
      return engine.queue.enqueue(delivery, { id }).pipe(
        Effect.catchTag("ParseError", Effect.die),
        Effect.as({ id, subscriptionId: target.id })
      )
    })
    return { eventId, deliveries }
  })

const deliveryStates: Record<DurableQueue.State, WebhookDelivery.DeliveryState> = {
  queued: "pending",
  processing: "delivering",
  done: "delivered",
  failed: "failed"
}

const attemptOutcomes: Record<
  DurableQueue.Attempt["outcome"],
  WebhookDelivery.DeliveryAttempt["outcome"] | undefined
> = {
  done: "delivered",
  retry: "retry",
  failed: "failed",
  lost: "lost",
  requeued: undefined
}

const toAttempt = (attempt: DurableQueue.Attempt): Array<WebhookDelivery.DeliveryAttempt> => {
  const outcome = attemptOutcomes[attempt.outcome]
  if (outcome === undefined) return []
  const status = attempt.detail?.["status"]
  const durationMs = attempt.detail?.["durationMs"]
  return [{
    attempt: attempt.attempt,
    at: attempt.startedAt ?? attempt.finishedAt,
    outcome,
    ...(typeof status === "number" ? { status } : {}),
    ...(attempt.error === undefined ? {} : { error: attempt.error }),
    ...(typeof durationMs === "number" ? { durationMs } : {})
  }]
}

/**
 * The public view of a queued delivery; attempts that were only handed back (a worker
 * stopping) are left out.
 *
 * @internal
 */
export const toDeliveryStatus = (
  id: string,
  status: DurableQueue.Status<WebhookDelivery.Delivery>
): WebhookDelivery.DeliveryStatus => ({
  id,
  subscriptionId: status.value.subscriptionId,
  eventId: status.value.eventId,
  type: status.value.type,
  url: status.value.url,
  state: deliveryStates[status.state],
  createdAt: status.value.createdAt,
  ...(status.state === "queued" && status.availableAt !== undefined ? { nextAttemptAt: status.availableAt } : {}),
  attempts: status.history.flatMap(toAttempt)
})

/** @internal */
export const delivery = (
  engine: Engine,
  id: string
): Effect.Effect<Option.Option<WebhookDelivery.DeliveryStatus>, StorageError> =>
  engine.queue.status(id).pipe(
    Effect.catchTag("ParseError", Effect.die),
    Effect.map(Option.map((status) => toDeliveryStatus(id, status)))
  )

/** @internal */
export const run = (
  engine: Engine,
  options: { readonly concurrency?: number | undefined } = {}
): Effect.Effect<void, never, Scope.Scope> =>
  engine.queue.worker(deliver(engine), {
    concurrency: options.concurrency ?? engine.settings.concurrency
  })
