/**
 * `telemetry`: what the policy's spans cost. The same GET /json?size=1 requests at concurrency 64,
 * interleaved rounds, through the full `Policy` (rate limit far above the load, timeouts, retry,
 * breaker) over the Liaison `Http` client, with
 *   - `off`: Effect's built-in tracer (no tracer installed: the policy makes no spans),
 *   - `on`: a tracer that records every span (name, attributes, events, end) like an SDK span and
 *     exports nowhere: the `liaison.call`, `liaison.attempt` and `http.client` spans are all made.
 * The `liaison_*` metrics are updated in both (they are always on). Target: on ≥ 0.9× off.
 *
 * The floor, what two spans a call cost in Effect itself: the same policy with Liaison's spans switched off
 * (`Effect.withTracerEnabled(false)` around the call) under two nested `Effect.withSpan`s (`effect-on`, the
 * recording tracer installed) against the same switched-off call without them (`effect-off`). Effect's spans
 * carry fewer attributes and propagate nothing, so they cost at most what Liaison's do.
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

type Call = Effect.Effect<unknown, unknown, Http.Http>

/** Liaison makes no span under it: Effect's own spans around it are the only ones. */
const untraced = (call: Call): Call => Effect.withTracerEnabled(call, false)

/** Two spans a call made by Effect, with a few attributes each, as Liaison's call and attempt spans. */
const effectSpans = (call: Call): Call =>
  untraced(call).pipe(
    Effect.withSpan("liaison.attempt", {
      kind: "client",
      attributes: { "liaison.attempt": 1, "liaison.delay_ms": 0, "http.request.method": "GET", "server.port": 0 }
    }),
    Effect.withSpan("liaison.call", {
      kind: "client",
      attributes: { "http.request.method": "GET", "server.address": "127.0.0.1", "liaison.attempts": 1 }
    })
  )

const client = (
  name: string,
  url: string,
  tracer: Tracer.Tracer | undefined,
  wrap: (call: Call) => Call = (call) => call
): Client => {
  const runtime = ManagedRuntime.make(policyLayer)
  const call = wrap(Http.json(HttpClientRequest.get(url), Users))
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
    const clients = [
      client("off", url, undefined),
      client("on", url, recordingTracer),
      client("effect-off", url, undefined, untraced),
      client("effect-on", url, recordingTracer, effectSpans)
    ]
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
      const names = ["off", "on", "effect-off", "effect-on"] as const
      const rates = (ms: Readonly<Record<string, ReadonlyArray<number>>>) =>
        Object.fromEntries(names.map((name) => [name, perSecond(ms[name] ?? [])])) as Record<
          typeof names[number],
          number
        >
      const wall = rates(times)
      const byCpu = rates(cpu)
      const ratio = round(wall.on / wall.off, 3)
      const floor = round(wall["effect-on"] / wall["effect-off"], 3)
      const file = await writeResult("telemetry", {
        requests_per_second: Object.fromEntries(names.map((name) => [name, round(wall[name], 0)])),
        requests_per_cpu_second: Object.fromEntries(names.map((name) => [name, round(byCpu[name], 0)])),
        on_vs_off: ratio,
        on_vs_off_by_cpu: round(byCpu.on / byCpu.off, 3),
        effect_floor_on_vs_off: floor,
        effect_floor_on_vs_off_by_cpu: round(byCpu["effect-on"] / byCpu["effect-off"], 3),
        target: `on_vs_off >= ${TARGET}`,
        met: ratio >= TARGET,
        config: { requests: REQUESTS, warmup: WARMUP, rounds: ROUNDS, concurrency: CONCURRENCY },
        notes: [
          "off: no tracer installed (Effect's built-in tracer): the policy makes no span.",
          "on: a tracer recording every span's attributes, events and status, exporting nothing; " +
          "liaison.call, liaison.attempt and the transport's http.client spans are all made.",
          "effect-on / effect-off: the floor. Liaison's spans off (Effect.withTracerEnabled(false) around the call), " +
          "with and without two nested Effect.withSpan (recording tracer installed in effect-on).",
          "Metrics are updated in all. Ratios are of medians over interleaved rounds, from one run on a shared machine."
        ],
        roundsMs: times
      })
      console.log(markdownTable(
        ["telemetry", "req/s (median)", "req per CPU-s", "vs its off", "vs its off (CPU)"],
        names.map((name) => {
          const base = name.startsWith("effect") ? "effect-off" : "off"
          return [
            name,
            round(wall[name], 0),
            round(byCpu[name], 0),
            round(wall[name] / wall[base], 3),
            round(byCpu[name] / byCpu[base], 3)
          ]
        })
      ))
      console.log(
        `\non_vs_off = ${ratio} (target >= ${TARGET}); Effect's own two spans: effect-on vs effect-off = ${floor}; ` +
          `written to ${file}`
      )
    } finally {
      await Promise.all(clients.map((c) => c.close()))
    }
  })
