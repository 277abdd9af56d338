/**
 * Webhook telemetry: `liaison_webhooks_received_total` (inbound, by source and outcome) and
 * `liaison_webhook_deliveries_total` (outbound attempts, by outcome). The source label is the
 * source's name, chosen in code; a request's own fields (ids, signatures, headers) never become a
 * label or an attribute.
 *
 * @internal
 */
import type * as DurableQueue from "../../DurableQueue.js"
import { fixedCounter } from "../cacheTelemetry.js"

/** @internal */
export type ReceivedOutcome = "verified" | "rejected" | "duplicate" | "processed" | "failed"

const RECEIVED = "liaison_webhooks_received_total"
const receivedHelp =
  "Inbound webhook requests verified or rejected, events recorded twice (duplicate), events processed or failed"

const received = new Map<string, Record<ReceivedOutcome, (by?: number) => void>>()

/** Counts inbound webhooks of `source`: its counters are made once per source name. @internal */
export const countReceived = (source: string, outcome: ReceivedOutcome, by = 1): void => {
  let counters = received.get(source)
  if (counters === undefined) {
    const labelled = (outcome: ReceivedOutcome) => fixedCounter(RECEIVED, receivedHelp, { source, outcome })
    counters = {
      verified: labelled("verified"),
      rejected: labelled("rejected"),
      duplicate: labelled("duplicate"),
      processed: labelled("processed"),
      failed: labelled("failed")
    }
    received.set(source, counters)
  }
  counters[outcome](by)
}

/** @internal */
export type DeliveryOutcome = "delivered" | "retried" | "failed"

const DELIVERIES = "liaison_webhook_deliveries_total"
const deliveriesHelp = "Outbound webhook delivery attempts, by outcome"

const deliveries: Record<DeliveryOutcome, (by?: number) => void> = {
  delivered: fixedCounter(DELIVERIES, deliveriesHelp, { outcome: "delivered" }),
  retried: fixedCounter(DELIVERIES, deliveriesHelp, { outcome: "retried" }),
  failed: fixedCounter(DELIVERIES, deliveriesHelp, { outcome: "failed" })
}

/** The outcome of a delivery attempt, by how its queue item is settled. @internal */
export const deliveryOutcome = (outcome: DurableQueue.Outcome): DeliveryOutcome =>
  outcome._tag === "Done" ? "delivered" : outcome._tag === "RetryLater" ? "retried" : "failed"

/** @internal */
export const countDelivery = (outcome: DeliveryOutcome): void => deliveries[outcome]()
