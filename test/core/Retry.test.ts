import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Http, HttpError, Retry } from "@liaison/core"
import {
  Chunk,
  Clock,
  Duration,
  Effect,
  Exit,
  FastCheck as fc,
  Fiber,
  Layer,
  Option,
  Ref,
  Schedule,
  TestClock
} from "effect"
import { retryAfterMillis } from "../../packages/core/src/internal/retryAfter.js"
import type { ChaosUpstream } from "../fixtures/chaos.js"
import { startChaosUpstream } from "../fixtures/chaos.js"

let chaos: ChaosUpstream
beforeAll(async () => {
  chaos = await startChaosUpstream()
})
afterAll(() => chaos.close())

/** The `Http` service against the chaos upstream, every call retried with `options`. */
const withRetry = (options: Retry.Options, http: Http.Options = {}) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provide(effect, Retry.layer(options).pipe(Layer.provide(Http.layer({ baseUrl: chaos.url, ...http }))))

const realPause = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 2)))

/**
 * Runs `effect` (real HTTP in real time) and moves the TestClock to every sleep it waits on, and
 * only then: `elapsed` is the TestClock time it slept, its delays and timeouts.
 */
const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.fork(effect)
    for (;;) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return { exit: done.value, elapsed: (yield* Clock.currentTimeMillis) - start }
      const wakeUps = Chunk.toReadonlyArray(yield* TestClock.sleeps())
      if (wakeUps.length > 0) yield* TestClock.setTime(Math.min(...wakeUps))
      else yield* realPause
    }
  })

/** Waits, in real time, until `condition` holds. */
const waitUntil = (condition: Effect.Effect<boolean>): Effect.Effect<void> =>
  Effect.flatMap(condition, (ok) => ok ? Effect.void : Effect.zipRight(realPause, waitUntil(condition)))

/** The error an exit failed with (the test fails if it succeeded). */
const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  return Option.getOrThrow(
    Exit.causeOption(exit).pipe(
      Option.flatMap((cause) => cause._tag === "Fail" ? Option.some(cause.error) : Option.none())
    )
  )
}

const get = (path: string) => Http.text(HttpClientRequest.get(path))

/** Calls `path` with a fresh request count, returning the exit, the delays slept and the requests on the wire. */
const call = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.gen(function*() {
    chaos.reset()
    const { elapsed, exit } = yield* timed(Http.text(request))
    return { exit, elapsed, requests: chaos.requestCount() }
  })

const fast = { base: "1 millis", jitter: false } as const

describe("Retry over the chaos upstream", () => {
  it.effect("a GET is retried until it succeeds, after exponential delays", () =>
    Effect.gen(function*() {
      const { elapsed, exit, requests } = yield* call(HttpClientRequest.get("/sequence/get?statuses=503,500,200"))
      expect(Exit.isSuccess(exit) && JSON.parse(exit.value)).toMatchObject({ status: 200, call: 3 })
      expect(requests).toBe(3)
      expect(elapsed).toBe(100 + 200)
    }).pipe(withRetry({ maxAttempts: 3, base: "100 millis", jitter: false })))

  it.effect("maxAttempts bounds the attempts on the wire; the last answer stands", () =>
    Effect.gen(function*() {
      const { exit, requests } = yield* call(HttpClientRequest.get("/status/503"))
      expect(failure(exit)).toMatchObject({ _tag: "StatusError", status: 503 })
      expect(requests).toBe(4)
    }).pipe(withRetry({ ...fast, maxAttempts: 4 })))

  it.effect("maxAttempts 1 never retries", () =>
    Effect.gen(function*() {
      expect((yield* call(HttpClientRequest.get("/status/503"))).requests).toBe(1)
    }).pipe(withRetry({ ...fast, maxAttempts: 1 })))

  it.effect("POST and PATCH are not retried; PUT, DELETE and a POST with an Idempotency-Key are", () =>
    Effect.gen(function*() {
      const requests = (request: HttpClientRequest.HttpClientRequest) => Effect.map(call(request), (r) => r.requests)
      expect(yield* requests(HttpClientRequest.post("/status/503"))).toBe(1)
      expect(yield* requests(HttpClientRequest.patch("/status/503"))).toBe(1)
      expect(yield* requests(HttpClientRequest.put("/status/503"))).toBe(3)
      expect(yield* requests(HttpClientRequest.del("/status/503"))).toBe(3)
      expect(
        yield* requests(
          HttpClientRequest.post("/status/503").pipe(
            HttpClientRequest.setHeader("Idempotency-Key", "order-42")
          )
        )
      ).toBe(3)
    }).pipe(withRetry(fast)))

  it.effect("retryNonIdempotent retries a POST", () =>
    Effect.gen(function*() {
      expect((yield* call(HttpClientRequest.post("/status/503"))).requests).toBe(3)
    }).pipe(withRetry({ ...fast, retryNonIdempotent: true })))

  it.effect("a 404 is not retried", () =>
    Effect.gen(function*() {
      const { exit, requests } = yield* call(HttpClientRequest.get("/status/404"))
      expect(failure(exit)).toMatchObject({ _tag: "StatusError", status: 404 })
      expect(requests).toBe(1)
      expect((yield* call(HttpClientRequest.get("/status/501"))).requests).toBe(1)
      expect((yield* call(HttpClientRequest.get("/status/408"))).requests).toBe(3)
    }).pipe(withRetry(fast)))

  it.effect("statuses and isRetryable change what is retried", () =>
    Effect.gen(function*() {
      expect((yield* call(HttpClientRequest.get("/status/404"))).requests).toBe(3)
      expect((yield* call(HttpClientRequest.get("/status/503"))).requests).toBe(1)
      expect((yield* call(HttpClientRequest.get("/status/500"))).requests).toBe(3)
    }).pipe(withRetry({
      ...fast,
      statuses: [404, 500, 503],
      isRetryable: (outcome) => outcome._tag === "Response" && outcome.status === 503 ? false : undefined
    })))

  it.effect("transport errors are retried", () =>
    Effect.gen(function*() {
      const { exit, requests } = yield* call(HttpClientRequest.get("/reset"))
      expect(failure(exit)).toMatchObject({ _tag: "TransportError", reason: "reset" })
      expect(requests).toBe(3)
    }).pipe(withRetry(fast)))

  it.effect("read timeouts are retried", () =>
    Effect.gen(function*() {
      const { exit, requests } = yield* call(HttpClientRequest.get("/stall/headers"))
      expect(failure(exit)).toMatchObject({ _tag: "TimeoutError", phase: "read" })
      expect(requests).toBe(2)
    }).pipe(withRetry({ ...fast, maxAttempts: 2 }, { timeouts: { read: "100 millis" } })))

  it.effect("each attempt's body is released before the next: one pooled connection is enough", () =>
    Effect.gen(function*() {
      const { exit, requests } = yield* call(HttpClientRequest.get("/sequence/pool?statuses=503,503,503,200"))
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(requests).toBe(4)
    }).pipe(withRetry({ ...fast, maxAttempts: 4 }, { pool: { maxConnections: 1 }, timeouts: { pool: "1 second" } })))
})

describe("Retry and the server's word", () => {
  it.effect("Retry-After in seconds is the least delay before the next attempt", () =>
    Effect.gen(function*() {
      const asked = yield* call(HttpClientRequest.get("/status/503?header=retry-after:2"))
      expect(asked.requests).toBe(2)
      expect(asked.elapsed).toBe(2000)
      const throttled = yield* call(HttpClientRequest.get("/ratelimit?retryAfter=3"))
      expect(failure(throttled.exit)).toMatchObject({ _tag: "StatusError", status: 429 })
      expect(throttled.elapsed).toBe(3000)
    }).pipe(withRetry({ base: "10 millis", jitter: false, maxAttempts: 2 })))

  it.effect("a backoff longer than Retry-After wins", () =>
    Effect.gen(function*() {
      expect((yield* call(HttpClientRequest.get("/status/503?header=retry-after:2"))).elapsed).toBe(5000)
    }).pipe(withRetry({ base: "5 seconds", jitter: false, maxAttempts: 2 })))

  it.effect("Retry-After as an HTTP-date", () =>
    Effect.gen(function*() {
      // HTTP-dates are wall-clock times: the TestClock starts at the real time.
      yield* TestClock.setTime(Date.now())
      const { elapsed, requests } = yield* call(HttpClientRequest.get("/ratelimit?retryAfter=3&format=date"))
      expect(requests).toBe(2)
      // An HTTP-date has whole seconds: between 2 and 3 seconds from now (plus the time the answer took).
      expect(elapsed).toBeGreaterThan(2000)
      expect(elapsed).toBeLessThanOrEqual(3500)
    }).pipe(withRetry({ ...fast, maxAttempts: 2 })))

  it.effect("RateLimit-Reset and X-RateLimit-Reset, delta seconds or a Unix time", () =>
    Effect.gen(function*() {
      expect((yield* call(HttpClientRequest.get("/status/503?header=ratelimit-reset:1"))).elapsed).toBe(1000)
      expect((yield* call(HttpClientRequest.get("/status/503?header=x-ratelimit-reset:2"))).elapsed).toBe(2000)
      yield* TestClock.setTime(1_700_000_000_000)
      const epoch = yield* call(HttpClientRequest.get("/status/429?header=x-ratelimit-reset:1700000004"))
      expect(epoch.elapsed).toBe(4000)
    }).pipe(withRetry({ ...fast, maxAttempts: 2 })))

  it.effect("a Retry-After above maxRetryAfter fails at once with RetryAfterTooLong and the server's delay", () =>
    Effect.gen(function*() {
      const { elapsed, exit, requests } = yield* call(HttpClientRequest.get("/ratelimit?retryAfter=120"))
      const error = failure(exit)
      expect(error).toBeInstanceOf(HttpError.RetryAfterTooLong)
      expect(error).toMatchObject({ status: 429, retryAfterMillis: 120_000, maxRetryAfterMillis: 60_000 })
      expect(HttpError.retryAfterMillis(error)).toBe(120_000)
      expect(requests).toBe(1)
      expect(elapsed).toBe(0)
    }).pipe(withRetry(fast)))

  it.effect("a higher maxRetryAfter waits as long as asked", () =>
    Effect.gen(function*() {
      const { elapsed, requests } = yield* call(HttpClientRequest.get("/ratelimit?retryAfter=120"))
      expect(requests).toBe(2)
      expect(elapsed).toBe(120_000)
    }).pipe(withRetry({ ...fast, maxAttempts: 2, maxRetryAfter: "2 minutes" })))
})

describe("Retry budget and deadline", () => {
  it.effect("retries are at most a share of recent requests: past it, RetryBudgetExhausted", () =>
    Effect.gen(function*() {
      // ratio 0.5 and no free retries: 1 request earns half a retry.
      const first = yield* call(HttpClientRequest.get("/status/503"))
      const error = failure(first.exit)
      expect(error).toBeInstanceOf(HttpError.RetryBudgetExhausted)
      expect(error).toMatchObject({ host: new URL(chaos.url).host, method: "GET", lastOutcome: "answered 503" })
      expect(first.requests).toBe(1)
      // Two good requests: 4 requests with the next one allow 2 retries.
      yield* get("/status/200")
      yield* get("/status/200")
      const fourth = yield* call(HttpClientRequest.get("/status/503"))
      expect(failure(fourth.exit)).toMatchObject({ _tag: "StatusError", status: 503 })
      expect(fourth.requests).toBe(3)
      // 5 requests allow 2.5 retries, 2 are spent: the third is refused.
      const fifth = yield* call(HttpClientRequest.get("/status/503"))
      expect(failure(fifth.exit)).toBeInstanceOf(HttpError.RetryBudgetExhausted)
      expect(fifth.requests).toBe(1)
      // A new window forgets the spent retries.
      yield* TestClock.adjust("11 seconds")
      yield* get("/status/200")
      expect((yield* call(HttpClientRequest.get("/status/503"))).requests).toBe(2)
    }).pipe(withRetry({ ...fast, budget: { ratio: 0.5, minRetriesPerSecond: 0 } })))

  it.effect("the deadline bounds the whole retried call: TimeoutError in phase total", () =>
    Effect.gen(function*() {
      chaos.reset()
      const fiber = yield* Effect.fork(Effect.exit(get("/status/503")))
      // Time moves only once the attempt has been answered and the retry sleeps its backoff (waking at `wakeAt`).
      const sleepingAfter = (requests: number, wakeAt: number) =>
        waitUntil(
          Effect.map(TestClock.sleeps(), (s) => chaos.requestCount() === requests && Chunk.some(s, (t) => t === wakeAt))
        )
      yield* sleepingAfter(1, 1000)
      yield* TestClock.adjust("1 second")
      yield* sleepingAfter(2, 3000)
      // The next attempt would start at 3 s.
      yield* TestClock.adjust("1500 millis")
      const exit = yield* Fiber.join(fiber)
      expect(failure(exit)).toMatchObject({ _tag: "TimeoutError", phase: "total", timeoutMillis: 2500 })
      expect(chaos.requestCount()).toBe(2)
    }).pipe(withRetry({ base: "1 second", jitter: false, maxAttempts: 10, deadline: "2500 millis" })))

  it.effect("the deadline cuts a stalled attempt short", () =>
    Effect.gen(function*() {
      chaos.reset()
      const fiber = yield* Effect.fork(Effect.exit(get("/stall/headers")))
      yield* waitUntil(Effect.sync(() => chaos.requestCount() === 1))
      yield* TestClock.adjust("2499 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      expect(failure(yield* Fiber.join(fiber))).toMatchObject({ _tag: "TimeoutError", phase: "total" })
      expect(chaos.requestCount()).toBe(1)
    }).pipe(withRetry({ base: "1 second", jitter: false, deadline: "2500 millis" })))

  it.effect("a Retry-After ending past the deadline is not waited for: the last answer stands", () =>
    Effect.gen(function*() {
      chaos.reset()
      // No clock moves: the call ends by itself, without waiting.
      const exit = yield* Effect.exit(get("/status/503?header=retry-after:10"))
      expect(failure(exit)).toMatchObject({ _tag: "StatusError", status: 503 })
      expect(chaos.requestCount()).toBe(1)
    }).pipe(withRetry({ ...fast, deadline: "5 seconds" })))
})

describe("Retry.retry and options", () => {
  it.effect("retries any effect failing with a retryable HttpError, only when the target is idempotent", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ ...fast, maxAttempts: 5 })
      const attempts = yield* Ref.make(0)
      const flaky = Effect.flatMap(
        Ref.updateAndGet(attempts, (n) => n + 1),
        (n) =>
          n < 3
            ? Effect.fail(
              new HttpError.StatusError({ status: 503, headers: {}, body: "", method: "GET", url: "/users" })
            )
            : Effect.succeed(n)
      )
      const target = { method: "GET", url: "https://api.example.com/users" }
      expect(Exit.isSuccess((yield* timed(retry.retry(flaky, target))).exit)).toBe(true)
      expect(yield* Ref.get(attempts)).toBe(3)

      yield* Ref.set(attempts, 0)
      yield* timed(retry.retry(flaky, { ...target, idempotent: false }))
      expect(yield* Ref.get(attempts)).toBe(1)

      yield* Ref.set(attempts, 0)
      yield* timed(retry.retry(flaky, { ...target, method: "post" }))
      expect(yield* Ref.get(attempts)).toBe(1)

      // Not an HttpError: not the retry's business.
      yield* Ref.set(attempts, 0)
      const broken = Effect.zipRight(Ref.update(attempts, (n) => n + 1), Effect.fail(new Error("bug")))
      yield* timed(retry.retry(broken, target))
      expect(yield* Ref.get(attempts)).toBe(1)
    }))

  const invalid: ReadonlyArray<readonly [Retry.Options, string]> = [
    [{ maxAttempts: 0 }, "maxAttempts"],
    [{ maxAttempts: 2.5 }, "maxAttempts"],
    [{ base: 0 }, "base"],
    [{ factor: 0.5 }, "factor"],
    [{ base: "2 seconds", cap: "1 second" }, "cap"],
    [{ jitter: { min: 1.5, max: 0.5 } }, "jitter"],
    [{ jitter: { min: -1, max: 1 } }, "jitter"],
    [{ budget: { ratio: -0.1 } }, "budget.ratio"],
    [{ budget: { window: 0 } }, "budget.window"],
    [{ deadline: 0 }, "deadline"]
  ]

  it.effect("out-of-range options are InvalidOptions naming the option", () =>
    Effect.gen(function*() {
      for (const [options, option] of invalid) {
        const error = yield* Effect.flip(Retry.make(options))
        expect(error).toMatchObject({ _tag: "InvalidOptions", option })
      }
    }))
})

// ---------------------------------------------------------------------------------------------

const BackoffOptions = fc.record({
  baseMillis: fc.integer({ min: 1, max: 2000 }),
  factor: fc.double({ min: 1, max: 3, noNaN: true }),
  capShare: fc.double({ min: 0, max: 1, noNaN: true }),
  jitter: fc.oneof(
    fc.constant(false as const),
    fc.tuple(fc.double({ min: 0, max: 2, noNaN: true }), fc.double({ min: 0, max: 2, noNaN: true })).map((
      [a, b]
    ) => ({ min: Math.min(a, b), max: Math.max(a, b) }))
  ),
  maxAttempts: fc.integer({ min: 1, max: 12 })
})

/**
 * The delays a schedule sleeps before each recurrence. `Schedule.run` also emits the output of
 * the final step, the one that stops (its delay is 0): it is not a delay anybody sleeps.
 */
const delaysOf = (schedule: Schedule.Schedule<unknown>) =>
  Effect.map(Schedule.run(Schedule.delays(schedule), 0, Array.from({ length: 20 }, () => undefined)), (outputs) => {
    const all = Chunk.toReadonlyArray(outputs).map(Duration.toMillis)
    expect(all.at(-1)).toBe(0)
    return all.slice(0, -1)
  })

describe("Retry.backoff", () => {
  it.effect.prop(
    "the n-th delay is within [base·factor^n·min, base·factor^n·max], capped at cap; maxAttempts - 1 of them",
    [BackoffOptions],
    ([{ baseMillis, capShare, factor, jitter, maxAttempts }]) =>
      Effect.gen(function*() {
        // The cap anywhere between base and the uncapped longest delay.
        const longest = baseMillis * factor ** 12 * 2
        const capMillis = baseMillis + capShare * (longest - baseMillis)
        const schedule = Retry.backoff({
          base: Duration.millis(baseMillis),
          factor,
          cap: Duration.millis(capMillis),
          jitter,
          maxAttempts
        })
        const delays = yield* delaysOf(schedule)
        expect(delays).toHaveLength(maxAttempts - 1)
        const { max, min } = jitter === false ? { min: 1, max: 1 } : jitter
        delays.forEach((delay, n) => {
          const nominal = baseMillis * factor ** n
          // Durations may round to whole nanoseconds.
          const tolerance = 1e-6 + 1e-9 * nominal * max
          expect(delay).toBeGreaterThanOrEqual(Math.min(capMillis, nominal * min) - tolerance)
          expect(delay).toBeLessThanOrEqual(Math.min(capMillis, nominal * max) + tolerance)
        })
      })
  )

  it.effect("the defaults: 1 s, 2 s (each jittered 0.5–1.5×), two retries", () =>
    Effect.gen(function*() {
      for (let i = 0; i < 50; i++) {
        const [first, second, ...more] = yield* delaysOf(Retry.backoff())
        expect(more).toEqual([])
        expect(first).toBeGreaterThanOrEqual(500)
        expect(first).toBeLessThanOrEqual(1500)
        expect(second).toBeGreaterThanOrEqual(1000)
        expect(second).toBeLessThanOrEqual(3000)
      }
    }))
})

// ---------------------------------------------------------------------------------------------

/** Any time between 2004 and 2100, in milliseconds (Unix times in seconds above 10^9). */
const Now = fc.integer({ min: 1_100_000_000_000, max: 4_102_444_800_000 })

describe("retry-after parsing", () => {
  it.prop("Retry-After in delay-seconds", [fc.integer({ min: 0, max: 10_000_000 }), Now], ([seconds, now]) => {
    expect(retryAfterMillis({ "retry-after": String(seconds) }, now)).toBe(seconds * 1000)
  })

  it.prop(
    "Retry-After as an HTTP-date (IMF-fixdate, RFC 850 or asctime): the time to it, never negative",
    [fc.integer({ min: -100_000_000, max: 100_000_000 }), Now, fc.constantFrom("imf", "rfc850", "asctime")],
    ([offset, now, form]) => {
      const date = new Date(now + offset)
      const imf = date.toUTCString()
      const [weekday = "", day = "", month = "", year = "", time = ""] = imf.replace(",", "").split(" ")
      const longWeekdays: Record<string, string> = {
        Mon: "Monday",
        Tue: "Tuesday",
        Wed: "Wednesday",
        Thu: "Thursday",
        Fri: "Friday",
        Sat: "Saturday",
        Sun: "Sunday"
      }
      const header = form === "imf"
        ? imf
        : form === "rfc850"
        ? `${longWeekdays[weekday]}, ${day}-${month}-${year.slice(2)} ${time} GMT`
        : `${weekday} ${month} ${day.replace(/^0/, " ")} ${time} ${year}`
      // RFC 850's two-digit years are read by Date.parse in its own way; only this century is sure.
      fc.pre(form !== "rfc850" || (date.getUTCFullYear() >= 2001 && date.getUTCFullYear() <= 2049))
      const whole = Math.floor((now + offset) / 1000) * 1000
      expect(retryAfterMillis({ "retry-after": header }, now)).toBe(Math.max(0, whole - now))
    }
  )

  it.prop(
    "X-RateLimit-Reset: a Unix time in seconds, or delta seconds; RateLimit-Reset is delta seconds",
    [fc.integer({ min: 0, max: 999_999_999 }), fc.integer({ min: -1_000_000, max: 1_000_000 }), Now],
    ([delta, offsetSeconds, now]) => {
      expect(retryAfterMillis({ "x-ratelimit-reset": String(delta) }, now)).toBe(delta * 1000)
      expect(retryAfterMillis({ "ratelimit-reset": String(delta) }, now)).toBe(delta * 1000)
      const epoch = Math.floor(now / 1000) + offsetSeconds
      expect(retryAfterMillis({ "x-ratelimit-reset": String(epoch) }, now)).toBe(Math.max(0, epoch * 1000 - now))
    }
  )

  it("Retry-After wins over the reset headers; junk is no answer", () => {
    const now = 1_700_000_000_000
    expect(retryAfterMillis({ "retry-after": "2", "ratelimit-reset": "9", "x-ratelimit-reset": "9" }, now)).toBe(2000)
    expect(retryAfterMillis({ "ratelimit-reset": "3", "x-ratelimit-reset": "9" }, now)).toBe(3000)
    for (const junk of ["", "soon", "-5", "abc 5", "1 2", "1e3", "0x10", "Friday"]) {
      expect(retryAfterMillis({ "retry-after": junk }, now)).toBeUndefined()
    }
    // Junk in Retry-After leaves the word to the reset headers.
    expect(retryAfterMillis({ "retry-after": "-1", "x-ratelimit-reset": "4" }, now)).toBe(4000)
    expect(retryAfterMillis({}, now)).toBeUndefined()
  })
})
