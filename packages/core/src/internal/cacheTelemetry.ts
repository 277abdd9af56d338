/**
 * The cache's telemetry: the `liaison_cache_*` metrics and the `liaison.cache.get` span events.
 *
 * Every metric is a fixed set of label values, so each counter's hook is resolved once and an
 * update is one addition (a tagged `Metric` would merge its labels on every call). Span events are
 * recorded only when a real tracer is installed and a span is current: with Effect's built-in
 * tracer nobody reads them, and the check is one field read (two with a tracer).
 *
 * No key, tag or value ever goes into a label or an attribute (a key may hold a person's id).
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import type * as Tracer from "effect/Tracer"
import { eventTime } from "./tracing.js"

const noLabels: ReadonlyArray<never> = []

/** A counter with fixed labels, as a function adding to it. @internal */
export const fixedCounter = (
  name: string,
  description: string,
  labels: Readonly<Record<string, string>>
): (by?: number) => void => {
  let key = MetricKey.counter(name, { description, incremental: true })
  for (const label in labels) key = MetricKey.tagged(key, label, labels[label] as string)
  const metric = Metric.fromMetricKey(key)
  return (by = 1) => metric.unsafeUpdate(by, noLabels)
}

/** A gauge with fixed labels: `set` replaces its value, `add` moves it. @internal */
export const fixedGauge = (
  name: string,
  description: string,
  labels: Readonly<Record<string, string>>
): { readonly set: (value: number) => void; readonly add: (delta: number) => void } => {
  let key = MetricKey.gauge(name, { description })
  for (const label in labels) key = MetricKey.tagged(key, label, labels[label] as string)
  const metric = Metric.fromMetricKey(key)
  return {
    set: (value) => metric.unsafeUpdate(value, noLabels),
    add: (delta) => metric.unsafeModify(delta, noLabels)
  }
}

/** The tier that answered (or was asked last, for a miss). @internal */
export type Tier = "memory" | "redis"

/** What a lookup found. @internal */
export type Outcome = "hit" | "miss" | "stale"

const LOOKUPS = "liaison_cache_lookups_total"
const lookupsHelp = "Cache lookups by the tier that answered and what it found (a stale answer also counts its miss)"
const REFRESHES = "liaison_cache_refreshes_total"
const refreshesHelp = "Cache refreshes started ahead of expiry, and waits for another caller's fetch (stampede)"

const lookups: Record<Tier, Record<Outcome, (by?: number) => void>> = {
  memory: {
    hit: fixedCounter(LOOKUPS, lookupsHelp, { tier: "memory", outcome: "hit" }),
    miss: fixedCounter(LOOKUPS, lookupsHelp, { tier: "memory", outcome: "miss" }),
    stale: fixedCounter(LOOKUPS, lookupsHelp, { tier: "memory", outcome: "stale" })
  },
  redis: {
    hit: fixedCounter(LOOKUPS, lookupsHelp, { tier: "redis", outcome: "hit" }),
    miss: fixedCounter(LOOKUPS, lookupsHelp, { tier: "redis", outcome: "miss" }),
    stale: fixedCounter(LOOKUPS, lookupsHelp, { tier: "redis", outcome: "stale" })
  }
}

/** A refresh: started ahead of expiry, or a wait for a fetch already running (here or elsewhere). @internal */
export type RefreshKind = "refresh_ahead" | "stampede_wait"

const refreshes: Record<Tier, Record<RefreshKind, (by?: number) => void>> = {
  memory: {
    refresh_ahead: fixedCounter(REFRESHES, refreshesHelp, { tier: "memory", kind: "refresh_ahead" }),
    stampede_wait: fixedCounter(REFRESHES, refreshesHelp, { tier: "memory", kind: "stampede_wait" })
  },
  redis: {
    refresh_ahead: fixedCounter(REFRESHES, refreshesHelp, { tier: "redis", kind: "refresh_ahead" }),
    stampede_wait: fixedCounter(REFRESHES, refreshesHelp, { tier: "redis", kind: "stampede_wait" })
  }
}

/** Entries held by memory tiers, over every cache of the process. @internal */
export const memoryEntries = fixedGauge(
  "liaison_cache_entries",
  "Entries held by the memory tiers of this process's caches",
  { tier: "memory" }
)

/** Counts a lookup. @internal */
export const countLookup = (tier: Tier, outcome: Outcome): void => lookups[tier][outcome]()

/** Counts a refresh ahead of expiry or a stampede wait. @internal */
export const countRefresh = (tier: Tier, kind: RefreshKind): void => refreshes[tier][kind]()

/**
 * Records a lookup on the caller's span: the tier that answered, what it found (or that a refresh
 * started ahead of expiry) and how long the caller waited for another caller's fetch.
 *
 * @internal
 */
export const lookupEvent = (
  span: Tracer.Span,
  tier: Tier,
  outcome: Outcome | "refresh_ahead",
  nowMillis: number,
  stampedeWaitMillis: number
): void => {
  span.event(
    "liaison.cache.get",
    eventTime(nowMillis),
    stampedeWaitMillis > 0
      ? {
        "liaison.cache.tier": tier,
        "liaison.cache.outcome": outcome,
        "liaison.cache.stampede_wait_ms": stampedeWaitMillis
      }
      : { "liaison.cache.tier": tier, "liaison.cache.outcome": outcome }
  )
}
