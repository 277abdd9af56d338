/**
 * `chaos`: 10,000 GETs through the resilience `Policy` against the chaos upstream in its own process, whose
 * `/mix?preset=chaos` answers 30% of attempts with 503, resets the connection on 10% and stalls 5% (never
 * answers; the attempt timeout ends them). Reported per configuration: the success rate (target ≥ 99%) and
 * upstream attempts per request (target ≤ 1.6), counted by the upstream itself (`/stats`) and by the client.
 *
 * The two targets cannot both hold against this upstream (see `arithmetic` in the result): the sensible
 * configuration meets the success rate, a variant with a retry budget of 0.6 meets the attempts bound, and the
 * library's defaults show what an untuned policy does here.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { CircuitBreaker, Http, type HttpError, Policy, RateLimit } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { spawnUpstream, withProcess } from "./lib/processes.js"
import { markdownTable, round, writeResult } from "./lib/report.js"

const REQUESTS = 10_000
const CONCURRENCY = 50
/** Far shorter than a stall (which lasts until the client gives up), far longer than an answer takes. */
const ATTEMPT_TIMEOUT = "500 millis"

const P_FAIL = 0.3 + 0.1 + 0.05

const Ok = Schema.Struct({ ok: Schema.Literal(true) })

interface Variant {
  readonly name: string
  readonly why: string
  readonly policy: Policy.Options
  readonly breaker: CircuitBreaker.Options
  /** What the arithmetic predicts, if it can. */
  readonly expected?: { readonly successRate: number; readonly attemptsPerRequest: number }
}

/** Success and mean attempts with at most `n` independent attempts failing with probability `q`. */
const predict = (n: number, q = P_FAIL) => ({ successRate: 1 - q ** n, attemptsPerRequest: (1 - q ** n) / (1 - q) })

/**
 * Trips on a failure rate this upstream does not reach (85% of the last 200 attempts, where 45% is the mean and
 * 7 standard deviations lie between), or on 200 failures in a row; probes again after 1 s. Not on a short run of
 * consecutive failures: stalls end in timeouts, and when the event loop is held up for a moment (GC, a busy
 * machine) the timers of all stalled attempts fire before any answer is read, so 20–40 timeouts in a row happen
 * every few seconds here even with plain undici.
 */
const tolerantBreaker: CircuitBreaker.Options = {
  failureThreshold: 200,
  failureRate: { threshold: 0.85, minimumCalls: 100, window: { calls: 200 } },
  openDuration: "1 second"
}

const variants: ReadonlyArray<Variant> = [
  {
    name: "sensible",
    why: "7 attempts (0.45^7 = 0.37% of requests fail every one), backoff 10 ms × 2^n jittered, capped at 200 ms, " +
      "no retry budget (it would refuse the 0.81 retries per request this upstream needs); the breaker trips " +
      "on 85% failures over the last 200 attempts (or 200 in a row) and probes again after 1 s, so random " +
      "failures at 45% do not open it, an upstream that is down does",
    policy: {
      attemptTimeout: ATTEMPT_TIMEOUT,
      totalTimeout: "15 seconds",
      retry: { maxAttempts: 7, base: "10 millis", cap: "200 millis", budget: false }
    },
    breaker: tolerantBreaker,
    expected: predict(7)
  },
  {
    name: "retry budget 0.6",
    why: "the same, but retries limited by the retry budget to 0.6 per request over a sliding 10 s window " +
      "(minRetriesPerSecond 0): attempts ≤ 1.6 × requests by construction; a request whose retry the budget " +
      "refuses fails with RetryBudgetExhausted",
    policy: {
      attemptTimeout: ATTEMPT_TIMEOUT,
      totalTimeout: "15 seconds",
      retry: {
        maxAttempts: 7,
        base: "10 millis",
        cap: "200 millis",
        budget: { ratio: 0.6, minRetriesPerSecond: 0 }
      }
    },
    breaker: tolerantBreaker
  },
  {
    name: "library defaults",
    why: "defaults but for a 10 ms backoff base and the attempt timeout: 3 attempts, retry budget 20% + 10/s, " +
      "breaker opening for 60 s after 5 failures in a row (0.45^5 ≈ 1.8% of attempts start such a run), so it " +
      "opens within the first second and fails the rest fast with CircuitOpen",
    policy: { attemptTimeout: ATTEMPT_TIMEOUT, retry: { base: "10 millis" } },
    breaker: {}
  }
]

/** Requests the upstream has seen on `/mix`, from its `/stats` route. */
const upstreamMixCount = async (baseUrl: string): Promise<number> => {
  const response = await fetch(`${baseUrl}/stats`)
  const body = (await response.json()) as { readonly requests: Readonly<Record<string, number>> }
  return body.requests["mix"] ?? 0
}

/** Counts the attempts the client makes: every call of the inner `execute`, which the policy wraps. */
const countingHttp = (counter: { attempts: number }) =>
  Layer.effect(
    Http.Http,
    Effect.map(Http.Http, (http): Http.Service => ({
      ...http,
      execute: (request) =>
        Effect.suspend(() => {
          counter.attempts++
          return http.execute(request)
        })
    }))
  ).pipe(Layer.provide(Http.layer({ pool: { maxConnections: CONCURRENCY } })))

/** A failure by kind, e.g. `StatusError 503`, `TimeoutError attempt`, `TransportError reset`. */
const describe = (error: HttpError.HttpError): string => {
  switch (error._tag) {
    case "StatusError":
      return `StatusError ${error.status}`
    case "TimeoutError":
      return `TimeoutError ${error.phase}`
    case "TransportError":
      return `TransportError ${error.reason}`
    default:
      return error._tag
  }
}

interface Outcome {
  readonly variant: string
  readonly requests: number
  readonly successes: number
  readonly successRate: number
  readonly upstreamAttempts: number
  readonly upstreamAttemptsPerRequest: number
  readonly clientAttempts: number
  readonly failures: Readonly<Record<string, number>>
  readonly breakerOpened: number
  readonly seconds: number
  readonly expected: Variant["expected"]
  readonly successMet: boolean
  readonly attemptsMet: boolean
}

const runVariant = async (baseUrl: string, variant: Variant, seed: number): Promise<Outcome> => {
  const counter = { attempts: 0 }
  const layer = Policy.layer(variant.policy).pipe(
    Layer.provideMerge(CircuitBreaker.layer(variant.breaker)),
    Layer.provide([countingHttp(counter), RateLimit.layerMemory()])
  )
  const runtime = ManagedRuntime.make(layer)
  const failures: Record<string, number> = {}
  let successes = 0
  let breakerOpened = 0
  const call = Http.json(HttpClientRequest.get(`${baseUrl}/mix?seed=${seed}&preset=chaos`), Ok).pipe(
    Effect.match({
      onSuccess: () => {
        successes++
      },
      onFailure: (error) => {
        const kind = describe(error)
        failures[kind] = (failures[kind] ?? 0) + 1
      }
    })
  )
  const program = Effect.gen(function*() {
    const breakers = yield* CircuitBreaker.CircuitBreaker
    yield* Effect.forkScoped(Stream.runForEach(breakers.changes, (change) =>
      Effect.sync(() => {
        if (change.to === "Open") breakerOpened++
      })))
    yield* Effect.forEach(Array.from({ length: REQUESTS }), () => call, { concurrency: CONCURRENCY, discard: true })
  }).pipe(Effect.scoped)
  try {
    console.error(`${variant.name}: ${REQUESTS} requests at concurrency ${CONCURRENCY}`)
    const before = await upstreamMixCount(baseUrl)
    const start = performance.now()
    await runtime.runPromise(program)
    const seconds = (performance.now() - start) / 1000
    const upstreamAttempts = (await upstreamMixCount(baseUrl)) - before
    const successRate = successes / REQUESTS
    const upstreamAttemptsPerRequest = upstreamAttempts / REQUESTS
    return {
      variant: variant.name,
      requests: REQUESTS,
      successes,
      successRate: round(successRate, 4),
      upstreamAttempts,
      upstreamAttemptsPerRequest: round(upstreamAttemptsPerRequest, 3),
      clientAttempts: counter.attempts,
      failures,
      breakerOpened,
      seconds: round(seconds, 1),
      expected: variant.expected === undefined ? undefined : {
        successRate: round(variant.expected.successRate, 4),
        attemptsPerRequest: round(variant.expected.attemptsPerRequest, 3)
      },
      successMet: successRate >= 0.99,
      attemptsMet: upstreamAttemptsPerRequest <= 1.6
    }
  } finally {
    await runtime.dispose()
  }
}

const arithmetic = [
  `Each attempt fails independently with q = 0.30 + 0.10 + 0.05 = ${P_FAIL}. With at most n attempts a request ` +
  "succeeds with probability 1 - q^n and costs (1 - q^n) / (1 - q) attempts on average.",
  `Even with unlimited retries every request costs 1 / (1 - q) = ${round(1 / (1 - P_FAIL), 3)} attempts, so ` +
  "attempts ≤ 1.6 × requests needs q ≤ 1 - 1/1.6 = 0.375: against this upstream the two targets cannot hold together.",
  `Success ≥ 99% needs q^n ≤ 0.01, i.e. n ≥ 6: n = 6 gives ${round(predict(6).successRate * 100, 2)}% at ` +
  `${round(predict(6).attemptsPerRequest, 3)} attempts, n = 7 gives ${round(predict(7).successRate * 100, 2)}% at ` +
  `${round(predict(7).attemptsPerRequest, 3)}.`,
  "Attempts ≤ 1.6 needs (1 - q^n) / (1 - q) ≤ 1.6, i.e. n ≤ 2 (" +
  `${round(predict(2).successRate * 100, 2)}% success at ${round(predict(2).attemptsPerRequest, 3)} attempts), ` +
  "or a cap on retries: a retry budget of 0.6 retries per request (the variant measured here)."
]

export const run = (): Promise<void> =>
  withProcess(spawnUpstream, async (upstream) => {
    const baseUrl = upstream.ready.url
    const outcomes: Array<Outcome> = []
    for (const [i, variant] of variants.entries()) outcomes.push(await runVariant(baseUrl, variant, i + 1))
    const file = await writeResult("chaos", {
      outcomes,
      targets: { successRate: ">= 0.99", upstreamAttemptsPerRequest: "<= 1.6" },
      arithmetic,
      variants: Object.fromEntries(variants.map((v) => [v.name, { why: v.why, policy: v.policy, breaker: v.breaker }])),
      config: {
        requests: REQUESTS,
        concurrency: CONCURRENCY,
        attemptTimeout: ATTEMPT_TIMEOUT,
        upstream: "/mix?preset=chaos: 30% 503, 10% connection reset, 5% stall (no answer until the client leaves)"
      },
      notes: [
        "upstreamAttempts: /mix requests counted by the upstream process (GET /stats before and after); " +
        "clientAttempts: calls of the Http execute the policy wraps; the two agree unless a request never reached " +
        "the upstream (e.g. a connect failure).",
        "Each variant runs with its own seed, so its draws are independent of the others'."
      ]
    })
    console.log(markdownTable(
      [
        "config",
        "success",
        "attempts / request",
        "expected success",
        "expected attempts",
        "success ≥ 99%",
        "attempts ≤ 1.6",
        "breaker opened",
        "s",
        "failures"
      ],
      outcomes.map((o) => [
        o.variant,
        `${round(o.successRate * 100, 2)}%`,
        o.upstreamAttemptsPerRequest,
        o.expected === undefined ? "-" : `${round(o.expected.successRate * 100, 2)}%`,
        o.expected === undefined ? "-" : o.expected.attemptsPerRequest,
        o.successMet ? "yes" : "no",
        o.attemptsMet ? "yes" : "no",
        o.breakerOpened,
        o.seconds,
        Object.entries(o.failures).map(([kind, n]) => `${kind}: ${n}`).join(", ") || "-"
      ])
    ))
    console.log(`\n${arithmetic.join("\n")}\nwritten to ${file}`)
  })
