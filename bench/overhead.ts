/**
 * `overhead`: what Liaison costs on top of the clients it is built on. The same GET /json?size=1 requests,
 * at concurrency 64, through Liaison (its default transport), bare @effect/platform HttpClient (undici),
 * raw undici and got.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Http } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import got from "got"
import * as http from "node:http"
import { Agent, request } from "undici"
import { spawnUpstream, withProcess } from "./lib/processes.js"
import { type Contender, interleave, markdownTable, median, round, runPool, timeMs, writeResult } from "./lib/report.js"

const REQUESTS = 20_000
const WARMUP = 3_000
const ROUNDS = 5
const CONCURRENCY = 64

const Users = Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))

/** A contender, its client built up front (untimed): `batch` makes `count` requests, `close` frees the client. */
interface Client {
  readonly name: string
  readonly batch: (count: number) => Promise<void>
  readonly close: () => Promise<void>
}

const liaison = (url: string): Client => {
  const runtime = ManagedRuntime.make(Http.layer({ pool: { maxConnections: CONCURRENCY } }))
  const call = Http.json(HttpClientRequest.get(url), Users)
  return {
    name: "liaison",
    batch: (count) =>
      runtime.runPromise(Effect.forEach(Array(count), () => call, { concurrency: CONCURRENCY, discard: true })),
    close: () => runtime.dispose()
  }
}

const bareEffect = (url: string): Client => {
  // Same dispatcher settings as Liaison's own: an undici Agent with 64 connections per origin.
  const agent = new Agent({ connections: CONCURRENCY })
  const client = HttpClient.withScope(HttpClient.filterStatusOk(NodeHttpClient.makeUndici(agent)))
  const call = client.get(url).pipe(
    Effect.flatMap((response) => response.json),
    Effect.flatMap(Schema.decodeUnknown(Users)),
    Effect.scoped
  )
  return {
    name: "effect",
    batch: (count) =>
      Effect.runPromise(Effect.forEach(Array(count), () => call, { concurrency: CONCURRENCY, discard: true })),
    close: () => agent.close()
  }
}

const rawUndici = (url: string): Client => {
  const agent = new Agent({ connections: CONCURRENCY })
  const call = async () => {
    const response = await request(url, { dispatcher: agent })
    await response.body.json()
  }
  return { name: "undici", batch: (count) => runPool(count, CONCURRENCY, call), close: () => agent.close() }
}

const gotClient = (url: string): Client => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  // No retries: they would hide errors and skew the count.
  const client = got.extend({ agent: { http: agent }, retry: { limit: 0 } })
  const call = async () => {
    await client.get(url).json()
  }
  return {
    name: "got",
    batch: (count) => runPool(count, CONCURRENCY, call),
    close: async () => agent.destroy()
  }
}

const contender = (client: Client): Contender => ({
  name: client.name,
  run: () => timeMs(() => client.batch(REQUESTS))
})

const report = async (
  rps: Readonly<Record<string, number>>,
  times: Readonly<Record<string, ReadonlyArray<number>>>
) => {
  const get = (name: string) => rps[name] ?? Number.NaN
  const result = {
    liaison_rps: round(get("liaison"), 0),
    effect_rps: round(get("effect"), 0),
    undici_rps: round(get("undici"), 0),
    got_rps: round(get("got"), 0),
    liaison_vs_effect: round(get("liaison") / get("effect"), 3),
    liaison_vs_undici: round(get("liaison") / get("undici"), 3),
    target: "liaison_vs_effect >= 2, liaison_vs_undici >= 0.5",
    config: { requests: REQUESTS, warmup: WARMUP, rounds: ROUNDS, concurrency: CONCURRENCY, route: "/json?size=1" },
    roundsMs: Object.fromEntries(Object.entries(times).map(([name, ms]) => [name, ms.map((t) => round(t, 1))]))
  }
  const file = await writeResult("overhead", result)
  const rows = Object.keys(times).map((name) => [
    name,
    round(get(name), 0),
    round(get(name) / get("effect"), 3),
    round(get(name) / get("undici"), 3)
  ])
  console.log(markdownTable(["client", "req/s (median)", "vs effect", "vs undici"], rows))
  console.log(
    `\nliaison_vs_effect = ${result.liaison_vs_effect} (target >= 2), liaison_vs_undici = ${result.liaison_vs_undici}` +
      ` (target >= 0.5); one run on a shared machine: the ratios count, not the absolute numbers; written to ${file}`
  )
}

export const run = (): Promise<void> =>
  withProcess(spawnUpstream, async (upstream) => {
    const url = `${upstream.ready.url}/json?size=1`
    const clients = [liaison(url), bareEffect(url), rawUndici(url), gotClient(url)]
    try {
      for (const client of clients) {
        console.error(`warm-up ${client.name}: ${WARMUP} requests`)
        await client.batch(WARMUP)
      }
      const times = await interleave(clients.map(contender), ROUNDS)
      const rps = Object.fromEntries(Object.entries(times).map(([name, ms]) => [name, REQUESTS / (median(ms) / 1000)]))
      await report(rps, times)
    } finally {
      await Promise.all(clients.map((client) => client.close()))
    }
  })
