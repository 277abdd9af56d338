/**
 * What a policy shows of its calls: the `liaison.call` / `liaison.attempt` span tree (a
 * recording tracer, delays under the `TestClock`), no secret or query string in any attribute
 * (a property over generated secrets), and the exact `liaison_http_client_*` metric values after
 * a scripted sequence against a real local upstream.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import { CircuitBreaker, Http, Policy, RateLimit } from "@liaison/core"
import { Effect, Layer, Metric, MetricState, Redacted, Tracer } from "effect"
import * as fc from "effect/FastCheck"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import { drive, scriptedUpstream } from "./policySupport.js"

/** The recording tracer, plus each span's parent (by span id: the fixture numbers them 1, 2, …). */
const tracerWithParents = () => {
  const recording = recordingTracer()
  const parents = new Map<string, string | undefined>()
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const span = recording.tracer.span(name, parent, context, links, startTime, kind, options)
      parents.set(span.spanId, parent._tag === "Some" ? parent.value.spanId : undefined)
      return span
    },
    context: recording.tracer.context
  })
  const idOf = (index: number) => String(index + 1)
  return { ...recording, tracer, parentOf: (index: number) => parents.get(idOf(index)), idOf }
}

const policy = (baseUrl: string, options: Policy.Options, headers?: Http.Options["headers"]) =>
  Policy.layer(options).pipe(
    Layer.provide(Http.layer({ baseUrl, headers })),
    Layer.provide(Layer.mergeAll(CircuitBreaker.layer(), RateLimit.layerMemory()))
  )

describe("Policy spans", () => {
  it.scoped("a call that fails twice then succeeds: one call span, three attempt children with their delays", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const { attributesOf, idOf, parentOf, spans, tracer } = (() => {
        const t = tracerWithParents()
        return { ...t, attributesOf: (i: number) => Object.fromEntries(t.spans[i]!.attributes) }
      })()
      const fiber = yield* Effect.fork(
        Http.text(HttpClientRequest.get("/flaky?steps=503,502,200")).pipe(
          // After the call, the caller's span is current again.
          Effect.zipRight(Effect.map(Effect.currentSpan, (span) => span.name)),
          Effect.withSpan("caller"),
          Effect.provide(policy(upstream.url, { retry: { base: "100 millis", factor: 2, jitter: false } })),
          Effect.withTracer(tracer)
        )
      )
      expect(yield* drive(fiber)).toBe("caller")
      expect(upstream.requests("/flaky")).toBe(3)

      const calls = spans.flatMap((span, i) => span.name === "liaison.call" ? [i] : [])
      expect(calls).toHaveLength(1)
      const call = calls[0]!
      const attempts = spans.flatMap((span, i) => span.name === "liaison.attempt" ? [i] : [])
      expect(attempts).toHaveLength(3)
      expect(attempts.map(parentOf)).toEqual([idOf(call), idOf(call), idOf(call)])
      // Each attempt span is its request's HTTP client span: OpenTelemetry's attributes, URL redacted.
      const port = Number(new URL(upstream.url).port)
      const request = (status: number) => ({
        "http.request.method": "GET",
        "url.full": `http://127.0.0.1:${port}/flaky`,
        "url.path": "/flaky",
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": status
      })
      expect(attempts.map((i) => attributesOf(i))).toEqual([
        { "liaison.attempt": 1, "liaison.delay_ms": 0, "liaison.outcome": "status_error", ...request(503) },
        { "liaison.attempt": 2, "liaison.delay_ms": 100, "liaison.outcome": "status_error", ...request(502) },
        { "liaison.attempt": 3, "liaison.delay_ms": 200, "liaison.outcome": "success", ...request(200) }
      ])
      expect(attributesOf(call)).toEqual({
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
        "liaison.attempts": 3
      })
      // No separate transport span: the attempt stands for it.
      expect(spans.filter((span) => span.name.startsWith("http.client"))).toEqual([])
    }))

  it.scoped("a failed call names its error type; a Retry-After that was honoured is on the attempt", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const t = tracerWithParents()
      const fiber = yield* Effect.fork(
        Effect.either(Http.text(HttpClientRequest.get("/busy?steps=503&retryAfter=2"))).pipe(
          Effect.provide(policy(upstream.url, { retry: { base: "100 millis", maxAttempts: 2, jitter: false } })),
          Effect.withTracer(t.tracer)
        )
      )
      const result = yield* drive(fiber)
      expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "StatusError", status: 503 })
      const call = t.spans.find((span) => span.name === "liaison.call")!
      expect(call.attributes.get("error.type")).toBe("503")
      expect(call.attributes.get("http.response.status_code")).toBe(503)
      const attempts = t.spans.filter((span) => span.name === "liaison.attempt")
      expect(attempts.map((span) => span.attributes.get("liaison.retry_after_ms"))).toEqual([undefined, 2000])
      expect(attempts.map((span) => span.attributes.get("liaison.delay_ms"))).toEqual([0, 2000])
    }))
})

describe("Policy spans hold no secret", () => {
  const word = fc.stringMatching(/^[A-Za-z0-9]{12,24}$/)

  it.scopedLive("no attribute or event of any span holds the auth header, a query value or a query string", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(word, word, fc.constantFrom("200", "503,200", "503"), async (token, queryValue, steps) => {
            const t = recordingTracer()
            await Effect.runPromise(
              Effect.either(
                Http.text(HttpClientRequest.get(`/p?steps=${steps}&key=${queryValue}`))
              ).pipe(
                Effect.provide(policy(
                  upstream.url,
                  { retry: { base: "1 millis", maxAttempts: 2 } },
                  { authorization: Redacted.make(`Bearer ${token}`) }
                )),
                Effect.withTracer(t.tracer)
              )
            )
            const text = t.text()
            expect(t.spans.some((span) => span.name === "liaison.call")).toBe(true)
            expect(text).not.toContain(token)
            expect(text).not.toContain(queryValue)
            for (const span of t.spans) {
              for (const value of span.attributes.values()) expect(String(value)).not.toContain("?")
            }
          }),
          { numRuns: 25 }
        )
      )
    }))
})

/** The value of a metric's series with exactly these labels (in any order). */
const valueOf = (name: string, labels: Record<string, string>) =>
  Effect.sync(() => {
    const want = Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(",")
    const found = Metric.unsafeSnapshot().find((pair) =>
      pair.metricKey.name === name &&
      pair.metricKey.tags.map((tag) => `${tag.key}=${tag.value}`).sort().join(",") === want
    )
    return found?.metricState
  })

const counterValue = (name: string, labels: Record<string, string>) =>
  Effect.map(valueOf(name, labels), (state) => MetricState.isCounterState(state) ? Number(state.count) : 0)

describe("Policy metrics", () => {
  it.scoped("exact values after a scripted sequence: a retried call, a 404, a spent retry budget", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const host = upstream.host
      const run = (path: string, options: Policy.Options) =>
        Effect.fork(
          Effect.either(Http.text(HttpClientRequest.get(path))).pipe(Effect.provide(policy(upstream.url, options)))
        )
      const retry = { base: "100 millis", factor: 2, jitter: false } as const
      // 503, 503, 200 (0.3 s of backoff); then a 404 (not retried); then a 503 with no budget for a retry.
      yield* drive(yield* run("/a?steps=503,503,200", { retry }))
      yield* drive(yield* run("/b?steps=404", { retry }))
      yield* drive(
        yield* run("/c?steps=503", { retry: { ...retry, budget: { ratio: 0, minRetriesPerSecond: 0 } } })
      )

      const attempts = (outcome: string) =>
        counterValue("liaison_http_client_attempts_total", { host, method: "GET", outcome })
      expect(yield* attempts("success")).toBe(1)
      expect(yield* attempts("status_error")).toBe(2 + 1 + 1)
      expect(yield* attempts("timeout")).toBe(0)
      expect(yield* counterValue("liaison_http_client_retries_total", { host, method: "GET" })).toBe(2)
      expect(yield* counterValue("liaison_retry_budget_exhausted_total", { host })).toBe(1)

      const histogram = (statusClass: string) =>
        Effect.map(
          valueOf("liaison_http_client_duration_seconds", { host, method: "GET", status_class: statusClass }),
          (state) => MetricState.isHistogramState(state) ? { count: state.count, sum: state.sum } : undefined
        )
      expect(yield* histogram("2xx")).toEqual({ count: 1, sum: 0.3 })
      expect(yield* histogram("4xx")).toEqual({ count: 1, sum: 0 })
      // The budget refusal is a failure without a response of its own.
      expect(yield* histogram("error")).toEqual({ count: 1, sum: 0 })
      expect(yield* histogram("5xx")).toBeUndefined()
    }))
})
