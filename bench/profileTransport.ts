/**
 * Profiling aid for the transport (not a benchmark): `node --cpu-prof --import tsx --conditions=@liaison/source
 * bench/profileTransport.ts [liaison|platform] [requests]` makes plain `Http.json` GETs at concurrency 64 against
 * the chaos upstream in its own process; the profile shows where the client spends its CPU per call.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Http } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { spawnUpstream, withProcess } from "./lib/processes.js"

const Users = Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))
const transport = process.argv[2] ?? "liaison"
const requests = Number(process.argv[3] ?? 40_000)

await withProcess(spawnUpstream, async (upstream) => {
  const options = transport === "platform" ? { transport: "platform" as const } : {}
  const runtime = ManagedRuntime.make(Http.layer({ ...options, pool: { maxConnections: 64 } }))
  const call = Http.json(HttpClientRequest.get(`${upstream.ready.url}/json?size=1`), Users)
  const start = performance.now()
  await runtime.runPromise(Effect.forEach(Array(requests), () => call, { concurrency: 64, discard: true }))
  console.log(`${transport}: ${Math.round(requests / ((performance.now() - start) / 1000))} req/s`)
  await runtime.dispose()
})
