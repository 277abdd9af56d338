import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { Depth, State, StoredRecord, StoreService } from "../../DurableQueue.js"
import type { StorageError } from "../../LiaisonError.js"
import type { Client as IORedis } from "../../Redis.js"
import { redisScript } from "../redisScript.js"
import { makeWakeups, storageError } from "./store.js"

/*
 * One queue is five keys `<prefix>:{dq:<name>}:<part>` sharing the hash tag `{dq:<name>}` (one
 * Redis Cluster slot), every one passed to the scripts in KEYS:
 *
 *   due  ZSET  id → when a queued item is due, or when a leased item's lease ends
 *   exp  ZSET  id → when the record expires (swept by the write scripts, 50 at a time)
 *   val  HASH  id → the value (JSON, written once)
 *   st   HASH  id → "state|attempts|token|enqueuedAt|updatedAt"
 *   log  HASH  id → the attempt log (JSON written by the client, never parsed here)
 *
 * Times are milliseconds from the caller's clock (Effect's `Clock`), so `TestClock` drives leases
 * and delays. Every write script ends by making each key live at least as long as the record it
 * wrote (`PTTL` compared, never shortened), so every key expires once its queue falls idle.
 */

const prelude = `
local due, exp, val, st, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local function parse(s)
  if not s then return nil end
  local state, attempts, token, enq, upd = string.match(s, "^(%a+)|(%d+)|([^|]*)|(%d+)|(%d+)$")
  if not state then return nil end
  return { state = state, attempts = tonumber(attempts), token = token, enq = enq, upd = upd }
end
local function keep(ttl)
  for _, key in ipairs(KEYS) do
    local current = redis.call("PTTL", key)
    if current == -1 or (current >= 0 and current < ttl) then redis.call("PEXPIRE", key, ttl) end
  end
end
local function drop(id)
  redis.call("ZREM", due, id)
  redis.call("ZREM", exp, id)
  redis.call("HDEL", val, id)
  redis.call("HDEL", st, id)
  redis.call("HDEL", log, id)
end
local function purge(now)
  for _, id in ipairs(redis.call("ZRANGEBYSCORE", exp, "-inf", now, "LIMIT", 0, 50)) do drop(id) end
end
local function live(id, now)
  local expires = redis.call("ZSCORE", exp, id)
  if expires and tonumber(expires) <= tonumber(now) then
    drop(id)
    return nil
  end
  return parse(redis.call("HGET", st, id))
end
`

// ARGV: id, value, now, availableAt, expireAt, ttl → 1 added, 0 duplicate
const enqueueScript = redisScript(`${prelude}
local id, now = ARGV[1], ARGV[3]
purge(now)
if live(id, now) then return 0 end
redis.call("HSET", val, id, ARGV[2])
redis.call("HSET", st, id, "queued|0||" .. now .. "|" .. now)
redis.call("HDEL", log, id)
redis.call("ZADD", due, ARGV[4], id)
redis.call("ZADD", exp, ARGV[5], id)
keep(tonumber(ARGV[6]))
return 1
`)

// ARGV: now, leaseUntil, token, expireAt, ttl → {id, value, st, log, leaseUntil} or {"", nextDue or ""}
const takeScript = redisScript(`${prelude}
local now, token = ARGV[1], ARGV[3]
purge(now)
for _ = 1, 100 do
  local id = redis.call("ZRANGEBYSCORE", due, "-inf", now, "LIMIT", 0, 1)[1]
  if not id then
    local upcoming = redis.call("ZRANGE", due, 0, 0, "WITHSCORES")
    return { "", upcoming[2] or "" }
  end
  local r = parse(redis.call("HGET", st, id))
  if r == nil or (r.state ~= "queued" and r.state ~= "processing") then
    redis.call("ZREM", due, id)
  else
    local record = "processing|" .. (r.attempts + 1) .. "|" .. token .. "|" .. r.enq .. "|" .. now
    redis.call("HSET", st, id, record)
    redis.call("ZADD", due, ARGV[2], id)
    redis.call("ZADD", exp, ARGV[4], id)
    keep(tonumber(ARGV[5]))
    return { id, redis.call("HGET", val, id) or "", record, redis.call("HGET", log, id) or "", ARGV[2] }
  end
end
return { "", "" }
`)

// ARGV: id, token, state, due, now, log ("" keeps it), uncount ("1"), expireAt, ttl, setLog ("1") → 1 or 0
const settleScript = redisScript(`${prelude}
local id, token, state, now = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local r = parse(redis.call("HGET", st, id))
if r == nil or r.state ~= "processing" or r.token ~= token then return 0 end
local attempts = r.attempts
if ARGV[7] == "1" and attempts > 0 then attempts = attempts - 1 end
redis.call("HSET", st, id, state .. "|" .. attempts .. "||" .. r.enq .. "|" .. now)
if ARGV[10] == "1" then redis.call("HSET", log, id, ARGV[6]) end
if state == "queued" then redis.call("ZADD", due, ARGV[4], id) else redis.call("ZREM", due, id) end
redis.call("ZADD", exp, ARGV[8], id)
keep(tonumber(ARGV[9]))
return 1
`)

// ARGV: id, token, leaseUntil, expireAt, ttl → 1 or 0
const extendScript = redisScript(`${prelude}
local id, token = ARGV[1], ARGV[2]
local r = parse(redis.call("HGET", st, id))
if r == nil or r.state ~= "processing" or r.token ~= token then return 0 end
redis.call("ZADD", due, ARGV[3], id)
redis.call("ZADD", exp, ARGV[4], id)
keep(tonumber(ARGV[5]))
return 1
`)

// ARGV: id, now → {st, value, log, due} ("" when absent)
const getScript = redisScript(`${prelude}
local id, now = ARGV[1], ARGV[2]
local expires = redis.call("ZSCORE", exp, id)
if expires and tonumber(expires) <= tonumber(now) then return { "", "", "", "" } end
return { redis.call("HGET", st, id) or "", redis.call("HGET", val, id) or "", redis.call("HGET", log, id) or "",
  redis.call("ZSCORE", due, id) or "" }
`)

// ARGV: id, now, log, expireAt, ttl → 1 or 0
const requeueScript = redisScript(`${prelude}
local id, now = ARGV[1], ARGV[2]
local r = live(id, now)
if r == nil or r.state ~= "failed" then return 0 end
redis.call("HSET", st, id, "queued|0||" .. r.enq .. "|" .. now)
redis.call("HSET", log, id, ARGV[3])
redis.call("ZADD", due, now, id)
redis.call("ZADD", exp, ARGV[4], id)
keep(tonumber(ARGV[5]))
return 1
`)

// → {count of queued and leased items, the earliest due time or ""}
const depthScript = redisScript(`
local first = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
return { redis.call("ZCARD", KEYS[1]), first[2] or "" }
`)

const parseDepth = (reply: unknown): Depth => {
  const [items = "0", oldest = ""] = strings(reply)
  return { items: Number(items), oldestDue: oldest === "" ? undefined : Number(oldest) }
}

const states: ReadonlySet<string> = new Set<State>(["queued", "processing", "done", "failed"])

const isState = (state: string): state is State => states.has(state)

const parseState = (
  id: string,
  st: string,
  value: string,
  log: string,
  due: string
): Option.Option<StoredRecord> => {
  const [state = "", attempts = "", token = "", enqueuedAt = "", updatedAt = ""] = st.split("|")
  if (!isState(state)) return Option.none()
  return Option.some({
    id,
    state,
    attempts: Number(attempts),
    token,
    enqueuedAt: Number(enqueuedAt),
    updatedAt: Number(updatedAt),
    due: due === "" || (state !== "queued" && state !== "processing") ? undefined : Number(due),
    value,
    log
  })
}

const strings = (reply: unknown): Array<string> =>
  Array.isArray(reply) ? reply.map((item) => (typeof item === "string" ? item : String(item ?? ""))) : []

const isOne = (reply: unknown): boolean => reply === 1

/** A take's reply: the leased record, or when the next item is due. */
const parseTaken = (reply: unknown): Either.Either<StoredRecord, Option.Option<number>> => {
  const [id = "", value = "", st = "", log = "", leaseUntil = ""] = strings(reply)
  if (id === "") {
    // With no id, the second field is the next due time, if any.
    return Either.left(value === "" ? Option.none() : Option.some(Number(value)))
  }
  return Option.match(parseState(id, st, value, log, leaseUntil), {
    onNone: () => Either.left(Option.none<number>()),
    onSome: Either.right
  })
}

const parseGot = (id: string) => (reply: unknown): Option.Option<StoredRecord> => {
  const [st = "", value = "", log = "", due = ""] = strings(reply)
  return st === "" ? Option.none() : parseState(id, st, value, log, due)
}

/** How long the keys must live for a record expiring at `expireAt`. */
const ttl = (expireAt: number, now: number) => Math.max(1, Math.ceil(expireAt - now))

/**
 * The keys of a queue: `<prefix>:{dq:<name>}:<part>`.
 *
 * @internal
 */
export const queueKeys = (prefix: string, queue: string): ReadonlyArray<string> =>
  ["due", "exp", "val", "st", "log"].map((part) => `${prefix}:{dq:${queue}}:${part}`)

interface Runner {
  readonly client: IORedis
  readonly keys: (queue: string) => ReadonlyArray<string>
}

const run = <A>(
  runner: Runner,
  queue: string,
  operation: string,
  script: ReturnType<typeof redisScript>,
  args: ReadonlyArray<string | number>,
  f: (reply: unknown) => A
): Effect.Effect<A, StorageError> =>
  Effect.tryPromise({
    try: () => script.run(runner.client, runner.keys(queue), args).then(f),
    catch: (cause) => storageError(queue, operation, cause)
  })

const makeRunner = (client: IORedis, prefix: string): Runner => {
  const keysOf = new Map<string, ReadonlyArray<string>>()
  return {
    client,
    keys: (queue) => {
      let found = keysOf.get(queue)
      if (found === undefined) {
        found = queueKeys(prefix, queue)
        keysOf.set(queue, found)
      }
      return found
    }
  }
}

/**
 * The store on Redis: the Lua scripts above over {@link queueKeys}; each operation is one script.
 *
 * @internal
 */
export const make = (client: IORedis, prefix: string): StoreService => {
  const runner = makeRunner(client, prefix)
  return {
    ...makeWakeups(),
    enqueue: (queue, i) =>
      run(runner, queue, "enqueue", enqueueScript, [
        i.id,
        i.value,
        i.now,
        i.availableAt,
        i.expireAt,
        ttl(i.expireAt, i.now)
      ], isOne),
    take: (queue, i) =>
      run(
        runner,
        queue,
        "take",
        takeScript,
        [i.now, i.leaseUntil, i.token, i.expireAt, ttl(i.expireAt, i.now)],
        parseTaken
      ),
    settle: (queue, i) =>
      run(runner, queue, "settle", settleScript, [
        i.id,
        i.token,
        i.state,
        i.due,
        i.now,
        i.log ?? "",
        i.uncount ? "1" : "0",
        i.expireAt,
        ttl(i.expireAt, i.now),
        i.log === undefined ? "0" : "1"
      ], isOne),
    extend: (queue, i) =>
      run(
        runner,
        queue,
        "extend",
        extendScript,
        [i.id, i.token, i.leaseUntil, i.expireAt, ttl(i.expireAt, i.now)],
        isOne
      ),
    get: (queue, id, now) => run(runner, queue, "get", getScript, [id, now], parseGot(id)),
    requeue: (queue, i) =>
      run(runner, queue, "requeue", requeueScript, [i.id, i.now, i.log, i.expireAt, ttl(i.expireAt, i.now)], isOne),
    // The due set holds exactly the queued and leased items (settling to done or failed removes them).
    depth: (queue) =>
      Effect.tryPromise({
        try: () => depthScript.run(runner.client, runner.keys(queue).slice(0, 1), []).then(parseDepth),
        catch: (cause) => storageError(queue, "depth", cause)
      })
  }
}
