/**
 * `cluster`: one instance of the demo server against three behind nginx, side by side in one run.
 *
 * Two clusters from `deploy/cluster.ts` run at once (each: its own `redis-server`, instances from
 * the built `dist/` as `npm start` runs them, nginx from `deploy/nginx.conf.template`), and one
 * counting users upstream in its own process answering after 20 ms. Three contenders, interleaved
 * round by round: one instance called directly, the same instance behind nginx, three instances
 * behind nginx. Two workloads, each a closed loop of `concurrency` requests in flight:
 *
 * - cache hits: `GET /users/{1..50}`, warmed first (memory L1 in front of Redis);
 * - proxied calls: `GET /users?page=<never asked before>`: a cache miss, one upstream call
 *   through the resilience policy (no rate limit), a cache write.
 *
 * The machine is shared (2 cores, other work running): only the ratios of one run mean anything.
 * Three instances cannot be faster than one on 2 cores by much; what this shows is what nginx
 * and the spread cost, not what three machines would give.
 */
import { type Cluster, startCluster } from "../deploy/cluster.js"
import { spawnNode } from "./lib/processes.js"
import { type Contender, interleave, markdownTable, median, round, runPool, timeMs, writeResult } from "./lib/report.js"

const concurrency = 32
const requestsPerRound = 400
const rounds = 4
const upstreamLatencyMs = 20

let page = 0

/** Requests that failed at the transport (a reset kept-alive connection) and were sent again once. */
let resent = 0

const get = async (url: string, again = true): Promise<void> => {
  try {
    const response = await fetch(url)
    await response.arrayBuffer()
    if (response.status !== 200) throw new Error(`${url}: ${response.status}`)
  } catch (error) {
    if (!again || !(error instanceof TypeError)) throw error
    resent++
    await get(url, false)
  }
}

/** One round: `requestsPerRound` requests to `base + path()`, `concurrency` at a time; its time in ms. */
const round_ = (base: string, path: () => string) => () =>
  timeMs(() => runPool(requestsPerRound, concurrency, () => get(base + path())))

const contenders = (one: Cluster, three: Cluster, path: () => string): Array<Contender> => [
  { name: "1 instance, direct", run: round_(one.instances[0]!.url, path) },
  { name: "1 instance behind nginx", run: round_(one.url, path) },
  { name: "3 instances behind nginx", run: round_(three.url, path) }
]

const parseUrl = (line: string): string | undefined => {
  if (!line.startsWith("{")) return undefined
  const parsed: unknown = JSON.parse(line)
  return typeof parsed === "object" && parsed !== null && "url" in parsed && typeof parsed.url === "string"
    ? parsed.url
    : undefined
}

const perSecond = (times: ReadonlyArray<number>) => requestsPerRound / (median(times) / 1000)

export const run = async (): Promise<void> => {
  const upstream = await spawnNode({ args: ["test/fixtures/countingUpstreamServer.ts"], ready: parseUrl })
  const clusters: Array<Cluster> = []
  try {
    await fetch(`${upstream.ready}/__control`, {
      method: "POST",
      body: JSON.stringify({ latencyMs: upstreamLatencyMs })
    })
    const env = { UPSTREAM_URL: upstream.ready }
    const one = await startCluster({ instances: 1, run: "dist", env })
    clusters.push(one)
    const three = await startCluster({ instances: 3, run: "dist", env })
    clusters.push(three)

    // Warm every instance (the JIT) and the cache (users 1..50 in Redis and in each L1).
    for (const cluster of clusters) {
      for (const instance of cluster.instances) {
        await runPool(200, 8, () => get(`${instance.url}/users?page=${++page}`))
        await runPool(50, 8, async () => get(`${instance.url}/users/${(page++ % 50) + 1}`))
      }
    }
    let hit = 0
    const hits = await interleave(contenders(one, three, () => `/users/${(hit++ % 50) + 1}`), rounds)
    const proxied = await interleave(contenders(one, three, () => `/users?page=${++page}`), rounds)

    const table = (times: Record<string, Array<number>>) => {
      const base = perSecond(times["1 instance, direct"]!)
      return Object.entries(times).map(([name, values]) => ({
        name,
        requestsPerSecond: round(perSecond(values), 0),
        vsOneDirect: round(perSecond(values) / base)
      }))
    }
    const result = {
      concurrency,
      requestsPerRound,
      rounds,
      upstreamLatencyMs,
      cacheHits: table(hits),
      proxiedCalls: table(proxied),
      resent,
      upstreamCalls: ((await (await fetch(`${upstream.ready}/__stats`)).json()) as { total: number }).total
    }
    const file = await writeResult("cluster", result)
    for (const [title, rows] of [["cache hits", result.cacheHits], ["proxied calls", result.proxiedCalls]] as const) {
      console.log(`\n${title} (${concurrency} in flight, median of ${rounds} rounds of ${requestsPerRound})`)
      console.log(
        markdownTable(
          ["contender", "requests/s", "vs 1 instance direct"],
          rows.map((row) => [row.name, row.requestsPerSecond, `${row.vsOneDirect}×`])
        )
      )
    }
    console.log(`\n${resent} requests reset at the transport and sent again; written to ${file}`)
  } finally {
    for (const cluster of clusters) await cluster.stop()
    await upstream.stop()
  }
}
