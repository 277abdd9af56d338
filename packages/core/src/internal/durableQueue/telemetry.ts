/**
 * A queue's telemetry: `liaison_queue_items_total` by outcome, the `liaison_queue_depth` and
 * `liaison_queue_oldest_age_seconds` gauges, and the `liaison.queue.*` span attributes.
 *
 * The queue's name is its label (a name is chosen in code, not by a request); the counters' hooks
 * are resolved once per queue. The gauges come from the store's `depth` (one `ZCARD` and one
 * `ZRANGE` on Redis, a scan of the queue's records in memory), read at most once a second per
 * queue and process, by the clock of whoever enqueues or polls: an idle process keeps its last
 * reading.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { StoreService } from "../../DurableQueue.js"
import { fixedCounter, fixedGauge } from "../cacheTelemetry.js"

/** How an attempt ended, as counted. `unknown`: its end could not be recorded (lease lost, store failing). @internal */
export type ItemOutcome = "done" | "retried" | "failed" | "unknown"

const ITEMS = "liaison_queue_items_total"
const itemsHelp = "Queue items settled, by outcome (unknown: the settle failed or the lease was lost)"

/** @internal */
export interface QueueTelemetry {
  readonly items: Readonly<Record<ItemOutcome, (by?: number) => void>>
  readonly depth: { readonly set: (value: number) => void }
  readonly oldestAge: { readonly set: (value: number) => void }
  /** The gauges are next read from the store at this time (ms). */
  nextReadingAt: number
}

/** @internal */
export const makeTelemetry = (queue: string): QueueTelemetry => ({
  items: {
    done: fixedCounter(ITEMS, itemsHelp, { queue, outcome: "done" }),
    retried: fixedCounter(ITEMS, itemsHelp, { queue, outcome: "retried" }),
    failed: fixedCounter(ITEMS, itemsHelp, { queue, outcome: "failed" }),
    unknown: fixedCounter(ITEMS, itemsHelp, { queue, outcome: "unknown" })
  },
  depth: fixedGauge("liaison_queue_depth", "Items queued or leased", { queue }),
  oldestAge: fixedGauge(
    "liaison_queue_oldest_age_seconds",
    "How long the item due longest ago has waited past its due time (0: none waits)",
    { queue }
  ),
  nextReadingAt: Number.NEGATIVE_INFINITY
})

const readingEveryMillis = 1000

/**
 * Reads the gauges from the store when the last reading is a second old (a store without `depth`
 * has none). A failure to read is ignored: the next poll tries again.
 *
 * @internal
 */
export const readGauges = (
  store: StoreService,
  queue: string,
  telemetry: QueueTelemetry,
  now: number
): Effect.Effect<void> => {
  const depth = store.depth
  if (depth === undefined || now < telemetry.nextReadingAt) return Effect.void
  telemetry.nextReadingAt = now + readingEveryMillis
  return Effect.ignore(Effect.map(depth(queue, now), (reading) => {
    telemetry.depth.set(reading.items)
    const oldest = reading.oldestDue
    telemetry.oldestAge.set(oldest === undefined || oldest >= now ? 0 : (now - oldest) / 1000)
  }))
}
