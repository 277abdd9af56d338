/**
 * The limiter's telemetry: exact metric values after a scripted sequence (TestClock, memory store,
 * a failing store for the fallback), the `liaison.rate_limit` span event in a recording tracer,
 * and no person's key ever in a label or an attribute.
 */
import { describe, expect, it } from "@effect/vitest"
import { LiaisonError, RateLimit } from "@liaison/core"
import { Effect, Fiber, Layer, Logger, Metric, MetricState, TestClock } from "effect"
import { recordingTracer } from "../fixtures/recordingTracer.js"

/** Every `name` series whose labels include `labels`, as [labels, state]. */
const series = (name: string, labels: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) =>
    pairs.filter(({ metricKey }) =>
      metricKey.name === name &&
      Object.entries(labels).every(([key, value]) =>
        metricKey.tags.some((tag) => tag.key === key && tag.value === value)
      )
    ))

const counter = (name: string, labels: Record<string, string>) =>
  Effect.map(series(name, labels), (pairs) =>
    pairs.reduce(
      (sum, { metricState }) => sum + (MetricState.isCounterState(metricState) ? Number(metricState.count) : 0),
      0
    ))

const histogram = (name: string, labels: Record<string, string>) =>
  Effect.map(series(name, labels), (pairs) => {
    const state = pairs[0]?.metricState
    return state !== undefined && MetricState.isHistogramState(state)
      ? { count: state.count, sum: state.sum, max: state.max }
      : undefined
  })

const unique = (name: string) => `${name}-${Math.random().toString(36).slice(2)}`

describe("RateLimit metrics (TestClock)", () => {
  it.effect("decisions by outcome, waits in seconds, per label; a key without a label is \"custom\"", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.RateLimit
      const host = unique("api.example.com")
      const name = unique("signup")
      // 10 per second, burst 2: two at once, the third refused, then two waiters (100 ms and 200 ms).
      const bucket = RateLimit.tokenBucket({ limit: 10, interval: "1 second", burst: 2 })
      yield* limiter.acquire("host-key", bucket, "fail", host)
      yield* limiter.acquire("host-key", bucket, "fail", host)
      yield* Effect.flip(limiter.acquire("host-key", bucket, "fail", host))
      const waiters = yield* Effect.fork(
        Effect.all([
          limiter.acquire("host-key", bucket, "wait", host),
          limiter.acquire("host-key", bucket, "wait", host)
        ], {
          concurrency: "unbounded"
        })
      )
      yield* TestClock.adjust("200 millis")
      yield* Fiber.join(waiters)
      expect(yield* counter("liaison_rate_limit_decisions_total", { key: host, outcome: "admitted" })).toBe(4)
      expect(yield* counter("liaison_rate_limit_decisions_total", { key: host, outcome: "rejected" })).toBe(1)
      const waits = yield* histogram("liaison_rate_limit_wait_seconds", { key: host })
      expect(waits?.count).toBe(4)
      expect(waits?.max).toBe(0.2)
      expect(waits?.sum).toBeCloseTo(0.3, 9)
      expect(yield* counter("liaison_rate_limit_fallback_total", { key: host })).toBe(0)

      // A rule's name labels it; a key given directly with neither is "custom", never the key.
      const window = RateLimit.slidingWindow({ limit: 1, window: "1 minute", name })
      yield* limiter.acquire("user-4711", window, "fail")
      yield* Effect.flip(limiter.acquire("user-4711", window, "fail"))
      expect(yield* counter("liaison_rate_limit_decisions_total", { key: name, outcome: "admitted" })).toBe(1)
      expect(yield* counter("liaison_rate_limit_decisions_total", { key: name, outcome: "rejected" })).toBe(1)
      const before = yield* counter("liaison_rate_limit_decisions_total", { key: "custom" })
      yield* limiter.acquire("user-4712", RateLimit.slidingWindow({ limit: 1, window: "1 minute" }), "fail")
      expect(yield* counter("liaison_rate_limit_decisions_total", { key: "custom" })).toBe(before + 1)
      const labels = (yield* Metric.snapshot).flatMap(({ metricKey }) => metricKey.tags.map((tag) => tag.value))
      expect(labels.filter((value) => value.includes("user-47") || value === "host-key")).toEqual([])
    }).pipe(Effect.provide(RateLimit.layerMemory())))

  it.effect("decisions taken by the local fallback while the store fails are counted", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimit.RateLimit
      const host = unique("down.example.com")
      const rule = RateLimit.slidingWindow({ limit: 4, window: "1 minute" })
      // Shared by 2: locally 2 per minute.
      for (let i = 0; i < 3; i++) yield* Effect.either(limiter.acquire("k", rule, "fail", host))
      expect(yield* counter("liaison_rate_limit_fallback_total", { key: host })).toBe(3)
      expect(yield* counter("liaison_rate_limit_decisions_total", { key: host, outcome: "admitted" })).toBe(2)
      expect(yield* counter("liaison_rate_limit_decisions_total", { key: host, outcome: "rejected" })).toBe(1)
    }).pipe(
      Effect.provide(Layer.merge(
        RateLimit.layer().pipe(Layer.provide(Layer.succeed(RateLimit.Store, {
          take: () =>
            Effect.fail(new LiaisonError.StorageError({ store: "test", operation: "take", cause: new Error("down") })),
          remaining: () => Effect.succeed(0),
          instances: () => 2
        }))),
        Logger.remove(Logger.defaultLogger)
      ))
    ))
})

describe("RateLimit span events", () => {
  it.effect("a limiter wait and a rejection are events on the current span, labelled, never with the key", () =>
    Effect.gen(function*() {
      const { spans, text, tracer } = recordingTracer()
      const limiter = yield* RateLimit.RateLimit
      const rule = RateLimit.tokenBucket({ limit: 2, interval: "1 second", burst: 1 })
      const call = Effect.gen(function*() {
        yield* limiter.acquire("user-4711", rule, "wait", "api.example.com")
        const waited = yield* Effect.fork(limiter.acquire("user-4711", rule, "wait", "api.example.com"))
        yield* TestClock.adjust("500 millis")
        yield* Fiber.join(waited)
        yield* Effect.flip(limiter.acquire("user-4711", rule, "fail"))
      }).pipe(Effect.withSpan("liaison.call"), Effect.withTracer(tracer))
      yield* call
      const events = spans.find((span) => span.name === "liaison.call")?.events ?? []
      expect(events).toEqual([
        {
          name: "liaison.rate_limit",
          attributes: {
            "liaison.rate_limit.key": "api.example.com",
            "liaison.rate_limit.waited_ms": 0,
            "liaison.rate_limit.outcome": "admitted",
            "liaison.rate_limit.fallback": false
          }
        },
        {
          name: "liaison.rate_limit",
          attributes: {
            "liaison.rate_limit.key": "api.example.com",
            "liaison.rate_limit.waited_ms": 500,
            "liaison.rate_limit.outcome": "admitted",
            "liaison.rate_limit.fallback": false
          }
        },
        {
          name: "liaison.rate_limit",
          attributes: {
            "liaison.rate_limit.key": "custom",
            "liaison.rate_limit.waited_ms": 0,
            "liaison.rate_limit.outcome": "rejected",
            "liaison.rate_limit.fallback": false
          }
        }
      ])
      expect(text()).not.toContain("user-4711")
    }).pipe(Effect.provide(RateLimit.layerMemory())))
})
