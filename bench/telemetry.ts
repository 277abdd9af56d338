/**
 * `telemetry`: what the policy's spans cost. The same GET /json?size=1 requests at concurrency 64,
 * interleaved rounds, through the full `Policy` (rate limit far above the load, timeouts, retry,
 * breaker) over the Liaison `Http` client, with
 *   - `off`: Effect's built-in tracer (no tracer installed: the policy makes no spans),
 *   - `on`: a tracer that records every span (name, attributes, events, end) like an SDK span and
 *     exports nowhere: the `liaison.call`, `liaison.attempt` and `http.client` spans are all made.
 * The `liaison_*` metrics are updated in both (they are always on). Target: on ≥ 0.9× off.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Http } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import type * as Tracer from "effect/Tracer"
import { fullPolicy } from "./lib/fullPolicy.js"
import { spawnUpstream, withProcess } from "./lib/processes.js"
import { recordingTracer } from "./lib/recordingTracer.js"
import { type Contender, interleave, markdownTable, median, round, timeWithCpu, writeResult } from "./lib/report.js"

const REQUESTS = 10_000
const WARMUP = 3_000
const ROUNDS = 5
const CONCURRENCY = 64
const TARGET = 0.9

const Users = Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))

const policyLayer = fullPolicy(Http.layer({ pool: { maxConnections: CONCURRENCY } }))

interface Client {
  readonly name: string
  readonly batch: (count: number) => Promise<void>
  readonly close: () => Promise<void>
}

const client = (name: string, url: string, tracer: Tracer.Tracer | undefined): Client => {
  const runtime = ManagedRuntime.make(policyLayer)
  const call = Http.json(HttpClientRequest.get(url), Users)
  const batch = (count: number) => Effect.forEach(Array(count), () => call, { concurrency: CONCURRENCY, discard: true })
  return {
    name,
    batch: (count) => runtime.runPromise(tracer === undefined ? batch(count) : Effect.withTracer(batch(count), tracer)),
    close: () => runtime.dispose()
  }
}

export const run = (): Promise<void> =>
  withProcess(spawnUpstream, async (upstream) => {
    const url = `${upstream.ready.url}/json?size=1`
    const clients = [client("off", url, undefined), client("on", url, recordingTracer)]
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
      const wall = { off: perSecond(times.off ?? []), on: perSecond(times.on ?? []) }
      const byCpu = { off: perSecond(cpu.off ?? []), on: perSecond(cpu.on ?? []) }
      const ratio = round(wall.on / wall.off, 3)
      const file = await writeResult("telemetry", {
        requests_per_second: { off: round(wall.off, 0), on: round(wall.on, 0) },
        requests_per_cpu_second: { off: round(byCpu.off, 0), on: round(byCpu.on, 0) },
        on_vs_off: ratio,
        on_vs_off_by_cpu: round(byCpu.on / byCpu.off, 3),
        target: `on_vs_off >= ${TARGET}`,
        met: ratio >= TARGET,
        config: { requests: REQUESTS, warmup: WARMUP, rounds: ROUNDS, concurrency: CONCURRENCY },
        notes: [
          "off: no tracer installed (Effect's built-in tracer): the policy makes no span.",
          "on: a tracer recording every span's attributes, events and status, exporting nothing; " +
          "liaison.call, liaison.attempt and the transport's http.client spans are all made.",
          "Metrics are updated in both. Ratios are of medians over interleaved rounds, from one run on a shared machine."
        ],
        roundsMs: times
      })
      console.log(markdownTable(
        ["telemetry", "req/s (median)", "req per CPU-s", "vs off", "vs off (CPU)"],
        (["off", "on"] as const).map((name) => [
          name,
          round(wall[name], 0),
          round(byCpu[name], 0),
          round(wall[name] / wall.off, 3),
          round(byCpu[name] / byCpu.off, 3)
        ])
      ))
      console.log(`\non_vs_off = ${ratio} (target >= ${TARGET}); written to ${file}`)
    } finally {
      await Promise.all(clients.map((c) => c.close()))
    }
  })
