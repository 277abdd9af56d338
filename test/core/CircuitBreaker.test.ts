import { describe, expect, it } from "@effect/vitest"
import { CircuitBreaker, HttpError, LiaisonError } from "@liaison/core"
import {
  Array as Arr,
  Chunk,
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  FastCheck as fc,
  Fiber,
  Metric,
  MetricState,
  Ref,
  Runtime,
  Schema,
  Stream,
  TestClock
} from "effect"

const statusError = (status: number, headers: Record<string, string> = {}) =>
  new HttpError.StatusError({ status, headers, body: "", method: "GET", url: "/model" })

const serverError = statusError(500)
const succeed = Effect.succeed("ok")
const fail = Effect.fail(serverError)

/** The state name, whether the breaker admitted the call, and how long it stays open, as one record. */
const outcome = <A, E>(exit: Exit.Exit<A, E | CircuitBreaker.CircuitOpen>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error instanceof CircuitBreaker.CircuitOpen
    ? { admitted: false, remaining: exit.cause.error.remainingMillis }
    : { admitted: true, remaining: 0 }

// ---------------------------------------------------------------------------------------------
// The reference model: what the breaker promises, for calls made one after the other.

interface ModelConfig {
  readonly failureThreshold: number
  readonly halfOpenProbes: number
  readonly openMillis: number
  readonly maxOpenMillis: number
  /** A failure rate over the last `size` calls, judged once `minimumCalls` are in. */
  readonly rate: { readonly threshold: number; readonly minimumCalls: number; readonly size: number } | undefined
}

type Phase =
  | { readonly name: "Closed" }
  | { readonly name: "Open"; readonly until: number }
  | { readonly name: "HalfOpen" }

class Model {
  now = 0
  phase: Phase = { name: "Closed" }
  /** Failures in a row while Closed. */
  streak = 0
  /** The outcomes (true = failed) of the last calls while Closed, newest last. */
  outcomes: Array<boolean> = []
  /** Probes that succeeded in this HalfOpen spell. */
  probesSucceeded = 0

  constructor(readonly config: ModelConfig) {}

  /** An Open breaker whose time is up reads as HalfOpen. */
  get name(): "Closed" | "Open" | "HalfOpen" {
    return this.phase.name === "Open" && this.now >= this.phase.until ? "HalfOpen" : this.phase.name
  }

  /** `null` while isolated. */
  get remaining(): number | null {
    if (this.phase.name !== "Open" || this.now >= this.phase.until) return 0
    return this.phase.until === Infinity ? null : this.phase.until - this.now
  }

  private closeNow() {
    this.phase = { name: "Closed" }
    this.streak = 0
    this.outcomes = []
  }

  private openFor(millis: number) {
    this.phase = { name: "Open", until: this.now + millis }
  }

  private tripsOnRate(): boolean {
    const rate = this.config.rate
    if (rate === undefined || this.outcomes.length < rate.minimumCalls) return false
    const failures = this.outcomes.filter((failed) => failed).length
    return failures / this.outcomes.length >= rate.threshold
  }

  /** One call; `retryAfter` (ms) when it fails with a 503 carrying `Retry-After`. */
  call(failed: boolean, retryAfter: number | undefined): { admitted: boolean; remaining: number } {
    if (this.phase.name === "Open") {
      if (this.now < this.phase.until) return { admitted: false, remaining: this.phase.until - this.now }
      this.phase = { name: "HalfOpen" }
      this.probesSucceeded = 0
    }
    const openMillis = retryAfter === undefined
      ? this.config.openMillis
      : Math.min(retryAfter, this.config.maxOpenMillis)
    if (this.phase.name === "HalfOpen") {
      // One call at a time: a HalfOpen breaker has always a probe place left.
      if (failed) this.openFor(openMillis)
      else if (++this.probesSucceeded === this.config.halfOpenProbes) this.closeNow()
      return { admitted: true, remaining: 0 }
    }
    this.streak = failed ? this.streak + 1 : 0
    if (this.config.rate !== undefined) {
      this.outcomes.push(failed)
      if (this.outcomes.length > this.config.rate.size) this.outcomes.shift()
    }
    if (failed && (this.streak >= this.config.failureThreshold || this.tripsOnRate())) this.openFor(openMillis)
    return { admitted: true, remaining: 0 }
  }

  isolate() {
    this.phase = { name: "Open", until: Infinity }
  }

  reset() {
    this.closeNow()
  }
}

interface Real {
  readonly breaker: CircuitBreaker.Breaker
  readonly run: <A>(effect: Effect.Effect<A>) => Promise<A>
}

/** Checks what the breaker shows against the model. */
const agree = async (model: Model, real: Real) => {
  const snapshot = await real.run(real.breaker.snapshot)
  expect(snapshot.state).toBe(model.name)
  expect(snapshot.remainingOpenMillis).toBe(model.remaining)
  expect(snapshot.consecutiveFailures).toBe(model.name === "Closed" ? model.streak : 0)
  if (model.config.rate !== undefined && model.name === "Closed") {
    expect(snapshot.windowCalls).toBe(model.outcomes.length)
    expect(snapshot.windowFailures).toBe(model.outcomes.filter((failed) => failed).length)
  }
}

class Call implements fc.AsyncCommand<Model, Real> {
  /** `retryAfterSeconds`: the failure is a 503 with that `Retry-After`. */
  constructor(readonly failed: boolean, readonly retryAfterSeconds?: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    const error = this.retryAfterSeconds === undefined
      ? serverError
      : statusError(503, { "retry-after": String(this.retryAfterSeconds) })
    const exit = await real.run(Effect.exit(real.breaker.protect(this.failed ? Effect.fail(error) : succeed)))
    const expected = model.call(
      this.failed,
      this.retryAfterSeconds === undefined ? undefined : this.retryAfterSeconds * 1000
    )
    expect(outcome(exit)).toEqual(expected)
    await agree(model, real)
  }
  toString = () =>
    this.failed ?
      `fail(${this.retryAfterSeconds === undefined ? "" : `retry-after ${this.retryAfterSeconds}s`})` :
      "succeed"
}

class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly millis: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    await real.run(TestClock.adjust(Duration.millis(this.millis)))
    model.now += this.millis
    await agree(model, real)
  }
  toString = () => `advance(${this.millis})`
}

/** `isolate` or `reset` by hand. */
class Manual implements fc.AsyncCommand<Model, Real> {
  constructor(readonly action: "isolate" | "reset") {}
  check = () => true
  async run(model: Model, real: Real) {
    await real.run(real.breaker[this.action])
    model[this.action]()
    await agree(model, real)
  }
  toString = () => this.action
}

const ModelConfigArb: fc.Arbitrary<ModelConfig> = fc.record({
  failureThreshold: fc.integer({ min: 1, max: 4 }),
  halfOpenProbes: fc.integer({ min: 1, max: 3 }),
  openMillis: fc.integer({ min: 1, max: 3000 }),
  extraOpenMillis: fc.integer({ min: 0, max: 4000 }),
  rate: fc.option(
    fc.record({
      threshold: fc.constantFrom(0.25, 0.5, 0.75, 1),
      size: fc.integer({ min: 1, max: 6 }),
      minimumShare: fc.double({ min: 0, max: 1, noNaN: true })
    }),
    { nil: undefined }
  )
}).map(({ extraOpenMillis, rate, ...config }) => ({
  ...config,
  maxOpenMillis: config.openMillis + extraOpenMillis,
  rate: rate === undefined
    ? undefined
    : {
      threshold: rate.threshold,
      size: rate.size,
      minimumCalls: Math.max(1, Math.round(rate.minimumShare * rate.size))
    }
}))

const CommandsArb = fc.commands([
  fc.constant(new Call(false)),
  fc.constant(new Call(true)),
  fc.integer({ min: 0, max: 5 }).map((seconds) => new Call(true, seconds)),
  fc.integer({ min: 0, max: 4000 }).map((millis) => new Advance(millis)),
  fc.constant(new Manual("isolate")),
  fc.constant(new Manual("reset"))
], { maxCommands: 60 })

describe("CircuitBreaker state machine", () => {
  it.effect.prop(
    "agrees with a reference model under TestClock (state, admission, remaining open time)",
    [ModelConfigArb, CommandsArb],
    ([config, commands]) =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.makeBreaker("model", {
          failureThreshold: config.failureThreshold,
          halfOpenProbes: config.halfOpenProbes,
          openDuration: Duration.millis(config.openMillis),
          maxOpenDuration: Duration.millis(config.maxOpenMillis),
          failureRate: config.rate === undefined ? undefined : {
            threshold: config.rate.threshold,
            minimumCalls: config.rate.minimumCalls,
            window: { calls: config.rate.size }
          }
        })
        const runtime = yield* Effect.runtime<never>()
        const model = new Model(config)
        model.now = yield* Clock.currentTimeMillis
        const real: Real = { breaker, run: (effect) => Runtime.runPromise(runtime, effect) }
        yield* Effect.promise(() => fc.asyncModelRun(() => ({ model, real }), commands))
      }),
    { fastCheck: { numRuns: 150 } }
  )
})

// ---------------------------------------------------------------------------------------------

/** A breaker that one failure opened for 1 s, 1 s ago: its next call is a probe. */
const halfOpen = (key: string, halfOpenProbes: number) =>
  Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.makeBreaker(key, {
      failureThreshold: 1,
      halfOpenProbes,
      openDuration: "1 second"
    })
    yield* Effect.exit(breaker.protect(fail))
    yield* TestClock.adjust("1 second")
    return breaker
  })

describe("CircuitBreaker under concurrency", () => {
  it.effect("1000 fibers hitting a HalfOpen breaker admit exactly halfOpenProbes probes", () =>
    Effect.gen(function*() {
      const breaker = yield* halfOpen("burst", 3)
      expect((yield* breaker.snapshot).state).toBe("HalfOpen")

      const gate = yield* Deferred.make<void>()
      const admitted = yield* Ref.make(0)
      const rejected = yield* Ref.make(0)
      const probe = breaker.protect(Effect.zipRight(Ref.update(admitted, (n) => n + 1), Deferred.await(gate))).pipe(
        Effect.tapError(() => Ref.update(rejected, (n) => n + 1)),
        Effect.either
      )
      const all = yield* Effect.fork(Effect.all(Arr.replicate(probe, 1000), { concurrency: "unbounded" }))
      // Every fiber has either been admitted (and waits on the gate) or been turned away.
      while ((yield* Ref.get(admitted)) + (yield* Ref.get(rejected)) < 1000) yield* Effect.yieldNow()

      expect(yield* Ref.get(admitted)).toBe(3)
      expect((yield* breaker.snapshot).probesAdmitted).toBe(3)
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.join(all)
      const failures = results.filter(Either.isLeft).map((either) => either.left)
      expect(failures).toHaveLength(997)
      expect(failures.every((error) => error instanceof CircuitBreaker.CircuitOpen && error.remainingMillis === 0))
        .toBe(true)
      // The three probes succeeded: closed again.
      expect((yield* breaker.snapshot).state).toBe("Closed")
    }))

  it.effect("an interrupted probe gives its place back", () =>
    Effect.gen(function*() {
      const breaker = yield* halfOpen("interrupted", 1)
      const started = yield* Deferred.make<void>()
      const probe = yield* Effect.fork(
        breaker.protect(Effect.zipRight(Deferred.succeed(started, undefined), Effect.never))
      )
      yield* Deferred.await(started)
      expect((yield* breaker.snapshot).probesAdmitted).toBe(1)
      expect(outcome(yield* Effect.exit(breaker.protect(succeed))).admitted).toBe(false)

      yield* Fiber.interrupt(probe)
      const snapshot = yield* breaker.snapshot
      expect(snapshot).toMatchObject({ state: "HalfOpen", probesAdmitted: 0 })
      // The place is free again, and the probe that takes it closes the breaker.
      expect(yield* breaker.protect(succeed)).toBe("ok")
      expect((yield* breaker.snapshot).state).toBe("Closed")
    }))

  it.effect("a call admitted before the breaker opened cannot change the state it finds when it ends", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("stale", { failureThreshold: 1, openDuration: "1 second" })
      const release = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const slow = yield* Effect.fork(
        breaker.protect(Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(release)))
      )
      yield* Deferred.await(started)
      yield* breaker.isolate
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(slow)
      // The success of a call from the Closed days does not close an isolated breaker.
      expect((yield* breaker.snapshot).remainingOpenMillis).toBeNull()
    }))
})

// ---------------------------------------------------------------------------------------------

describe("CircuitBreaker trips", () => {
  it.effect("on consecutive failures (default 5), a success in between starting over", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("consecutive")
      for (let i = 0; i < 4; i++) yield* Effect.exit(breaker.protect(fail))
      yield* breaker.protect(succeed)
      for (let i = 0; i < 4; i++) yield* Effect.exit(breaker.protect(fail))
      expect(yield* breaker.snapshot).toMatchObject({ state: "Closed", consecutiveFailures: 4 })
      yield* Effect.exit(breaker.protect(fail))
      // Open for the default 60 seconds.
      expect(yield* breaker.snapshot).toMatchObject({ state: "Open", remainingOpenMillis: 60_000 })
    }))

  it.effect("on a failure rate over a count window, once minimumCalls are in", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("count-window", {
        failureThreshold: 100,
        failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 4 } }
      })
      const state = Effect.map(breaker.snapshot, (s) => s.state)
      yield* Effect.exit(breaker.protect(fail))
      yield* breaker.protect(succeed)
      yield* Effect.exit(breaker.protect(fail))
      // 2 of 3 failed, but fewer calls than minimumCalls: no verdict yet.
      expect(yield* state).toBe("Closed")
      yield* breaker.protect(succeed)
      // 2 of 4: a success never trips.
      expect(yield* state).toBe("Closed")
      yield* Effect.exit(breaker.protect(fail))
      // The window holds the last 4 (S F S F): half failed.
      expect(yield* state).toBe("Open")

      const sliding = yield* CircuitBreaker.makeBreaker("count-window-slides", {
        failureThreshold: 100,
        failureRate: { threshold: 0.5, minimumCalls: 4, window: { calls: 4 } }
      })
      for (const call of [fail, fail, succeed, succeed, succeed, succeed, fail]) {
        yield* Effect.exit(sliding.protect(call))
      }
      // The first two failures slid out of the window: 1 of 4.
      expect(yield* sliding.snapshot).toMatchObject({ state: "Closed", windowCalls: 4, windowFailures: 1 })
    }))

  it.effect("a count window smaller than the default minimumCalls still trips", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("small-window", {
        failureThreshold: 100,
        failureRate: { threshold: 0.5, window: { calls: 4 } }
      })
      for (let i = 0; i < 4; i++) yield* Effect.exit(breaker.protect(fail))
      expect((yield* breaker.snapshot).state).toBe("Open")
    }))

  it.effect("on a failure rate over a time window: old calls fall out of it", () =>
    Effect.gen(function*() {
      const options: CircuitBreaker.Options = {
        failureThreshold: 100,
        failureRate: { threshold: 0.6, minimumCalls: 3, window: { duration: "10 seconds" } }
      }
      const calls = [fail, fail, succeed, succeed, fail]
      const quick = yield* CircuitBreaker.makeBreaker("time-window-quick", options)
      for (const call of calls) yield* Effect.exit(quick.protect(call))
      // 3 of 5 within 10 s.
      expect((yield* quick.snapshot).state).toBe("Open")

      const spread = yield* CircuitBreaker.makeBreaker("time-window-spread", options)
      for (const call of calls.slice(0, 2)) yield* Effect.exit(spread.protect(call))
      yield* TestClock.adjust("10 seconds")
      for (const call of calls.slice(2)) yield* Effect.exit(spread.protect(call))
      // The first two failures are 10 s old: out of the window, 1 of 3.
      expect(yield* spread.snapshot).toMatchObject({ state: "Closed", windowCalls: 3, windowFailures: 1 })
    }))

  it.effect("slow calls count as failures", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("slow", { failureThreshold: 2, slowCall: "100 millis" })
      const taking = (millis: number) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.fork(breaker.protect(Effect.as(Effect.sleep(Duration.millis(millis)), "done")))
          yield* TestClock.adjust(Duration.millis(millis))
          return yield* Fiber.join(fiber)
        })
      expect(yield* taking(150)).toBe("done")
      expect((yield* breaker.snapshot).consecutiveFailures).toBe(1)
      yield* taking(100)
      expect((yield* breaker.snapshot).consecutiveFailures).toBe(0)
      yield* taking(150)
      yield* taking(101)
      expect((yield* breaker.snapshot).state).toBe("Open")
    }))
})

describe("CircuitBreaker open time", () => {
  it.effect("a 503 or 429 with Retry-After opens it for exactly that long, capped by maxOpenDuration", () =>
    Effect.gen(function*() {
      const make = (key: string) =>
        CircuitBreaker.makeBreaker(key, {
          failureThreshold: 1,
          openDuration: "60 seconds",
          maxOpenDuration: "5 minutes"
        })

      const unavailable = yield* make("retry-after-503")
      yield* Effect.exit(unavailable.protect(Effect.fail(statusError(503, { "retry-after": "7" }))))
      expect((yield* unavailable.snapshot).remainingOpenMillis).toBe(7000)
      yield* TestClock.adjust("6999 millis")
      expect(outcome(yield* Effect.exit(unavailable.protect(succeed)))).toEqual({ admitted: false, remaining: 1 })
      yield* TestClock.adjust("1 millis")
      expect(outcome(yield* Effect.exit(unavailable.protect(succeed))).admitted).toBe(true)

      const throttled = yield* make("retry-after-429")
      yield* Effect.exit(throttled.protect(Effect.fail(statusError(429, { "retry-after": "600" }))))
      expect((yield* throttled.snapshot).remainingOpenMillis).toBe(300_000)

      const dated = yield* make("retry-after-date")
      const date = new Date(Date.now() + 20_000).toUTCString()
      yield* Effect.exit(dated.protect(Effect.fail(statusError(503, { "retry-after": date }))))
      const remaining = (yield* dated.snapshot).remainingOpenMillis ?? 0
      expect(remaining).toBeGreaterThan(18_000)
      expect(remaining).toBeLessThanOrEqual(20_000)

      // Only a 429 or 503 speaks for the server's load; a 500's Retry-After is not the breaker's business.
      const broken = yield* make("retry-after-500")
      yield* Effect.exit(broken.protect(Effect.fail(statusError(500, { "retry-after": "7" }))))
      expect((yield* broken.snapshot).remainingOpenMillis).toBe(60_000)
    }))

  it.effect("HalfOpen: every probe must succeed to close; one failure re-opens", () =>
    Effect.gen(function*() {
      const breaker = yield* halfOpen("probes", 2)
      yield* breaker.protect(succeed)
      expect(yield* breaker.snapshot).toMatchObject({ state: "HalfOpen", probeSuccesses: 1 })
      yield* Effect.exit(breaker.protect(fail))
      expect(yield* breaker.snapshot).toMatchObject({ state: "Open", remainingOpenMillis: 1000 })
      yield* TestClock.adjust("1 second")
      yield* breaker.protect(succeed)
      yield* breaker.protect(succeed)
      expect((yield* breaker.snapshot).state).toBe("Closed")
    }))
})

describe("CircuitBreaker verdicts", () => {
  const transport = new HttpError.TransportError({ reason: "reset", method: "GET", url: "/x" })
  const timeout = new HttpError.TimeoutError({ phase: "read", method: "GET", url: "/x", timeoutMillis: 10 })
  const decode = new HttpError.DecodeError({ method: "GET", url: "/x", status: 200, reason: "bad" })

  it("the default verdict: transport, timeout, 5xx and 429 fail; other 4xx and undecodable bodies do not", () => {
    const tags = (errors: ReadonlyArray<unknown>) => errors.map((error) => CircuitBreaker.defaultVerdict(error)._tag)
    expect(tags([statusError(500), statusError(502), statusError(503), statusError(429), transport, timeout]))
      .toEqual(Arr.replicate("Failure", 6))
    expect(tags([statusError(404), statusError(400), statusError(409), decode])).toEqual(Arr.replicate("Success", 4))
    expect(CircuitBreaker.defaultVerdict(new Error("not an HttpError"))._tag).toBe("Failure")
    expect(CircuitBreaker.defaultVerdict(statusError(429, { "retry-after": "3" })))
      .toEqual({ _tag: "Failure", retryAfterMillis: 3000 })
  })

  it.effect("a 404 is a success of the breaker; a 500, a 429, a transport error or a timeout trips it", () =>
    Effect.gen(function*() {
      const errors = [statusError(500), statusError(429), transport, timeout]
      for (const [i, error] of errors.entries()) {
        const breaker = yield* CircuitBreaker.makeBreaker(`trip-${i}`, { failureThreshold: 1 })
        yield* Effect.exit(breaker.protect(Effect.fail(error)))
        expect((yield* breaker.snapshot).state).toBe("Open")
      }
      const notFound = yield* CircuitBreaker.makeBreaker("not-found", { failureThreshold: 1 })
      const error = yield* Effect.flip(notFound.protect(Effect.fail(statusError(404))))
      // The caller still sees the 404; the breaker stays closed.
      expect(error).toMatchObject({ _tag: "StatusError", status: 404 })
      expect((yield* notFound.snapshot).state).toBe("Closed")
    }))

  it.effect("a custom verdict and protectWith judge responses that are values", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("custom", {
        failureThreshold: 1,
        verdict: (error) =>
          error instanceof HttpError.StatusError && error.status === 404
            ? { _tag: "Failure", retryAfterMillis: undefined }
            : { _tag: "Success" }
      })
      yield* Effect.exit(breaker.protect(Effect.fail(serverError)))
      expect((yield* breaker.snapshot).state).toBe("Closed")
      yield* Effect.exit(breaker.protect(Effect.fail(statusError(404))))
      expect((yield* breaker.snapshot).state).toBe("Open")

      const byValue = yield* CircuitBreaker.makeBreaker("by-value", { failureThreshold: 1 })
      const response = { status: 503, headers: { "retry-after": "2" } }
      const judged = yield* byValue.protectWith(
        Effect.succeed(response),
        (exit) =>
          Exit.isSuccess(exit)
            ? CircuitBreaker.verdictOfResponse(exit.value.status, exit.value.headers, 0)
            : { _tag: "Failure", retryAfterMillis: undefined }
      )
      expect(judged).toBe(response)
      expect(yield* byValue.snapshot).toMatchObject({ state: "Open", remainingOpenMillis: 2000 })
    }))
})

describe("CircuitBreaker registry, events and metrics", () => {
  it.effect("one breaker per key; changes publishes every transition in order", () =>
    Effect.gen(function*() {
      const registry = yield* CircuitBreaker.make({
        failureThreshold: 1,
        openDuration: "1 second",
        halfOpenProbes: 1
      })
      const api = yield* registry.get("api.example.com")
      expect(yield* registry.get("api.example.com")).toBe(api)
      const other = yield* registry.get("other.example.com")

      const collected = yield* Effect.fork(Stream.runCollect(Stream.take(registry.changes, 5)))
      // Let the collector subscribe before anything happens.
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()

      yield* Effect.exit(api.protect(fail))
      yield* TestClock.adjust("1 second")
      yield* api.protect(succeed)
      yield* other.isolate
      yield* other.reset
      const transitions = Chunk.toArray(yield* Fiber.join(collected))
      expect(transitions.map(({ from, key, to }) => [key, from, to])).toEqual([
        ["api.example.com", "Closed", "Open"],
        ["api.example.com", "Open", "HalfOpen"],
        ["api.example.com", "HalfOpen", "Closed"],
        ["other.example.com", "Closed", "Open"],
        ["other.example.com", "Open", "Closed"]
      ])
      expect(transitions.map((t) => t.atMillis)).toEqual([0, 1000, 1000, 1000, 1000])
      const generations = transitions.filter((t) => t.key === "api.example.com").map((t) => t.generation)
      expect(generations).toEqual([...generations].sort((a, b) => a - b))

      const snapshots = yield* registry.snapshots
      expect(snapshots.map((s) => [s.key, s.state])).toEqual([
        ["api.example.com", "Closed"],
        ["other.example.com", "Closed"]
      ])
    }))

  it.effect("per-key options; a perKey mistake is a defect at get", () =>
    Effect.gen(function*() {
      const registry = yield* CircuitBreaker.make(
        { failureThreshold: 5 },
        (key) => key === "fragile" ? { failureThreshold: 1 } : key === "broken" ? { failureThreshold: 0 } : undefined
      )
      const fragile = yield* registry.get("fragile")
      yield* Effect.exit(fragile.protect(fail))
      expect((yield* fragile.snapshot).state).toBe("Open")
      const sturdy = yield* registry.get("sturdy")
      yield* Effect.exit(sturdy.protect(fail))
      expect((yield* sturdy.snapshot).state).toBe("Closed")
      const exit = yield* Effect.exit(registry.get("broken"))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Die").toBe(true)
    }))

  it.effect("transitions are counted as metrics", () =>
    Effect.gen(function*() {
      const key = `metrics-${Math.random()}`
      /** The counter named `name` with (at least) these tags, 0 before its first increment. */
      const count = (name: string, tags: Record<string, string>) =>
        Effect.map(Metric.snapshot, (pairs) =>
          pairs.filter(({ metricKey }) =>
            metricKey.name === name &&
            Object.entries(tags).every(([k, v]) => metricKey.tags.some((tag) => tag.key === k && tag.value === v))
          ).reduce(
            (sum, { metricState }) => sum + (MetricState.isCounterState(metricState) ? Number(metricState.count) : 0),
            0
          ))
      const transitions = (to: string) => count("liaison_circuit_breaker_transitions_total", { key, to })
      const breaker = yield* CircuitBreaker.makeBreaker(key, { failureThreshold: 1, openDuration: "1 second" })
      yield* Effect.exit(breaker.protect(fail))
      for (let i = 0; i < 3; i++) yield* Effect.exit(breaker.protect(succeed))
      yield* TestClock.adjust("1 second")
      yield* Effect.exit(breaker.protect(fail))
      expect(yield* transitions("open")).toBe(2)
      expect(yield* transitions("half_open")).toBe(1)
      expect(yield* transitions("closed")).toBe(0)
    }))
})

describe("CircuitBreaker fallbacks and manual control", () => {
  it.effect("orElse answers for an open breaker, and only for it", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("fallback", { failureThreshold: 1 })
      const guarded = breaker.protect(fail).pipe(
        CircuitBreaker.orElse((open) => Effect.succeed(`fallback ${open.key}`))
      )
      // Closed: the failure itself comes through.
      expect(yield* Effect.flip(guarded)).toBe(serverError)
      // Open: the fallback answers.
      expect(yield* guarded).toBe("fallback fallback")
      expect(yield* CircuitBreaker.orElse(CircuitBreaker.protect(succeed, breaker), () => Effect.succeed("data-first")))
        .toBe("data-first")
    }))

  it.effect("lastGood serves the last success, marked stale, while open", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("last-good", { failureThreshold: 1 })
      const upstream = yield* Ref.make<Effect.Effect<string, HttpError.StatusError>>(Effect.succeed("v1"))
      const call = yield* CircuitBreaker.lastGood(breaker.protect(Effect.flatten(Ref.get(upstream))))

      const nothingYet = yield* CircuitBreaker.makeBreaker("last-good-empty", { failureThreshold: 1 })
      yield* breaker.isolate
      yield* nothingYet.isolate
      const empty = yield* CircuitBreaker.lastGood(nothingYet.protect(succeed))
      expect(yield* Effect.flip(empty)).toBeInstanceOf(CircuitBreaker.CircuitOpen)
      expect(yield* Effect.flip(call)).toBeInstanceOf(CircuitBreaker.CircuitOpen)
      yield* breaker.reset

      expect(yield* call).toEqual({ value: "v1", stale: false })
      yield* Ref.set(upstream, Effect.fail(serverError))
      expect(yield* Effect.flip(call)).toBe(serverError)
      expect(yield* call).toEqual({ value: "v1", stale: true })
    }))

  it.effect("isolate holds it open until reset; reset closes and forgets", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("manual", { failureThreshold: 2 })
      yield* Effect.exit(breaker.protect(fail))
      yield* breaker.isolate
      yield* TestClock.adjust("1 day")
      const rejection = yield* Effect.flip(breaker.protect(succeed))
      expect(rejection).toBeInstanceOf(CircuitBreaker.CircuitOpen)
      expect(rejection.message).toContain("isolated")
      expect(yield* breaker.snapshot).toMatchObject({ state: "Open", remainingOpenMillis: null })
      yield* breaker.reset
      expect(yield* breaker.snapshot).toMatchObject({ state: "Closed", consecutiveFailures: 0 })
      yield* Effect.exit(breaker.protect(fail))
      expect((yield* breaker.snapshot).state).toBe("Closed")
    }))
})

describe("CircuitBreaker options", () => {
  const invalid: ReadonlyArray<readonly [CircuitBreaker.Options, string]> = [
    [{ failureThreshold: 0 }, "failureThreshold"],
    [{ failureThreshold: 1.5 }, "failureThreshold"],
    [{ halfOpenProbes: 0 }, "halfOpenProbes"],
    [{ openDuration: 0 }, "openDuration"],
    [{ openDuration: "2 minutes", maxOpenDuration: "1 minute" }, "maxOpenDuration"],
    [{ failureRate: { threshold: 0, window: { calls: 10 } } }, "failureRate.threshold"],
    [{ failureRate: { threshold: 1.5, window: { calls: 10 } } }, "failureRate.threshold"],
    [{ failureRate: { threshold: 0.5, window: { calls: 0 } } }, "failureRate.window"],
    [{ failureRate: { threshold: 0.5, window: { duration: 0 } } }, "failureRate.window"],
    [{ failureRate: { threshold: 0.5, minimumCalls: 0, window: { calls: 10 } } }, "failureRate.minimumCalls"],
    [{ failureRate: { threshold: 0.5, minimumCalls: 11, window: { calls: 10 } } }, "failureRate.minimumCalls"]
  ]

  it.effect("contradictory or out-of-range options are InvalidOptions naming the option", () =>
    Effect.gen(function*() {
      for (const [options, option] of invalid) {
        const error = yield* Effect.flip(CircuitBreaker.makeBreaker("invalid", options))
        expect(error).toBeInstanceOf(LiaisonError.InvalidOptions)
        expect(error.option).toBe(option)
        expect(error.message).toContain(option)
      }
      const layerError = yield* Effect.flip(
        Effect.provide(CircuitBreaker.CircuitBreaker, CircuitBreaker.layer(invalid[0]![0]))
      )
      expect(layerError._tag).toBe("InvalidOptions")
    }))
})

describe("CircuitOpen.openedBy: the failure that opened the breaker", () => {
  const rejection = (breaker: CircuitBreaker.Breaker) => Effect.flip(breaker.protect(succeed))

  it.effect("an HttpError's tag and message (URL already redacted), shown in the message", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("api.example.com", { failureThreshold: 2 })
      const first = HttpError.transportError({ method: "GET", url: "https://api.example.com/a?key=1" }, "refused")
      const last = HttpError.statusError({ method: "POST", url: "https://user:pw@api.example.com/x?token=s3cret" }, {
        status: 503,
        headers: {},
        body: ""
      })
      yield* Effect.exit(breaker.protect(Effect.fail(first)))
      yield* Effect.exit(breaker.protect(Effect.fail(last)))
      const open = yield* rejection(breaker)
      expect(open).toBeInstanceOf(CircuitBreaker.CircuitOpen)
      expect(open.openedBy).toEqual({ _tag: "StatusError", message: "POST https://api.example.com/x answered 503" })
      expect(open.message).toBe(
        "circuit breaker for api.example.com is open (after: POST https://api.example.com/x answered 503); " +
          "next probe in 60000 ms"
      )
      expect(open.message).not.toMatch(/s3cret|pw/)
      // The same summary on every rejection (stored once, when the breaker opened).
      expect((yield* rejection(breaker)).openedBy).toBe(open.openedBy)
    }))

  it.effect("an error that is not an HttpError: its tag only, never its message", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("k", { failureThreshold: 1 })
      yield* Effect.exit(breaker.protect(Effect.fail({ _tag: "DbError", message: "password=hunter2" })))
      const open = yield* rejection(breaker)
      expect(open.openedBy).toEqual({ _tag: "DbError", message: "a DbError failure" })
      expect(open.message).not.toContain("hunter2")
    }))

  it.effect("a slow call, and a failed probe re-opening the breaker, each say so", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("k", {
        failureThreshold: 1,
        slowCall: "1 second",
        openDuration: "10 seconds",
        halfOpenProbes: 1
      })
      const slow = yield* Effect.fork(breaker.protect(Effect.sleep("2 seconds")))
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(slow)
      expect((yield* rejection(breaker)).openedBy?._tag).toBe("SlowCall")
      yield* TestClock.adjust("10 seconds")
      yield* Effect.exit(breaker.protect(fail)) // the probe fails: Open again
      expect((yield* rejection(breaker)).openedBy).toEqual({ _tag: "StatusError", message: "GET /model answered 500" })
    }))

  it.effect("none when isolated by hand; cleared when the breaker closes", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.makeBreaker("k", { failureThreshold: 1 })
      yield* Effect.exit(breaker.protect(fail))
      expect((yield* rejection(breaker)).openedBy).toBeDefined()
      yield* breaker.reset
      yield* breaker.isolate
      const isolated = yield* rejection(breaker)
      expect(isolated.openedBy).toBeUndefined()
      expect(isolated.message).toBe("circuit breaker for k is isolated until reset")
      expect(Object.keys(isolated)).not.toContain("openedBy")
    }))

  it("the field survives the HttpError Schema (a wire round trip)", () => {
    const open = new CircuitBreaker.CircuitOpen({
      key: "k",
      remainingMillis: 5,
      openedBy: { _tag: "TimeoutError", message: "GET https://x/y timed out in the attempt phase after 10 ms" }
    })
    const encoded = Schema.encodeSync(HttpError.HttpError)(open)
    const decoded = Schema.decodeUnknownSync(HttpError.HttpError)(JSON.parse(JSON.stringify(encoded)))
    expect(decoded).toEqual(open)
    expect(decoded.message).toContain("(after: GET https://x/y timed out")
  })
})
