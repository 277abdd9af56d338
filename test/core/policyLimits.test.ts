/**
 * Limits count attempts: every attempt that reaches the upstream, a retry too, takes a permit
 * from the host's limiter; an open breaker refuses before the limiter (no permit spent); a
 * limiter's wait is not part of what the breaker times. Real local upstreams, the `TestClock`.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import { CircuitBreaker, Http, Policy, RateLimit } from "@liaison/core"
import { Clock, Effect, Fiber, Layer, TestClock } from "effect"
import { drive, realPause, scriptedUpstream } from "./policySupport.js"

const policy = (baseUrl: string, options: Policy.Options, breakers: CircuitBreaker.Options = {}) =>
  Policy.layer(options).pipe(
    Layer.provide(Http.layer({ baseUrl })),
    Layer.provideMerge(Layer.mergeAll(CircuitBreaker.layer(breakers), RateLimit.layerMemory()))
  )

const get = (path: string) => Effect.either(Http.text(HttpClientRequest.get(path)))

/** Lets real time pass until the upstream's count stops moving. */
const settle = (count: () => number) =>
  Effect.gen(function*() {
    let last = -1
    while (last !== count()) {
      last = count()
      yield* realPause(150)
    }
    return last
  })

describe("Policy: limits count attempts", () => {
  it.scoped("a failing upstream behind a limit of N per second sees at most N attempts per second, retries included", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const limit = 4
      const layer = policy(upstream.url, {
        rateLimit: { rule: RateLimit.slidingWindow({ limit, window: "1 second" }), mode: "wait" },
        // Retries come quickly and would all fit in the same second without the limiter.
        retry: { base: "1 millis", jitter: false, maxAttempts: 3, budget: false },
        totalTimeout: "1 minute"
      }, { failureThreshold: 1000 })
      const calls = yield* Effect.fork(
        Effect.all(Array.from({ length: 6 }, () => get("/down?steps=503")), { concurrency: "unbounded" }).pipe(
          Effect.provide(layer)
        )
      )
      // The calls start on the wire (the layer is built, connections open) before the clock moves.
      while (upstream.requests() === 0) yield* realPause(20)
      const seen: Array<number> = []
      // 6 calls × 3 attempts = 18 attempts: at 4 a second, five windows.
      for (let second = 0; second < 6; second++) {
        seen.push(yield* settle(() => upstream.requests()))
        yield* TestClock.adjust("1 second")
      }
      yield* settle(() => upstream.requests())
      const results = yield* Fiber.join(calls)
      expect(results.every((result) => result._tag === "Left")).toBe(true)
      expect(upstream.requests()).toBe(18)
      const perWindow = seen.map((total, i) => total - (seen[i - 1] ?? 0))
      expect(perWindow).toEqual([4, 4, 4, 4, 2, 0])
    }))

  it.scoped("an open breaker refuses an attempt before the limiter: no permit is spent", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      yield* Effect.gen(function*() {
        // One failure opens the breaker (threshold 1): the 503 took one permit of three.
        const first = yield* get("/down?steps=503")
        expect(first._tag === "Left" && first.left).toMatchObject({ _tag: "StatusError", status: 503 })
        for (let i = 0; i < 5; i++) {
          const refused = yield* get("/down")
          expect(refused._tag === "Left" && refused.left._tag).toBe("CircuitOpen")
        }
        const limiter = yield* RateLimit.RateLimit
        const [snapshot] = yield* limiter.snapshots
        expect(snapshot?.remaining).toBe(2)
        expect(upstream.requests()).toBe(1)
      }).pipe(Effect.provide(policy(upstream.url, {
        rateLimit: { rule: RateLimit.slidingWindow({ limit: 3, window: "1 minute" }), mode: "fail" },
        retry: false
      }, { failureThreshold: 1 })))
    }))

  it.scoped("a wait for a permit is not a slow call: the breaker stays closed", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      yield* Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        // One permit a second: the second call waits a (virtual) second, its attempt is quick.
        const both = yield* Effect.fork(Effect.all([get("/a"), get("/b")], { concurrency: "unbounded" }))
        const results = yield* drive(both)
        expect(results.map((result) => result._tag)).toEqual(["Right", "Right"])
        expect((yield* Clock.currentTimeMillis) - start).toBeGreaterThanOrEqual(1000)
        const registry = yield* CircuitBreaker.CircuitBreaker
        const [snapshot] = yield* registry.snapshots
        expect(snapshot).toMatchObject({ state: "Closed", consecutiveFailures: 0 })
      }).pipe(Effect.provide(policy(upstream.url, {
        rateLimit: { rule: RateLimit.tokenBucket({ limit: 1, interval: "1 second" }), mode: "wait" },
        retry: false
      }, { failureThreshold: 1, slowCall: "100 millis" })))
    }))
})
