/**
 * Rate-limit stores: the counting, atomic per key. Memory (the `Clock`, so `TestClock` drives it)
 * and Redis (Lua scripts on the shared client, Redis `TIME` as the clock, every key expiring,
 * the keys of one limit hash-tagged into one slot).
 *
 * A token bucket is kept as GCRA (virtual scheduling): one number per key, the theoretical
 * arrival time `tat` of the next call at the full rate. A call at `now` may start at
 * `max(tat, now) − τ` (τ = (burst − 1) × interval between permits); taking it moves `tat` on by
 * one interval. `reserve` takes the next permit at once and says how long to wait for it, so a
 * waiter that wakes late never loses the time: the schedule is kept by the store, not by the
 * waiters' wake-ups. The bucket bound follows: any k admissions span at least (k − burst)
 * intervals.
 *
 * The stores and their types are not marked `@internal`: `test/properties/rateLimit.test.ts`
 * type-checks against the emitted declarations (`./internal/*` is not exported by the package).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import { StorageError } from "../LiaisonError.js"
import type * as RateLimit from "../RateLimit.js"
import type * as Redis from "../Redis.js"
import { withTimeout } from "./redisGuard.js"
import { redisScript } from "./redisScript.js"

export type Rule = RateLimit.Rule

export type Decision = RateLimit.Decision

export type Store = RateLimit.StoreService

/**
 * The most permits a rule holds at once.
 *
 * @internal
 */
export const limitOf = (rule: Rule): number => rule._tag === "TokenBucket" ? rule.capacity : rule.limit

// ---------------------------------------------------------------------------------------------
// memory

type Bucket = Extract<Rule, { _tag: "TokenBucket" }>

/** Milliseconds between permits at the full rate. */
const intervalOf = (rule: Bucket): number => 1 / rule.refillPerMilli

/** Differences below this (in milliseconds, or in permits) are float noise. */
const floatNoise = 1e-9

/** Permits left at `now` when the next permit is theoretically due at `tat`. */
const tokensLeft = (rule: Bucket, tat: number, now: number): number =>
  Math.max(0, Math.min(rule.capacity, Math.floor(rule.capacity - (tat - now) / intervalOf(rule) + floatNoise)))

/**
 * One GCRA step at `now` on `tat` (undefined: a full bucket). `reserve`: the permit is taken
 * even if it is due later (the answer says when); otherwise only if it is due now.
 */
const gcra = (rule: Bucket, stored: number | undefined, now: number, reserve: boolean): [Decision, number] => {
  const interval = intervalOf(rule)
  const tat = Math.max(stored ?? now, now)
  const due = tat - (rule.capacity - 1) * interval
  // `tat` is a sum of intervals (e.g. 1/3 ms): float noise of 1e-15 ms must not turn a permit due
  // now into a wait (a full bucket of 3 at 3 per ms once admitted only 2 at once).
  const waits = due - now > floatNoise
  if (waits && !reserve) {
    return [{ allowed: false, remaining: 0, retryAfterMillis: Math.ceil(due - now), nowMillis: now }, tat]
  }
  const at = waits ? due : now
  const next = tat + interval
  return [{ allowed: true, remaining: tokensLeft(rule, next, now), retryAfterMillis: at - now, nowMillis: at }, next]
}

/** Timestamps in (now - window, now], oldest first: the sliding log. */
const prune = (log: Array<number>, windowMillis: number, now: number) => {
  let drop = 0
  while (drop < log.length && (log[drop] ?? 0) <= now - windowMillis) drop++
  if (drop > 0) log.splice(0, drop)
}

const slide = (entries: Array<number>, rule: Extract<Rule, { _tag: "SlidingWindow" }>, now: number): Decision => {
  if (entries.length < rule.limit) {
    entries.push(now)
    return { allowed: true, remaining: rule.limit - entries.length, retryAfterMillis: 0, nowMillis: now }
  }
  const oldest = entries[0] ?? now
  return { allowed: false, remaining: 0, retryAfterMillis: oldest + rule.windowMillis - now, nowMillis: now }
}

/**
 * Counts in this process, on the `Clock`.
 */
export const makeMemory = (): Store => {
  const tats = new Map<string, number>()
  const logs = new Map<string, Array<number>>()
  const log = (key: string, rule: Extract<Rule, { _tag: "SlidingWindow" }>, now: number) => {
    let entries = logs.get(key)
    if (entries === undefined) {
      entries = []
      logs.set(key, entries)
    }
    prune(entries, rule.windowMillis, now)
    return entries
  }
  const step = (key: string, rule: Bucket, now: number, reserve: boolean) => {
    const [decision, tat] = gcra(rule, tats.get(key), now, reserve)
    tats.set(key, tat)
    return decision
  }
  return {
    take: (key, rule) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now): Decision =>
          rule._tag === "TokenBucket" ? step(key, rule, now, false) : slide(log(key, rule, now), rule, now)
      ),
    reserve: (key, rule) =>
      Effect.map(
        Clock.currentTimeMillis,
        (now) => rule._tag === "TokenBucket" ? step(key, rule, now, true) : slide(log(key, rule, now), rule, now)
      ),
    remaining: (key, rule) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        rule._tag === "TokenBucket"
          ? tokensLeft(rule, Math.max(tats.get(key) ?? now, now), now)
          : rule.limit - log(key, rule, now).length),
    instances: () => 1
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

/** Redis `TIME` in milliseconds, with its microseconds (a fraction). */
const clock = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
`

/**
 * GCRA. KEYS[1]: the theoretical arrival time, in whole microseconds of Redis `TIME` (rounded up at
 * every step: a stored time is never early, so no window ever holds one permit too many). ARGV:
 * interval between permits (ms), burst, mode: 'take' (only if due now), 'reserve' (the next
 * permit, due when it is), 'peek'. Times are answered as strings of milliseconds: a Lua number
 * returned to Redis would lose its fraction.
 */
const tokenBucketScript = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1]) * 1000
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local function ms(us) return string.format('%.3f', us / 1000) end
local function left(t) return math.max(0, math.min(burst, math.floor(burst - (t - now) / interval + 1e-9))) end
if ARGV[3] == 'peek' then return {0, left(tat), '0', ms(now)} end
local due = math.ceil(tat - (burst - 1) * interval)
if due > now and ARGV[3] == 'take' then return {0, 0, math.ceil((due - now) / 1000), ms(now)} end
local at = math.max(due, now)
local nexttat = math.ceil(tat + interval)
-- Gone once the bucket would be full again: an absent bucket is a full one.
redis.call('SET', KEYS[1], string.format('%.0f', nexttat), 'PX', math.ceil((nexttat - now) / 1000) + 1000)
return {1, left(nexttat), ms(at - now), ms(at)}
`

/** KEYS[1]: the log (a sorted set), KEYS[2]: its member counter. ARGV: limit, window ms, take (1) or peek (0). */
const slidingWindowScript = `${clock}
now = math.floor(now)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if ARGV[3] ~= '1' then
  return {0, limit - count, 0, now}
end
if count < limit then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[1], now, now .. ':' .. seq)
  redis.call('PEXPIRE', KEYS[1], window)
  redis.call('PEXPIRE', KEYS[2], window)
  return {1, limit - count - 1, 0, now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now, now}
`

/**
 * The live instances: a sorted set of instance ids scored by their last heartbeat (Redis `TIME`).
 * KEYS[1]: the set. ARGV: this instance's id, time to live (ms), 'beat' or 'leave'. Answers how
 * many instances beat within the time to live.
 */
const heartbeatScript = `${clock}
if ARGV[3] == 'leave' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return redis.call('ZCARD', KEYS[1])
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
`

type Reply = [number, number, number | string, number | string]

const tokenBucket = redisScript(tokenBucketScript)
const slidingWindow = redisScript(slidingWindowScript)
const heartbeat = redisScript(heartbeatScript)

const toDecision = ([allowed, remaining, retry, now]: Reply): Decision => ({
  allowed: allowed === 1,
  remaining,
  retryAfterMillis: Number(retry),
  nowMillis: Number(now)
})

/** How a Redis store behaves: its key prefix, its wait bound, its heartbeat. */
export interface RedisStoreOptions {
  readonly prefix: string
  /** A decision that takes longer fails (the limiter falls back): Redis must never hold a call up for long. */
  readonly timeoutMillis: number
  /** How often this instance says it is alive; it counts as gone after 3 beats missed. */
  readonly heartbeatMillis: number
}

/** A Redis store, with the heartbeat its layer runs. */
export interface RedisStore extends Store {
  /** Says this instance is alive and learns how many are (kept for {@link Store.instances}). */
  readonly beat: Effect.Effect<number, StorageError>
  /** Takes this instance out of the count (when its layer closes). */
  readonly leave: Effect.Effect<void, StorageError>
}

type Mode = "take" | "reserve" | "peek"

/**
 * Counts in Redis under `prefix`: atomic scripts, Redis `TIME` as the clock.
 */
export const makeRedis = (redis: Redis.Service, options: RedisStoreOptions | string): RedisStore => {
  const { heartbeatMillis, prefix, timeoutMillis } = typeof options === "string"
    ? { prefix: options, timeoutMillis: 200, heartbeatMillis: 1000 }
    : options
  // `{key}` is the hash tag: a limit's keys live in one Redis Cluster slot.
  const keyOf = (key: string) => `${prefix}{${key}}`
  // Tighter than the client's command timeout: a limiter sits on every call's path.
  const guarded = <A>(operation: string, run: () => Promise<A>) =>
    Effect.tryPromise({
      try: () => withTimeout(run(), timeoutMillis, "the rate limit's Redis decision"),
      catch: (cause) => new StorageError({ store: "rate-limit", operation, cause })
    })
  const run = (key: string, rule: Rule, mode: Mode) =>
    guarded(mode, () =>
      (rule._tag === "TokenBucket"
        ? tokenBucket.run(redis.client, [`${keyOf(key)}:tat`], [1 / rule.refillPerMilli, rule.capacity, mode])
        : slidingWindow.run(
          redis.client,
          [`${keyOf(key)}:log`, `${keyOf(key)}:seq`],
          [rule.limit, rule.windowMillis, mode === "peek" ? "0" : "1"]
        )) as Promise<Reply>)
  const id = randomUUID()
  const live = `${prefix}instances`
  let instances = 1
  const ttl = heartbeatMillis * 3
  return {
    take: (key, rule) => Effect.map(run(key, rule, "take"), toDecision),
    reserve: (key, rule) => Effect.map(run(key, rule, "reserve"), toDecision),
    remaining: (key, rule) => Effect.map(run(key, rule, "peek"), ([, remaining]) => remaining),
    instances: () => instances,
    beat: Effect.tap(
      guarded("heartbeat", () => heartbeat.run(redis.client, [live], [id, ttl, "beat"]) as Promise<number>),
      (count) => Effect.sync(() => (instances = Math.max(1, count)))
    ),
    leave: Effect.asVoid(guarded("leave", () => heartbeat.run(redis.client, [live], [id, ttl, "leave"])))
  }
}
