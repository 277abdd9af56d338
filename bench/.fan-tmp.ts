import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { FanOut, Http } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { spawnUpstream } from "./lib/processes.js"
const Users = Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))
const up = await spawnUpstream()
const n = Number(process.argv[3] ?? "2000")
const conc = Number(process.argv[4] ?? "50")
const runtime = ManagedRuntime.make(Http.layer({ pool: { maxConnections: conc } }))
for (const kind of (process.argv[2] ?? "text,json").split(",")) {
  const eff: Effect.Effect<unknown, unknown, Http.Http> = kind === "text"
    ? Http.text(HttpClientRequest.get(`${up.ready.url}/text`))
    : Http.json(HttpClientRequest.get(`${up.ready.url}/json?size=1`), Users)
  const go = () => runtime.runPromise(Effect.asVoid(FanOut.all(Array(n).fill(eff), { concurrency: conc })))
  await go()
  const ts: Array<number> = []
  for (let i = 0; i < 3; i++) { const t = performance.now(); await go(); ts.push(performance.now() - t) }
  console.log(kind, n, conc, ts.map((x) => (n / x * 1000).toFixed(0)))
}
await runtime.dispose()
await up.stop()
