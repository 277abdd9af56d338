/**
 * A retry budget per host, after Finagle's `RetryBudget`: over a sliding window (ten buckets),
 * retries may be at most `minRetries + ratio × requests`. During an outage every first attempt
 * still goes out, but retries stop multiplying the load.
 *
 * The counting is a store: memory (this process, on the caller's clock) or Redis (every
 * instance counts into one budget per host; atomic Lua, Redis `TIME` as the clock). A Redis
 * store counts locally too and decides locally while Redis fails (fail open to the local
 * budget, one log line per outage).
 */
import * as Effect from "effect/Effect"
import type * as Redis from "../Redis.js"
import type * as Retry from "../Retry.js"
import { makeOutageLog } from "./outageLog.js"
import { redisScript } from "./redisScript.js"

/** @internal */
export interface BudgetSettings {
  readonly ratio: number
  /** Retries always allowed per window, so a quiet host can still retry. */
  readonly minRetries: number
  readonly windowMillis: number
}

const buckets = 10

interface Counts {
  /** The start of each bucket's period, and its counts. */
  readonly starts: Array<number>
  readonly requests: Array<number>
  readonly retries: Array<number>
}

/**
 * One policy's budget: its settings over a store (the default: a memory store of its own).
 *
 * @internal
 */
export interface RetryBudget {
  readonly settings: BudgetSettings
  readonly store: Retry.BudgetStoreService
}

/** @internal */
export const make = (settings: BudgetSettings, store: Retry.BudgetStoreService = makeMemory()): RetryBudget => ({
  settings,
  store
})

/**
 * Counts in this process; synchronous inside (no allocation once a host is known).
 *
 * @internal
 */
export const makeMemory = (): Retry.BudgetStoreService => {
  // One table per window length: policies with different windows never share buckets.
  const hosts = new Map<string, Counts>()
  const countsAt = (host: string, settings: BudgetSettings, now: number) => {
    const id = `${settings.windowMillis}:${host}`
    let counts = hosts.get(id)
    if (counts === undefined) {
      counts = {
        starts: new Array(buckets).fill(-Infinity),
        requests: new Array(buckets).fill(0),
        retries: new Array(buckets).fill(0)
      }
      hosts.set(id, counts)
    }
    const bucketMillis = settings.windowMillis / buckets
    const period = Math.floor(now / bucketMillis)
    const index = period % buckets
    const start = period * bucketMillis
    if (counts.starts[index] !== start) {
      counts.starts[index] = start
      counts.requests[index] = 0
      counts.retries[index] = 0
    }
    return { counts, index }
  }
  const sumInWindow = (values: Array<number>, counts: Counts, now: number, windowMillis: number) => {
    let sum = 0
    for (let i = 0; i < buckets; i++) {
      if ((counts.starts[i] ?? -Infinity) > now - windowMillis) sum += values[i] ?? 0
    }
    return sum
  }
  const tryRetrySync = (host: string, settings: BudgetSettings, now: number): boolean => {
    const { counts, index } = countsAt(host, settings, now)
    const allowed = settings.minRetries +
      settings.ratio * sumInWindow(counts.requests, counts, now, settings.windowMillis)
    if (sumInWindow(counts.retries, counts, now, settings.windowMillis) + 1 > allowed) return false
    counts.retries[index] = (counts.retries[index] ?? 0) + 1
    return true
  }
  return {
    request: (host, settings, now) => {
      const { counts, index } = countsAt(host, settings, now)
      counts.requests[index] = (counts.requests[index] ?? 0) + 1
    },
    tryRetry: (host, settings, now) => Effect.sync(() => tryRetrySync(host, settings, now))
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

/**
 * KEYS[1]: the host's hash (fields s<i>, q<i>, r<i>: bucket i's period, requests, retries).
 * ARGV: window ms, op (`q` counts a request, `r` tries a retry), ratio, min retries.
 * Returns 1 when the request is counted or the retry allowed, else 0.
 */
const budgetScript = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
local bucket = window / ${buckets}
local period = math.floor(now / bucket)
local index = period % ${buckets}
local fields = {}
for i = 0, ${buckets - 1} do
  fields[#fields + 1] = 's' .. i
  fields[#fields + 1] = 'q' .. i
  fields[#fields + 1] = 'r' .. i
end
local values = redis.call('HMGET', KEYS[1], unpack(fields))
local requests, retries = 0, 0
local current = tonumber(values[index * 3 + 1]) == period
for i = 0, ${buckets - 1} do
  local start = tonumber(values[i * 3 + 1])
  if start ~= nil and start * bucket > now - window then
    requests = requests + (tonumber(values[i * 3 + 2]) or 0)
    retries = retries + (tonumber(values[i * 3 + 3]) or 0)
  end
end
if not current then
  redis.call('HSET', KEYS[1], 's' .. index, period, 'q' .. index, 0, 'r' .. index, 0)
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window + bucket))
if ARGV[2] == 'q' then
  redis.call('HINCRBY', KEYS[1], 'q' .. index, 1)
  return 1
end
if retries + 1 > tonumber(ARGV[4]) + tonumber(ARGV[3]) * requests then return 0 end
redis.call('HINCRBY', KEYS[1], 'r' .. index, 1)
return 1
`

const script = redisScript(budgetScript)

/** The longest a retry waits for Redis before the local budget decides. */
const redisWaitMillis = 100

/** How long Redis is left alone after it failed (then the next call tries it again). */
const redisPauseMillis = 1000

/** `promise`, or a rejection after {@link redisWaitMillis} (a plain timer: any `Clock` in context). */
const bounded = <A>(promise: Promise<A>): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${redisWaitMillis} ms`)), redisWaitMillis)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })

/**
 * One budget per host for every instance on this Redis, under `prefix`. A request is counted
 * in the background (the call never waits for Redis); a retry asks Redis, and while Redis
 * fails the local budget (which counts everything too) decides.
 *
 * @internal
 */
export const makeRedis = (redis: Redis.Service, prefix: string): Retry.BudgetStoreService => {
  const local = makeMemory()
  const outage = makeOutageLog("retry budget")
  /** After a failure, Redis is left alone for a while: the local budget decides at once. */
  let downUntil = 0
  let lastError = ""
  const failed = (error: unknown) => {
    downUntil = Date.now() + redisPauseMillis
    lastError = error instanceof Error ? error.message : String(error)
  }
  // `{host}` is the hash tag: one host's budget lives in one Redis Cluster slot.
  const keyOf = (host: string, settings: BudgetSettings) => `${prefix}{${host}}:${settings.windowMillis}`
  const args = (settings: BudgetSettings, op: "q" | "r") => [
    settings.windowMillis,
    op,
    settings.ratio,
    settings.minRetries
  ]
  const decideLocally = (host: string, settings: BudgetSettings, now: number) =>
    Effect.zipRight(
      outage.failed(`Redis failed, deciding with this instance's budget: ${lastError}`),
      local.tryRetry(host, settings, now)
    )
  return {
    request: (host, settings, now) => {
      local.request(host, settings, now)
      if (Date.now() < downUntil) return
      script.run(redis.client, [keyOf(host, settings)], args(settings, "q")).catch(failed)
    },
    tryRetry: (host, settings, now) =>
      Effect.suspend(() => {
        if (Date.now() < downUntil) return decideLocally(host, settings, now)
        return Effect.tryPromise(() => bounded(script.run(redis.client, [keyOf(host, settings)], args(settings, "r"))))
          .pipe(
            Effect.flatMap((allowed) =>
              Effect.zipRight(
                outage.recovered,
                // The local budget keeps its own count of retries, for when Redis goes away.
                Effect.as(local.tryRetry(host, settings, now), allowed === 1)
              )
            ),
            Effect.catchAll((error) => {
              failed(error.error)
              return decideLocally(host, settings, now)
            })
          )
      })
  }
}
