/**
 * The shared breaker's stores: where the cluster's view of each breaker lives (trip reports for
 * the quorum, the probe lease, until when it is open) and how its decisions reach every
 * instance. Memory (one process: instances that share it behave as a cluster, on the `Clock`)
 * and Redis (Lua on the shared client, Redis `TIME` as the clock, decisions on pub/sub).
 *
 * Both follow the same protocol, the one the model test checks:
 * - a trip report opens the breaker cluster-wide once `quorum` instances reported one within
 *   `window` (ignored while it is open cluster-wide);
 * - the probe lease goes to the instance that asks while no other instance holds it;
 * - a probe's verdict (closed, or open again) is the cluster's at once and frees the lease.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type * as CircuitBreaker from "../../CircuitBreaker.js"
import type { OpenedBy } from "../../HttpError.js"
import { StorageError } from "../../LiaisonError.js"
import type * as Redis from "../../Redis.js"
import { makeOutageLog } from "../outageLog.js"
import { redisScript } from "../redisScript.js"

type Store = CircuitBreaker.StoreService
type SharedEvent = CircuitBreaker.SharedEvent

// ---------------------------------------------------------------------------------------------
// memory

interface Shared {
  /** Open cluster-wide until (0: not open). */
  until: number
  openedBy: OpenedBy | undefined
  /** Trip reports: instance → when. */
  readonly trips: Map<string, number>
  lease: { readonly holder: string; readonly until: number } | undefined
}

/** @internal */
export const makeMemory = (): Store => {
  const shared = new Map<string, Shared>()
  const handlers = new Set<(event: SharedEvent) => Effect.Effect<void>>()
  const of = (key: string): Shared => {
    let entry = shared.get(key)
    if (entry === undefined) {
      entry = { until: 0, openedBy: undefined, trips: new Map(), lease: undefined }
      shared.set(key, entry)
    }
    return entry
  }
  // Delivered before the publishing effect ends: in memory the cluster is always in step.
  const publish = (event: SharedEvent) => Effect.forEach([...handlers], (handler) => handler(event), { discard: true })
  const open = (entry: Shared, key: string, now: number, trip: { readonly millis: number } & Origin) => {
    entry.until = now + trip.millis
    entry.openedBy = trip.openedBy
    entry.trips.clear()
    return publish(openEvent(key, trip))
  }
  return {
    reportTrip: (key, trip) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const entry = of(key)
        if (entry.until > now) return Effect.void
        entry.trips.set(trip.instance, now)
        for (const [instance, at] of entry.trips) if (at <= now - trip.windowMillis) entry.trips.delete(instance)
        return entry.trips.size >= trip.quorum ? open(entry, key, now, trip) : Effect.void
      }),
    acquireProbe: (key, instance, leaseMillis) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = of(key)
        const lease = entry.lease
        if (lease !== undefined && lease.holder !== instance && lease.until > now) return lease.until - now
        entry.lease = { holder: instance, until: now + leaseMillis }
        return undefined
      }),
    settle: (key, verdict) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const entry = of(key)
        if (entry.lease?.holder === verdict.instance) entry.lease = undefined
        if (verdict._tag === "Open") return open(entry, key, now, verdict)
        entry.until = 0
        entry.openedBy = undefined
        entry.trips.clear()
        return publish({ _tag: "Closed", key, origin: verdict.instance })
      }),
    current: (key) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const entry = shared.get(key)
        return entry === undefined || entry.until <= now
          ? undefined
          : { millis: entry.until - now, openedBy: entry.openedBy }
      }),
    subscribe: (handler) =>
      Effect.acquireRelease(Effect.sync(() => handlers.add(handler)), () => Effect.sync(() => handlers.delete(handler)))
        .pipe(Effect.asVoid)
  }
}

interface Origin {
  readonly instance: string
  readonly openedBy?: OpenedBy | undefined
}

const openEvent = (key: string, trip: { readonly millis: number } & Origin): SharedEvent =>
  trip.openedBy === undefined
    ? { _tag: "Open", key, millis: trip.millis, origin: trip.instance }
    : { _tag: "Open", key, millis: trip.millis, origin: trip.instance, openedBy: trip.openedBy }

// ---------------------------------------------------------------------------------------------
// Redis

const clock = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`

/**
 * KEYS: state hash, trips zset. ARGV: instance, open ms, quorum, window ms, channel, message,
 * openedBy (JSON or ''). 1 when open cluster-wide (now or already), else 0.
 */
const tripScript = redisScript(`${clock}
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if openUntil > now then return 1 end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'until', now + tonumber(ARGV[2]), 'openedBy', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
`)

/** KEYS: the lease. ARGV: instance, lease ms. -1 when granted, else the holder's remaining ms. */
const acquireScript = redisScript(`
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return -1
end
return redis.call('PTTL', KEYS[1])
`)

/**
 * KEYS: state hash, lease, trips. ARGV: instance, 'open' | 'closed', open ms, channel, message,
 * openedBy (JSON or '').
 */
const settleScript = redisScript(`
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
if ARGV[2] == 'closed' then
  redis.call('DEL', KEYS[1], KEYS[3])
else
  ${clock}
  redis.call('HSET', KEYS[1], 'until', now + tonumber(ARGV[3]), 'openedBy', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`)

/** KEYS: state hash. {remaining ms, openedBy} while open cluster-wide, else {0, ''}. */
const currentScript = redisScript(`${clock}
local state = redis.call('HMGET', KEYS[1], 'until', 'openedBy')
local openUntil = tonumber(state[1] or '0')
if openUntil <= now then return {0, ''} end
return {openUntil - now, state[2] or ''}
`)

const isOpenedBy = (u: unknown): u is OpenedBy =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" && "message" in u &&
  typeof u.message === "string"

const parseOpenedBy = (json: string): OpenedBy | undefined => {
  if (json === "") return undefined
  try {
    const parsed: unknown = JSON.parse(json)
    return isOpenedBy(parsed) ? { _tag: parsed._tag, message: parsed.message } : undefined
  } catch {
    return undefined
  }
}

/** An event as published by another instance, or `undefined` when it is not one. */
const parseEvent = (message: string): SharedEvent | undefined => {
  try {
    const event: unknown = JSON.parse(message)
    if (typeof event !== "object" || event === null || !("key" in event) || !("origin" in event)) return undefined
    const { key, origin } = event
    if (typeof key !== "string" || typeof origin !== "string") return undefined
    if ("_tag" in event && event._tag === "Closed") return { _tag: "Closed", key, origin }
    if (!("_tag" in event) || event._tag !== "Open" || !("millis" in event)) return undefined
    const millis = Number(event.millis)
    if (!(millis > 0)) return undefined
    const openedBy = "openedBy" in event && isOpenedBy(event.openedBy) ? event.openedBy : undefined
    return openEvent(key, { millis, instance: origin, openedBy })
  } catch {
    return undefined
  }
}

/**
 * The Redis store under `prefix`. Commands are sent only while the connection is ready (a Redis
 * that is down fails at once, nothing waits in ioredis' offline queue); trip reports and probe
 * verdicts are sent without waiting for the answer, their failures logged once per outage.
 *
 * @internal
 */
export const makeRedis = (redis: Redis.Service, prefix: string): Effect.Effect<Store> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    const { client } = redis
    const channel = `${prefix}changes`
    // `{key}` is the hash tag: a breaker's keys live in one Redis Cluster slot.
    const keysOf = (key: string) => ({
      state: `${prefix}{${key}}:state`,
      trips: `${prefix}{${key}}:trips`,
      lease: `${prefix}{${key}}:probe`
    })
    const outage = makeOutageLog("circuit breaker store (Redis)")
    const runLog = Runtime.runFork(runtime)
    const ready = (operation: string, run: () => Promise<unknown>): Promise<unknown> =>
      client.status === "ready"
        ? run()
        : Promise.reject(new Error(`Redis is not connected (${client.status}) during ${operation}`))
    /** Sends without waiting; the answer (or failure) is noted in the outage log. */
    const send = (operation: string, run: () => Promise<unknown>) =>
      Effect.sync(() => {
        ready(operation, run).then(
          () => runLog(outage.recovered),
          (cause: unknown) =>
            runLog(outage.failed(new StorageError({ store: "circuit-breaker", operation, cause }).message))
        )
      })
    const ask = <A>(operation: string, run: () => Promise<unknown>, decode: (reply: unknown) => A) =>
      Effect.tryPromise({
        try: () => ready(operation, run).then(decode),
        catch: (cause) => new StorageError({ store: "circuit-breaker", operation, cause })
      })
    const json = (openedBy: OpenedBy | undefined) => openedBy === undefined ? "" : JSON.stringify(openedBy)
    return {
      reportTrip: (key, trip) => {
        const keys = keysOf(key)
        const message = JSON.stringify(openEvent(key, trip))
        return send("report a trip", () =>
          tripScript.run(client, [keys.state, keys.trips], [
            trip.instance,
            trip.millis,
            trip.quorum,
            trip.windowMillis,
            channel,
            message,
            json(trip.openedBy)
          ]))
      },
      acquireProbe: (key, instance, leaseMillis) =>
        ask(
          "take the probe lease",
          () => acquireScript.run(client, [keysOf(key).lease], [instance, leaseMillis]),
          (reply) => Number(reply) < 0 ? undefined : Math.max(1, Number(reply))
        ),
      settle: (key, verdict) => {
        const keys = keysOf(key)
        const event: SharedEvent = verdict._tag === "Closed"
          ? { _tag: "Closed", key, origin: verdict.instance }
          : openEvent(key, verdict)
        return send("settle a probe", () =>
          settleScript.run(client, [keys.state, keys.lease, keys.trips], [
            verdict.instance,
            verdict._tag === "Closed" ? "closed" : "open",
            verdict._tag === "Closed" ? 0 : verdict.millis,
            channel,
            JSON.stringify(event),
            verdict._tag === "Closed" ? "" : json(verdict.openedBy)
          ]))
      },
      current: (key) =>
        ask("read the state", () => currentScript.run(client, [keysOf(key).state], []), (reply) => {
          const [millis, openedBy] = reply as [number, string]
          return millis > 0 ? { millis, openedBy: parseOpenedBy(openedBy) } : undefined
        }),
      subscribe: (handler) => subscribe(redis, channel, (event) => Runtime.runFork(runtime)(handler(event)))
    }
  })

const subscribeWaitMillis = 2_000

/**
 * The subscriber: its own connection (subscriber mode, resubscribing after a reconnection),
 * closed with the scope.
 */
const subscribe = (
  redis: Redis.Service,
  channel: string,
  deliver: (event: SharedEvent) => void
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const subscriber = redis.client.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true })
      subscriber.on("error", () => {})
      subscriber.on("message", (from: string, message: string) => {
        if (from !== channel) return
        const event = parseEvent(message)
        if (event !== undefined) deliver(event)
      })
      return subscriber
    }),
    (subscriber) => Effect.sync(() => subscriber.disconnect())
  ).pipe(
    // Subscribed before the layer is up, when Redis answers; a Redis that is down delays start-up
    // by at most `subscribeWaitMillis` (ioredis subscribes once it connects).
    Effect.tap((subscriber) =>
      Effect.promise(() => subscriber.subscribe(channel).catch(() => undefined)).pipe(
        Effect.timeout(subscribeWaitMillis),
        Effect.ignore
      )
    ),
    Effect.asVoid
  )
