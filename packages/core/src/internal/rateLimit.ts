/**
 * The limiter engine over a store: token buckets reserve their permit and sleep until it is due;
 * sliding windows poll behind a per-key turnstile; a failing store falls back to a local limiter
 * at `limit / instances` (or lets calls through, or refuses them, as configured); every decision is
 * counted in `liaison_rate_limit_*` and, when a tracer is installed, a `liaison.rate_limit` event
 * on the current span. Then the adaptive AIMD limiter as pure steps applied with one `Ref.modify` /
 * `Ref.update`.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Ref from "effect/Ref"
import { RateLimited } from "../HttpError.js"
import type { InvalidOptions, StorageError } from "../LiaisonError.js"
import type * as RateLimit from "../RateLimit.js"
import { withoutStack } from "./fastError.js"
import * as Invalid from "./invalidOptions.js"
import type { OutageLog } from "./outageLog.js"
import { makeOutageLog } from "./outageLog.js"
import { limitOf, makeMemory } from "./rateLimitStore.js"
import { retryAfterMillis } from "./retryAfter.js"
import { activeSpan } from "./tracing.js"

type Rule = RateLimit.Rule

// ---------------------------------------------------------------------------------------------
// telemetry

const decisions = Metric.counter("liaison_rate_limit_decisions_total", {
  description: "Rate limiter decisions, by key (the policy's host, the rule's name or \"custom\") and outcome"
})
const waits = Metric.histogram(
  "liaison_rate_limit_wait_seconds",
  MetricBoundaries.fromIterable([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  "How long admitted calls waited for their permit, by key"
)
const fallbacks = Metric.counter("liaison_rate_limit_fallback_total", {
  description: "Decisions taken by the local fallback while the shared store (Redis) fails, by key"
})

/** The label sets of one metric key, built once: the registry caches hooks by the array's identity. */
interface Labels {
  readonly key: string
  readonly admitted: ReadonlyArray<MetricLabel.MetricLabel>
  readonly rejected: ReadonlyArray<MetricLabel.MetricLabel>
  readonly byKey: ReadonlyArray<MetricLabel.MetricLabel>
}

const labelsOf = (cache: Map<string, Labels>, key: string): Labels => {
  let labels = cache.get(key)
  if (labels === undefined) {
    const byKey = [MetricLabel.make("key", key)]
    labels = {
      key,
      byKey,
      admitted: [...byKey, MetricLabel.make("outcome", "admitted")],
      rejected: [...byKey, MetricLabel.make("outcome", "rejected")]
    }
    cache.set(key, labels)
  }
  return labels
}

/** Counts one decision; the span event only when a tracer that records is installed. */
const record = (
  labels: Labels,
  admitted: boolean,
  waitedMillis: number,
  fallback: boolean
): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => {
    decisions.unsafeUpdate(1, admitted ? labels.admitted : labels.rejected)
    if (admitted) waits.unsafeUpdate(waitedMillis / 1000, labels.byKey)
    if (fallback) fallbacks.unsafeUpdate(1, labels.byKey)
    const span = activeSpan(fiber)
    if (span === undefined) return Effect.void
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    span.event("liaison.rate_limit", clock.unsafeCurrentTimeNanos(), {
      "liaison.rate_limit.key": labels.key,
      "liaison.rate_limit.waited_ms": waitedMillis,
      "liaison.rate_limit.outcome": admitted ? "admitted" : "rejected",
      "liaison.rate_limit.fallback": fallback
    })
    return Effect.void
  })

// ---------------------------------------------------------------------------------------------
// the limiter

/** What the limiter does while its store fails. */
export type OnStoreFailure = "local" | "allow" | "deny"

interface Limiter {
  readonly store: RateLimit.StoreService
  readonly onStoreFailure: OnStoreFailure
  /** The fallback while the store fails: this process' share of each limit. */
  readonly local: RateLimit.StoreService
  readonly turnstiles: Map<string, Effect.Semaphore>
  readonly rules: Map<string, Rule>
  readonly labels: Map<string, Labels>
  /** A store that stops answering is logged once, then summed up, then its recovery. */
  readonly outage: OutageLog
}

/** A store's decision and whether the local fallback took it. */
interface Taken {
  readonly decision: RateLimit.Decision
  readonly fallback: boolean
}

const turnstile = (limiter: Limiter, key: string): Effect.Semaphore => {
  let semaphore = limiter.turnstiles.get(key)
  if (semaphore === undefined) {
    semaphore = Effect.unsafeMakeSemaphore(1)
    limiter.turnstiles.set(key, semaphore)
  }
  return semaphore
}

/** `rule` shared by `instances`: this instance's share (never below one permit). */
export const share = (rule: Rule, instances: number): Rule =>
  instances <= 1
    ? rule
    : rule._tag === "TokenBucket"
    ? { ...rule, capacity: Math.max(1, rule.capacity / instances), refillPerMilli: rule.refillPerMilli / instances }
    : { ...rule, limit: Math.max(1, Math.floor(rule.limit / instances)) }

const fixed = (allowed: boolean): Taken => ({
  decision: { allowed, remaining: 0, retryAfterMillis: 1000, nowMillis: 0 },
  fallback: false
})

/** The store failed: the local share of the limit decides, or a fixed answer, and the log says so once. */
const fallBack = (limiter: Limiter, key: string, rule: Rule, reserve: boolean, error: StorageError) => {
  const { onStoreFailure, store } = limiter
  const what = onStoreFailure === "local"
    ? `limiting locally to 1/${store.instances?.() ?? 1} of each limit`
    : onStoreFailure === "deny"
    ? "denying calls"
    : "allowing calls"
  const logged = limiter.outage.failed(`store failed, ${what}: ${error.message}`)
  if (onStoreFailure !== "local") return Effect.as(logged, fixed(onStoreFailure === "allow"))
  const local = share(rule, store.instances?.() ?? 1)
  const decided = reserve && limiter.local.reserve !== undefined
    ? limiter.local.reserve(key, local)
    : limiter.local.take(key, local)
  return Effect.zipRight(
    logged,
    Effect.map(Effect.orDie(decided), (decision): Taken => ({ decision, fallback: true }))
  )
}

const take = (limiter: Limiter, key: string, rule: Rule, reserve: boolean): Effect.Effect<Taken> => {
  const { store } = limiter
  const decided = reserve && store.reserve !== undefined ? store.reserve(key, rule) : store.take(key, rule)
  return Effect.matchEffect(decided, {
    onFailure: (error) => fallBack(limiter, key, rule, reserve, error),
    onSuccess: (decision) => Effect.as(limiter.outage.recovered, { decision, fallback: false })
  })
}

/** Asks until a permit comes (sliding windows, and stores that cannot reserve); whether the fallback gave it. */
const poll = (limiter: Limiter, key: string, rule: Rule): Effect.Effect<boolean> =>
  Effect.flatMap(take(limiter, key, rule, false), ({ decision, fallback }) =>
    decision.allowed
      ? Effect.succeed(fallback)
      : Effect.zipRight(
        Effect.sleep(Duration.millis(Math.max(1, decision.retryAfterMillis))),
        poll(limiter, key, rule)
      ))

const waitPolling = (limiter: Limiter, key: string, rule: Rule, labels: Labels): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (start) =>
    // One waiter per key at the head of the line; the rest queue on the turnstile in order.
    turnstile(limiter, key).withPermits(1)(
      Effect.flatMap(poll(limiter, key, rule), (fallback) =>
        Effect.flatMap(Clock.currentTimeMillis, (end) => record(labels, true, end - start, fallback)))
    ))

/** Token buckets: the permit is reserved on arrival; the caller sleeps until it is due. */
const waitReserved = (limiter: Limiter, key: string, rule: Rule, labels: Labels): Effect.Effect<void> =>
  Effect.flatMap(take(limiter, key, rule, true), ({ decision, fallback }) => {
    // Refused only by a failing store set to deny: ask again later, as a sliding window would.
    if (!decision.allowed) return waitPolling(limiter, key, rule, labels)
    const wait = decision.retryAfterMillis
    return wait <= 0
      ? record(labels, true, 0, fallback)
      // Rounded up to the nanosecond: a `Duration` keeps whole nanoseconds, and waking early would break the bound.
      : Effect.zipRight(
        Effect.sleep(Duration.nanos(BigInt(Math.ceil(wait * 1e6)))),
        record(labels, true, wait, fallback)
      )
  })

const failFast = (limiter: Limiter, key: string, rule: Rule, labels: Labels): Effect.Effect<void, RateLimited> =>
  Effect.flatMap(take(limiter, key, rule, false), ({ decision, fallback }) =>
    decision.allowed
      ? record(labels, true, 0, fallback)
      : Effect.zipRight(
        record(labels, false, 0, fallback),
        Effect.fail(withoutStack(() => new RateLimited({ key, retryAfterMillis: decision.retryAfterMillis }, true)))
      ))

const acquire = (
  limiter: Limiter,
  key: string,
  rule: Rule,
  mode: RateLimit.Mode,
  label: string | undefined
): Effect.Effect<void, RateLimited> => {
  limiter.rules.set(key, rule)
  const labels = labelsOf(limiter.labels, label ?? rule.name ?? "custom")
  return mode === "fail"
    ? failFast(limiter, key, rule, labels)
    : rule._tag === "TokenBucket"
    ? waitReserved(limiter, key, rule, labels)
    : waitPolling(limiter, key, rule, labels)
}

const snapshots = (limiter: Limiter): Effect.Effect<ReadonlyArray<RateLimit.Snapshot>> =>
  Effect.suspend(() =>
    Effect.forEach([...limiter.rules], ([key, rule]) =>
      Effect.map(
        Effect.orElseSucceed(limiter.store.remaining(key, rule), () => 0),
        (remaining): RateLimit.Snapshot => ({ key, algorithm: rule._tag, limit: limitOf(rule), remaining })
      ))
  )

/**
 * The limiter over `store`.
 *
 * @internal
 */
export const make = (
  store: RateLimit.StoreService,
  onStoreFailure: OnStoreFailure,
  defaultMode: RateLimit.Mode
): RateLimit.Service => {
  const limiter: Limiter = {
    store,
    onStoreFailure,
    local: makeMemory(),
    turnstiles: new Map(),
    rules: new Map(),
    labels: new Map(),
    outage: makeOutageLog("rate limiter")
  }
  return {
    acquire: (key, rule, mode = defaultMode, label) => acquire(limiter, key, rule, mode, label),
    snapshots: snapshots(limiter)
  }
}

// ---------------------------------------------------------------------------------------------
// adaptive

interface AdaptiveSettings {
  readonly initial: number
  readonly min: number
  readonly max: number
  readonly increase: number
  readonly decrease: number
}

interface AdaptiveState {
  readonly rate: number
  /** The header-learned ceiling, if any. */
  readonly ceiling: number
  readonly tokens: number
  readonly at: number
  readonly pausedUntil: number
}

/** @internal */
export interface AdaptiveDefaults {
  readonly min: number
  /** `max` is `initial` times this. */
  readonly maxOverInitial: number
  readonly increase: number
  readonly decrease: number
}

const resolveAdaptive = (
  options: RateLimit.AdaptiveOptions,
  defaults: AdaptiveDefaults
): AdaptiveSettings | InvalidOptions => {
  const settings: AdaptiveSettings = {
    initial: options.initial,
    min: options.min ?? defaults.min,
    max: options.max ?? options.initial * defaults.maxOverInitial,
    increase: options.increase ?? defaults.increase,
    decrease: options.decrease ?? defaults.decrease
  }
  const { decrease, increase, initial, max, min } = settings
  const invalid = Invalid.check([
    [initial > 0, "initial", "must be positive"],
    [min > 0 && min <= initial && initial <= max, "min/max", "need 0 < min ≤ initial ≤ max"],
    [increase > 0, "increase", "must be positive"],
    [decrease > 0 && decrease < 1, "decrease", "must be in (0, 1)"]
  ])
  return invalid ?? settings
}

const header = (headers: Readonly<Record<string, string | undefined>>, name: string): number | undefined => {
  const value = headers[`ratelimit-${name}`] ?? headers[`x-ratelimit-${name}`]
  if (value === undefined) return undefined
  const n = Number(value.split(/[;,]/, 1)[0])
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

/** Takes a token at `now`, or says how long until one (0: taken). */
const takeToken = (s: AdaptiveState, now: number): [number, AdaptiveState] => {
  if (now < s.pausedUntil) return [s.pausedUntil - now, s]
  const rate = Math.min(s.rate, s.ceiling)
  // At most one second's worth of burst.
  const tokens = Math.min(Math.max(1, rate), s.tokens + ((now - s.at) / 1000) * rate)
  return tokens >= 1
    ? [0, { ...s, tokens: tokens - 1, at: now }]
    : [Math.ceil(((1 - tokens) / rate) * 1000), { ...s, tokens, at: now }]
}

/** The state after an answer: AIMD on the status, a ceiling and a pause from the headers. */
const observed = (
  s: AdaptiveState,
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  now: number,
  settings: AdaptiveSettings
): AdaptiveState => {
  const remaining = header(headers, "remaining")
  const resetMillis = retryAfterMillis(
    { "ratelimit-reset": headers["ratelimit-reset"], "x-ratelimit-reset": headers["x-ratelimit-reset"] },
    now
  )
  const ceiling = remaining !== undefined && resetMillis !== undefined && resetMillis > 0
    ? Math.max(settings.min, remaining / (resetMillis / 1000))
    : s.ceiling
  const exhausted = remaining === 0 && resetMillis !== undefined ? now + resetMillis : 0
  if (status !== 429) {
    return {
      ...s,
      rate: Math.min(settings.max, s.rate + settings.increase / s.rate),
      ceiling,
      pausedUntil: Math.max(s.pausedUntil, exhausted)
    }
  }
  const wait = retryAfterMillis(headers, now) ?? 0
  return {
    ...s,
    rate: Math.max(settings.min, s.rate * settings.decrease),
    ceiling,
    // Empty from now: the time since the last call must not refill it into a burst.
    tokens: 0,
    at: now,
    pausedUntil: Math.max(s.pausedUntil, now + wait, exhausted)
  }
}

const adaptiveOf = (settings: AdaptiveSettings, now: number): RateLimit.Adaptive => {
  const ref = Ref.unsafeMake<AdaptiveState>({
    rate: settings.initial,
    ceiling: settings.max,
    tokens: 1,
    at: now,
    pausedUntil: 0
  })
  const gate = Effect.unsafeMakeSemaphore(1)
  const take = Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.modify(ref, (s) => takeToken(s, now)))
  const waitFor: Effect.Effect<void> = Effect.flatMap(
    take,
    (wait) => wait === 0 ? Effect.void : Effect.zipRight(Effect.sleep(Duration.millis(wait)), waitFor)
  )
  return {
    acquire: (mode = "wait") =>
      mode === "fail"
        ? Effect.flatMap(take, (wait) =>
          wait === 0
            ? Effect.void
            : Effect.fail(withoutStack(() => new RateLimited({ key: "adaptive", retryAfterMillis: wait }, true))))
        : gate.withPermits(1)(waitFor),
    observe: (status, headers) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => Ref.update(ref, (s) => observed(s, status, headers, now, settings))
      ),
    state: Effect.map(
      Ref.get(ref),
      (s) => ({ ratePerSecond: Math.min(s.rate, s.ceiling), pausedUntilMillis: s.pausedUntil })
    )
  }
}

/** @internal */
export const makeAdaptive = (
  options: RateLimit.AdaptiveOptions,
  defaults: AdaptiveDefaults
): Effect.Effect<RateLimit.Adaptive, InvalidOptions> => {
  const settings = resolveAdaptive(options, defaults)
  return "_tag" in settings
    ? Effect.fail(settings)
    : Effect.map(Clock.currentTimeMillis, (now) => adaptiveOf(settings, now))
}
