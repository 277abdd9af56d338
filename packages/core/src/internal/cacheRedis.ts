/**
 * The Redis tier of a cache, on the shared `Redis.Redis` connection:
 *
 * - values as JSON envelopes under `<prefix>v:<key>`, each with a `PX` expiry (its stale-until);
 * - tags as sets under `<prefix>t:<tag>` written atomically with the value (Lua), expiring with
 *   their longest-lived member;
 * - stampede locks under `<prefix>l:<key>` (`SET NX PX` with a random token, released by a
 *   compare-and-delete script);
 * - invalidation by pattern with `SCAN … MATCH` and `UNLINK` in batches, never `KEYS`; by tag in
 *   batches of members (`SRANDMEMBER`, then `UNLINK` + `SREM` in one transaction);
 * - an L2 breaker (the "gate"): after any failure or a command slower than `timeout`, Redis is
 *   skipped for `cooldown`, and while the client is not connected it is skipped at once, so a
 *   request never waits for a connect timeout; the first call after the cooldown tries again.
 *
 * Every key shares the hash tag of the prefix (`liaison:{cache}:` by default), so the scripts and
 * `MGET` touch one slot in a Redis Cluster.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { Client as IORedis } from "../Redis.js"
import type * as Redis from "../Redis.js"
import { escapeGlob } from "./glob.js"
import type { GuardHandle } from "./redisGuard.js"
import { guardOf, RedisUnavailable } from "./redisGuard.js"
import { redisScript } from "./redisScript.js"

/**
 * A Redis command failed, timed out, or Redis was skipped by the gate; `message` is the reason
 * (what a `StorageError` built from it says).
 *
 * @internal
 */
export class TierFailure {
  readonly _tag = "TierFailure"
  constructor(readonly operation: string, readonly reason: string) {}

  get message(): string {
    return this.reason
  }
}

/** What a value key holds, decoded from its JSON envelope. @internal */
export interface StoredEntry {
  readonly encoded: unknown
  readonly freshUntil: number
  readonly staleUntil: number
  readonly tags: ReadonlyArray<string>
  readonly etag: string | undefined
}

interface Envelope {
  readonly v: unknown
  readonly f: number
  readonly s: number
  readonly t?: ReadonlyArray<string>
  readonly e?: string
}

/** The JSON stored for an entry. @internal */
export const encodeEnvelope = (entry: StoredEntry): string => {
  const envelope: Envelope = {
    v: entry.encoded,
    f: entry.freshUntil,
    s: entry.staleUntil,
    ...(entry.tags.length > 0 ? { t: entry.tags } : {}),
    ...(entry.etag === undefined ? {} : { e: entry.etag })
  }
  return JSON.stringify(envelope)
}

const isStringArray = (value: unknown): value is ReadonlyArray<string> =>
  Array.isArray(value) && value.every((item) => typeof item === "string")

/** The entry in a stored JSON envelope, or `undefined` when it is not one. @internal */
export const decodeEnvelope = (text: string): StoredEntry | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null || !("v" in parsed)) return undefined
  const { e, f, s, t, v } = parsed as Partial<Envelope>
  if (typeof f !== "number" || typeof s !== "number") return undefined
  if (t !== undefined && !isStringArray(t)) return undefined
  if (e !== undefined && typeof e !== "string") return undefined
  return { encoded: v, freshUntil: f, staleUntil: s, tags: t ?? [], etag: e }
}

// KEYS[1] the value, KEYS[2..] its tag sets; ARGV[1] the envelope, ARGV[2] its expiry in ms.
// Each tag set lives as long as its longest-lived member.
const setWithTags = redisScript(`
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
local px = tonumber(ARGV[2])
for i = 2, #KEYS do
  redis.call("SADD", KEYS[i], KEYS[1])
  if redis.call("PTTL", KEYS[i]) < px then redis.call("PEXPIRE", KEYS[i], px) end
end
return 1
`)

// KEYS[1] a lock; ARGV[1] the token of its holder.
const releaseLock = redisScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
`)

/** The settings of a Redis tier, resolved. @internal */
export interface RedisTierOptions {
  readonly prefix: string
  readonly timeoutMillis: number
  readonly cooldownMillis: number
  /** Keys per `SCAN` step and per `UNLINK` batch. */
  readonly batchSize: number
}

/** A command in flight, answered, failed or expired once: whatever comes later is ignored. */
interface Pending<R> {
  /** Epoch ms (real time: the wait is for real I/O). */
  readonly deadline: number
  done: boolean
  /** Its place in the watch queue (a sequence number), so that an answer lets go of it at once. */
  seq: number
  /** Resumes the fiber with the reply; false when it came too late. */
  readonly reply: (value: R) => boolean
  /** Resumes the fiber with the failure; false when it came too late. */
  readonly fail: (error: unknown) => boolean
  readonly expire: () => void
  /** Set for a read sent on the client itself: its outcome is the guard's to count, once per command. */
  direct: Direct | undefined
}

/** One command sent past the guard's proxy (a `GET`, or an `MGET` shared by the reads of a turn). */
interface Direct {
  told: boolean
}

/** What the gate saw last, for logs and stats. @internal */
export type TierState = "up" | "down"

/**
 * The Redis tier of one cache: keys under a prefix, the L2 breaker (the gate), and one timer for
 * every command in flight.
 *
 * @internal
 */
export class RedisTier {
  /** Through the guard's proxy: every command but the hot read. */
  readonly #client: IORedis
  /** The client itself, for the hot read (`GET`/`MGET`): the guard is asked and told directly. */
  readonly #direct: IORedis
  readonly #guard: GuardHandle | undefined
  readonly #options: RedisTierOptions
  /** The tier's timeout, or the guard's command timeout when shorter (it used to apply to every command). */
  readonly #timeoutMillis: number
  readonly #now: () => number
  #openUntil = 0
  #state: TierState = "up"
  /** Failures so far (commands that failed or timed out), for stats. */
  failures = 0

  readonly channel: string
  /** Whether reads may share an `MGET`: only when every key is in one Redis Cluster slot (a hash tag). */
  readonly #batching: boolean

  constructor(redis: Redis.Service, options: RedisTierOptions, now: () => number) {
    this.#client = redis.client
    this.#guard = guardOf(redis.client)
    this.#direct = this.#guard?.client ?? redis.client
    this.#options = options
    this.#timeoutMillis = Math.min(options.timeoutMillis, this.#guard?.commandTimeout ?? Infinity)
    this.#now = now
    this.channel = `${options.prefix}invalidate`
    this.#batching = /\{[^}]+\}/.test(options.prefix)
  }

  // Reads go out as one `MGET` per turn of the event loop (one command, one write, one reply to
  // parse) instead of one `GET` each: under load, the socket writes were most of a hit's cost. A
  // read while no other is in flight goes at once as a plain `GET` (one at a time, waiting for the
  // turn's end only added latency); the reads behind it share the next `MGET`. Reads skip the
  // guard's proxy (its promise and timer per command cost a hit more than the rest of the cache
  // did): the tier's own watchdog times them out, and the guard hears of each command once.
  #reads: Array<Pending<string | null>> | undefined = undefined
  #readKeys: Array<string> = []
  /** Direct read commands sent and not answered yet. */
  #reading = 0

  /**
   * The text stored under cache key `key` (`null`: none), read with the others of this turn: the
   * fiber resumes with `onReply`'s effect, or `onFailure`'s, in one step (see {@link exec}).
   */
  readEntry<A, E, Env>(
    key: string,
    onReply: (text: string | null) => Effect.Effect<A, E, Env>,
    onFailure: (failure: TierFailure) => Effect.Effect<A, E, Env>
  ): Effect.Effect<A, E, Env> {
    const valueKey = this.valueKey(key)
    return this.#exec<string | null, A, E, Env>("GET", (pending) => this.#read(valueKey, pending), onReply, onFailure)
  }

  #read(valueKey: string, pending: Pending<string | null>): void {
    const refused = this.#guard?.refusal()
    if (refused !== undefined) {
      pending.fail(refused)
      return
    }
    if (!this.#batching || (this.#reading === 0 && this.#reads === undefined)) return this.#get(valueKey, pending)
    let reads = this.#reads
    if (reads === undefined) {
      reads = this.#reads = []
      this.#readKeys = []
      queueMicrotask(this.#flushReads)
    }
    reads.push(pending)
    this.#readKeys.push(valueKey)
  }

  #get(valueKey: string, pending: Pending<string | null>): void {
    const direct: Direct = pending.direct = { told: false }
    this.#reading++
    this.#direct.get(valueKey).then(
      (value) => {
        this.#reading--
        this.#told(direct, pending.reply(value), undefined)
      },
      (error: unknown) => {
        this.#reading--
        this.#told(direct, pending.fail(error), error)
      }
    )
  }

  readonly #flushReads = (): void => {
    const reads = this.#reads as Array<Pending<string | null>>
    const keys = this.#readKeys
    this.#reads = undefined
    if (reads.length === 1) return this.#get(keys[0] as string, reads[0] as Pending<string | null>)
    const direct: Direct = { told: false }
    for (const read of reads) read.direct = direct
    this.#reading++
    this.#direct.mget(keys).then(
      (values) => {
        this.#reading--
        let taken = false
        for (let i = 0; i < reads.length; i++) {
          taken = (reads[i] as Pending<string | null>).reply(values[i] ?? null) || taken
        }
        this.#told(direct, taken, undefined)
      },
      (error: unknown) => {
        this.#reading--
        let taken = false
        for (const read of reads) taken = read.fail(error) || taken
        this.#told(direct, taken, error)
      }
    )
  }

  /** Tells the guard how a direct command went, once, unless it timed out first (then it was told so). */
  #told(direct: Direct, taken: boolean, error: unknown): void {
    if (!taken || direct.told) return
    direct.told = true
    if (error === undefined) this.#guard?.succeeded()
    else this.#guard?.failedWith(error)
  }

  get client(): IORedis {
    return this.#client
  }

  get state(): TierState {
    return this.#state
  }

  valueKey(key: string): string {
    return `${this.#options.prefix}v:${key}`
  }

  lockKey(key: string): string {
    return `${this.#options.prefix}l:${key}`
  }

  tagKey(tag: string): string {
    return `${this.#options.prefix}t:${tag}`
  }

  /** The cache key of a value key. */
  keyOf(valueKey: string): string {
    return valueKey.slice(this.#options.prefix.length + 2)
  }

  /** Whether a call may try Redis now: the gate is closed and the client connected. */
  get usable(): boolean {
    return this.#direct.status === "ready" && this.#now() >= this.#openUntil
  }

  /**
   * Runs one command: fails at once (without waiting for a connection) when the gate is open or
   * the client not connected; a failure or a timeout opens the gate for the cooldown. The change
   * from up to down, and back, is logged once each.
   */
  run<A>(operation: string, f: (client: IORedis) => Promise<A>): Effect.Effect<A, TierFailure> {
    return this.exec(operation, f, Effect.succeed, Effect.fail)
  }

  /**
   * The general form: the fiber resumes with `onReply`'s effect, or `onFailure`'s (after the log
   * line when this changes Redis' state) — one step for a whole hit.
   */
  exec<R, A, E, Env>(
    operation: string,
    f: (client: IORedis) => Promise<R>,
    onReply: (reply: R) => Effect.Effect<A, E, Env>,
    onFailure: (failure: TierFailure) => Effect.Effect<A, E, Env>
  ): Effect.Effect<A, E, Env> {
    return this.#exec<R, A, E, Env>(
      operation,
      (pending) => {
        f(this.#client).then(pending.reply, pending.fail)
      },
      onReply,
      onFailure
    )
  }

  #exec<R, A, E, Env>(
    operation: string,
    send: (pending: Pending<R>) => void,
    onReply: (reply: R) => Effect.Effect<A, E, Env>,
    onFailure: (failure: TierFailure) => Effect.Effect<A, E, Env>
  ): Effect.Effect<A, E, Env> {
    return Effect.async<A, E, Env>((resume) => {
      if (!this.usable) {
        const connected = this.#direct.status === "ready"
        // Skipped: not a new failure. A client that is not connected counts once per cooldown.
        const counted = !connected && this.#gateClosed
        return resume(
          this.#failed(operation, connected ? "skipped after a recent failure" : "not connected", counted, onFailure)
        )
      }
      const pending: Pending<R> = {
        deadline: Date.now() + this.#timeoutMillis,
        done: false,
        seq: 0,
        direct: undefined,
        reply: (reply) => {
          if (pending.done) return false
          pending.done = true
          this.#unwatch(pending)
          if (this.#state === "up") {
            resume(onReply(reply))
            return true
          }
          this.#state = "up"
          resume(Effect.zipRight(Effect.logInfo("cache: Redis answers again, using it"), onReply(reply)))
          return true
        },
        fail: (error) => {
          if (pending.done) return false
          pending.done = true
          this.#unwatch(pending)
          resume(this.#failed(operation, error instanceof Error ? error.message : String(error), true, onFailure))
          return true
        },
        expire: () => {
          pending.done = true
          const direct = pending.direct
          if (direct !== undefined && !direct.told) {
            direct.told = true
            this.#guard?.failedWith(
              new RedisUnavailable(`Redis ${operation} timed out: no reply in ${this.#timeoutMillis} ms`)
            )
          }
          resume(this.#failed(operation, `no answer within ${this.#timeoutMillis} ms`, true, onFailure))
        }
      }
      this.#watch(pending)
      send(pending)
    })
  }

  #failed<A, E, Env>(
    operation: string,
    reason: string,
    counted: boolean,
    onFailure: (failure: TierFailure) => Effect.Effect<A, E, Env>
  ): Effect.Effect<A, E, Env> {
    const failure = new TierFailure(operation, reason)
    if (!counted) return onFailure(failure)
    this.failures++
    return this.#trip() ? Effect.zipRight(this.#logDown(failure), onFailure(failure)) : onFailure(failure)
  }

  // Timeouts: one interval for every command in flight (cheaper than a timer per command), running
  // only while there are some. Every command has the same timeout, so deadlines come in the order
  // the commands were sent: a queue, whose answered entries are skipped when they reach the front.
  // An answer empties its slot at once: a command (and the fiber's continuation it holds) kept
  // until the next sweep outlives the young generation, and the GC then pays for every hit.
  #queue: Array<Pending<never> | undefined> = []
  #head = 0
  /** The sequence number of `#queue[0]`. */
  #base = 0
  #watchdog: ReturnType<typeof setInterval> | undefined

  #watch<R>(pending: Pending<R>): void {
    pending.seq = this.#base + this.#queue.length
    this.#queue.push(pending as Pending<never>)
    if (this.#watchdog !== undefined) return
    const tick = Math.max(5, Math.min(100, Math.floor(this.#timeoutMillis / 4)))
    this.#watchdog = setInterval(() => this.#sweep(), tick)
    this.#watchdog.unref()
  }

  #unwatch<R>(pending: Pending<R>): void {
    const at = pending.seq - this.#base
    if (at >= this.#head && at < this.#queue.length) this.#queue[at] = undefined
  }

  #sweep(): void {
    const now = Date.now()
    const queue = this.#queue
    const late: Array<Pending<never>> = []
    while (this.#head < queue.length) {
      const first = queue[this.#head]
      if (first !== undefined && !first.done && first.deadline > now) break
      queue[this.#head] = undefined
      this.#head++
      if (first !== undefined && !first.done) late.push(first)
    }
    // Timers run before I/O: after a blocked loop, a reply may be waiting unread. Expire only what
    // is still unanswered once this turn's I/O has been read.
    if (late.length > 0) {
      setImmediate(() => {
        for (const pending of late) if (!pending.done) pending.expire()
      })
    }
    if (this.#head === queue.length) {
      this.#base += queue.length
      this.#queue = []
      this.#head = 0
      clearInterval(this.#watchdog)
      this.#watchdog = undefined
    } else if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#base += this.#head
      this.#queue = queue.slice(this.#head)
      this.#head = 0
    }
  }

  get #gateClosed(): boolean {
    return this.#now() >= this.#openUntil
  }

  /** Opens the gate for the cooldown; true when Redis was considered up until now. */
  #trip(): boolean {
    this.#openUntil = this.#now() + this.#options.cooldownMillis
    const wasUp = this.#state === "up"
    this.#state = "down"
    return wasUp
  }

  #logDown(failure: TierFailure): Effect.Effect<void> {
    return Effect.logWarning(
      `cache: Redis ${failure.operation} failed (${failure.reason}); ` +
        `going to the upstream without it, trying it again in ${this.#options.cooldownMillis} ms`
    )
  }

  get(key: string): Effect.Effect<string | null, TierFailure> {
    return this.readEntry(key, Effect.succeed, Effect.fail)
  }

  set(key: string, envelope: string, expiresInMillis: number, tags: ReadonlyArray<string>): Effect.Effect<
    void,
    TierFailure
  > {
    const valueKey = this.valueKey(key)
    const px = Math.max(1, Math.ceil(expiresInMillis))
    if (tags.length === 0) return Effect.asVoid(this.run("SET", (client) => client.set(valueKey, envelope, "PX", px)))
    const keys = [valueKey, ...tags.map((tag) => this.tagKey(tag))]
    return Effect.asVoid(this.run("SET (tagged)", (client) => setWithTags.run(client, keys, [envelope, px])))
  }

  unlink(keys: ReadonlyArray<string>): Effect.Effect<number, TierFailure> {
    if (keys.length === 0) return Effect.succeed(0)
    const valueKeys = keys.map((key) => this.valueKey(key))
    return this.run("UNLINK", (client) => client.unlink(...valueKeys))
  }

  /**
   * `SCAN`s the value keys matching `pattern` (a glob over cache keys) and `UNLINK`s those
   * `select` picks, one batch per step; resolves with how many were unlinked.
   */
  scanUnlink(pattern: string, select: (key: string) => boolean = () => true): Effect.Effect<number, TierFailure> {
    const match = `${escapeGlob(this.#options.prefix)}v:${pattern}`
    const count = this.#options.batchSize
    const step = (cursor: string, total: number): Effect.Effect<number, TierFailure> =>
      this.run("SCAN", (client) => client.scan(cursor, "MATCH", match, "COUNT", count)).pipe(
        Effect.flatMap(([next, found]) => {
          const doomed = found.filter((valueKey) => select(this.keyOf(valueKey)))
          const unlinked = doomed.length === 0
            ? Effect.succeed(0)
            : this.run("UNLINK", (client) => client.unlink(...doomed))
          return Effect.flatMap(unlinked, (n) => next === "0" ? Effect.succeed(total + n) : step(next, total + n))
        })
      )
    return step("0", 0)
  }

  /**
   * Unlinks every member of a tag, a batch at a time: each batch's values and their removal from
   * the set go in one `MULTI`, so a failure half-way leaves the rest tagged for a retry.
   */
  unlinkTag(tag: string): Effect.Effect<number, TierFailure> {
    const tagKey = this.tagKey(tag)
    const count = this.#options.batchSize
    const step = (total: number, rounds: number): Effect.Effect<number, TierFailure> =>
      this.run("SRANDMEMBER", (client) => client.srandmember(tagKey, count)).pipe(
        Effect.flatMap((members) =>
          members.length === 0
            ? Effect.succeed(total)
            : this.run("UNLINK + SREM", (client) => client.multi().unlink(...members).srem(tagKey, ...members).exec())
              .pipe(
                Effect.flatMap((replies) => {
                  const unlinked = Number(replies?.[0]?.[1] ?? 0)
                  // Writers may keep tagging new keys: stop after a bounded number of rounds.
                  return rounds >= 10_000 ? Effect.succeed(total + unlinked) : step(total + unlinked, rounds + 1)
                })
              )
        )
      )
    return step(0, 0)
  }

  /** `SET NX PX`: whether this caller now holds the key's stampede lock. */
  lock(key: string, token: string, ttlMillis: number): Effect.Effect<boolean, TierFailure> {
    const lockKey = this.lockKey(key)
    return this.run("SET NX (lock)", (client) => client.set(lockKey, token, "PX", ttlMillis, "NX")).pipe(
      Effect.map((reply) => reply === "OK")
    )
  }

  unlock(key: string, token: string): Effect.Effect<void, TierFailure> {
    const lockKey = this.lockKey(key)
    return Effect.asVoid(this.run("release lock", (client) => releaseLock.run(client, [lockKey], [token])))
  }

  /** The value and whether its lock is still held, in one round trip (`MGET`, one slot). */
  peek(key: string): Effect.Effect<{ readonly value: string | null; readonly locked: boolean }, TierFailure> {
    const keys = [this.valueKey(key), this.lockKey(key)]
    return this.run("MGET", (client) => client.mget(keys)).pipe(
      Effect.map(([value, lock]) => ({ value: value ?? null, locked: lock !== null && lock !== undefined }))
    )
  }

  publish(message: string): Effect.Effect<void, TierFailure> {
    return Effect.asVoid(this.run("PUBLISH", (client) => client.publish(this.channel, message)))
  }
}
