/**
 * `fanout`: 1000 GETs at concurrency 50 against an upstream answering in 20 ms, through Liaison's `FanOut.all`.
 * Ideal: 1000 / 50 waves × 20 ms = 400 ms; the ratio to it is what the client and the event loop add.
 * Raw undici with the same pool runs interleaved as a reference for what the machine itself adds.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { FanOut, Http } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { Agent, request } from "undici"
import { spawnUpstream, withProcess } from "./lib/processes.js"
import { type Contender, interleave, markdownTable, median, round, runPool, timeMs, writeResult } from "./lib/report.js"

const CALLS = 1000
const CONCURRENCY = 50
const LATENCY_MS = 20
const RUNS = 5
const IDEAL_MS = (CALLS / CONCURRENCY) * LATENCY_MS

const Users = Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))

interface Client extends Contender {
  readonly close: () => Promise<void>
}

/** Half JSON, half text calls, as a real fan-out mixes endpoints. */
const liaison = (baseUrl: string): Client => {
  const runtime = ManagedRuntime.make(Http.layer({ pool: { maxConnections: CONCURRENCY } }))
  const json = Http.json(HttpClientRequest.get(`${baseUrl}/json?size=1&latency=${LATENCY_MS}`), Users)
  const text = Http.text(HttpClientRequest.get(`${baseUrl}/text?latency=${LATENCY_MS}`))
  const calls = Array.from(
    { length: CALLS },
    (_, i): Effect.Effect<unknown, unknown, Http.Http> => i % 2 === 0 ? json : text
  )
  return {
    name: "liaison",
    run: () => timeMs(() => runtime.runPromise(Effect.asVoid(FanOut.all(calls, { concurrency: CONCURRENCY })))),
    close: () => runtime.dispose()
  }
}

/** The same calls through bare @effect/platform HttpClient (undici, same pool size): what Effect itself costs. */
const bareEffect = (baseUrl: string): Client => {
  const agent = new Agent({ connections: CONCURRENCY })
  const client = HttpClient.withScope(HttpClient.filterStatusOk(NodeHttpClient.makeUndici(agent)))
  const json = client.get(`${baseUrl}/json?size=1&latency=${LATENCY_MS}`).pipe(
    Effect.flatMap((response) => response.json),
    Effect.flatMap(Schema.decodeUnknown(Users)),
    Effect.scoped
  )
  const text = client.get(`${baseUrl}/text?latency=${LATENCY_MS}`).pipe(
    Effect.flatMap((response) => response.text),
    Effect.scoped
  )
  const calls = Array.from({ length: CALLS }, (_, i): Effect.Effect<unknown, unknown> => i % 2 === 0 ? json : text)
  return {
    name: "effect",
    run: () => timeMs(() => Effect.runPromise(Effect.asVoid(Effect.all(calls, { concurrency: CONCURRENCY })))),
    close: () => agent.close()
  }
}

const rawUndici = (baseUrl: string): Client => {
  const agent = new Agent({ connections: CONCURRENCY })
  const url = `${baseUrl}/json?size=1&latency=${LATENCY_MS}`
  const call = async () => {
    const response = await request(url, { dispatcher: agent })
    await response.body.json()
  }
  return { name: "undici", run: () => timeMs(() => runPool(CALLS, CONCURRENCY, call)), close: () => agent.close() }
}

const report = async (times: Readonly<Record<string, ReadonlyArray<number>>>) => {
  const medianMs = (name: string) => median(times[name] ?? [])
  const liaisonMs = medianMs("liaison")
  const result = {
    liaison_ms: round(liaisonMs, 1),
    ideal_ms: IDEAL_MS,
    ratio: round(liaisonMs / IDEAL_MS, 3),
    target: "ratio <= 1.15",
    effect_ms: round(medianMs("effect"), 1),
    effect_ratio: round(medianMs("effect") / IDEAL_MS, 3),
    undici_ms: round(medianMs("undici"), 1),
    undici_ratio: round(medianMs("undici") / IDEAL_MS, 3),
    config: { calls: CALLS, concurrency: CONCURRENCY, latencyMs: LATENCY_MS, runs: RUNS, maxConnections: CONCURRENCY },
    runsMs: Object.fromEntries(Object.entries(times).map(([name, ms]) => [name, ms.map((t) => round(t, 1))]))
  }
  const file = await writeResult("fanout", result)
  const rows = Object.keys(times).map((
    name
  ) => [name, round(medianMs(name), 1), IDEAL_MS, round(medianMs(name) / IDEAL_MS, 3)])
  console.log(markdownTable(["client", "total ms (median)", "ideal ms", "ratio"], rows))
  console.log(`\nliaison ratio = ${result.ratio} (target <= 1.15); written to ${file}`)
}

export const run = (): Promise<void> =>
  withProcess(spawnUpstream, async (upstream) => {
    const clients = [liaison(upstream.ready.url), bareEffect(upstream.ready.url), rawUndici(upstream.ready.url)]
    try {
      // One untimed run each opens the connections and warms the JIT.
      for (const client of clients) await client.run()
      await report(await interleave(clients, RUNS))
    } finally {
      await Promise.all(clients.map((client) => client.close()))
    }
  })
