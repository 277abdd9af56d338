/**
 * Profiling aid (not a benchmark): `node --cpu-prof --import tsx --conditions=@liaison/source bench/profile.ts
 * <mode> [requests]` makes `Http.json` GETs at concurrency 64 against the benchmark upstream in its own process,
 * so the profile shows where the client spends its CPU per call. Modes:
 * - `plain`: the Liaison client on its own undici transport; `platform`: on `@effect/platform-node`'s;
 * - `policy`: through the full policy of the `resilience` benchmark;
 * - `traced`: the same policy under a tracer that records every span (the `telemetry` benchmark's "on");
 * - `noop`: the same policy under a tracer whose spans record nothing: what Liaison's span code costs alone.
 * It prints req/s and CPU µs per call. (`node --trace-gc-nvp` adds what V8 allocates: sum its `allocated=`.)
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Http } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { fullPolicy } from "./lib/fullPolicy.js"
import { spawnUpstream, withProcess } from "./lib/processes.js"
import { noopTracer, recordingTracer } from "./lib/recordingTracer.js"

const Users = Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))
const mode = process.argv[2] ?? "plain"
const requests = Number(process.argv[3] ?? 40_000)
const CONCURRENCY = 64

const httpLayer = Http.layer({
  pool: { maxConnections: CONCURRENCY },
  ...(mode === "platform" ? { transport: "platform" as const } : {})
})
const policyLayer = fullPolicy(httpLayer)

await withProcess(spawnUpstream, async (upstream) => {
  const runtime = ManagedRuntime.make(
    mode === "policy" || mode === "traced" || mode === "noop" ? policyLayer : httpLayer
  )
  const call = Http.json(HttpClientRequest.get(`${upstream.ready.url}/json?size=1`), Users)
  const batch = (count: number) => {
    const effect = Effect.forEach(Array(count), () => call, { concurrency: CONCURRENCY, discard: true })
    const tracer = mode === "traced" ? recordingTracer : mode === "noop" ? noopTracer : undefined
    return runtime.runPromise(tracer === undefined ? effect : Effect.withTracer(effect, tracer))
  }
  await batch(3_000)
  const cpu = process.cpuUsage()
  const start = performance.now()
  await batch(requests)
  const used = process.cpuUsage(cpu)
  const seconds = (performance.now() - start) / 1000
  console.log(
    `${mode}: ${Math.round(requests / seconds)} req/s, ${
      Math.round((used.user + used.system) / requests)
    } µs CPU per call`
  )
  await runtime.dispose()
})
