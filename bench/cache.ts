/**
 * `cache`: what a cache hit costs.
 *
 * - Redis hit path: `Cache.getOrFetch` on the Redis layer (GET, JSON envelope, Schema decode) vs raw ioredis
 *   `GET` + `JSON.parse` of the same value, in one run: one call at a time (latency) and 64 in flight
 *   (throughput; 64 workers looping, for every contender). Target: liaison ≥ 0.9× raw (issue 16). For reference, the
 *   same GET + JSON.parse in a bare `Effect.promise`: what any Effect program pays before the cache does
 *   anything. One hot key: the cache parses and decodes its entry once and reuses that while the stored text
 *   is unchanged (a key that was rewritten since costs a parse and a decode again). Each row also reports this
 *   process' CPU µs per hit, steadier than ops/s on a busy machine (Redis runs in its own process).
 * - Memory hit path: `Cache.getOrFetch` on the memory layer, in operations/s (target ≥ 1,000,000/s), next to
 *   `effect/Cache`'s `get` for reference.
 * - Two-tier hit (memory L1 in front of Redis) vs Redis-only hit.
 *
 * Redis is a private `redis-server` started for the run.
 */
import { Cache, Redis } from "@liaison/core"
import * as EffectCache from "effect/Cache"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { Redis as IORedis } from "ioredis"
import { spawnRedis } from "./lib/redis.js"
import {
  type Contender,
  interleave,
  markdownTable,
  median,
  round,
  runPool,
  timeMs,
  timeWithCpu,
  writeResult
} from "./lib/report.js"

const ROUNDS = 5
const SEQUENTIAL = 10_000
const CONCURRENT = 50_000
const CONCURRENCY = 64
const MEMORY = 2_000_000

/** A user as the demo server caches it. */
const User = Schema.Struct({
  id: Schema.Number,
  username: Schema.String,
  email: Schema.String,
  full_name: Schema.NullOr(Schema.String),
  active: Schema.Boolean,
  created_at: Schema.String
})

const user: typeof User.Type = {
  id: 42,
  username: "user42",
  email: "user42@example.com",
  full_name: "User Forty-Two",
  active: true,
  created_at: "2024-01-01T00:00:00.000Z"
}

const KEY = "users:42"
const options = { schema: User, ttl: "1 hour" } as const
const neverCalled = Effect.dieMessage("the benchmark measures hits only")

/** One contender per mode: `batch(count, concurrency)` does `count` hits. */
interface Hitter {
  readonly name: string
  readonly batch: (count: number, concurrency: number) => Promise<void>
}

const raw = (client: IORedis, key: string): Hitter => ({
  name: "raw ioredis GET + JSON.parse",
  batch: (count, concurrency) =>
    runPool(count, concurrency, async () => {
      const text = await client.get(key)
      if (text === null) throw new Error("raw: miss")
      JSON.parse(text)
    })
})

/**
 * `count` runs of `op` by `concurrency` fibers, each looping: the same shape as `runPool` for the
 * promise-based contender (a fiber per call would add a fork to every hit).
 */
const workers = <E, R>(count: number, concurrency: number, op: Effect.Effect<unknown, E, R>) =>
  Effect.suspend(() => {
    let started = 0
    const worker = Effect.whileLoop({
      while: () => started < count,
      body: () => {
        started++
        return op
      },
      step: () => {}
    })
    return Effect.all(Array.from({ length: Math.min(concurrency, count) }, () => worker), {
      concurrency: "unbounded",
      discard: true
    })
  })

/** The least any Effect program pays for the same read: ioredis `GET` in `Effect.promise`, then `JSON.parse`. */
const bareEffect = (client: IORedis, key: string): Hitter => {
  const hit = Effect.map(Effect.promise(() => client.get(key)), (text) => JSON.parse(text ?? "null") as unknown)
  return {
    name: "Effect.promise(GET) + JSON.parse",
    batch: (count, concurrency) => Effect.runPromise(workers(count, concurrency, hit))
  }
}

const liaison = (
  name: string,
  runtime: ManagedRuntime.ManagedRuntime<Cache.Cache, unknown>
): Hitter => {
  const hit = Effect.flatMap(Cache.Cache, (cache) => cache.getOrFetch(KEY, neverCalled, options))
  return { name, batch: (count, concurrency) => runtime.runPromise(workers(count, concurrency, hit)) }
}

/** This process' CPU ms per round, by contender. */
const cpuMs: Record<string, Array<number>> = {}

const contender = (hitter: Hitter, count: number, concurrency: number, suffix: string): Contender => {
  const name = `${hitter.name}${suffix}`
  return { name, run: () => timeWithCpu(cpuMs, name, () => hitter.batch(count, concurrency)) }
}

const opsPerSecond = (count: number, times: ReadonlyArray<number>) => count / (median(times) / 1000)

/** Memory hits in a tight Effect loop (one fiber), as a server handler would do them. */
const memoryLoop = (runtime: ManagedRuntime.ManagedRuntime<Cache.Cache, unknown>) =>
  Effect.flatMap(Cache.Cache, (cache) =>
    Effect.gen(function*() {
      for (let i = 0; i < MEMORY; i++) yield* cache.getOrFetch(KEY, neverCalled, options)
    })).pipe((loop) => () => timeMs(() => runtime.runPromise(loop)))

const effectCacheLoop = () => {
  const cache = Effect.runSync(
    EffectCache.make({ capacity: 10_000, timeToLive: Duration.hours(1), lookup: (_: string) => Effect.succeed(user) })
  )
  Effect.runSync(cache.get(KEY))
  const loop = Effect.gen(function*() {
    for (let i = 0; i < MEMORY; i++) yield* cache.get(KEY)
  })
  return () => timeMs(() => Effect.runPromise(loop))
}

export const run = async (): Promise<void> => {
  const server = await spawnRedis()
  const client = new IORedis(server.url)
  const redis = Layer.scoped(Redis.Redis, Redis.make({ url: Redacted.make(server.url) }))
  const redisOnly = ManagedRuntime.make(Cache.layerRedis().pipe(Layer.provide(redis)))
  const twoTier = ManagedRuntime.make(Cache.layerTwoTier().pipe(Layer.provide(redis)))
  const memory = ManagedRuntime.make(Cache.layerMemory())
  try {
    // Fill: one miss each, then every call below is a hit. The raw key holds the same JSON as the value.
    for (const runtime of [redisOnly, twoTier, memory]) {
      await runtime.runPromise(Effect.flatMap(Cache.Cache, (cache) => cache.set(KEY, User, user, options)))
    }
    await client.set("raw:users:42", JSON.stringify(user), "EX", 3600)
    const hitters = {
      raw: raw(client, "raw:users:42"),
      effect: bareEffect(client, "raw:users:42"),
      redis: liaison("liaison Redis", redisOnly),
      twoTier: liaison("liaison two-tier", twoTier)
    }
    console.error("warm-up")
    for (const hitter of Object.values(hitters)) {
      await hitter.batch(5_000, 1)
      await hitter.batch(20_000, CONCURRENCY)
    }
    const sequential = await interleave(
      Object.values(hitters).map((h) => contender(h, SEQUENTIAL, 1, " (1 at a time)")),
      ROUNDS
    )
    const concurrent = await interleave(
      Object.values(hitters).map((h) => contender(h, CONCURRENT, CONCURRENCY, ` (${CONCURRENCY} in flight)`)),
      ROUNDS
    )
    const memoryTimes = await interleave([
      { name: "liaison memory", run: memoryLoop(memory) },
      { name: "effect/Cache get", run: effectCacheLoop() }
    ], ROUNDS)

    const ops = (times: Record<string, Array<number>>, count: number) =>
      Object.fromEntries(Object.entries(times).map(([name, t]) => [name, opsPerSecond(count, t)]))
    const seq = ops(sequential, SEQUENTIAL)
    const conc = ops(concurrent, CONCURRENT)
    const mem = ops(memoryTimes, MEMORY)
    const get = (record: Record<string, number>, name: string) => record[name] ?? Number.NaN
    const seqRaw = get(seq, `${hitters.raw.name} (1 at a time)`)
    const seqRedis = get(seq, `${hitters.redis.name} (1 at a time)`)
    const seqTwo = get(seq, `${hitters.twoTier.name} (1 at a time)`)
    const concRaw = get(conc, `${hitters.raw.name} (${CONCURRENCY} in flight)`)
    const concRedis = get(conc, `${hitters.redis.name} (${CONCURRENCY} in flight)`)
    const concTwo = get(conc, `${hitters.twoTier.name} (${CONCURRENCY} in flight)`)
    const memOps = get(mem, "liaison memory")
    const seqEffect = get(seq, `${hitters.effect.name} (1 at a time)`)
    const concEffect = get(conc, `${hitters.effect.name} (${CONCURRENCY} in flight)`)
    const cpuPerHit = (count: number, names: ReadonlyArray<string>) =>
      Object.fromEntries(names.map((name) => [name, round(median(cpuMs[name] ?? []) * 1000 / count, 2)]))
    const cpu: Record<string, number> = {
      ...cpuPerHit(SEQUENTIAL, Object.keys(sequential)),
      ...cpuPerHit(CONCURRENT, Object.keys(concurrent))
    }
    const result = {
      redis_hit_vs_raw_sequential: round(seqRedis / seqRaw, 3),
      redis_hit_vs_raw_concurrent: round(concRedis / concRaw, 3),
      bare_effect_vs_raw_sequential: round(seqEffect / seqRaw, 3),
      bare_effect_vs_raw_concurrent: round(concEffect / concRaw, 3),
      redis_hit_vs_bare_effect_sequential: round(seqRedis / seqEffect, 3),
      redis_hit_vs_bare_effect_concurrent: round(concRedis / concEffect, 3),
      memory_hit_ops_per_s: round(memOps, 0),
      effect_cache_get_ops_per_s: round(get(mem, "effect/Cache get"), 0),
      two_tier_vs_redis_sequential: round(seqTwo / seqRedis, 2),
      two_tier_vs_redis_concurrent: round(concTwo / concRedis, 2),
      cpu_us_per_hit: cpu,
      ops_per_s: Object.fromEntries(Object.entries({ ...seq, ...conc, ...mem }).map(([k, v]) => [k, round(v, 0)])),
      targets: { redis_hit_vs_raw: ">= 0.9", memory_hit_ops_per_s: ">= 1000000" },
      config: {
        rounds: ROUNDS,
        sequential: SEQUENTIAL,
        concurrent: CONCURRENT,
        concurrency: CONCURRENCY,
        memory: MEMORY,
        value: "a user, 6 fields, ~140 bytes of JSON, decoded with a Schema.Struct"
      },
      roundsMs: Object.fromEntries(
        Object.entries({ ...sequential, ...concurrent, ...memoryTimes }).map(([k, v]) => [k, v.map((t) => round(t, 1))])
      )
    }
    const file = await writeResult("cache", result)
    const rows = [
      ...Object.entries(seq).map((
        [name, value]
      ) => [name, round(value, 0), round(value / seqRaw, 3), cpu[name] ?? "-"]),
      ...Object.entries(conc).map((
        [name, value]
      ) => [name, round(value, 0), round(value / concRaw, 3), cpu[name] ?? "-"]),
      ...Object.entries(mem).map(([name, value]) => [name, round(value, 0), "-", "-"])
    ]
    console.log(markdownTable(["hit path", "ops/s (median)", "vs raw ioredis", "CPU µs/hit (median)"], rows))
    console.log(
      `\nRedis hit vs raw: ${result.redis_hit_vs_raw_sequential}× one at a time, ` +
        `${result.redis_hit_vs_raw_concurrent}× ${CONCURRENCY} in flight (target >= 0.9); ` +
        `memory hit ${result.memory_hit_ops_per_s.toLocaleString("en-US")} ops/s (target >= 1,000,000); ` +
        `two-tier vs Redis-only ${result.two_tier_vs_redis_sequential}× / ${result.two_tier_vs_redis_concurrent}×; ` +
        `written to ${file}`
    )
  } finally {
    await Promise.all([redisOnly.dispose(), twoTier.dispose(), memory.dispose()])
    client.disconnect()
    await server.stop()
  }
}
