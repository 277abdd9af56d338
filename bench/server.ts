/**
 * `server`: cache-hit `GET /users/{id}` per second through the demo server (built, in its own process),
 * side by side with a bare `node:http` server doing the same work (`bench/lib/bareUsersServer.ts`: the id
 * parsed, the user read from a `Map` or from Redis, the JSON answered with `x-cache`) and with the platform's
 * floor (`bench/lib/floorUsersServer.ts`: a minimal `HttpApi` on `@effect/platform-node`, same route and
 * schemas, no Liaison middleware). Every user is fetched once (untimed), so every timed request is a hit.
 * 20,000 requests per round over 50 users, 64 in flight, rounds interleaved; the CPU time of each server
 * process per request is read from `/proc` (user + system), which a busy machine disturbs less than the
 * wall clock.
 *
 * With Redis the demo server runs `CACHE_TIER=redis` (every hit a Redis `GET`), the bare one `GET`s too.
 * (The default two-tier cache answers a hot key from its memory L1: that is the memory case.)
 *
 * `BENCH_CPU_PROF=<dir>` runs the demo server and the floor under `node --cpu-prof`, profiles into `<dir>`.
 */
import { Agent, request } from "undici"
import { cpuMicros, profileArgs, spawnDemoServer, type Spawned, spawnNode, withProcess } from "./lib/processes.js"
import { spawnRedis } from "./lib/redis.js"
import { type Contender, interleave, markdownTable, median, round, writeResult } from "./lib/report.js"

const REQUESTS = 20_000
const USERS = 50
const CONCURRENCY = 64
const ROUNDS = 5

interface Target {
  readonly url: string
  readonly upstream: string
}

/** The demo server logs its sandbox upstream's address, then the address it listens on. */
const liaisonReady = () => {
  let upstream: string | undefined
  return (line: string): Target | undefined => {
    upstream ??= /sandbox users upstream at (http:\/\/[^\s"\\]+)/.exec(line)?.[1]
    const port = /listening on http:\/\/[^:\s"]+:(\d+)/.exec(line)?.[1]
    return port === undefined || upstream === undefined ? undefined : { url: `http://127.0.0.1:${port}`, upstream }
  }
}

const jsonReady = (upstream: string) => (line: string): Target | undefined => {
  if (!line.startsWith("{")) return undefined
  const parsed = JSON.parse(line) as { readonly url?: unknown }
  return typeof parsed.url === "string" ? { url: parsed.url, upstream } : undefined
}

const liaisonServer = (redisUrl: string | undefined) => (): Promise<Spawned<Target>> =>
  spawnDemoServer(redisUrl === undefined ? {} : { REDIS_URL: redisUrl, CACHE_TIER: "redis" }, liaisonReady())

const referenceServer = (script: string, upstream: string, redisUrl?: string) => (): Promise<Spawned<Target>> =>
  spawnNode({
    args: [...(script.includes("floor") ? profileArgs() : []), script],
    env: { UPSTREAM_URL: upstream, ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl }) },
    ready: jsonReady(upstream)
  })

const send = async (agent: Agent, url: string): Promise<Record<string, number>> => {
  const answers: Record<string, number> = {}
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < REQUESTS) {
      const id = (next++ % USERS) + 1
      const response = await request(`${url}/users/${id}`, { dispatcher: agent })
      await response.body.dump()
      const key = `${response.statusCode} ${String(response.headers["x-cache"])}`
      answers[key] = (answers[key] ?? 0) + 1
    }
  }))
  return answers
}

interface Run {
  readonly contender: Contender
  readonly cpuPerRequest: Array<number>
  readonly unexpected: Array<Record<string, number>>
}

const contender = (name: string, server: Spawned<Target>, agent: Agent): Run => {
  const cpuPerRequest: Array<number> = []
  const unexpected: Array<Record<string, number>> = []
  return {
    cpuPerRequest,
    unexpected,
    contender: {
      name,
      run: async () => {
        const cpuBefore = await cpuMicros(server.pid)
        const start = performance.now()
        const answers = await send(agent, server.ready.url)
        const ms = performance.now() - start
        cpuPerRequest.push(((await cpuMicros(server.pid)) - cpuBefore) / REQUESTS)
        if (answers["200 hit"] !== REQUESTS) unexpected.push(answers)
        return ms
      }
    }
  }
}

/** Every user fetched once, so that the timed rounds are all hits. */
const warm = async (agent: Agent, url: string) => {
  for (let id = 1; id <= USERS; id++) {
    const response = await request(`${url}/users/${id}`, { dispatcher: agent })
    await response.body.dump()
    if (response.statusCode !== 200) throw new Error(`${url}/users/${id} answered ${response.statusCode}`)
  }
}

const measure = async (servers: Readonly<Record<string, Spawned<Target>>>) => {
  const agent = new Agent({ connections: CONCURRENCY })
  try {
    const runs = Object.entries(servers).map(([name, server]) => contender(name, server, agent))
    for (const server of Object.values(servers)) await warm(agent, server.ready.url)
    // One untimed round each: connections, JIT.
    for (const r of runs) await r.contender.run()
    for (const r of runs) r.cpuPerRequest.length = 0
    const times = await interleave(runs.map((r) => r.contender), ROUNDS)
    return Object.fromEntries(runs.map((r) => [r.contender.name, {
      per_s: round(REQUESTS / (median(times[r.contender.name] ?? []) / 1000), 0),
      cpu_us_per_request: round(median(r.cpuPerRequest), 1),
      runs_ms: (times[r.contender.name] ?? []).map((t) => round(t, 0)),
      unexpected_answers: r.unexpected
    }]))
  } finally {
    await agent.close()
  }
}

const withServers = async <A>(
  starts: Readonly<Record<string, () => Promise<Spawned<Target>>>>,
  body: (servers: Record<string, Spawned<Target>>) => Promise<A>
): Promise<A> => {
  const started: Record<string, Spawned<Target>> = {}
  try {
    for (const [name, start] of Object.entries(starts)) started[name] = await start()
    return await body(started)
  } finally {
    await Promise.all(Object.values(started).map((s) => s.stop()))
  }
}

export const run = async (): Promise<void> => {
  const redis = await spawnRedis()
  try {
    const results = await withProcess(liaisonServer(undefined), (liaison) => {
      const upstream = liaison.ready.upstream
      return withServers({
        "liaison-redis": liaisonServer(redis.url),
        "floor-memory": referenceServer("bench/lib/floorUsersServer.ts", upstream),
        "bare-memory": referenceServer("bench/lib/bareUsersServer.ts", upstream),
        "bare-redis": referenceServer("bench/lib/bareUsersServer.ts", upstream, redis.url)
      }, (others) => measure({ "liaison-memory": liaison, ...others }))
    })
    const rate = (name: string) => results[name]?.per_s ?? Number.NaN
    const cpu = (name: string) => results[name]?.cpu_us_per_request ?? Number.NaN
    const result = {
      users_get_cache_hit: results,
      memory_ratio_to_bare: round(rate("liaison-memory") / rate("bare-memory"), 3),
      redis_ratio_to_bare: round(rate("liaison-redis") / rate("bare-redis"), 3),
      floor_ratio_to_bare: round(rate("floor-memory") / rate("bare-memory"), 3),
      memory_cpu_ratio_to_bare: round(cpu("bare-memory") / cpu("liaison-memory"), 3),
      redis_cpu_ratio_to_bare: round(cpu("bare-redis") / cpu("liaison-redis"), 3),
      floor_cpu_ratio_to_bare: round(cpu("bare-memory") / cpu("floor-memory"), 3),
      config: { requests: REQUESTS, users: USERS, concurrency: CONCURRENCY, rounds: ROUNDS }
    }
    const file = await writeResult("server", result)
    const row = (label: string, store: string, name: string, bare: string) => [
      label,
      store,
      rate(name),
      cpu(name),
      round(rate(name) / rate(bare), 3),
      round(cpu(bare) / cpu(name), 3)
    ]
    console.log(markdownTable(
      [
        "GET /users/{id}, cache hit",
        "store",
        "req/s (median)",
        "server CPU µs/req",
        "ratio to bare (req/s)",
        "ratio to bare (CPU)"
      ],
      [
        row("liaison", "memory", "liaison-memory", "bare-memory"),
        row("liaison", "redis (CACHE_TIER=redis)", "liaison-redis", "bare-redis"),
        row("platform floor (minimal HttpApi)", "memory (Map)", "floor-memory", "bare-memory"),
        row("bare node:http", "memory (Map)", "bare-memory", "bare-memory"),
        row("bare node:http", "redis (GET)", "bare-redis", "bare-redis")
      ]
    ))
    console.log(`\nwritten to ${file}`)
  } finally {
    await redis.stop()
  }
}
