/**
 * `shared`: what sharing the policy's state through Redis costs a call, against the local-only
 * policy. The same GET /json?size=1 at concurrency 64, interleaved rounds, through the full
 * `Policy` (3 attempts, breaker, a limit far above the load that every attempt counts against):
 *   - `local`: every state in memory (one instance),
 *   - `redis-limit`: the limit counted in Redis, breaker and retry budget local,
 *   - `shared`: the limit in Redis, the shared breaker (`CircuitBreaker.layerRedis`) and the
 *     retry budget in Redis (`Retry.layerBudgetStoreRedis`): what N instances behind a load
 *     balancer run.
 * Redis is a private `redis-server`; the upstream answers at once, so the policy's cost shows.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { CircuitBreaker, Http, Policy, RateLimit, Redis, Retry } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { spawnUpstream, withProcess } from "./lib/processes.js"
import { spawnRedis } from "./lib/redis.js"
import { type Contender, interleave, markdownTable, median, round, timeWithCpu, writeResult } from "./lib/report.js"

const REQUESTS = 10_000
const WARMUP = 3_000
const ROUNDS = 5
const CONCURRENCY = 64

const Users = Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))

const names = ["local", "redis-limit", "shared"] as const
type Name = typeof names[number]

const policy = Policy.layer({
  rateLimit: { rule: RateLimit.slidingWindow({ limit: 10_000_000, window: "1 second" }), mode: "wait" },
  totalTimeout: 30_000,
  attemptTimeout: 10_000,
  retry: { maxAttempts: 3, base: 10 }
})

const breaker = { failureThreshold: 5, openDuration: 60_000 }

/** The policy's client with the state of `name`; Redis from `redisUrl`. */
const layerOf = (name: Name, redisUrl: string) => {
  const redis = Redis.layer({ url: Redacted.make(redisUrl) })
  const prefix = `bench-shared:${name}:`
  const state = name === "local"
    ? Layer.mergeAll(CircuitBreaker.layer(breaker), RateLimit.layerMemory())
    : name === "redis-limit"
    ? Layer.mergeAll(CircuitBreaker.layer(breaker), RateLimit.layerRedis({ prefix }).pipe(Layer.provide(redis)))
    : Layer.mergeAll(
      CircuitBreaker.layerRedis({ ...breaker, prefix: `${prefix}breaker:` }),
      RateLimit.layerRedis({ prefix }),
      Retry.layerBudgetStoreRedis({ prefix: `${prefix}budget:` })
    ).pipe(Layer.provide(redis))
  return policy.pipe(Layer.provide([Http.layer({ pool: { maxConnections: CONCURRENCY } }), state]))
}

interface Client {
  readonly name: Name
  readonly batch: (count: number) => Promise<void>
  readonly close: () => Promise<void>
}

const client = (name: Name, url: string, redisUrl: string): Client => {
  const runtime = ManagedRuntime.make(layerOf(name, redisUrl))
  const call = Http.json(HttpClientRequest.get(url), Users)
  return {
    name,
    batch: (count) =>
      runtime.runPromise(Effect.forEach(Array(count), () => call, { concurrency: CONCURRENCY, discard: true })),
    close: () => runtime.dispose()
  }
}

export const run = async (): Promise<void> => {
  const redis = await spawnRedis()
  try {
    await withProcess(spawnUpstream, async (upstream) => {
      const url = `${upstream.ready.url}/json?size=1`
      const clients = names.map((name) => client(name, url, redis.url))
      try {
        for (const c of clients) {
          console.error(`warm-up ${c.name}: ${WARMUP} requests`)
          await c.batch(WARMUP)
        }
        const cpu: Record<string, Array<number>> = {}
        const contenders: Array<Contender> = clients.map((c) => ({
          name: c.name,
          run: () => timeWithCpu(cpu, c.name, () => c.batch(REQUESTS))
        }))
        const times = await interleave(contenders, ROUNDS)
        const perSecond = (ms: ReadonlyArray<number>) => REQUESTS / (median(ms) / 1000)
        const wall = Object.fromEntries(names.map((name) => [name, perSecond(times[name] ?? [])])) as Record<
          Name,
          number
        >
        const byCpu = Object.fromEntries(names.map((name) => [name, perSecond(cpu[name] ?? [])])) as Record<
          Name,
          number
        >
        const file = await writeResult("shared", {
          requests_per_second: Object.fromEntries(names.map((name) => [name, round(wall[name], 0)])),
          requests_per_cpu_second: Object.fromEntries(names.map((name) => [name, round(byCpu[name], 0)])),
          redis_limit_vs_local: round(wall["redis-limit"] / wall.local, 3),
          shared_vs_local: round(wall.shared / wall.local, 3),
          shared_vs_redis_limit: round(wall.shared / wall["redis-limit"], 3),
          config: { requests: REQUESTS, warmup: WARMUP, rounds: ROUNDS, concurrency: CONCURRENCY },
          notes: [
            "Every attempt takes a permit (limits count attempts); no attempt here needs a retry.",
            "Ratios are of medians over interleaved rounds, from one run on a shared machine."
          ],
          roundsMs: times
        })
        console.log(markdownTable(
          ["state", "req/s (median)", "req per CPU-s", "vs local", "vs local (CPU)"],
          names.map((name) => [
            name,
            round(wall[name], 0),
            round(byCpu[name], 0),
            round(wall[name] / wall.local, 3),
            round(byCpu[name] / byCpu.local, 3)
          ])
        ))
        console.log(`written to ${file}`)
      } finally {
        for (const c of clients) await c.close()
      }
    })
  } finally {
    await redis.stop()
  }
}
