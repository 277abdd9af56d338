/**
 * `ratelimit`: does `RateLimit` in wait mode hold a configured 200 req/s? Four producer fibers take permits for
 * one key as fast as the limiter lets them, for 10 s, with the memory store and the Redis store (a private
 * redis-server), under a token bucket and a sliding window. For each run: the achieved rate (target: within ±2%
 * of 200/s) and the most permits in any sliding 1 s window (target: at most 200).
 *
 * Windows are counted at the times the store granted the permits (its `Clock` for memory, Redis `TIME` for
 * Redis), and also at the times `acquire` returned, which lag them.
 */
import { RateLimit, Redis } from "@liaison/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import { spawnRedis } from "./lib/redis.js"
import { markdownTable, round, writeResult } from "./lib/report.js"

const RATE = 200
const SECONDS = 10
const PRODUCERS = 4
const WINDOW_MILLIS = 1000
const TOLERANCE = 0.02

interface RuleCase {
  readonly name: string
  readonly rule: RateLimit.Rule
  readonly why: string
}

const rules: ReadonlyArray<RuleCase> = [
  {
    name: "token bucket, burst 1",
    rule: RateLimit.tokenBucket({ limit: RATE, interval: "1 second", burst: 1 }),
    why: "burst 1: one permit every 5 ms and never two at once, so no 1 s window can hold more than 200 " +
      "(at most burst + 200 × t/1 s); but a waiter that wakes late loses that time, as the bucket holds one token"
  },
  {
    name: "token bucket, burst 10",
    rule: RateLimit.tokenBucket({ limit: RATE, interval: "1 second", burst: 10 }),
    why: "burst 10 (50 ms worth): late wake-ups are made up from the bucket, so the rate holds; the bound per " +
      "1 s window is burst + 200 = 210, reached in the first second when the bucket starts full"
  },
  {
    name: "sliding window",
    rule: RateLimit.slidingWindow({ limit: RATE, window: "1 second" }),
    why: "exact log of the last second: never more than 200 in any 1 s window; the 200 come as soon as they " +
      "may, i.e. in bursts as the oldest permits leave the window"
  }
]

interface Run {
  readonly store: "memory" | "redis"
  readonly rule: string
  readonly permits: number
  readonly ratePerSecond: number
  readonly rateErrorPercent: number
  /** The most permits in any 1 s window, by the store's clock (Redis `TIME` for Redis; `Clock` for memory). */
  readonly maxPerWindow: number
  /** The same by this process' clock after `acquire` returned (the same as the above for memory). */
  readonly maxPerWindowObserved: number
  /** The most in any 1 s window that starts after the first second (a full bucket's first burst left out). */
  readonly maxPerWindowAfterFirstSecond: number
  readonly rateMet: boolean
  readonly windowMet: boolean
}

/** The most timestamps (sorted, ms) in any window (t - length, t] with t >= from. */
const maxInWindow = (stamps: ReadonlyArray<number>, length: number, from = -Infinity): number => {
  let best = 0
  let first = 0
  for (let last = 0; last < stamps.length; last++) {
    while ((stamps[first] ?? 0) <= (stamps[last] ?? 0) - length) first++
    if ((stamps[last] ?? 0) - length >= from) best = Math.max(best, last - first + 1)
  }
  return best
}

const sorted = (stamps: ReadonlyArray<number>) => [...stamps].sort((a, b) => a - b)

/**
 * A `Clock` that remembers its last reading. The memory store reads the clock once per decision and a producer
 * fiber has its own, so once `acquire` returns it holds the time the store granted that permit at.
 */
const recordingClock = (): { readonly clock: Clock.Clock; readonly last: () => number } => {
  const base = Clock.make()
  let last = Number.NaN
  const read = () => (last = base.unsafeCurrentTimeMillis())
  const clock: Clock.Clock = Object.assign(Object.create(base) as Clock.Clock, {
    unsafeCurrentTimeMillis: read,
    currentTimeMillis: Effect.sync(read)
  })
  return { clock, last: () => last }
}

/**
 * Runs the producers for `SECONDS`; returns every permit's time as seen after `acquire` returned (`observed`),
 * and as the store decided it by its `Clock` (`decided`; empty for a store that does not read the `Clock`).
 */
const produce = (limiter: RateLimit.Service, key: string, rule: RateLimit.Rule) =>
  Effect.gen(function*() {
    const observed: Array<number> = []
    const decided: Array<number> = []
    const producer = Effect.suspend(() => {
      const { clock, last } = recordingClock()
      return Effect.forever(
        Effect.zipRight(
          limiter.acquire(key, rule, "wait"),
          Effect.sync(() => {
            observed.push(Date.now())
            if (!Number.isNaN(last())) decided.push(last())
          })
        )
      ).pipe(Effect.withClock(clock))
    })
    const start = yield* Clock.currentTimeMillis
    yield* Effect.forEach(Array.from({ length: PRODUCERS }), () => producer, { concurrency: PRODUCERS }).pipe(
      Effect.timeoutOption(Duration.seconds(SECONDS))
    )
    return { start, observed: sorted(observed), decided: sorted(decided) }
  })

/**
 * Records the Redis `TIME` of every permit the Redis store grants: its Lua scripts (run with `EVALSHA`, or
 * `EVAL` on `NOSCRIPT`) answer `[allowed, remaining, retryAfter, now]`, and nothing else runs scripts on this
 * client. Benchmark instrumentation of an internal.
 */
const recordRedisDecisions = (client: object): Array<number> => {
  const decided: Array<number> = []
  for (const name of ["evalsha", "eval"]) {
    const original: unknown = Reflect.get(client, name)
    if (typeof original !== "function") throw new Error(`the Redis client has no ${name}`)
    Reflect.set(client, name, async (...args: ReadonlyArray<unknown>) => {
      const reply: unknown = await Reflect.apply(original, client, args)
      if (Array.isArray(reply) && reply[0] === 1 && typeof reply[3] === "number") decided.push(reply[3])
      return reply
    })
  }
  return decided
}

const measure = async <R = never>(
  store: Run["store"],
  layer: Layer.Layer<RateLimit.RateLimit | R, unknown>,
  rule: RuleCase,
  /** Called once the layer is built; returns where the store's own decision times will be. */
  instrument?: (runtime: ManagedRuntime.ManagedRuntime<RateLimit.RateLimit | R, unknown>) => Promise<Array<number>>
): Promise<Run> => {
  const runtime = ManagedRuntime.make(layer)
  try {
    await runtime.runtime()
    const decidedByRedis = instrument === undefined ? undefined : await instrument(runtime)
    console.error(`${store}, ${rule.name}: ${SECONDS} s`)
    const key = `bench-${rule.name.replace(/\W+/g, "-")}-${Date.now()}`
    const { decided, observed: stamps, start } = await runtime.runPromise(
      Effect.flatMap(RateLimit.RateLimit, (limiter) => produce(limiter, key, rule.rule))
    )
    const storeStamps = decidedByRedis === undefined ? decided : sorted(decidedByRedis)
    if (storeStamps.length !== stamps.length) {
      throw new Error(`${store}: ${storeStamps.length} decisions recorded for ${stamps.length} permits`)
    }
    const permits = stamps.filter((t) => t < start + SECONDS * 1000).length
    const ratePerSecond = permits / SECONDS
    const maxPerWindow = maxInWindow(storeStamps, WINDOW_MILLIS)
    return {
      store,
      rule: rule.name,
      permits,
      ratePerSecond: round(ratePerSecond, 1),
      rateErrorPercent: round((ratePerSecond / RATE - 1) * 100, 2),
      maxPerWindow,
      maxPerWindowObserved: maxInWindow(stamps, WINDOW_MILLIS),
      maxPerWindowAfterFirstSecond: maxInWindow(storeStamps, WINDOW_MILLIS, (storeStamps[0] ?? 0) + WINDOW_MILLIS),
      rateMet: Math.abs(ratePerSecond / RATE - 1) <= TOLERANCE,
      windowMet: maxPerWindow <= RATE
    }
  } finally {
    await runtime.dispose()
  }
}

export const run = async (): Promise<void> => {
  const redis = await spawnRedis()
  const runs: Array<Run> = []
  try {
    const redisLayer = RateLimit.layerRedis({ prefix: "liaison:bench:ratelimit:" }).pipe(
      Layer.provideMerge(Redis.layer({ url: Redacted.make(redis.url) }))
    )
    for (const rule of rules) {
      runs.push(await measure("memory", RateLimit.layerMemory(), rule))
      runs.push(
        await measure(
          "redis",
          redisLayer,
          rule,
          async (runtime) => recordRedisDecisions((await runtime.runPromise(Redis.Redis)).client)
        )
      )
    }
  } finally {
    await redis.stop()
  }
  const file = await writeResult("ratelimit", {
    runs,
    targets: {
      ratePerSecond: `${RATE} ± ${TOLERANCE * 100}%`,
      maxPerWindow: `<= ${RATE} in any ${WINDOW_MILLIS} ms window`
    },
    config: { rate: RATE, seconds: SECONDS, producers: PRODUCERS, mode: "wait", key: "one key per run" },
    rules: Object.fromEntries(rules.map((rule) => [rule.name, rule.why])),
    notes: [
      "achieved rate = permits acquired in the first 10 s / 10 s; windows are (t - 1000 ms, t] over all permits.",
      "maxPerWindow is by the store's clock: for memory, the Clock reading the store decided on (each producer " +
      "fiber runs with its own Clock that remembers its last reading); for Redis, the Redis TIME each granted " +
      "permit was decided at (read from the store's script replies). maxPerWindowObserved is Date.now() after " +
      "acquire returned: it lags the decision by whatever delays the fiber (a Redis round trip, the scheduler, a " +
      "busy event loop), which varies, so a window can look fuller than the store ever let it be."
    ]
  })
  console.log(markdownTable(
    [
      "store",
      "rule",
      "permits",
      "rate/s",
      "error %",
      "max in 1 s (store clock)",
      "max in 1 s (observed)",
      "max in 1 s after the 1st",
      "rate ±2%",
      "≤ 200 / s"
    ],
    runs.map((r) => [
      r.store,
      r.rule,
      r.permits,
      r.ratePerSecond,
      r.rateErrorPercent,
      r.maxPerWindow,
      r.maxPerWindowObserved,
      r.maxPerWindowAfterFirstSecond,
      r.rateMet ? "yes" : "no",
      r.windowMet ? "yes" : "no"
    ])
  ))
  console.log(`\nwritten to ${file}`)
}
