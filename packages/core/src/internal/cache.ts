/**
 * The cache engine behind `Cache`: an optional memory tier (the whole cache, or the L1 of a
 * two-tier cache) and an optional Redis tier, with
 *
 * - one fetch per key per process (concurrent misses join the fetch in flight, which runs in the
 *   cache's scope, so a caller giving up does not cancel it for the others) and, with Redis, one
 *   per cluster (a short lock; the others poll for the value within a bound, then fetch themselves);
 * - stale-if-error: an entry is kept `staleFor` past its expiry and served, marked stale, when the
 *   fetch fails;
 * - refresh-ahead: a hit close to expiry starts one background refresh;
 * - fail-open reads and writes: a Redis failure is a miss (the fetch runs), counted and logged;
 * - invalidation published to the other instances, which drop their L1 copies.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import { randomUUID } from "node:crypto"
import type * as Cache from "../Cache.js"
import type { MemoryEntry, MemoryStore } from "./cacheMemory.js"
import type { RedisTier, TierFailure } from "./cacheRedis.js"
import { decodeEnvelope, encodeEnvelope } from "./cacheRedis.js"
import type { Outcome, Tier } from "./cacheTelemetry.js"
import { countLookup, countRefresh, lookupEvent } from "./cacheTelemetry.js"
import { escapeGlob, matchGlob } from "./glob.js"
import { activeSpan } from "./tracing.js"

// The public types live in the public module (declarations strip `@internal`).
type Cached<A> = Cache.Cached<A>
type Found<A> = Cache.Entry<A>
type Loaded<A> = Cache.Loaded<A>
type Invalidation = Cache.Invalidation
type Stats = Cache.Stats

/** A fetch, or a loader (which sees the entry held so far): a fetch costs no closure per call. @internal */
export type Source<A, E, R> = Loader<A, E, R> | Effect.Effect<A, E, R>

/** @internal */
export type Loader<A, E, R> = (previous: Found<A> | undefined) => Effect.Effect<Loaded<A>, E, R>

/** Options of one call, as given: resolved (durations decoded, defaults filled) only off the hit path. @internal */
export interface CallOptions<E> {
  readonly ttl?: Duration.DurationInput | undefined
  readonly staleFor?: Duration.DurationInput | undefined
  readonly tags?: ReadonlyArray<string> | undefined
  readonly refreshAhead?: Duration.DurationInput | undefined
  readonly staleIf?: ((error: E) => boolean) | undefined
}

/** @internal */
export interface EntryOptions {
  readonly ttlMillis: number
  readonly staleForMillis: number
  readonly tags: ReadonlyArray<string>
}

/** @internal */
export interface LookupOptions<E> extends EntryOptions {
  /** 0: off. */
  readonly refreshAheadMillis: number
  readonly staleIf: (error: E) => boolean
}

/** @internal */
export interface EngineOptions {
  /** Default time to live. */
  readonly ttlMillis: number
  /** Default grace period after expiry, for stale-if-error. */
  readonly staleForMillis: number
  readonly local: MemoryStore | undefined
  /** Caps how long an L1 copy of a shared entry counts as fresh (two-tier); undefined: no cap. */
  readonly localMaxTtlMillis: number | undefined
  readonly shared: RedisTier | undefined
  readonly lockTtlMillis: number
  readonly lockWaitMillis: number
  readonly now: () => number
  readonly scope: Scope.Scope
}

type AnySchema = Schema.Schema<unknown, unknown>

type Decode = (input: unknown) => Either.Either<unknown, ParseResult.ParseError>

const decoders = new WeakMap<object, Decode>()
const encoders = new WeakMap<object, Decode>()

/** One decoder per Schema, made once: a hit on Redis decodes without building one. */
const decoderOf = <A, I>(schema: Schema.Schema<A, I>): (input: unknown) => Either.Either<A, ParseResult.ParseError> => {
  const known = decoders.get(schema)
  if (known !== undefined) return known as (input: unknown) => Either.Either<A, ParseResult.ParseError>
  const decode = Schema.decodeUnknownEither(schema)
  decoders.set(schema, decode)
  return decode
}

const encoderOf = <A, I>(schema: Schema.Schema<A, I>): (value: A) => Either.Either<unknown, ParseResult.ParseError> => {
  let encode = encoders.get(schema)
  if (encode === undefined) encoders.set(schema, encode = Schema.encodeUnknownEither(schema))
  return encode
}

const MAX_TTL_MILLIS = 366 * 24 * 60 * 60 * 1000

/** A duration as milliseconds within [0, 366 days]: every entry expires. @internal */
export const clampMillis = (input: Duration.DurationInput): number => {
  const millis = Duration.toMillis(Duration.decode(input))
  return Number.isNaN(millis) || millis < 0 ? 0 : Math.min(millis, MAX_TTL_MILLIS)
}

/** The keys `Related` invalidation drops: the resource, its lists and its sub-keys. @internal */
export const relatedTo = (resource: string, id: string) => {
  const self = `${resource}:${id}`
  const lists = `${resource}:list:`
  const subKeys = `${self}:`
  return (key: string): boolean => key === self || key.startsWith(lists) || key.startsWith(subKeys)
}

/** One fetch of a key: what it is, how to load it and keep it, and why it runs. */
interface Job<A, I, E, R> {
  readonly key: string
  readonly schema: Schema.Schema<A, I>
  readonly loader: Source<A, E, R>
  readonly options: LookupOptions<E>
  readonly mode: "miss" | "refresh"
  /** The caller's span, for its `liaison.cache.get` event (none for a refresh in the background). */
  readonly span: Tracer.Span | undefined
}

interface Flight {
  readonly schema: unknown
  readonly tags: ReadonlyArray<string>
  readonly deferred: Deferred.Deferred<Cached<unknown>, unknown>
  /** Set when the key is written or invalidated meanwhile: the fetched value is then not stored. */
  invalidated: boolean
  /** The tier of the answer, for telemetry: the last one asked, or where a stale answer came from. */
  tier: Tier
  /** How long the fetch waited for another instance's (Redis stampede lock), in ms. */
  waitedMillis: number
}

type Acquired =
  | { readonly _tag: "Locked"; readonly token: string }
  | { readonly _tag: "Found"; readonly found: Found<unknown> }
  | { readonly _tag: "Unlocked" }

const unlocked: Acquired = { _tag: "Unlocked" }

/** A Redis reply already decoded: its text, the Schema it was decoded with, and the entry. */
interface Decoded {
  readonly text: string
  readonly schema: unknown
  readonly found: Found<unknown>
}

/** Replies kept decoded: how many keys, and how long a text at most (the memory it may hold is bounded). */
const DECODED_MAX_KEYS = 1024
const DECODED_MAX_CHARS = 16_384

/** @internal */
export class Engine {
  readonly #local: MemoryStore | undefined
  readonly #shared: RedisTier | undefined
  readonly #options: EngineOptions
  readonly #now: () => number
  readonly #inflight = new Map<string, Flight>()
  /** The last Redis reply decoded per key (see `#classify`). */
  readonly #decoded = new Map<string, Decoded>()
  /** Tells this instance's own invalidation messages from the others'. */
  readonly origin: string = randomUUID()
  #hits = 0
  #misses = 0
  #stale = 0
  #errors = 0
  #fetches = 0
  /** The tier a miss is counted in: the last one asked. */
  readonly #innerTier: Tier

  constructor(options: EngineOptions) {
    this.#options = options
    this.#local = options.local
    this.#shared = options.shared
    this.#now = options.now
    this.#innerTier = options.shared === undefined ? "memory" : "redis"
  }

  /** Counts a lookup's outcome (the `stats` counters and the metric) and records it on the caller's span. */
  #count(tier: Tier, outcome: Outcome, span: Tracer.Span | undefined): void {
    if (outcome === "hit") this.#hits++
    else if (outcome === "miss") this.#misses++
    else this.#stale++
    countLookup(tier, outcome)
    if (span !== undefined) lookupEvent(span, tier, outcome, this.#now(), 0)
  }

  #resolve<E>(options: CallOptions<E>): LookupOptions<E> {
    return {
      ttlMillis: options.ttl === undefined ? this.#options.ttlMillis : clampMillis(options.ttl),
      staleForMillis: options.staleFor === undefined ? this.#options.staleForMillis : clampMillis(options.staleFor),
      tags: options.tags ?? [],
      refreshAheadMillis: options.refreshAhead === undefined ? 0 : clampMillis(options.refreshAhead),
      staleIf: options.staleIf ?? always
    }
  }

  // -------------------------------------------------------------------------------------------
  // reading
  // -------------------------------------------------------------------------------------------

  /** A fresh local entry typed by `schema` itself (the hot path), or `undefined`. */
  #localFresh(key: string, schema: unknown, now: number): MemoryEntry | undefined {
    const entry = this.#local?.get(key, now)
    return entry !== undefined && entry.freshUntil > now && entry.schema === schema ? entry : undefined
  }

  /** The value of a fresh entry, or `undefined` on a miss. */
  get<A, I>(key: string, schema: Schema.Schema<A, I>): Effect.Effect<Option.Option<A>> {
    return Effect.withFiberRuntime((fiber) => {
      const span = activeSpan(fiber)
      const entry = this.#localFresh(key, schema, this.#now())
      if (entry !== undefined) {
        this.#count("memory", "hit", span)
        return Effect.succeed(Option.some(entry.value as A))
      }
      return Effect.map(this.#readBehindLocal(key, schema), (found) => {
        if (found !== undefined && found.freshUntil > this.#now()) {
          this.#count(tierOf(found), "hit", span)
          return Option.some(found.value)
        }
        this.#count(this.#innerTier, "miss", span)
        return Option.none()
      })
    })
  }

  lookup<A, I, E, R>(
    key: string,
    schema: Schema.Schema<A, I>,
    loader: Source<A, E, R>,
    options: CallOptions<E>
  ): Effect.Effect<Cached<A>, E, R> {
    if (this.#local === undefined && this.#shared !== undefined) {
      return this.#sharedOnly(key, schema, loader, options, (value): Cached<A> => ({ value, status: "hit" }), identity)
    }
    return Effect.withFiberRuntime((fiber) => {
      const span = activeSpan(fiber)
      const now = this.#now()
      const entry = this.#localFresh(key, schema, now)
      if (entry === undefined) return this.#behindLocal(key, schema, loader, options, span)
      this.#count("memory", "hit", span)
      const cached: Cached<A> = { value: entry.value as A, status: "hit" }
      return dueForRefresh(options, entry, now)
        ? Effect.as(this.#refreshAhead(key, schema, loader, options, entry as Found<A>, span), cached)
        : Effect.succeed(cached)
    })
  }

  /** {@link lookup} for the value alone: a local hit allocates nothing. */
  lookupValue<A, I, E, R>(
    key: string,
    schema: Schema.Schema<A, I>,
    loader: Source<A, E, R>,
    options: CallOptions<E>
  ): Effect.Effect<A, E, R> {
    if (this.#local === undefined && this.#shared !== undefined) {
      return this.#sharedOnly(key, schema, loader, options, identity, (after) => Effect.map(after, valueOf))
    }
    return Effect.withFiberRuntime((fiber) => {
      const now = this.#now()
      const entry = this.#localFresh(key, schema, now)
      if (entry === undefined || dueForRefresh(options, entry, now)) {
        return Effect.map(this.lookup(key, schema, loader, options), valueOf)
      }
      this.#count("memory", "hit", activeSpan(fiber))
      return Effect.succeed(entry.value as A)
    })
  }

  /** Past a local miss: Redis, then one fetch for all. */
  #behindLocal<A, I, E, R>(
    key: string,
    schema: Schema.Schema<A, I>,
    loader: Source<A, E, R>,
    options: CallOptions<E>,
    span: Tracer.Span | undefined
  ): Effect.Effect<Cached<A>, E, R> {
    return Effect.flatMap(
      this.#readBehindLocal(key, schema),
      (found) => this.#afterRead(key, schema, loader, options, found, span)
    )
  }

  /** What was found decides: a fresh hit (refreshed ahead if due), else one fetch for all. */
  #afterRead<A, I, E, R>(
    key: string,
    schema: Schema.Schema<A, I>,
    loader: Source<A, E, R>,
    options: CallOptions<E>,
    found: Found<A> | undefined,
    span: Tracer.Span | undefined
  ): Effect.Effect<Cached<A>, E, R> {
    const now = this.#now()
    if (found !== undefined && found.freshUntil > now) {
      this.#count(tierOf(found), "hit", span)
      const cached: Cached<A> = { value: found.value, status: "hit" }
      return options.refreshAhead !== undefined && found.freshUntil - now <= clampMillis(options.refreshAhead)
        ? Effect.as(this.#refreshAhead(key, schema, loader, options, found, span), cached)
        : Effect.succeed(cached)
    }
    // The caller's event comes with the answer (what the fetch gave, how long it waited).
    this.#count(this.#innerTier, "miss", undefined)
    return this.#singleFlight({ key, schema, loader, options: this.#resolve(options), mode: "miss", span }, found)
  }

  /**
   * The Redis-only tier's lookup: the `GET`, its decoding and the hit all happen in the reply's
   * callback, one fiber step; anything else (a miss, a corrupt entry, Redis failing) goes on from there.
   */
  #sharedOnly<A, I, E, R, B>(
    key: string,
    schema: Schema.Schema<A, I>,
    loader: Source<A, E, R>,
    options: CallOptions<E>,
    hit: (value: A) => B,
    after: (rest: Effect.Effect<Cached<A>, E, R>) => Effect.Effect<B, E, R>
  ): Effect.Effect<B, E, R> {
    const shared = this.#shared as RedisTier
    return Effect.withFiberRuntime((fiber) => {
      const span = activeSpan(fiber)
      return shared.readEntry(
        key,
        (text) => {
          const held = this.#classify(key, schema, text)
          if (held instanceof Corrupt) {
            return after(
              Effect.zipRight(
                this.#dropCorrupt(key, held.reason),
                this.#afterRead(key, schema, loader, options, undefined, span)
              )
            )
          }
          if (held !== undefined && held.freshUntil > this.#now() && options.refreshAhead === undefined) {
            this.#count("redis", "hit", span)
            return Effect.succeed(hit(held.value))
          }
          return after(this.#afterRead(key, schema, loader, options, held, span))
        },
        () => after(this.#afterRead(key, schema, loader, options, undefined, span))
      )
    })
  }

  /**
   * What is held past the hot path: a local entry typed by another Schema (re-typed, or dropped
   * when it does not decode), then the Redis entry (a fresh one is copied to the local tier).
   * Fresh or stale; the later stale-until of the two when both are expired.
   */
  #readBehindLocal<A, I>(key: string, schema: Schema.Schema<A, I>): Effect.Effect<Found<A> | undefined> {
    const entry = this.#local?.get(key, this.#now())
    let local: Found<A> | undefined
    let mismatch: Effect.Effect<void> | undefined
    if (entry !== undefined) {
      if (entry.schema === schema) {
        local = entry as Found<A>
      } else {
        const retyped = encoderOf(entry.schema as AnySchema)(entry.value).pipe(
          Either.flatMap((encoded) => decoderOf(schema)(encoded))
        )
        if (Either.isRight(retyped)) {
          local = { ...entry, value: retyped.right }
        } else {
          this.#local?.delete(key)
          mismatch = this.#corrupt(key, "memory", "does not decode with the Schema asked for")
        }
      }
    }
    const shared = this.#shared
    const skipShared = (local !== undefined && local.freshUntil > this.#now()) || shared === undefined ||
      !shared.usable
    const read: Effect.Effect<Found<A> | undefined> = skipShared ? Effect.succeed(local) : Effect.flatMap(
      shared.readEntry(key, (text) => Effect.succeed(this.#classify(key, schema, text)), () => noEntry),
      (held) => {
        if (held instanceof Corrupt) return Effect.as(this.#dropCorrupt(key, held.reason), local)
        if (held !== undefined && held.freshUntil > this.#now()) {
          this.#fillLocal(key, schema, held)
          return Effect.succeed(held)
        }
        return Effect.succeed(
          held !== undefined && (local === undefined || held.staleUntil > local.staleUntil) ? held : local
        )
      }
    )
    return mismatch === undefined ? read : Effect.zipRight(mismatch, read)
  }

  #corrupt(key: string, tier: string, reason: string): Effect.Effect<void> {
    this.#errors++
    return Effect.logWarning(`cache: entry ${JSON.stringify(key)} in ${tier} ${reason}; dropped, counted as a miss`)
  }

  #dropCorrupt(key: string, reason: string): Effect.Effect<void> {
    return Effect.zipRight(
      this.#corrupt(key, "Redis", reason),
      Effect.ignore(this.#shared?.unlink([key]) ?? Effect.void)
    )
  }

  /**
   * A Redis reply as an entry (`undefined`: none, or past its stale-until), or why it is corrupt.
   * Plain code. The same text as the key's last reply, for the same Schema, is not parsed nor
   * decoded again: its entry is reused (its value shared, as a memory tier's is).
   */
  #classify<A, I>(key: string, schema: Schema.Schema<A, I>, text: string | null): Found<A> | Corrupt | undefined {
    if (text === null) return undefined
    const known = this.#decoded.get(key)
    let found: Found<A>
    if (known !== undefined && known.text === text && known.schema === schema) {
      found = known.found as Found<A>
    } else {
      const stored = decodeEnvelope(text)
      if (stored === undefined) return new Corrupt("is not a cache entry")
      const decoded = decoderOf(schema)(stored.encoded)
      if (Either.isLeft(decoded)) return new Corrupt("does not decode with its Schema")
      found = {
        value: decoded.right,
        freshUntil: stored.freshUntil,
        staleUntil: stored.staleUntil,
        etag: stored.etag,
        tags: stored.tags
      }
      this.#remember(key, schema, text, found)
    }
    return found.staleUntil <= this.#now() ? undefined : found
  }

  /**
   * Keeps a key's last decoded reply: a bounded number of keys, small texts only, first in first
   * out. Not with a memory tier: its copy already answers the repeated hits.
   */
  #remember(key: string, schema: unknown, text: string, found: Found<unknown>): void {
    const decoded = this.#decoded
    if (this.#local !== undefined || text.length > DECODED_MAX_CHARS) return
    if (!decoded.delete(key) && decoded.size >= DECODED_MAX_KEYS) {
      decoded.delete(decoded.keys().next().value as string)
    }
    decoded.set(key, { text, schema, found })
  }

  /** Reads a Redis entry; a failure is a miss (fail open), a corrupt entry is dropped. */
  #readShared<A, I>(key: string, schema: Schema.Schema<A, I>): Effect.Effect<Found<A> | undefined> {
    const shared = this.#shared
    if (shared === undefined || !shared.usable) return Effect.succeed(undefined)
    return Effect.flatMap(
      shared.readEntry(key, (text) => Effect.succeed(this.#classify(key, schema, text)), () => noEntry),
      (held) =>
        held instanceof Corrupt ? Effect.as(this.#dropCorrupt(key, held.reason), undefined) : Effect.succeed(held)
    )
  }

  #parseShared<A, I>(key: string, schema: Schema.Schema<A, I>, text: string): Effect.Effect<Found<A> | undefined> {
    const held = this.#classify(key, schema, text)
    return held instanceof Corrupt ? Effect.as(this.#dropCorrupt(key, held.reason), undefined) : Effect.succeed(held)
  }

  #fillLocal<A, I>(key: string, schema: Schema.Schema<A, I>, found: Found<A>): void {
    const cap = this.#options.localMaxTtlMillis
    this.#local?.set(key, {
      value: found.value,
      schema,
      freshUntil: cap === undefined ? found.freshUntil : Math.min(found.freshUntil, this.#now() + cap),
      staleUntil: found.staleUntil,
      tags: found.tags,
      etag: found.etag
    })
  }

  // -------------------------------------------------------------------------------------------
  // fetching: one per key per process, one per cluster with Redis
  // -------------------------------------------------------------------------------------------

  #singleFlight<A, I, E, R>(job: Job<A, I, E, R>, candidate: Found<A> | undefined): Effect.Effect<Cached<A>, E, R> {
    const { key, schema } = job
    return Effect.suspend(() => {
      const existing = this.#inflight.get(key)
      if (existing !== undefined && existing.schema === schema) {
        countRefresh("memory", "stampede_wait")
        const joined = Deferred.await(existing.deferred as Deferred.Deferred<Cached<A>, E>)
        const span = job.span
        if (span === undefined) return joined
        const since = this.#now()
        return Effect.tap(joined, (cached) => this.#answered(span, existing, cached, this.#now() - since))
      }
      const flight: Flight = {
        schema,
        tags: job.options.tags,
        deferred: Deferred.unsafeMake<Cached<unknown>, unknown>(FiberId.none),
        invalidated: false,
        tier: this.#innerTier,
        waitedMillis: 0
      }
      // A fetch typed by another Schema runs on its own, without taking the key's slot.
      const owner = existing === undefined
      if (owner) this.#inflight.set(key, flight)
      const run = this.#lead(job, candidate, flight).pipe(
        Effect.exit,
        Effect.flatMap((exit) => {
          if (owner && this.#inflight.get(key) === flight) this.#inflight.delete(key)
          return Deferred.done(flight.deferred, exit as Exit.Exit<Cached<unknown>, unknown>)
        })
      )
      const awaited = Deferred.await(flight.deferred as Deferred.Deferred<Cached<A>, E>)
      const span = job.span
      return Effect.zipRight(
        Effect.forkIn(run, this.#options.scope),
        span === undefined
          ? awaited
          : Effect.tap(awaited, (cached) => this.#answered(span, flight, cached, flight.waitedMillis))
      )
    })
  }

  /** The caller's event for a lookup answered by a fetch (its own, or one it joined). */
  #answered<A>(span: Tracer.Span, flight: Flight, cached: Cached<A>, waitedMillis: number): void {
    lookupEvent(span, flight.tier, cached.status, this.#now(), waitedMillis)
  }

  #lead<A, I, E, R>(
    job: Job<A, I, E, R>,
    candidate: Found<A> | undefined,
    flight: Flight
  ): Effect.Effect<Cached<A>, E, R> {
    const { key, options, schema } = job
    return Effect.gen(this, function*() {
      let previous = candidate
      let token: string | undefined
      const shared = this.#shared
      if (shared !== undefined && shared.usable) {
        if (job.mode === "refresh") {
          // Another instance may have refreshed it already.
          const current = yield* this.#readShared(key, schema)
          if (current !== undefined && current.freshUntil - this.#now() > options.refreshAheadMillis) {
            this.#fillLocal(key, schema, current)
            return { value: current.value, status: "hit" }
          }
          const attempt = randomUUID()
          const locked = yield* Effect.orElseSucceed(
            shared.lock(key, attempt, this.#options.lockTtlMillis),
            () => false
          )
          if (!locked) return { value: (previous ?? current)?.value as A, status: "hit" }
          token = attempt
        } else {
          const acquired = yield* this.#acquire(key, schema, flight)
          if (acquired._tag === "Found") {
            this.#fillLocal(key, schema, acquired.found as Found<A>)
            return { value: acquired.found.value as A, status: "hit" }
          }
          if (acquired._tag === "Locked") {
            token = acquired.token
            // The holder before us may have stored the value just before we took the lock.
            const current = yield* this.#readShared(key, schema)
            if (current !== undefined && current.freshUntil > this.#now()) {
              yield* Effect.ignore(shared.unlock(key, acquired.token))
              this.#fillLocal(key, schema, current)
              return { value: current.value, status: "hit" }
            }
            if (current !== undefined && (previous === undefined || current.staleUntil > previous.staleUntil)) {
              previous = current
            }
          }
        }
      }
      const fetched = this.#fetch(job, previous, flight)
      const lockToken = token
      return yield* lockToken === undefined || shared === undefined
        ? fetched
        : Effect.ensuring(fetched, Effect.ignore(shared.unlock(key, lockToken)))
    })
  }

  #fetch<A, I, E, R>(
    job: Job<A, I, E, R>,
    previous: Found<A> | undefined,
    flight: Flight
  ): Effect.Effect<Cached<A>, E, R> {
    const { key, loader, options, schema } = job
    return Effect.suspend(() => {
      this.#fetches++
      const load = Effect.isEffect(loader) ? Effect.map(loader, toLoaded) : loader(previous)
      return Effect.matchEffect(load, {
        onFailure: (error) => {
          if (previous !== undefined && previous.staleUntil > this.#now() && options.staleIf(error)) {
            if (previous.freshUntil > this.#now()) {
              return Effect.succeed<Cached<A>>({ value: previous.value, status: "hit" })
            }
            flight.tier = tierOf(previous)
            this.#count(flight.tier, "stale", undefined)
            return Effect.succeed<Cached<A>>({ value: previous.value, status: "stale" })
          }
          return Effect.fail(error)
        },
        onSuccess: (loaded) => {
          const cached: Cached<A> = { value: loaded.value, status: loaded.revalidated === true ? "hit" : "miss" }
          if (flight.invalidated) return Effect.succeed(cached)
          return Effect.as(this.#store(key, schema, loaded, options, job.mode === "refresh"), cached)
        }
      })
    })
  }

  /**
   * Takes the key's Redis lock, or waits for its holder's value: polls (5 ms doubling to 50 ms)
   * until the value is fresh, the lock is free again (then tries to take it), or `lockWait` passes.
   */
  #acquire<A, I>(key: string, schema: Schema.Schema<A, I>, flight: Flight): Effect.Effect<Acquired> {
    const shared = this.#shared
    if (shared === undefined) return Effect.succeed(unlocked)
    const token = randomUUID()
    const started = this.#now()
    const deadline = started + this.#options.lockWaitMillis
    let waited = false
    const acquire = Effect.gen(this, function*() {
      let delay = 5
      for (;;) {
        const locked = yield* Effect.either(shared.lock(key, token, this.#options.lockTtlMillis))
        if (Either.isLeft(locked)) return unlocked
        if (locked.right) return { _tag: "Locked", token } as const
        if (!waited) countRefresh("redis", "stampede_wait")
        waited = true
        for (;;) {
          if (this.#now() >= deadline) return unlocked
          yield* Effect.sleep(Duration.millis(delay))
          delay = Math.min(delay * 2, 50)
          const peeked = yield* Effect.either(shared.peek(key))
          if (Either.isLeft(peeked)) return unlocked
          const { locked: held, value } = peeked.right
          if (value !== null) {
            const found = yield* this.#parseShared(key, schema, value)
            if (found !== undefined && found.freshUntil > this.#now()) return { _tag: "Found", found } as const
          }
          if (!held) break
        }
      }
    })
    return Effect.map(acquire, (acquired) => {
      if (waited) flight.waitedMillis = this.#now() - started
      return acquired
    })
  }

  #refreshAhead<A, I, E, R>(
    key: string,
    schema: Schema.Schema<A, I>,
    loader: Source<A, E, R>,
    options: CallOptions<E>,
    current: Found<A>,
    span: Tracer.Span | undefined
  ): Effect.Effect<void, never, R> {
    if (this.#inflight.has(key)) return Effect.void
    const tier = tierOf(current)
    countRefresh(tier, "refresh_ahead")
    if (span !== undefined) lookupEvent(span, tier, "refresh_ahead", this.#now(), 0)
    return Effect.asVoid(Effect.forkIn(
      Effect.ignoreLogged(
        this.#singleFlight(
          { key, schema, loader, options: this.#resolve(options), mode: "refresh", span: undefined },
          current
        )
      ),
      this.#options.scope
    ))
  }

  // -------------------------------------------------------------------------------------------
  // writing
  // -------------------------------------------------------------------------------------------

  #store<A, I>(
    key: string,
    schema: Schema.Schema<A, I>,
    loaded: Loaded<A>,
    options: EntryOptions,
    announce: boolean
  ): Effect.Effect<void> {
    return Effect.suspend(() => {
      const storage = loaded.storage ?? "shared"
      const shared = this.#shared
      if (storage === "none") {
        this.#local?.delete(key)
        return shared === undefined ? Effect.void : Effect.ignore(shared.unlink([key]))
      }
      const encoded = encoderOf(schema)(loaded.value)
      if (Either.isLeft(encoded)) {
        this.#errors++
        return Effect.logWarning(`cache: value for ${JSON.stringify(key)} does not encode with its Schema; not cached`)
      }
      const now = this.#now()
      const ttl = Math.min(loaded.ttlMillis ?? options.ttlMillis, options.ttlMillis)
      const found: Found<A> = {
        value: loaded.value,
        freshUntil: now + ttl,
        staleUntil: now + ttl + options.staleForMillis,
        etag: loaded.etag,
        tags: options.tags
      }
      if (found.staleUntil <= now) {
        this.#local?.delete(key)
        return Effect.void
      }
      if (storage === "local" || shared === undefined) {
        this.#local?.set(key, { ...found, schema })
        return Effect.void
      }
      let envelope: string
      try {
        envelope = encodeEnvelope({ ...found, encoded: encoded.right })
      } catch {
        this.#errors++
        return Effect.logWarning(`cache: value for ${JSON.stringify(key)} is not JSON once encoded; not cached`)
      }
      this.#fillLocal(key, schema, found)
      const write = Effect.ignore(shared.set(key, envelope, found.staleUntil - now, options.tags))
      return announce ? Effect.zipRight(write, Effect.ignore(this.#publish({ _tag: "Keys", keys: [key] }))) : write
    })
  }

  /** Writes a value (write-through): this instance's copy is replaced, the others' dropped. */
  set<A, I>(key: string, schema: Schema.Schema<A, I>, value: A, options: CallOptions<never>): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.#markInflight({ _tag: "Keys", keys: [key] })
      return this.#store(key, schema, { value }, this.#resolve(options), true)
    })
  }

  // -------------------------------------------------------------------------------------------
  // invalidation
  // -------------------------------------------------------------------------------------------

  #markInflight(invalidation: Invalidation): void {
    if (this.#inflight.size === 0) return
    const hit = this.#matcher(invalidation)
    for (const [key, flight] of this.#inflight) if (hit(key, flight.tags)) flight.invalidated = true
  }

  #matcher(invalidation: Invalidation): (key: string, tags: ReadonlyArray<string>) => boolean {
    switch (invalidation._tag) {
      case "Keys": {
        const keys = new Set(invalidation.keys)
        return (key) => keys.has(key)
      }
      case "Pattern":
        return (key) => matchGlob(invalidation.pattern, key)
      case "Tag":
        return (_, tags) => tags.includes(invalidation.tag)
      case "Related": {
        const related = relatedTo(invalidation.resource, invalidation.id)
        return (key) => related(key)
      }
    }
  }

  /** Drops local copies (and marks fetches in flight) for an invalidation, this instance's or another's. */
  dropLocal(invalidation: Invalidation): number {
    this.#markInflight(invalidation)
    const local = this.#local
    if (local === undefined) return 0
    switch (invalidation._tag) {
      case "Keys":
        return invalidation.keys.filter((key) => local.delete(key)).length
      case "Pattern":
        return local.deletePattern(invalidation.pattern)
      case "Tag":
        return local.deleteTag(invalidation.tag)
      case "Related":
        return local.deleteWhere(relatedTo(invalidation.resource, invalidation.id))
    }
  }

  /** Drops every local copy: after missing invalidation messages (the subscriber reconnected). */
  dropAllLocal(): void {
    this.#local?.clear()
    for (const flight of this.#inflight.values()) flight.invalidated = true
  }

  #publish(invalidation: Invalidation): Effect.Effect<void, TierFailure> {
    const shared = this.#shared
    if (shared === undefined) return Effect.void
    return shared.publish(JSON.stringify({ origin: this.origin, invalidation }))
  }

  /** Applies a message from the invalidation channel; this instance's own are ignored. */
  receive(message: string): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(message)
    } catch {
      return
    }
    if (typeof parsed !== "object" || parsed === null || !("origin" in parsed) || !("invalidation" in parsed)) return
    if (parsed.origin === this.origin) return
    const invalidation = parsed.invalidation as Invalidation
    if (isInvalidation(invalidation)) this.dropLocal(invalidation)
  }

  /** Fails (after dropping the local copies) when the Redis tier cannot be reached. */
  invalidate(invalidation: Invalidation): Effect.Effect<number, TierFailure> {
    return Effect.suspend(() => {
      const dropped = this.dropLocal(invalidation)
      const shared = this.#shared
      if (shared === undefined) return Effect.succeed(dropped)
      const removed = this.#unlinkShared(shared, invalidation)
      return Effect.zipLeft(removed, this.#publish(invalidation))
    })
  }

  #unlinkShared(shared: RedisTier, invalidation: Invalidation): Effect.Effect<number, TierFailure> {
    switch (invalidation._tag) {
      case "Keys":
        return shared.unlink(invalidation.keys)
      case "Pattern":
        return shared.scanUnlink(invalidation.pattern)
      case "Tag":
        return shared.unlinkTag(invalidation.tag)
      case "Related": {
        const { id, resource } = invalidation
        const related = relatedTo(resource, id)
        return Effect.zipWith(
          shared.unlink([`${resource}:${id}`]),
          shared.scanUnlink(`${escapeGlob(resource)}:*`, (key) => key !== `${resource}:${id}` && related(key)),
          (a, b) => a + b
        )
      }
    }
  }

  stats(): Stats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      stale: this.#stale,
      errors: this.#errors + (this.#shared?.failures ?? 0),
      fetches: this.#fetches,
      entries: this.#local?.size ?? 0,
      redis: this.#shared === undefined ? "none" : this.#shared.state
    }
  }
}

const always = () => true

/** A failed read is a miss (fail open): the failure is already counted and logged by the tier. */
const noEntry = Effect.succeed(undefined)

const valueOf = <A>(cached: Cached<A>): A => cached.value

/** Where an entry was read: memory entries carry their Schema, Redis ones are decoded afresh. */
const tierOf = <A>(found: Found<A>): Tier => "schema" in found ? "memory" : "redis"

const toLoaded = <A>(value: A): Loaded<A> => ({ value })

/** Why a stored entry cannot be used. */
class Corrupt {
  constructor(readonly reason: string) {}
}

/** A hit within `refreshAhead` of its expiry starts a refresh. */
const dueForRefresh = <E>(options: CallOptions<E>, entry: MemoryEntry, now: number): boolean =>
  options.refreshAhead !== undefined && entry.freshUntil - now <= clampMillis(options.refreshAhead)

const isInvalidation = (value: Invalidation): boolean => {
  switch (value._tag) {
    case "Keys":
      return Array.isArray(value.keys) && value.keys.every((key) => typeof key === "string")
    case "Pattern":
      return typeof value.pattern === "string"
    case "Tag":
      return typeof value.tag === "string"
    case "Related":
      return typeof value.resource === "string" && typeof value.id === "string"
    default:
      return false
  }
}
