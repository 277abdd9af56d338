/**
 * `chaos`: GETs through the resilience `Policy` against the chaos upstream in its own process, whose
 * `/mix?preset=chaos` answers 30% of attempts with 503, resets the connection on 10% and stalls 5% (never
 * answers; the attempt timeout ends them): every attempt fails with q = 0.45.
 *
 * 1. "sensible", 5 runs of 10,000 requests, each with a fresh breaker and its own seed. Targets per run: success
 *    ≥ 99% and upstream attempts per request ≤ 1.02 × (1 − qⁿ)/(1 − q), the mean attempts with at most n = 7.
 *    The breaker must not open: the printed arithmetic says why its window cannot trip on a 45%-failing upstream.
 * 2. "outage": the same configuration against chaos, then 90% failing, then chaos again: the breaker must open
 *    in the outage, spend few upstream attempts once open and reject calls fast.
 * 3. Information only: a retry budget of 0.6, and the library's defaults.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { CircuitBreaker, Http, type HttpError, Policy, RateLimit } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { spawnUpstream, withProcess } from "./lib/processes.js"
import { markdownTable, median, round, writeResult } from "./lib/report.js"

const REQUESTS = 10_000
const CONCURRENCY = 50
const STABLE_RUNS = 5
/**
 * Far shorter than a stall (which lasts until the client gives up), far longer than an answer takes, even on a
 * busy machine: at a load of 12 on 2 cores this process' event loop was held up 560 ms at p99 (1.6 s at most),
 * and with 500 ms the lag's false timeouts raised the failure rate seen from 0.45 to 0.468 (attempts 1.027×).
 */
const ATTEMPT_TIMEOUT = "1 second"
const MAX_ATTEMPTS = 7

const P_FAIL = 0.3 + 0.1 + 0.05
/** The outage: 75% 503 (instead of 30%), the chaos preset's 10% resets and 5% stalls. */
const OUTAGE_QUERY = "preset=chaos&p503=0.75"
const P_OUTAGE = 0.75 + 0.1 + 0.05

const SUCCESS_TARGET = 0.99
const ATTEMPTS_RATIO_TARGET = 1.02

/** The breaker's failure-rate window (attempts), its trip share and its consecutive-failure threshold. */
const WINDOW = 200
const RATE_THRESHOLD = 0.85
const CONSECUTIVE = 200

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
 * Trips on 85% failures over the last 200 attempts (no verdict before the window is full), or on 200 failures in a
 * row; probes again after 1 s. Not on a short run of consecutive failures: stalls end in timeouts, and when the
 * event loop is held up for a moment (GC, a busy machine) the timers of all stalled attempts fire before any
 * answer is read, so 20–40 timeouts in a row happen every few seconds here even with plain undici. See
 * `breakerArithmetic` for the odds.
 */
const tolerantBreaker: CircuitBreaker.Options = {
  failureThreshold: CONSECUTIVE,
  failureRate: { threshold: RATE_THRESHOLD, minimumCalls: WINDOW, window: { calls: WINDOW } },
  openDuration: "1 second"
}

const sensible: Variant = {
  name: "sensible",
  why: "7 attempts (0.45^7 = 0.37% of requests fail every one), backoff 10 ms × 2^n jittered, capped at 200 ms, " +
    "no retry budget (it would refuse the 0.81 retries per request this upstream needs); the breaker trips " +
    "on 85% failures over the last 200 attempts (or 200 in a row) and probes again after 1 s, so random " +
    "failures at 45% do not open it, an upstream that is down does",
  policy: {
    attemptTimeout: ATTEMPT_TIMEOUT,
    totalTimeout: "15 seconds",
    retry: { maxAttempts: MAX_ATTEMPTS, base: "10 millis", cap: "200 millis", budget: false }
  },
  breaker: tolerantBreaker,
  expected: predict(MAX_ATTEMPTS)
}

const informational: ReadonlyArray<Variant> = [
  {
    name: "retry budget 0.6",
    why: "the same, but retries limited by the retry budget to 0.6 per request over a sliding 10 s window " +
      "(minRetriesPerSecond 0): attempts ≤ 1.6 × requests by construction; a request whose retry the budget " +
      "refuses fails with RetryBudgetExhausted",
    policy: {
      attemptTimeout: ATTEMPT_TIMEOUT,
      totalTimeout: "15 seconds",
      retry: {
        maxAttempts: MAX_ATTEMPTS,
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

// ---------------------------------------------------------------------------------------------------------------
// The breaker's arithmetic
// ---------------------------------------------------------------------------------------------------------------

const logFactorial = (n: number): number => {
  let sum = 0
  for (let i = 2; i <= n; i++) sum += Math.log(i)
  return sum
}

/** P(X ≥ k) for X ~ Binomial(n, p), summed in log space (exact up to floating point). */
const binomialTail = (n: number, p: number, k: number): number => {
  let sum = 0
  for (let i = Math.max(0, k); i <= n; i++) {
    sum += Math.exp(
      logFactorial(n) - logFactorial(i) - logFactorial(n - i) + i * Math.log(p) + (n - i) * Math.log1p(-p)
    )
  }
  return sum
}

/** Kullback–Leibler divergence of Bernoulli(a) from Bernoulli(p), the exponent of the Chernoff bound. */
const klBernoulli = (a: number, p: number): number =>
  (a === 0 ? 0 : a * Math.log(a / p)) + (a === 1 ? 0 : (1 - a) * Math.log((1 - a) / (1 - p)))

/** Chernoff: P(Binomial(n, p) ≥ k) ≤ exp(−n·KL(k/n ‖ p)) for k/n > p. */
const chernoff = (n: number, p: number, k: number): number => Math.exp(-n * klBernoulli(k / n, p))

const sci = (x: number): string => (x === 0 ? "0" : x.toExponential(1))

/** Window and run odds for the tolerant breaker at failure probability `q`, as numbers and as sentences. */
const breakerArithmetic = (q: number, attemptsPerRun: number) => {
  const tripCount = Math.ceil(RATE_THRESHOLD * WINDOW)
  const mean = WINDOW * q
  const sd = Math.sqrt(WINDOW * q * (1 - q))
  const window = {
    mean,
    sd,
    sdsToThreshold: (tripCount - mean) / sd,
    chernoff: chernoff(WINDOW, q, tripCount),
    hoeffding: Math.exp(-2 * WINDOW * (tripCount / WINDOW - q) ** 2),
    exact: binomialTail(WINDOW, q, tripCount)
  }
  // At most CONCURRENCY attempts are in flight, so a stall can line up at most that many outcomes out of order.
  const fresh = WINDOW - CONCURRENCY
  const correlated = {
    chernoff: chernoff(fresh, q, tripCount - CONCURRENCY),
    exact: binomialTail(fresh, q, tripCount - CONCURRENCY)
  }
  const run = { perAttempt: q ** CONSECUTIVE, overRun: attemptsPerRun * q ** CONSECUTIVE }
  const correlatedRun = attemptsPerRun * q ** (CONSECUTIVE - CONCURRENCY)
  // The smallest k with attemptsPerRun·q^k ≤ 1e-6, with and without a line-up of CONCURRENCY timeouts.
  const kIndependent = Math.ceil(Math.log(1e-6 / attemptsPerRun) / Math.log(q))
  const lines = [
    `Rate window: the last ${WINDOW} attempts, trips at ≥ ${RATE_THRESHOLD * 100}% = ${tripCount} failures, no ` +
    `verdict before the window is full. At q = ${q} the failures in a window are Binomial(${WINDOW}, ${q}): mean ` +
    `${round(mean, 1)}, sd ${round(sd, 2)}; ${tripCount} is ${round(window.sdsToThreshold, 1)} sd above the mean. ` +
    `P(false trip) per window ≤ exp(−${WINDOW}·KL(${RATE_THRESHOLD}‖${q})) = ${sci(window.chernoff)} (Chernoff; ` +
    `Hoeffding exp(−2·${WINDOW}·${round(tripCount / WINDOW - q, 2)}²) = ${sci(window.hoeffding)}; exact tail ` +
    `${sci(window.exact)}). A run of ~${Math.round(attemptsPerRun)} attempts checks at most that many windows: ` +
    `P(false trip in a run) ≤ ${sci(attemptsPerRun * window.chernoff)}.`,
    `Correlated timeouts: at most ${CONCURRENCY} attempts are in flight (concurrency ${CONCURRENCY}, pool ` +
    `${CONCURRENCY}), so a held-up event loop can line up at most ${CONCURRENCY} timeouts (or any outcomes) out of ` +
    `order. Worst case, all ${CONCURRENCY} sit in one window and fail; the other ${fresh} attempts, started inside ` +
    `the window, fail independently with q: trip needs Binomial(${fresh}, ${q}) ≥ ${tripCount - CONCURRENCY}, ` +
    `≤ ${sci(correlated.chernoff)} per window (Chernoff; exact ${sci(correlated.exact)}), ≤ ` +
    `${sci(attemptsPerRun * correlated.chernoff)} per run.`,
    `Consecutive failures: ${CONSECUTIVE} in a row. A run of k failures starts at a given attempt with probability ` +
    `≤ q^k: q^${CONSECUTIVE} = ${sci(q ** CONSECUTIVE)}, over ~${Math.round(attemptsPerRun)} attempts ≤ ` +
    `${sci(run.overRun)}; with ${CONCURRENCY} timeouts lined up the other ${CONSECUTIVE - CONCURRENCY} must still ` +
    `fail in a row: ≤ ${sci(correlatedRun)} per run. For comparison, q^5 = ${round(q ** 5, 4)} (the library's ` +
    `default threshold 5 trips within the first second), and the smallest k with ≤ 1e-6 per run is ${kIndependent} ` +
    `for independent failures, ${kIndependent + CONCURRENCY} allowing a line-up of ${CONCURRENCY}: 20–40 timeouts ` +
    "in a row are seen here every few seconds."
  ]
  return { numbers: { tripCount, window, correlated, consecutive: run, correlatedRun, kIndependent }, lines }
}

/** How a breaker that trips at 85% of 200 meets an outage failing with probability `p`. */
const outageArithmetic = (q: number, p: number): string => {
  const tripCount = Math.ceil(RATE_THRESHOLD * WINDOW)
  const sd = Math.sqrt(WINDOW * p * (1 - p))
  return `Outage at ${p * 100}% failing: a full window holds ${round(WINDOW * p, 1)} failures on average (sd ` +
    `${round(sd, 2)}), above the ${tripCount} that trip it. Coming from q = ${q} (${round(WINDOW * q, 1)} failures ` +
    `in the window) it takes about (${tripCount} − ${round(WINDOW * q, 1)}) / (${p} − ${q}) ≈ ` +
    `${Math.round((tripCount - WINDOW * q) / (p - q))} outage attempts to get there.`
}

const targetArithmetic = [
  `Each attempt fails independently with q = 0.30 + 0.10 + 0.05 = ${P_FAIL}. With at most n attempts a request ` +
  "succeeds with probability 1 − q^n and costs (1 − q^n) / (1 − q) attempts on average: n = " +
  `${MAX_ATTEMPTS} gives ${round(predict(MAX_ATTEMPTS).successRate * 100, 2)}% at ` +
  `${round(predict(MAX_ATTEMPTS).attemptsPerRequest, 3)} attempts (n = 6: ${round(predict(6).successRate * 100, 2)}%).`,
  "Per run the attempts per request are a mean over 10,000 requests of a truncated geometric count (sd ≈ " +
  `${round(Math.sqrt(P_FAIL) / (1 - P_FAIL), 2)}), so the measured mean has sd ≈ ` +
  `${round(Math.sqrt(P_FAIL) / (1 - P_FAIL) / Math.sqrt(REQUESTS), 4)}: the ${ATTEMPTS_RATIO_TARGET}× bound is ` +
  `${
    round(
      (ATTEMPTS_RATIO_TARGET - 1) * predict(MAX_ATTEMPTS).attemptsPerRequest /
        (Math.sqrt(P_FAIL) / (1 - P_FAIL) / Math.sqrt(REQUESTS)),
      1
    )
  } sd above the expectation.`,
  `Attempts ≤ 1.6 × requests (the variants' old bound) needs q ≤ 0.375 even with unlimited retries (1 / (1 − q) = ` +
  `${round(1 / (1 - P_FAIL), 3)}), or a cap on retries: the retry budget 0.6 variant.`
]

// ---------------------------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------------------------

/**
 * The attempts the client makes, in the order they finish (what the breaker sees): counts, the longest run of
 * failures and the most failures in any `WINDOW` consecutive attempts.
 */
class AttemptLog {
  attempts = 0
  /** Finished attempts, and how many of them failed: the failure rate this run's draws really had. */
  ended = 0
  failed = 0
  longestFailureRun = 0
  maxWindowFailures = 0
  /** Timeouts among the failures of the worst window. */
  maxWindowTimeouts = 0
  /** Called when an attempt starts. */
  onStart: () => void = () => {}
  private run = 0
  private readonly ring: Array<Verdict> = []
  private next = 0
  private windowFailures = 0
  private windowTimeouts = 0

  start(): void {
    this.attempts++
    this.onStart()
  }

  end(verdict: Verdict): void {
    this.ended++
    if (verdict !== "ok") this.failed++
    this.run = verdict === "ok" ? 0 : this.run + 1
    this.longestFailureRun = Math.max(this.longestFailureRun, this.run)
    if (this.ring.length < WINDOW) this.ring.push(verdict)
    else {
      this.count(this.ring[this.next], -1)
      this.ring[this.next] = verdict
      this.next = (this.next + 1) % WINDOW
    }
    this.count(verdict, 1)
    if (this.ring.length === WINDOW && this.windowFailures > this.maxWindowFailures) {
      this.maxWindowFailures = this.windowFailures
      this.maxWindowTimeouts = this.windowTimeouts
    }
  }

  private count(verdict: Verdict | undefined, by: number): void {
    if (verdict !== "ok" && verdict !== undefined) this.windowFailures += by
    if (verdict === "timeout") this.windowTimeouts += by
  }
}

type Verdict = "ok" | "failed" | "timeout"

/** An attempt as the breaker judges it: an error, a timeout (the attempt interrupted), or a 5xx/429 answer fail. */
const verdictOf = (exit: Exit.Exit<Http.Response, unknown>): Verdict =>
  Exit.isInterrupted(exit)
    ? "timeout"
    : Exit.isFailure(exit) || CircuitBreaker.isFailureStatus(exit.value.status)
    ? "failed"
    : "ok"

/** Logs every call of the inner `execute`, which the policy wraps: one per attempt. */
const countingHttp = (log: AttemptLog) =>
  Layer.effect(
    Http.Http,
    Effect.map(Http.Http, (http): Http.Service => ({
      ...http,
      execute: (request) =>
        Effect.suspend(() => {
          log.start()
          return http.execute(request).pipe(Effect.onExit((exit) => Effect.sync(() => log.end(verdictOf(exit)))))
        })
    }))
  ).pipe(Layer.provide(Http.layer({ pool: { maxConnections: CONCURRENCY } })))

/** A fresh policy, breaker registry and client for one run. */
const runtimeFor = (variant: Variant, log: AttemptLog) =>
  ManagedRuntime.make(
    Policy.layer(variant.policy).pipe(
      Layer.provideMerge(CircuitBreaker.layer(variant.breaker)),
      Layer.provide([countingHttp(log), RateLimit.layerMemory()])
    )
  )

/** Requests the upstream has seen on `/mix`, from its `/stats` route. */
const upstreamMixCount = async (baseUrl: string): Promise<number> => {
  const response = await fetch(`${baseUrl}/stats`)
  const body = (await response.json()) as { readonly requests: Readonly<Record<string, number>> }
  return body.requests["mix"] ?? 0
}

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

interface LoopDelay {
  readonly p99: number
  readonly max: number
}

const TICK_MS = 10

const since = (start: number) => performance.now() - start

/**
 * This process' event-loop delay, from a 10 ms interval's lateness: a loop held up longer than the attempt
 * timeout times out every attempt in flight at once, whatever the upstream did.
 */
class LagMeter {
  private readonly samples: Array<readonly [at: number, lag: number]> = []
  private timer: ReturnType<typeof setInterval> | undefined
  private last = 0

  start(): void {
    this.last = performance.now()
    this.timer = setInterval(() => {
      const now = performance.now()
      this.samples.push([now, Math.max(0, now - this.last - TICK_MS)])
      this.last = now
    }, TICK_MS)
  }

  stop(): LoopDelay {
    clearInterval(this.timer)
    const lags = this.samples.map(([, lag]) => lag)
    return { p99: round(quantile(lags, 0.99), 1), max: round(Math.max(0, ...lags), 1) }
  }

  /** The longest delay in the last `ms` milliseconds, e.g. just before the breaker opened. */
  recentMax(ms: number): number {
    const since = performance.now() - ms
    let max = 0
    for (let i = this.samples.length - 1; i >= 0; i--) {
      const sample = this.samples[i]
      if (sample === undefined || sample[0] < since) break
      max = Math.max(max, sample[1])
    }
    // The delay still under way (no tick yet) counts too.
    return round(Math.max(max, performance.now() - this.last - TICK_MS), 1)
  }
}

const quantile = (values: ReadonlyArray<number>, q: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

/** Counts the breaker's transitions to Open while `body` runs. */
const countingOpens = <A, E, R>(body: Effect.Effect<A, E, R>, onOpen: () => void) =>
  Effect.gen(function*() {
    const breakers = yield* CircuitBreaker.CircuitBreaker
    yield* Effect.forkScoped(Stream.runForEach(breakers.changes, (change) =>
      Effect.sync(() => {
        if (change.to === "Open") onOpen()
      })))
    return yield* body
  }).pipe(Effect.scoped)

interface Open {
  readonly atS: number
  readonly loopDelayBeforeMs: number
}

interface Outcome {
  readonly variant: string
  readonly run: number
  readonly seed: number
  readonly requests: number
  readonly successes: number
  readonly successRate: number
  readonly upstreamAttempts: number
  readonly upstreamAttemptsPerRequest: number
  readonly clientAttempts: number
  readonly failures: Readonly<Record<string, number>>
  readonly breakerOpened: number
  /** For each trip: seconds into the run, and the longest event-loop delay in the 2 s before it. */
  readonly opens: ReadonlyArray<Open>
  /** Client-side, in the order attempts finished. */
  readonly longestFailureRun: number
  readonly maxWindowFailures: number
  readonly maxWindowTimeouts: number
  /** This process' event-loop delay: a held-up loop times out every attempt in flight at once. */
  readonly loopDelayMs: LoopDelay
  readonly seconds: number
  readonly expected: Variant["expected"]
  /** Measured / expected attempts per request; target ≤ 1.02. */
  readonly attemptsRatio: number | undefined
  /** The failure rate of this run's attempts (client-side), and the ratio against the expectation at that rate. */
  readonly seenFailureRate: number
  readonly attemptsRatioAtSeenRate: number | undefined
  readonly successMet: boolean
  readonly attemptsRatioMet: boolean | undefined
}

const summarize = (
  variant: Variant,
  run: number,
  seed: number,
  counts: {
    successes: number
    upstreamAttempts: number
    opens: ReadonlyArray<Open>
    seconds: number
    loopDelayMs: LoopDelay
  },
  log: AttemptLog,
  failures: Record<string, number>
): Outcome => {
  const successRate = counts.successes / REQUESTS
  const perRequest = counts.upstreamAttempts / REQUESTS
  const ratio = variant.expected === undefined ? undefined : perRequest / variant.expected.attemptsPerRequest
  const seen = log.ended === 0 ? 0 : log.failed / log.ended
  return {
    variant: variant.name,
    run,
    seed,
    requests: REQUESTS,
    successes: counts.successes,
    successRate: round(successRate, 4),
    upstreamAttempts: counts.upstreamAttempts,
    upstreamAttemptsPerRequest: round(perRequest, 3),
    clientAttempts: log.attempts,
    failures,
    breakerOpened: counts.opens.length,
    opens: counts.opens,
    longestFailureRun: log.longestFailureRun,
    maxWindowFailures: log.maxWindowFailures,
    maxWindowTimeouts: log.maxWindowTimeouts,
    loopDelayMs: counts.loopDelayMs,
    seconds: round(counts.seconds, 1),
    expected: variant.expected === undefined ? undefined : {
      successRate: round(variant.expected.successRate, 4),
      attemptsPerRequest: round(variant.expected.attemptsPerRequest, 3)
    },
    attemptsRatio: ratio === undefined ? undefined : round(ratio, 4),
    seenFailureRate: round(seen, 4),
    attemptsRatioAtSeenRate: ratio === undefined
      ? undefined
      : round(perRequest / predict(MAX_ATTEMPTS, seen).attemptsPerRequest, 4),
    successMet: successRate >= SUCCESS_TARGET,
    attemptsRatioMet: ratio === undefined ? undefined : ratio <= ATTEMPTS_RATIO_TARGET
  }
}

/** `REQUESTS` requests at `CONCURRENCY` in flight, with a fresh breaker. */
const runVariant = async (baseUrl: string, variant: Variant, run: number, seed: number): Promise<Outcome> => {
  const log = new AttemptLog()
  const runtime = runtimeFor(variant, log)
  const failures: Record<string, number> = {}
  let successes = 0
  const opens: Array<Open> = []
  const lag = new LagMeter()
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
  const requests = Effect.forEach(Array.from({ length: REQUESTS }), () => call, {
    concurrency: CONCURRENCY,
    discard: true
  })
  try {
    console.error(`${variant.name} #${run}: ${REQUESTS} requests at concurrency ${CONCURRENCY}, seed ${seed}`)
    const before = await upstreamMixCount(baseUrl)
    const start = performance.now()
    const onOpen = () => opens.push({ atS: round(since(start) / 1000, 2), loopDelayBeforeMs: lag.recentMax(2000) })
    lag.start()
    const loopDelayMs = await runtime.runPromise(countingOpens(requests, onOpen)).then(
      () => lag.stop(),
      (error: unknown) => {
        lag.stop()
        throw error
      }
    )
    const seconds = (performance.now() - start) / 1000
    const upstreamAttempts = (await upstreamMixCount(baseUrl)) - before
    const counts = { successes, upstreamAttempts, opens, seconds, loopDelayMs }
    return summarize(variant, run, seed, counts, log, failures)
  } finally {
    await runtime.dispose()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The outage
// ---------------------------------------------------------------------------------------------------------------

interface Phase {
  readonly name: string
  readonly query: string
  readonly millis: number
}

const phases: ReadonlyArray<Phase> = [
  { name: "chaos", query: "preset=chaos", millis: 2_000 },
  { name: "outage", query: OUTAGE_QUERY, millis: 4_000 },
  { name: "recovered", query: "preset=chaos", millis: 5_000 }
]
const OUTAGE = 1
/** Each of the `CONCURRENCY` callers starts a request at most this often, so rejected calls do not spin. */
const PACE_MS = 100

const phaseStarts = phases.reduce<Array<number>>((starts, phase, i) => [...starts, (starts[i] ?? 0) + phase.millis], [
  0
])

/** The phase at `elapsed` ms since the start, or -1 once all are over. */
const phaseAt = (elapsed: number): number => phases.findIndex((_, i) => elapsed < (phaseStarts[i + 1] ?? 0))

interface PhaseStats {
  requests: number
  successes: number
  circuitOpen: number
  otherFailures: number
  attempts: number
  readonly rejectedMs: Array<number>
}

interface Transition {
  readonly to: CircuitBreaker.StateName
  readonly phase: string
  /** Since the start of its phase. */
  readonly atMs: number
}

/** What the outage run saw, filled in as it goes. */
interface OutageLog {
  readonly stats: ReadonlyArray<PhaseStats>
  readonly transitions: Array<Transition>
  /** Outage attempts started before the first Open, and after it (until the outage ends). */
  attemptsBeforeOpen: number | undefined
  attemptsAfterOpen: number
}

/** One caller: requests at most every `PACE_MS`, against whatever the current phase's upstream is. */
const caller = (baseUrl: string, seed: number, start: number, outage: OutageLog) =>
  Effect.gen(function*() {
    for (let phase = phaseAt(since(start)); phase !== -1; phase = phaseAt(since(start))) {
      const stats = outage.stats[phase]
      const query = phases[phase]?.query ?? ""
      if (stats === undefined) return
      const began = performance.now()
      const result = yield* Effect.either(Http.json(HttpClientRequest.get(`${baseUrl}/mix?seed=${seed}&${query}`), Ok))
      const took = since(began)
      stats.requests++
      if (Either.isRight(result)) stats.successes++
      else if (result.left._tag === "CircuitOpen") {
        stats.circuitOpen++
        stats.rejectedMs.push(took)
      } else stats.otherFailures++
      if (took < PACE_MS) yield* Effect.sleep(PACE_MS - took)
    }
  })

/** Notes each transition with its phase, and the outage attempts made before the first Open. */
const watchTransitions = (start: number, outage: OutageLog) =>
  Effect.gen(function*() {
    const breakers = yield* CircuitBreaker.CircuitBreaker
    yield* Effect.forkScoped(Stream.runForEach(breakers.changes, (change) =>
      Effect.sync(() => {
        const elapsed = since(start)
        const phase = phaseAt(elapsed)
        outage.transitions.push({
          to: change.to,
          phase: phases[phase]?.name ?? "after",
          atMs: round(elapsed - (phaseStarts[phase] ?? 0), 1)
        })
        if (change.to === "Open" && phase === OUTAGE && outage.attemptsBeforeOpen === undefined) {
          outage.attemptsBeforeOpen = outage.stats[OUTAGE]?.attempts ?? 0
        }
      })))
  })

const phaseReport = (stats: PhaseStats, i: number) => ({
  phase: phases[i]?.name ?? "",
  query: phases[i]?.query ?? "",
  seconds: (phases[i]?.millis ?? 0) / 1000,
  requests: stats.requests,
  successes: stats.successes,
  circuitOpen: stats.circuitOpen,
  otherFailures: stats.otherFailures,
  upstreamAttempts: stats.attempts,
  circuitOpenMedianMs: stats.rejectedMs.length === 0 ? undefined : round(median(stats.rejectedMs), 3),
  circuitOpenP99Ms: stats.rejectedMs.length === 0 ? undefined : round(quantile(stats.rejectedMs, 0.99), 3)
})

type OutageOutcome = ReturnType<typeof outageOutcome>

const outageOutcome = (outage: OutageLog) => {
  const firstIn = (phase: string, to: CircuitBreaker.StateName) =>
    outage.transitions.find((t) => t.phase === phase && t.to === to)
  const opened = firstIn("outage", "Open")
  const openedInChaos = outage.transitions.filter((t) => t.phase === "chaos" && t.to === "Open").length
  return {
    phases: outage.stats.map(phaseReport),
    openedAfterMs: opened?.atMs,
    outageAttemptsBeforeOpen: outage.attemptsBeforeOpen,
    outageAttemptsAfterOpen: outage.attemptsAfterOpen,
    circuitOpenInOutage: outage.stats[OUTAGE]?.circuitOpen ?? 0,
    openedInChaosPhase: openedInChaos,
    closedAgainAfterMs: firstIn("recovered", "Closed")?.atMs,
    tripped: opened !== undefined && openedInChaos === 0,
    transitions: outage.transitions
  }
}

/** Chaos, then the outage, then chaos again, with the sensible configuration and a fresh breaker. */
const runOutage = async (baseUrl: string, seed: number): Promise<OutageOutcome> => {
  const log = new AttemptLog()
  const outage: OutageLog = {
    stats: phases.map(() => ({
      requests: 0,
      successes: 0,
      circuitOpen: 0,
      otherFailures: 0,
      attempts: 0,
      rejectedMs: []
    })),
    transitions: [],
    attemptsBeforeOpen: undefined,
    attemptsAfterOpen: 0
  }
  const start = performance.now()
  log.onStart = () => {
    const phase = phaseAt(since(start))
    const stats = outage.stats[phase]
    if (stats !== undefined) stats.attempts++
    if (phase === OUTAGE && outage.attemptsBeforeOpen !== undefined) outage.attemptsAfterOpen++
  }
  const runtime = runtimeFor(sensible, log)
  const program = Effect.zipRight(
    watchTransitions(start, outage),
    Effect.forEach(Array.from({ length: CONCURRENCY }), () => caller(baseUrl, seed, start, outage), {
      concurrency: CONCURRENCY,
      discard: true
    })
  ).pipe(Effect.scoped)
  console.error(`outage: ${phases.map((p) => `${p.name} ${p.millis / 1000} s`).join(", ")}; seed ${seed}`)
  try {
    await runtime.runPromise(program)
    return outageOutcome(outage)
  } finally {
    await runtime.dispose()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------------------------

const pct = (share: number) => `${round(share * 100, 2)}%`
const yesNo = (met: boolean | undefined) => (met === undefined ? "-" : met ? "yes" : "no")

const outcomeTable = (outcomes: ReadonlyArray<Outcome>): string =>
  markdownTable(
    [
      "config",
      "run",
      "success",
      "attempts / request",
      "(1 − qⁿ)/(1 − q)",
      "ratio",
      "q seen (ratio at it)",
      "success ≥ 99%",
      "ratio ≤ 1.02",
      "breaker opened",
      "longest failure run",
      `most failures in ${WINDOW} (timeouts)`,
      "loop delay p99 / max ms",
      "s",
      "failures"
    ],
    outcomes.map((o) => [
      o.variant,
      o.run,
      pct(o.successRate),
      o.upstreamAttemptsPerRequest,
      o.expected === undefined ? "-" : o.expected.attemptsPerRequest,
      o.attemptsRatio ?? "-",
      o.attemptsRatio === undefined ? "-" : `${o.seenFailureRate} (${o.attemptsRatioAtSeenRate ?? "-"})`,
      yesNo(o.successMet),
      yesNo(o.attemptsRatioMet),
      o.opens.length === 0
        ? 0
        : `${o.opens.length} (loop delay before: ${o.opens.map((x) => x.loopDelayBeforeMs).join(", ")} ms)`,
      o.longestFailureRun,
      `${o.maxWindowFailures} (${o.maxWindowTimeouts})`,
      `${o.loopDelayMs.p99} / ${o.loopDelayMs.max}`,
      o.seconds,
      Object.entries(o.failures).map(([kind, n]) => `${kind}: ${n}`).join(", ") || "-"
    ])
  )

const outageTable = (outage: OutageOutcome): string =>
  markdownTable(
    [
      "phase",
      "s",
      "requests",
      "successes",
      "CircuitOpen",
      "other failures",
      "upstream attempts",
      "CircuitOpen p50 / p99 ms"
    ],
    outage.phases.map((p) => [
      `${p.phase} (${p.query})`,
      p.seconds,
      p.requests,
      p.successes,
      p.circuitOpen,
      p.otherFailures,
      p.upstreamAttempts,
      p.circuitOpenMedianMs === undefined ? "-" : `${p.circuitOpenMedianMs} / ${p.circuitOpenP99Ms ?? "-"}`
    ])
  )

const outageSummary = (outage: OutageOutcome): string =>
  outage.tripped
    ? `Outage: the breaker opened ${outage.openedAfterMs} ms into it, after ${outage.outageAttemptsBeforeOpen} ` +
      `upstream attempts; once open, ${outage.outageAttemptsAfterOpen} more attempts reached the upstream (probes) ` +
      `while ${outage.circuitOpenInOutage} calls failed with CircuitOpen (median ` +
      `${outage.phases[OUTAGE]?.circuitOpenMedianMs ?? "-"} ms; the slow ones had been retrying when it opened); ` +
      (outage.closedAgainAfterMs === undefined
        ? "it had not closed again by the end of the recovery phase."
        : `it closed again ${outage.closedAgainAfterMs} ms after the upstream recovered.`)
    : `Outage: the breaker did NOT trip as required (opened in the outage: ${String(outage.openedAfterMs)} ms; ` +
      `opens during the chaos phase: ${outage.openedInChaosPhase}).`

const verdictLine = (stable: ReadonlyArray<Outcome>, outage: OutageOutcome): string => {
  const met = stable.every((o) => o.successMet && o.attemptsRatioMet === true && o.breakerOpened === 0)
  const worst = Math.max(...stable.map((o) => o.attemptsRatio ?? Number.NaN))
  const lowest = Math.min(...stable.map((o) => o.successRate))
  return `Stable over ${stable.length} runs: ${met ? "yes" : "NO"} (lowest success ${pct(lowest)}, highest ratio ` +
    `${worst}); breaker trips on the outage: ${outage.tripped ? "yes" : "NO"}.`
}

export const run = (): Promise<void> =>
  withProcess(spawnUpstream, async (upstream) => {
    const baseUrl = upstream.ready.url
    const stable: Array<Outcome> = []
    for (let i = 1; i <= STABLE_RUNS; i++) stable.push(await runVariant(baseUrl, sensible, i, i))
    const outage = await runOutage(baseUrl, STABLE_RUNS + 1)
    const others: Array<Outcome> = []
    for (const [i, variant] of informational.entries()) {
      others.push(await runVariant(baseUrl, variant, 1, STABLE_RUNS + 2 + i))
    }
    const attemptsPerRun = REQUESTS * predict(MAX_ATTEMPTS).attemptsPerRequest
    const breaker = breakerArithmetic(P_FAIL, attemptsPerRun)
    const arithmetic = [...targetArithmetic, ...breaker.lines, outageArithmetic(P_FAIL, P_OUTAGE)]
    const verdict = verdictLine(stable, outage)
    const file = await writeResult("chaos", {
      verdict,
      stable,
      outage,
      informational: others,
      targets: {
        successRate: `>= ${SUCCESS_TARGET} in each of ${STABLE_RUNS} runs`,
        attemptsRatio: `upstream attempts per request <= ${ATTEMPTS_RATIO_TARGET} x (1 - q^n) / (1 - q)`,
        outage: "the breaker opens on an upstream failing >= 90%, never on the 45%-failing one"
      },
      arithmetic,
      breakerOdds: breaker.numbers,
      variants: Object.fromEntries(
        [sensible, ...informational].map((v) => [v.name, { why: v.why, policy: v.policy, breaker: v.breaker }])
      ),
      config: {
        requests: REQUESTS,
        concurrency: CONCURRENCY,
        attemptTimeout: ATTEMPT_TIMEOUT,
        upstream: "/mix?preset=chaos: 30% 503, 10% connection reset, 5% stall (no answer until the client leaves)",
        outage: `${phases.map((p) => `${p.name} ${p.millis / 1000} s (${p.query})`).join(", ")}; ${CONCURRENCY} ` +
          `callers, each starting a request at most every ${PACE_MS} ms`
      },
      notes: [
        "upstreamAttempts: /mix requests counted by the upstream process (GET /stats before and after); " +
        "clientAttempts: calls of the Http execute the policy wraps; the two agree unless a request never reached " +
        "the upstream (e.g. a connect failure).",
        "longestFailureRun and maxWindowFailures are counted by the client in the order attempts finish, as the " +
        "breaker sees them: the margin left to its thresholds.",
        "Each run has its own seed, so its draws are independent of the others'; each run has a fresh breaker."
      ]
    })
    console.log(outcomeTable([...stable, ...others]))
    console.log(`\n${outageTable(outage)}\n\n${outageSummary(outage)}`)
    console.log(`\n${arithmetic.join("\n\n")}\n\n${verdict}\nwritten to ${file}`)
  })
