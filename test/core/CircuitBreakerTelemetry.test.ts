/**
 * The breaker's telemetry (issue 15): `liaison_circuit_breaker_*` metrics with exact values after
 * a scripted sequence, and `liaison.circuit_breaker` span events for rejections, probes and
 * changes of state, as a recording tracer sees them.
 */
import { describe, expect, it } from "@effect/vitest"
import { CircuitBreaker, HttpError } from "@liaison/core"
import { Effect, Metric, MetricState, TestClock } from "effect"
import { recordingTracer } from "../fixtures/recordingTracer.js"

const fail = Effect.fail(
  new HttpError.StatusError({ status: 500, headers: {}, body: "", method: "GET", url: "/telemetry" })
)
const succeed = Effect.succeed("ok")

/** The value of the metric `name` with exactly these tags (`undefined` when there is no such series). */
const valueOf = (name: string, tags: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) => {
    const pair = pairs.find(({ metricKey }) =>
      metricKey.name === name &&
      metricKey.tags.length === Object.keys(tags).length &&
      Object.entries(tags).every(([k, v]) => metricKey.tags.some((tag) => tag.key === k && tag.value === v))
    )
    if (pair === undefined) return undefined
    const state = pair.metricState
    if (MetricState.isCounterState(state)) return Number(state.count)
    if (MetricState.isGaugeState(state)) return Number(state.value)
    return Number.NaN
  })

describe("CircuitBreaker metrics", () => {
  it.effect("exact values after a scripted sequence: calls, a trip, rejections, a probe, the state gauge", () =>
    Effect.gen(function*() {
      // Unique per run: the metric registry is global.
      const key = `telemetry-${Math.random()}`
      const calls = (decision: string) => valueOf("liaison_circuit_breaker_calls_total", { key, decision })
      const transitions = (to: string) => valueOf("liaison_circuit_breaker_transitions_total", { key, to })
      const gauge = Effect.all({
        closed: valueOf("liaison_circuit_breaker_state", { key, state: "closed" }),
        open: valueOf("liaison_circuit_breaker_state", { key, state: "open" }),
        half_open: valueOf("liaison_circuit_breaker_state", { key, state: "half_open" })
      })
      const breaker = yield* CircuitBreaker.makeBreaker(key, {
        failureThreshold: 2,
        openDuration: "1 second",
        halfOpenProbes: 1
      })
      expect(yield* gauge).toEqual({ closed: 1, open: 0, half_open: 0 })

      yield* breaker.protect(succeed)
      yield* Effect.exit(breaker.protect(fail))
      yield* Effect.exit(breaker.protect(fail)) // trips
      expect(yield* gauge).toEqual({ closed: 0, open: 1, half_open: 0 })
      for (let i = 0; i < 3; i++) yield* Effect.exit(breaker.protect(succeed)) // rejected
      yield* TestClock.adjust("1 second")
      yield* breaker.protect(succeed) // the probe: it closes the breaker
      yield* breaker.protect(succeed)

      expect({
        admitted: yield* calls("admitted"),
        rejected: yield* calls("rejected"),
        probe: yield* calls("probe")
      }).toEqual({ admitted: 4, rejected: 3, probe: 1 })
      expect({
        open: yield* transitions("open"),
        half_open: yield* transitions("half_open"),
        closed: yield* transitions("closed")
      }).toEqual({ open: 1, half_open: 1, closed: 1 })
      expect(yield* gauge).toEqual({ closed: 1, open: 0, half_open: 0 })
    }))

  it.effect("a HalfOpen breaker whose probe is out shows half_open, and turns the next call away", () =>
    Effect.gen(function*() {
      const key = `telemetry-halfopen-${Math.random()}`
      const breaker = yield* CircuitBreaker.makeBreaker(key, { failureThreshold: 1, openDuration: "1 second" })
      yield* Effect.exit(breaker.protect(fail))
      yield* TestClock.adjust("1 second")
      const probe = yield* Effect.fork(breaker.protect(Effect.never))
      yield* Effect.yieldNow()
      expect(yield* valueOf("liaison_circuit_breaker_state", { key, state: "half_open" })).toBe(1)
      expect(yield* valueOf("liaison_circuit_breaker_state", { key, state: "open" })).toBe(0)
      expect(yield* valueOf("liaison_circuit_breaker_calls_total", { key, decision: "probe" })).toBe(1)
      yield* Effect.fork(breaker.protect(succeed)) // the second of two probes
      yield* Effect.yieldNow()
      expect(yield* valueOf("liaison_circuit_breaker_calls_total", { key, decision: "probe" })).toBe(2)
      yield* Effect.exit(breaker.protect(succeed))
      expect(yield* valueOf("liaison_circuit_breaker_calls_total", { key, decision: "rejected" })).toBe(1)
      yield* probe.interruptAsFork(probe.id())
    }))
})

describe("CircuitBreaker span events", () => {
  it.effect("a rejection, a probe and each change of state are liaison.circuit_breaker events on the current span", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const breaker = yield* CircuitBreaker.makeBreaker("api.example.com", {
        failureThreshold: 1,
        openDuration: "1 second",
        halfOpenProbes: 1
      })
      const traced = <A, E>(name: string, effect: Effect.Effect<A, E>) =>
        Effect.exit(Effect.withSpan(effect, name).pipe(Effect.withTracer(tracer)))
      yield* traced("admitted", breaker.protect(succeed))
      yield* traced("trip", breaker.protect(fail))
      yield* traced("rejected", breaker.protect(succeed))
      yield* TestClock.adjust("1 second")
      yield* traced("probe", breaker.protect(succeed))

      const events = (name: string) =>
        (spans.find((span) => span.name === name)?.events ?? []).map((event) => ({
          name: event.name,
          ...event.attributes
        }))
      const key = "api.example.com"
      // An admitted call while Closed is not an event: the hot path stays quiet.
      expect(events("admitted")).toEqual([])
      expect(events("trip")).toEqual([{
        name: "liaison.circuit_breaker",
        "liaison.circuit_breaker.key": key,
        "liaison.circuit_breaker.state": "open",
        "liaison.circuit_breaker.previous_state": "closed"
      }])
      expect(events("rejected")).toEqual([{
        name: "liaison.circuit_breaker",
        "liaison.circuit_breaker.key": key,
        "liaison.circuit_breaker.state": "open",
        "liaison.circuit_breaker.decision": "rejected"
      }])
      expect(events("probe")).toEqual([
        {
          name: "liaison.circuit_breaker",
          "liaison.circuit_breaker.key": key,
          "liaison.circuit_breaker.state": "half_open",
          "liaison.circuit_breaker.previous_state": "open"
        },
        {
          name: "liaison.circuit_breaker",
          "liaison.circuit_breaker.key": key,
          "liaison.circuit_breaker.state": "half_open",
          "liaison.circuit_breaker.decision": "probe"
        },
        {
          name: "liaison.circuit_breaker",
          "liaison.circuit_breaker.key": key,
          "liaison.circuit_breaker.state": "closed",
          "liaison.circuit_breaker.previous_state": "half_open"
        }
      ])
    }))

  it.effect("with tracing disabled nothing is recorded", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const breaker = yield* CircuitBreaker.makeBreaker("quiet", { failureThreshold: 1 })
      yield* breaker.isolate
      yield* Effect.exit(
        Effect.withSpan(breaker.protect(succeed), "outer").pipe(
          Effect.withTracerEnabled(false),
          Effect.withTracer(tracer)
        )
      )
      expect(spans.flatMap((span) => span.events)).toEqual([])
    }))
})
