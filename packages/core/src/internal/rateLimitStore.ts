/**
 * Rate-limit stores: the counting, atomic per key. Memory (the `Clock`, so `TestClock` drives it)
 * and Redis (Lua scripts on the shared client, Redis `TIME` as the clock, every key expiring,
 * the keys of one limit hash-tagged into one slot).
 *
 * The stores and their types are not marked `@internal`: `test/properties/rateLimit.test.ts`
 * type-checks against the emitted declarations (`./internal/*` is not exported by the package).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { StorageError } from "../LiaisonError.js"
import type * as RateLimit from "../RateLimit.js"
import type * as Redis from "../Redis.js"
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

interface BucketState {
  tokens: number
  at: number
}

const refill = (state: BucketState, rule: Extract<Rule, { _tag: "TokenBucket" }>, now: number) => {
  state.tokens = Math.min(rule.capacity, state.tokens + Math.max(0, now - state.at) * rule.refillPerMilli)
  state.at = Math.max(state.at, now)
}

/** Timestamps in (now - window, now], oldest first: the sliding log. */
const prune = (log: Array<number>, windowMillis: number, now: number) => {
  let drop = 0
  while (drop < log.length && (log[drop] ?? 0) <= now - windowMillis) drop++
  if (drop > 0) log.splice(0, drop)
}

/**
 * Counts in this process, on the `Clock`.
 */
export const makeMemory = (): Store => {
  const buckets = new Map<string, BucketState>()
  const logs = new Map<string, Array<number>>()
  const bucket = (key: string, rule: Extract<Rule, { _tag: "TokenBucket" }>, now: number) => {
    let state = buckets.get(key)
    if (state === undefined) {
      state = { tokens: rule.capacity, at: now }
      buckets.set(key, state)
    }
    refill(state, rule, now)
    return state
  }
  const log = (key: string, rule: Extract<Rule, { _tag: "SlidingWindow" }>, now: number) => {
    let entries = logs.get(key)
    if (entries === undefined) {
      entries = []
      logs.set(key, entries)
    }
    prune(entries, rule.windowMillis, now)
    return entries
  }
  return {
    take: (key, rule) =>
      Effect.map(Clock.currentTimeMillis, (now): Decision => {
        if (rule._tag === "TokenBucket") {
          const state = bucket(key, rule, now)
          if (state.tokens >= 1) {
            state.tokens -= 1
            return { allowed: true, remaining: Math.floor(state.tokens), retryAfterMillis: 0, nowMillis: now }
          }
          return {
            allowed: false,
            remaining: 0,
            retryAfterMillis: Math.ceil((1 - state.tokens) / rule.refillPerMilli),
            nowMillis: now
          }
        }
        const entries = log(key, rule, now)
        if (entries.length < rule.limit) {
          entries.push(now)
          return { allowed: true, remaining: rule.limit - entries.length, retryAfterMillis: 0, nowMillis: now }
        }
        const oldest = entries[0] ?? now
        return { allowed: false, remaining: 0, retryAfterMillis: oldest + rule.windowMillis - now, nowMillis: now }
      }),
    remaining: (key, rule) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        rule._tag === "TokenBucket"
          ? Math.floor(bucket(key, rule, now).tokens)
          : rule.limit - log(key, rule, now).length)
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

const clock = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`

/** KEYS[1]: the bucket hash. ARGV: capacity, refill per ms, take (1) or peek (0). */
const tokenBucketScript = `${clock}
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
at = math.max(at, now)
local allowed = 0
local retry = 0
if ARGV[3] == '1' then
  if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  else
    retry = math.ceil((1 - tokens) / rate)
  end
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', at)
  -- Gone once it would be full again: an absent bucket is a full one.
  redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
end
return {allowed, math.floor(tokens), retry, now}
`

/** KEYS[1]: the log (a sorted set), KEYS[2]: its member counter. ARGV: limit, window ms, take (1) or peek (0). */
const slidingWindowScript = `${clock}
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

type Reply = [number, number, number, number]

const tokenBucket = redisScript(tokenBucketScript)
const slidingWindow = redisScript(slidingWindowScript)

const toDecision = ([allowed, remaining, retry, now]: Reply): Decision => ({
  allowed: allowed === 1,
  remaining,
  retryAfterMillis: retry,
  nowMillis: now
})

/**
 * Counts in Redis under `prefix`: atomic scripts, Redis `TIME` as the clock.
 */
export const makeRedis = (redis: Redis.Service, prefix: string): Store => {
  // `{key}` is the hash tag: a limit's keys live in one Redis Cluster slot.
  const keyOf = (key: string) => `${prefix}{${key}}`
  const run = (key: string, rule: Rule, take: boolean) =>
    Effect.tryPromise({
      try: () =>
        (rule._tag === "TokenBucket"
          ? tokenBucket.run(redis.client, [`${keyOf(key)}:bucket`], [
            rule.capacity,
            rule.refillPerMilli,
            take ? "1" : "0"
          ])
          : slidingWindow.run(
            redis.client,
            [`${keyOf(key)}:log`, `${keyOf(key)}:seq`],
            [rule.limit, rule.windowMillis, take ? "1" : "0"]
          )) as Promise<Reply>,
      catch: (cause) => new StorageError({ store: "rate-limit", operation: take ? "take" : "remaining", cause })
    })
  return {
    take: (key, rule) => Effect.map(run(key, rule, true), toDecision),
    remaining: (key, rule) => Effect.map(run(key, rule, false), ([, remaining]) => remaining)
  }
}
