/**
 * `webhooks`: inbound events per second through the demo server's `POST /webhooks/stripe` — each request
 * verified (Stripe signature over the raw body) and claimed (the event id recorded once and queued for the
 * workers) before its 200 — with the in-memory store and with Redis. 20,000 requests per round, 30% of them
 * redeliveries of an event already sent, 64 in flight.
 *
 * The server (built, in its own process) is compared with a bare `node:http` server doing only the minimum
 * (`bench/lib/bareWebhookServer.ts`: verify, claim with a `Set` or `SET NX EX`, answer), on the same machine,
 * rounds interleaved. After each Liaison round, the time until its workers have processed every event is
 * measured too (polling a sample of the last ids). The CPU time of each server process per request (from `/proc`,
 * its workers included) is reported beside the rate: a busy machine disturbs it less than the wall clock.
 *
 * The platform's floor runs beside them (`bench/lib/floorWebhookServer.ts`: the bare server's verify + claim as
 * a minimal `HttpApi` on `@effect/platform-node`, nothing of Liaison): what the platform alone costs on this route.
 */
import { StripeWebhook } from "@liaison/integrations"
import * as Redacted from "effect/Redacted"
import { Agent, request } from "undici"
import { cpuMicros, spawnDemoServer, type Spawned, spawnNode, withProcesses } from "./lib/processes.js"
import { spawnRedis } from "./lib/redis.js"
import { type Contender, interleave, markdownTable, median, round, writeResult } from "./lib/report.js"

const REQUESTS = 20_000
const DUPLICATE_SHARE = 0.3
const CONCURRENCY = 64
const ROUNDS = 3
const SECRET = "whsec_liaison_bench"

interface Target {
  readonly url: string
}

const parseListening = (line: string): Target | undefined => {
  const port = /listening on http:\/\/[^:\s"]+:(\d+)/.exec(line)?.[1]
  return port === undefined ? undefined : { url: `http://127.0.0.1:${port}` }
}

const parseJsonUrl = (line: string): Target | undefined => {
  if (!line.startsWith("{")) return undefined
  const parsed = JSON.parse(line) as { readonly url?: unknown }
  return typeof parsed.url === "string" ? { url: parsed.url } : undefined
}

const liaisonServer = (redisUrl: string | undefined) => (): Promise<Spawned<Target>> =>
  spawnDemoServer({
    STRIPE_WEBHOOK_SECRET: SECRET,
    WEBHOOK_WORKERS: "8",
    ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl })
  }, parseListening)

const referenceServer = (script: string, redisUrl: string | undefined) => (): Promise<Spawned<Target>> =>
  spawnNode({
    args: [script],
    env: { STRIPE_WEBHOOK_SECRET: SECRET, ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl }) },
    ready: parseJsonUrl
  })

interface Signed {
  readonly id: string
  readonly body: string
  readonly signature: string
}

/** One round's requests: fresh ids, 30% of the requests redeliveries of earlier ones, shuffled. */
const prepare = (
  prefix: string
): { readonly requests: ReadonlyArray<Signed>; readonly unique: ReadonlyArray<string> } => {
  const uniqueCount = Math.round(REQUESTS * (1 - DUPLICATE_SHARE))
  const timestamp = Math.floor(Date.now() / 1000)
  const secret = Redacted.make(SECRET)
  const unique = Array.from({ length: uniqueCount }, (_, i) => {
    const id = `evt_${prefix}_${i}`
    const body = JSON.stringify({ id, object: "event", type: "bench.event", data: { object: { n: i } } })
    return { id, body, signature: StripeWebhook.sign({ secret, timestamp, body: new TextEncoder().encode(body) }) }
  })
  const requests = [
    ...unique,
    ...Array.from({ length: REQUESTS - uniqueCount }, (_, i) => unique[(i * 7919) % uniqueCount]!)
  ]
  for (let i = requests.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[requests[i], requests[j]] = [requests[j]!, requests[i]!]
  }
  return { requests, unique: unique.map((event) => event.id) }
}

const send = async (agent: Agent, url: string, requests: ReadonlyArray<Signed>): Promise<Record<number, number>> => {
  const statuses: Record<number, number> = {}
  let next = 0
  const worker = async () => {
    while (next < requests.length) {
      const event = requests[next++]!
      const response = await request(`${url}/webhooks/stripe`, {
        method: "POST",
        dispatcher: agent,
        headers: { "content-type": "application/json", "stripe-signature": event.signature },
        body: event.body
      })
      await response.body.dump()
      statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return statuses
}

/** Milliseconds until the server reports every sampled event processed. */
const drain = async (agent: Agent, url: string, ids: ReadonlyArray<string>): Promise<number> => {
  const start = performance.now()
  const sample = [...ids.slice(-20), ...ids.filter((_, i) => i % Math.ceil(ids.length / 30) === 0)]
  for (const id of sample) {
    for (;;) {
      const response = await request(`${url}/webhooks/events/${id}?source=stripe`, { dispatcher: agent })
      const status = (await response.body.json()) as { readonly state?: string }
      if (status.state === "processed") break
      if (performance.now() - start > 120_000) throw new Error(`event ${id} not processed after 2 minutes`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return performance.now() - start
}

interface Run {
  readonly contender: Contender
  readonly drains: Array<number>
  readonly failures: Array<Record<number, number>>
  /** The server process' CPU µs per request while the round's requests are answered (its workers' included). */
  readonly cpuPerRequest: Array<number>
}

const contender = (name: string, server: Spawned<Target>, agent: Agent, measureDrain: boolean): Run => {
  const drains: Array<number> = []
  const failures: Array<Record<number, number>> = []
  const cpuPerRequest: Array<number> = []
  const url = server.ready.url
  let roundNumber = 0
  return {
    drains,
    failures,
    cpuPerRequest,
    contender: {
      name,
      run: async () => {
        const { requests, unique } = prepare(`${name}_${Date.now()}_${roundNumber++}`)
        const cpuBefore = await cpuMicros(server.pid)
        const start = performance.now()
        const statuses = await send(agent, url, requests)
        const ms = performance.now() - start
        cpuPerRequest.push(((await cpuMicros(server.pid)) - cpuBefore) / requests.length)
        if (statuses[200] !== requests.length) failures.push(statuses)
        if (measureDrain) drains.push(await drain(agent, url, unique))
        return ms
      }
    }
  }
}

const perSecond = (ms: number) => round(REQUESTS / (ms / 1000), 0)

/** The same number of `GET /health` calls: the server's cheapest route, its own ceiling on this machine. */
const health = (url: string, agent: Agent): Contender => ({
  name: "liaison-health",
  run: async () => {
    let next = 0
    const start = performance.now()
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < REQUESTS) {
        const response = await request(`${url}/health`, { dispatcher: agent })
        await response.body.dump()
      }
    }))
    return performance.now() - start
  }
})

export const run = async (): Promise<void> => {
  const redis = await spawnRedis()
  try {
    await withProcesses({
      liaisonMemory: liaisonServer(undefined),
      liaisonRedis: liaisonServer(redis.url),
      bareMemory: referenceServer("bench/lib/bareWebhookServer.ts", undefined),
      bareRedis: referenceServer("bench/lib/bareWebhookServer.ts", redis.url),
      floorMemory: referenceServer("bench/lib/floorWebhookServer.ts", undefined),
      floorRedis: referenceServer("bench/lib/floorWebhookServer.ts", redis.url)
    }, async (servers) => {
      const agent = new Agent({ connections: CONCURRENCY })
      try {
        const runs = [
          contender("liaison-memory", servers.liaisonMemory, agent, true),
          contender("liaison-redis", servers.liaisonRedis, agent, true),
          contender("bare-memory", servers.bareMemory, agent, false),
          contender("bare-redis", servers.bareRedis, agent, false),
          contender("floor-memory", servers.floorMemory, agent, false),
          contender("floor-redis", servers.floorRedis, agent, false)
        ]
        const contenders = [...runs.map((r) => r.contender), health(servers.liaisonMemory.ready.url, agent)]
        // One untimed round each: connections, JIT, Lua scripts loaded.
        for (const contender of contenders) await contender.run()
        for (const r of runs) {
          r.drains.length = 0
          r.cpuPerRequest.length = 0
        }
        const times = await interleave(contenders, ROUNDS)
        const rate = (name: string) => perSecond(median(times[name] ?? []))
        const cpu = (name: string) => round(median(runs.find((r) => r.contender.name === name)!.cpuPerRequest), 1)
        const drainMs = (name: string) => round(median(runs.find((r) => r.contender.name === name)!.drains), 0)
        const result = {
          liaison_memory_events_per_s: rate("liaison-memory"),
          liaison_redis_events_per_s: rate("liaison-redis"),
          bare_memory_events_per_s: rate("bare-memory"),
          bare_redis_events_per_s: rate("bare-redis"),
          floor_memory_events_per_s: rate("floor-memory"),
          floor_redis_events_per_s: rate("floor-redis"),
          liaison_get_health_per_s: rate("liaison-health"),
          floor_memory_ratio_to_bare: round(rate("floor-memory") / rate("bare-memory"), 3),
          floor_redis_ratio_to_bare: round(rate("floor-redis") / rate("bare-redis"), 3),
          memory_ratio_to_bare: round(rate("liaison-memory") / rate("bare-memory"), 3),
          cpu_us_per_event: Object.fromEntries(runs.map((r) => [r.contender.name, cpu(r.contender.name)])),
          redis_ratio_to_bare: round(rate("liaison-redis") / rate("bare-redis"), 3),
          liaison_memory_processed_all_after_ms: drainMs("liaison-memory"),
          liaison_redis_processed_all_after_ms: drainMs("liaison-redis"),
          non_200_answers: Object.fromEntries(runs.map((r) => [r.contender.name, r.failures])),
          config: {
            requests: REQUESTS,
            duplicateShare: DUPLICATE_SHARE,
            concurrency: CONCURRENCY,
            rounds: ROUNDS,
            workers: 8
          },
          runsMs: Object.fromEntries(
            Object.entries(times).map(([name, ms]) => [
              name,
              ms.map((t) => round(t, 0))
            ])
          )
        }
        const file = await writeResult("webhooks", result)
        console.log(markdownTable(
          [
            "server",
            "store",
            "events/s (median)",
            "server CPU µs/event",
            "ratio to bare node:http",
            "all processed after (ms)"
          ],
          [
            [
              "liaison",
              "memory",
              result.liaison_memory_events_per_s,
              cpu("liaison-memory"),
              result.memory_ratio_to_bare,
              result.liaison_memory_processed_all_after_ms
            ],
            [
              "liaison",
              "redis",
              result.liaison_redis_events_per_s,
              cpu("liaison-redis"),
              result.redis_ratio_to_bare,
              result.liaison_redis_processed_all_after_ms
            ],
            ["bare node:http", "memory (Set)", result.bare_memory_events_per_s, cpu("bare-memory"), 1, "-"],
            ["bare node:http", "redis (SET NX)", result.bare_redis_events_per_s, cpu("bare-redis"), 1, "-"],
            [
              "platform floor (minimal HttpApi)",
              "memory (Set)",
              result.floor_memory_events_per_s,
              cpu("floor-memory"),
              result.floor_memory_ratio_to_bare,
              "-"
            ],
            [
              "platform floor (minimal HttpApi)",
              "redis (SET NX)",
              result.floor_redis_events_per_s,
              cpu("floor-redis"),
              result.floor_redis_ratio_to_bare,
              "-"
            ],
            ["liaison GET /health (reference)", "-", result.liaison_get_health_per_s, "-", "-", "-"]
          ]
        ))
        console.log(`\nwritten to ${file}`)
      } finally {
        await agent.close()
      }
    })
  } finally {
    await redis.stop()
  }
}
