/**
 * The limiter engine over a store (a per-key turnstile for waiters, the store's failure policy),
 * and the adaptive AIMD limiter as pure steps applied with one `Ref.modify` / `Ref.update`.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { RateLimited } from "../HttpError.js"
import type { InvalidOptions } from "../LiaisonError.js"
import type * as RateLimit from "../RateLimit.js"
import { withoutStack } from "./fastError.js"
import * as Invalid from "./invalidOptions.js"
import type { OutageLog } from "./outageLog.js"
import { makeOutageLog } from "./outageLog.js"
import { limitOf } from "./rateLimitStore.js"
import { retryAfterMillis } from "./retryAfter.js"

type Rule = RateLimit.Rule

interface Limiter {
  readonly store: RateLimit.StoreService
  readonly deny: boolean
  readonly turnstiles: Map<string, Effect.Semaphore>
  readonly rules: Map<string, Rule>
  /** A store that stops answering is logged once, then summed up, then its recovery. */
  readonly outage: OutageLog
}

const turnstile = (limiter: Limiter, key: string): Effect.Semaphore => {
  let semaphore = limiter.turnstiles.get(key)
  if (semaphore === undefined) {
    semaphore = Effect.unsafeMakeSemaphore(1)
    limiter.turnstiles.set(key, semaphore)
  }
  return semaphore
}

/** A failed store lets the call through or refuses it, as configured, and says so in the log. */
const take = (limiter: Limiter, key: string, rule: Rule): Effect.Effect<RateLimit.Decision> =>
  limiter.store.take(key, rule).pipe(
    Effect.tap(limiter.outage.recovered),
    Effect.catchAll((error) =>
      Effect.as(
        limiter.outage.failed(`store failed, ${limiter.deny ? "denying" : "allowing"} calls: ${error.message}`),
        { allowed: !limiter.deny, remaining: 0, retryAfterMillis: 1000, nowMillis: 0 }
      )
    )
  )

const waitFor = (limiter: Limiter, key: string, rule: Rule): Effect.Effect<void> =>
  Effect.flatMap(take(limiter, key, rule), (decision) =>
    decision.allowed
      ? Effect.void
      : Effect.zipRight(
        Effect.sleep(Duration.millis(Math.max(1, decision.retryAfterMillis))),
        waitFor(limiter, key, rule)
      ))

const acquire = (limiter: Limiter, key: string, rule: Rule, mode: RateLimit.Mode): Effect.Effect<void, RateLimited> => {
  limiter.rules.set(key, rule)
  return mode === "fail"
    ? Effect.flatMap(take(limiter, key, rule), (decision) =>
      decision.allowed
        ? Effect.void
        : Effect.fail(withoutStack(() => new RateLimited({ key, retryAfterMillis: decision.retryAfterMillis }, true))))
    // One waiter per key at the head of the line; the rest queue on the turnstile in order.
    : turnstile(limiter, key).withPermits(1)(waitFor(limiter, key, rule))
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
  onStoreFailure: "allow" | "deny",
  defaultMode: RateLimit.Mode
): RateLimit.Service => {
  const limiter: Limiter = {
    store,
    deny: onStoreFailure === "deny",
    turnstiles: new Map(),
    rules: new Map(),
    outage: makeOutageLog("rate limiter")
  }
  return {
    acquire: (key, rule, mode = defaultMode) => acquire(limiter, key, rule, mode),
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
