/**
 * The resilience policy at the server: upstream calls retried, an open breaker answered with 503
 * and `Retry-After` without touching the upstream, the client-side rate limit answered with 429,
 * and `GET /resilience` showing it all.
 */
import type * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import { RateLimit } from "@liaison/core"
import { Effect, Layer } from "effect"
import type * as NodeHttp from "node:http"
import { call, serverLayer, stubUpstream } from "./support.js"

const user = {
  id: 1,
  username: "ada",
  email: "ada@example.com",
  full_name: null,
  active: true,
  created_at: "2026-01-01T00:00:00.000Z"
}

/** An upstream whose `/users/1` answers with the next status of `statuses` (the last one repeats). */
const scriptedUpstream = (statuses: ReadonlyArray<number>) => {
  let calls = 0
  const handler: NodeHttp.RequestListener = (_request, response) => {
    const status = statuses[Math.min(calls, statuses.length - 1)] ?? 200
    calls++
    response.writeHead(status, { "content-type": "application/json" })
    response.end(status === 200 ? JSON.stringify(user) : JSON.stringify({ error: "down" }))
  }
  return Effect.map(stubUpstream(handler), ({ url }) => ({ url, calls: () => calls }))
}

const fastRetry = { base: "1 millis", jitter: false, budget: false } as const

const withServer = <A, E>(
  statuses: ReadonlyArray<number>,
  resilience: NonNullable<Parameters<typeof serverLayer>[0]>["resilience"],
  test: (upstream: { readonly calls: () => number }) => Effect.Effect<A, E, HttpServer.HttpServer>
) =>
  Effect.gen(function*() {
    const upstream = yield* scriptedUpstream(statuses)
    const server = yield* Layer.build(serverLayer({ upstreamUrl: upstream.url, resilience }))
    return yield* Effect.provide(test(upstream), server)
  }).pipe(Effect.scoped)

describe("the resilience policy at the server", () => {
  it.live("retries a GET through transient 503s and answers with the user", () =>
    withServer([503, 503, 200], { policy: { retry: fastRetry } }, (upstream) =>
      Effect.gen(function*() {
        const reply = yield* call("/users/1")
        expect(reply.status).toBe(200)
        expect(reply.json).toEqual(user)
        expect(upstream.calls()).toBe(3)
      })))

  it.live("does not retry a POST", () =>
    withServer([503, 200], { policy: { retry: fastRetry } }, (upstream) =>
      Effect.gen(function*() {
        const reply = yield* call("/users", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: "ada", email: "ada@example.com", password: "correct-horse-battery" })
        })
        expect(reply.status).toBe(502)
        expect(upstream.calls()).toBe(1)
      })))

  it.live("opens the breaker: 503 with Retry-After, the upstream left alone, GET /resilience shows it", () =>
    withServer(
      [500],
      {
        policy: { retry: { ...fastRetry, maxAttempts: 1 } },
        breaker: { failureThreshold: 2, openDuration: "30 seconds" }
      },
      (upstream) =>
        Effect.gen(function*() {
          expect((yield* call("/users/1")).status).toBe(502)
          expect((yield* call("/users/1")).status).toBe(502)
          const open = yield* call("/users/1")
          expect(open.status).toBe(503)
          expect(open.json).toMatchObject({ error: "upstream_circuit_open" })
          const retryAfter = Number(open.headers.get("retry-after"))
          expect(retryAfter).toBeGreaterThan(0)
          expect(retryAfter).toBeLessThanOrEqual(30)
          expect(upstream.calls()).toBe(2)

          const status = yield* call("/resilience")
          expect(status.status).toBe(200)
          const body = status.json as {
            breakers: ReadonlyArray<{ key: string; state: string; remainingOpenMillis: number }>
          }
          expect(body.breakers).toHaveLength(1)
          expect(body.breakers[0]?.state).toBe("Open")
          expect(body.breakers[0]?.key).toMatch(/^127\.0\.0\.1:\d+$/)
          expect(body.breakers[0]?.remainingOpenMillis).toBeGreaterThan(0)
        })
    ))

  it.live("answers 429 with Retry-After when the upstream rate limit is spent", () =>
    withServer(
      [200],
      {
        policy: {
          retry: fastRetry,
          rateLimit: { rule: RateLimit.slidingWindow({ limit: 2, window: "1 minute" }), mode: "fail" }
        }
      },
      (upstream) =>
        Effect.gen(function*() {
          // Distinct users: a second read of one user would be answered by the server's cache.
          expect((yield* call("/users/1")).status).toBe(200)
          expect((yield* call("/users/2")).status).toBe(200)
          const limited = yield* call("/users/3")
          expect(limited.status).toBe(429)
          expect(limited.json).toMatchObject({ error: "rate_limited" })
          expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0)
          expect(upstream.calls()).toBe(2)
          const status = yield* call("/resilience")
          const body = status.json as {
            limiters: ReadonlyArray<{ algorithm: string; limit: number; remaining: number }>
          }
          expect(body.limiters).toEqual([
            expect.objectContaining({ algorithm: "SlidingWindow", limit: 2, remaining: 0 })
          ])
        })
    ))

  it.live("refuses contradictory settings at startup", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Layer.build(
          serverLayer({ resilience: { policy: { attemptTimeout: "20 seconds", totalTimeout: "5 seconds" } } })
        )
      )
      expect(exit._tag).toBe("Failure")
      expect(String(exit)).toContain("attemptTimeout")
    }).pipe(Effect.scoped))
})
