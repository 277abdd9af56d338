/**
 * `resilience`: what the full resilience `Policy` costs on the healthy path, and how fast an open breaker says no.
 *
 * 1. Throughput: the same GET /json?size=1 requests at concurrency 64, interleaved rounds, through
 *    - `policy`: `Policy.layer` (rate limit far above the load, total and attempt timeouts, retry, breaker) over
 *      the Liaison `Http` client,
 *    - `liaison`: the plain Liaison `Http` client,
 *    - `effect-stages`: the same stages from Effect's own primitives around the plain client (no target: it
 *      shows what the stages cost written directly in Effect, the reference for the policy's 0.9× target),
 *    - `got+cockatiel`: got (no retries of its own, a request timeout per attempt) inside cockatiel's retry and
 *      consecutive-failure breaker,
 *    - `opossum+undici`: raw undici inside an opossum breaker (its timeout per call).
 *    Every contender has a connection pool of 64 and a breaker; all but opossum retry.
 * 2. Open breakers: many calls on a breaker held open, in one loop: Liaison's `breaker.protect(Effect.void)`,
 *    cockatiel's `execute` after `isolate()`, opossum's `fire` after `open()`; each call must be rejected.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { CircuitBreaker, Http } from "@liaison/core"
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleAll, retry, wrap } from "cockatiel"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as RateLimiter from "effect/RateLimiter"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import got from "got"
import * as http from "node:http"
import Opossum from "opossum"
import { Agent, request } from "undici"
import { fullPolicy, settings } from "./lib/fullPolicy.js"
import { spawnUpstream, withProcess } from "./lib/processes.js"
import {
  type Contender,
  interleave,
  markdownTable,
  median,
  round,
  runPool,
  timeWithCpu,
  writeResult
} from "./lib/report.js"

const REQUESTS = 10_000
const WARMUP = 3_000
const ROUNDS = 5
const CONCURRENCY = 64
/** Calls per round on an open breaker. */
const OPEN_CALLS = 200_000
const OPEN_ROUNDS = 5

const Users = Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))

/** A contender, its client built up front (untimed): `batch` makes `count` requests, `close` frees the client. */
interface Client {
  readonly name: string
  readonly batch: (count: number) => Promise<void>
  readonly close: () => Promise<void>
}

const liaisonClient = (name: string, url: string, layer: Layer.Layer<Http.Http, unknown>): Client => {
  const runtime = ManagedRuntime.make(layer)
  const call = Http.json(HttpClientRequest.get(url), Users)
  return {
    name,
    batch: (count) =>
      runtime.runPromise(Effect.forEach(Array(count), () => call, { concurrency: CONCURRENCY, discard: true })),
    close: () => runtime.dispose()
  }
}

const httpLayer = Http.layer({ pool: { maxConnections: CONCURRENCY } })

/** The full policy: every stage on, nothing throttling. */
const policyLayer = fullPolicy(httpLayer)

/**
 * The policy's stages from Effect's own primitives, nothing of Liaison's `Policy`: a `RateLimiter`, a breaker that
 * is one `Ref` of consecutive failures, `Effect.timeout` per attempt and in all, `Effect.retry` on a jittered
 * exponential `Schedule`, around the same plain client. What the stages cost written the idiomatic way.
 */
const effectStages = (url: string): Client => {
  const runtime = ManagedRuntime.make(httpLayer)
  const scope = Effect.runSync(Scope.make())
  const build = Effect.gen(function*() {
    const limit = yield* RateLimiter.make({ limit: settings.rateLimitPerSecond, interval: "1 second" })
    const failures = yield* Ref.make(0)
    const breaker = <A, E, R>(attempt: Effect.Effect<A, E, R>): Effect.Effect<A, E | Error, R> =>
      Effect.flatMap(Ref.get(failures), (count): Effect.Effect<A, E | Error, R> =>
        count >= settings.consecutiveFailures
          ? Effect.fail(new Error("breaker open"))
          : Effect.onExit(attempt, (exit) =>
            Exit.isSuccess(exit) ? Ref.set(failures, 0) : Ref.update(failures, (n) => n + 1)))
    return Http.json(HttpClientRequest.get(url), Users).pipe(
      Effect.timeout(settings.attemptTimeoutMillis),
      breaker,
      Effect.retry({
        schedule: Schedule.jittered(Schedule.exponential(settings.backoffBaseMillis)),
        times: settings.maxAttempts - 1
      }),
      limit,
      Effect.timeout(settings.totalTimeoutMillis)
    )
  })
  const call = runtime.runPromise(Scope.extend(build, scope))
  return {
    name: "effect-stages",
    batch: async (count) => {
      const wrapped = await call
      await runtime.runPromise(Effect.forEach(Array(count), () => wrapped, { concurrency: CONCURRENCY, discard: true }))
    },
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    }
  }
}

const gotCockatiel = (url: string): Client => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  // got's own retries off: cockatiel retries.
  const client = got.extend({
    agent: { http: agent },
    retry: { limit: 0 },
    timeout: { request: settings.attemptTimeoutMillis }
  })
  const policy = wrap(
    // cockatiel's maxAttempts counts retries only.
    retry(handleAll, {
      maxAttempts: settings.maxAttempts - 1,
      backoff: new ExponentialBackoff({ initialDelay: settings.backoffBaseMillis })
    }),
    circuitBreaker(handleAll, {
      halfOpenAfter: settings.openMillis,
      breaker: new ConsecutiveBreaker(settings.consecutiveFailures)
    })
  )
  const call = async () => {
    await policy.execute(() => client.get(url).json())
  }
  return {
    name: "got+cockatiel",
    batch: (count) => runPool(count, CONCURRENCY, call),
    close: async () => agent.destroy()
  }
}

const opossumUndici = (url: string): Client => {
  const agent = new Agent({ connections: CONCURRENCY })
  const breaker = new Opossum(async (): Promise<unknown> => {
    const response = await request(url, { dispatcher: agent })
    return response.body.json()
  }, { timeout: settings.attemptTimeoutMillis, resetTimeout: settings.openMillis })
  const call = async () => {
    await breaker.fire()
  }
  return {
    name: "opossum+undici",
    batch: (count) => runPool(count, CONCURRENCY, call),
    close: async () => {
      breaker.shutdown()
      await agent.close()
    }
  }
}

/**
 * The machine is shared and often busy: besides wall-clock time, each round's CPU time of this process (the
 * upstream runs in another) says what a contender itself costs, whatever else the machine is doing.
 */
const cpuMs: Record<string, Array<number>> = {}

const timed = (name: string, body: () => Promise<void>): Promise<number> => timeWithCpu(cpuMs, name, body)

const contender = (client: Client): Contender => ({
  name: client.name,
  run: () => timed(client.name, () => client.batch(REQUESTS))
})

// ---------------------------------------------------------------------------------------------------------------
// Open breakers
// ---------------------------------------------------------------------------------------------------------------

/** Fails the round if a call got through: a breaker that lets calls pass is not being measured. */
const expectAllRejected = (name: string, rejected: number) => {
  if (rejected !== OPEN_CALLS) throw new Error(`${name}: only ${rejected} of ${OPEN_CALLS} calls were rejected`)
}

const liaisonOpen = async (): Promise<Contender> => {
  const breaker = await Effect.runPromise(CircuitBreaker.makeBreaker("bench-open"))
  await Effect.runPromise(breaker.isolate)
  const protectedVoid = Effect.either(breaker.protect(Effect.void))
  const loop = Effect.gen(function*() {
    let rejected = 0
    for (let i = 0; i < OPEN_CALLS; i++) {
      if ((yield* protectedVoid)._tag === "Left") rejected++
    }
    return rejected
  })
  return {
    name: "liaison",
    run: () =>
      timed("open:liaison", async () => {
        expectAllRejected("liaison", await Effect.runPromise(loop))
      })
  }
}

/** `OPEN_CALLS` awaited calls of a promise-based breaker, one after another, each expected to reject. */
const promiseLoop = (name: string, call: () => Promise<unknown>): Contender => ({
  name,
  run: () =>
    timed(`open:${name}`, async () => {
      let rejected = 0
      for (let i = 0; i < OPEN_CALLS; i++) {
        try {
          await call()
        } catch {
          rejected++
        }
      }
      expectAllRejected(name, rejected)
    })
})

const cockatielOpen = (): Contender => {
  const breaker = circuitBreaker(handleAll, { halfOpenAfter: 3_600_000, breaker: new ConsecutiveBreaker(5) })
  breaker.isolate()
  const noop = () => undefined
  return promiseLoop("cockatiel", () => breaker.execute(noop))
}

const opossumOpen = (): { readonly contender: Contender; readonly close: () => void } => {
  const breaker = new Opossum(async () => undefined, { resetTimeout: 3_600_000 })
  breaker.open()
  return { contender: promiseLoop("opossum", () => breaker.fire()), close: () => breaker.shutdown() }
}

/** Rounds' wall-clock and CPU times of the named contenders, as operations per second (medians). */
interface Rates {
  readonly wall: Record<string, number>
  readonly cpu: Record<string, number>
  readonly roundsMs: Record<string, { readonly wall: ReadonlyArray<number>; readonly cpu: ReadonlyArray<number> }>
}

const ratesOf = (times: Readonly<Record<string, ReadonlyArray<number>>>, ops: number, cpuPrefix = ""): Rates => {
  const names = Object.keys(times)
  const perSecond = (ms: ReadonlyArray<number>) => ops / (median(ms) / 1000)
  return {
    wall: Object.fromEntries(names.map((name) => [name, perSecond(times[name] ?? [])])),
    cpu: Object.fromEntries(names.map((name) => [name, perSecond(cpuMs[`${cpuPrefix}${name}`] ?? [])])),
    roundsMs: Object.fromEntries(
      names.map((name) => [name, {
        wall: (times[name] ?? []).map((t) => round(t, 1)),
        cpu: (cpuMs[`${cpuPrefix}${name}`] ?? []).map((t) => round(t, 1))
      }])
    )
  }
}

const measureOpenBreakers = async (): Promise<Rates> => {
  const opossum = opossumOpen()
  try {
    const contenders = [await liaisonOpen(), cockatielOpen(), opossum.contender]
    console.error(`open breakers: ${OPEN_CALLS} calls per round`)
    return ratesOf(await interleave(contenders, OPEN_ROUNDS), OPEN_CALLS, "open:")
  } finally {
    opossum.close()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------------

const TARGETS = {
  policyVsLiaison: 0.9,
  policyVsGotCockatiel: 2,
  policyVsOpossumUndici: 0.5,
  openRejectionsPerSecond: 1_000_000
}

const report = async (http: Rates, open: Rates) => {
  const ratio = (rates: Record<string, number>, a: string, b: string) =>
    round((rates[a] ?? Number.NaN) / (rates[b] ?? Number.NaN), 3)
  const rounded = (rates: Record<string, number>) =>
    Object.fromEntries(Object.entries(rates).map(([name, rate]) => [name, round(rate, 0)]))
  const policyVsLiaison = ratio(http.wall, "policy", "liaison")
  const policyVsGotCockatiel = ratio(http.wall, "policy", "got+cockatiel")
  const policyVsOpossumUndici = ratio(http.wall, "policy", "opossum+undici")
  const openRate = round(open.wall["liaison"] ?? Number.NaN, 0)
  const result = {
    requests_per_second: rounded(http.wall),
    requests_per_cpu_second: rounded(http.cpu),
    policy_vs_liaison: policyVsLiaison,
    policy_vs_got_cockatiel: policyVsGotCockatiel,
    policy_vs_opossum_undici: policyVsOpossumUndici,
    effect_stages_vs_liaison: ratio(http.wall, "effect-stages", "liaison"),
    policy_vs_effect_stages: ratio(http.wall, "policy", "effect-stages"),
    by_cpu_time: {
      effect_stages_vs_liaison: ratio(http.cpu, "effect-stages", "liaison"),
      policy_vs_effect_stages: ratio(http.cpu, "policy", "effect-stages"),
      policy_vs_liaison: ratio(http.cpu, "policy", "liaison"),
      policy_vs_got_cockatiel: ratio(http.cpu, "policy", "got+cockatiel"),
      policy_vs_opossum_undici: ratio(http.cpu, "policy", "opossum+undici")
    },
    open_breaker_rejections_per_second: rounded(open.wall),
    open_breaker_rejections_per_cpu_second: rounded(open.cpu),
    targets: {
      policy_vs_liaison: `>= ${TARGETS.policyVsLiaison}`,
      policy_vs_got_cockatiel: `>= ${TARGETS.policyVsGotCockatiel}`,
      policy_vs_opossum_undici: `>= ${TARGETS.policyVsOpossumUndici}`,
      open_breaker_rejections_per_second: `>= ${TARGETS.openRejectionsPerSecond}`
    },
    met: {
      policy_vs_liaison: policyVsLiaison >= TARGETS.policyVsLiaison,
      policy_vs_got_cockatiel: policyVsGotCockatiel >= TARGETS.policyVsGotCockatiel,
      policy_vs_opossum_undici: policyVsOpossumUndici >= TARGETS.policyVsOpossumUndici,
      open_breaker_rejections_per_second: openRate >= TARGETS.openRejectionsPerSecond
    },
    config: {
      requests: REQUESTS,
      warmup: WARMUP,
      rounds: ROUNDS,
      concurrency: CONCURRENCY,
      route: "/json?size=1 (healthy: no retry happens, no breaker trips)",
      settings,
      openBreaker: { callsPerRound: OPEN_CALLS, rounds: OPEN_ROUNDS }
    },
    notes: [
      "Ratios are of medians over interleaved rounds; *_per_cpu_second counts this process's CPU time only " +
      "(the upstream runs in its own process), which is steadier than wall-clock time on a shared machine.",
      "Liaison contenders decode the body with a Schema; got and undici only parse the JSON.",
      "got+cockatiel: got with retry.limit 0 and timeout.request per attempt, inside wrap(retry, circuitBreaker).",
      "opossum+undici: opossum's own per-call timeout (a timer; it does not abort the undici request)."
    ],
    roundsMs: { http: http.roundsMs, openBreaker: open.roundsMs }
  }
  const file = await writeResult("resilience", result)
  const row = (rates: Rates, name: string, versus: ReadonlyArray<string>) => [
    name,
    round(rates.wall[name] ?? Number.NaN, 0),
    round(rates.cpu[name] ?? Number.NaN, 0),
    ...versus.flatMap((other) => [ratio(rates.wall, name, other), ratio(rates.cpu, name, other)])
  ]
  console.log(markdownTable(
    [
      "client",
      "req/s (median)",
      "req per CPU-s",
      "vs liaison",
      "vs liaison (CPU)",
      "vs got+cockatiel",
      "vs got+cockatiel (CPU)"
    ],
    Object.keys(http.wall).map((name) => row(http, name, ["liaison", "got+cockatiel"]))
  ))
  console.log("")
  console.log(markdownTable(
    ["open breaker", "rejections/s (median)", "rejections per CPU-s", "vs liaison", "vs liaison (CPU)"],
    Object.keys(open.wall).map((name) => row(open, name, ["liaison"]))
  ))
  console.log(
    `\npolicy_vs_liaison = ${policyVsLiaison} (target >= ${TARGETS.policyVsLiaison}); ` +
      `policy_vs_got_cockatiel = ${policyVsGotCockatiel} (target >= ${TARGETS.policyVsGotCockatiel}); ` +
      `policy_vs_opossum_undici = ${policyVsOpossumUndici} (target >= ${TARGETS.policyVsOpossumUndici}); ` +
      `open breaker ${openRate}/s (target >= ${TARGETS.openRejectionsPerSecond}); written to ${file}`
  )
}

export const run = (): Promise<void> =>
  withProcess(spawnUpstream, async (upstream) => {
    const url = `${upstream.ready.url}/json?size=1`
    // BENCH_ONLY=policy (a comma-separated list) runs only those contenders, e.g. under `--cpu-prof`.
    const only = process.env.BENCH_ONLY?.split(",")
    const clients = [
      liaisonClient("policy", url, policyLayer),
      liaisonClient("liaison", url, httpLayer),
      effectStages(url),
      gotCockatiel(url),
      opossumUndici(url)
    ].filter((client) => only === undefined || only.includes(client.name))
    try {
      for (const client of clients) {
        console.error(`warm-up ${client.name}: ${WARMUP} requests`)
        await client.batch(WARMUP)
      }
      const http = ratesOf(await interleave(clients.map(contender), ROUNDS), REQUESTS)
      if (only !== undefined) return console.log(JSON.stringify(http.wall))
      await report(http, await measureOpenBreakers())
    } finally {
      await Promise.all(clients.map((client) => client.close()))
    }
  })
