/**
 * The whole policy (rate limit → total timeout → retry → breaker → attempt timeout) over real
 * HTTP: a scripted upstream answers each call to a path with the next step of its script. Real
 * time with tiny delays; assertions are on what reached the wire, never on wall time.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import { CircuitBreaker, Http, Policy, RateLimit } from "@liaison/core"
import { ConfigProvider, Effect, Fiber, Layer } from "effect"
import type * as NodeHttp from "node:http"
import { stubUpstream } from "../server/support.js"

/**
 * An upstream whose every path plays `?steps=`: a status (with `Retry-After` from `?retryAfter=`),
 * `reset` (the connection dropped) or `stall` (no answer); past the end the last step repeats.
 */
const scriptedUpstream = Effect.gen(function*() {
  const calls = new Map<string, number>()
  const handler: NodeHttp.RequestListener = (req, res) => {
    const url = new URL(req.url ?? "/", "http://upstream")
    const call = (calls.get(url.pathname) ?? 0) + 1
    calls.set(url.pathname, call)
    const steps = (url.searchParams.get("steps") ?? "200").split(",")
    const step = steps[Math.min(call, steps.length) - 1] ?? "200"
    if (step === "reset") {
      req.socket.resetAndDestroy()
    } else if (step !== "stall") {
      const retryAfter = url.searchParams.get("retryAfter")
      res.writeHead(Number(step), {
        "content-type": "application/json",
        ...(retryAfter === null ? {} : { "retry-after": retryAfter })
      })
      res.end(JSON.stringify({ call, status: Number(step) }))
    }
  }
  const { url } = yield* stubUpstream(handler)
  return {
    url,
    /** Requests that reached a path (or all paths). */
    requests: (path?: string) =>
      path === undefined ? [...calls.values()].reduce((a, b) => a + b, 0) : calls.get(path) ?? 0
  }
})

const fastRetry = { base: "1 millis", jitter: false } as const

/** The policy over `Http` (with `baseUrl`), its breaker registry and limiter left visible to the test. */
const policyLayer = (baseUrl: string | undefined, options: Policy.Options, breakers: CircuitBreaker.Options = {}) =>
  Policy.layer(options).pipe(
    Layer.provide(Http.layer(baseUrl === undefined ? {} : { baseUrl })),
    Layer.provideMerge(Layer.mergeAll(CircuitBreaker.layer(breakers), RateLimit.layerMemory()))
  )

const get = (path: string) => Effect.either(Http.text(HttpClientRequest.get(path)))

describe("Policy over a real upstream", () => {
  it.scopedLive("a mix of 503s and connection resets ends in success", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const result = yield* get("/mixed?steps=503,reset,503,reset,200").pipe(
        Effect.provide(policyLayer(upstream.url, { retry: { ...fastRetry, maxAttempts: 5 } }))
      )
      expect(result._tag === "Right" && JSON.parse(result.right)).toEqual({ call: 5, status: 200 })
      expect(upstream.requests("/mixed")).toBe(5)
    }))

  it.scopedLive("on one connection, a reset and a timed-out attempt leave the slot to the retry", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      // The retries share the call's scope: a failed attempt that kept its slot would starve the next one.
      const layer = Policy.layer({ attemptTimeout: "200 millis", retry: { ...fastRetry, maxAttempts: 3 } }).pipe(
        Layer.provide(
          Http.layer({ baseUrl: upstream.url, pool: { maxConnections: 1 }, timeouts: { pool: "1 second" } })
        ),
        Layer.provideMerge(Layer.mergeAll(CircuitBreaker.layer(), RateLimit.layerMemory()))
      )
      const result = yield* get("/flaky?steps=reset,stall,200").pipe(Effect.provide(layer))
      expect(result._tag === "Right" && JSON.parse(result.right)).toEqual({ call: 3, status: 200 })
      expect(upstream.requests("/flaky")).toBe(3)
    }))

  it.scopedLive("on one connection, a retried 503's slot goes to the retry, and an interrupted call's to the next", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const layer = Policy.layer({ retry: { ...fastRetry, maxAttempts: 3 } }).pipe(
        Layer.provide(
          Http.layer({ baseUrl: upstream.url, pool: { maxConnections: 1 }, timeouts: { pool: "1 second" } })
        ),
        Layer.provideMerge(Layer.mergeAll(CircuitBreaker.layer(), RateLimit.layerMemory()))
      )
      yield* Effect.gen(function*() {
        // Each 503 is drained and its slot given back before the next attempt, which would starve otherwise.
        const retried = yield* get("/busy?steps=503,503,200")
        expect(retried._tag === "Right" && JSON.parse(retried.right)).toEqual({ call: 3, status: 200 })
        // A call interrupted while it waits for its headers frees the connection for the next call.
        const stuck = yield* Effect.fork(get("/hold?steps=stall"))
        while (upstream.requests("/hold") === 0) yield* Effect.sleep("5 millis")
        yield* Fiber.interrupt(stuck)
        const next = yield* get("/next")
        expect(next._tag).toBe("Right")
      }).pipe(Effect.provide(layer))
      expect(upstream.requests("/busy")).toBe(3)
    }))

  it.scopedLive("the breaker opens after repeated failures; the next call fails fast without touching the wire", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const host = new URL(upstream.url).host
      yield* Effect.gen(function*() {
        // Three attempts, three failures: the third trips the breaker; the caller sees the last 503.
        const first = yield* get("/down?steps=503")
        expect(first._tag === "Left" && first.left).toMatchObject({ _tag: "StatusError", status: 503 })
        expect(upstream.requests()).toBe(3)
        const registry = yield* CircuitBreaker.CircuitBreaker
        expect((yield* registry.snapshots).map((s) => [s.key, s.state])).toEqual([[host, "Open"]])

        const second = yield* get("/other")
        expect(second._tag === "Left" && second.left).toMatchObject({ _tag: "CircuitOpen", key: host })
        expect(upstream.requests()).toBe(3)
      }).pipe(Effect.provide(policyLayer(upstream.url, { retry: { ...fastRetry, maxAttempts: 3 } }, {
        failureThreshold: 3
      })))
    }))

  it.scopedLive("a breaker that opens during the retries stops them at once", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const result = yield* get("/down?steps=500").pipe(
        Effect.provide(policyLayer(upstream.url, { retry: { ...fastRetry, maxAttempts: 5 } }, { failureThreshold: 2 }))
      )
      expect(result._tag === "Left" && result.left._tag).toBe("CircuitOpen")
      expect(upstream.requests()).toBe(2)
    }))

  it.scopedLive("a 503 answer with Retry-After opens the breaker for as long as the server asked", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      yield* Effect.gen(function*() {
        yield* get("/busy?steps=503&retryAfter=7")
        const [snapshot] = yield* Effect.flatMap(CircuitBreaker.CircuitBreaker, (registry) => registry.snapshots)
        expect(snapshot?.state).toBe("Open")
        // Not the 60 s default: the server's 7 s (less the few ms since).
        expect(snapshot?.remainingOpenMillis).toBeGreaterThan(5000)
        expect(snapshot?.remainingOpenMillis).toBeLessThanOrEqual(7000)
      }).pipe(Effect.provide(policyLayer(upstream.url, { retry: false }, { failureThreshold: 1 })))
    }))

  it.scopedLive("a 404 is passed on: not retried, and the breaker stays closed", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      yield* Effect.gen(function*() {
        for (let i = 0; i < 3; i++) {
          const result = yield* get("/missing?steps=404")
          expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "StatusError", status: 404 })
        }
        expect(upstream.requests()).toBe(3)
        const [snapshot] = yield* Effect.flatMap(CircuitBreaker.CircuitBreaker, (registry) => registry.snapshots)
        expect(snapshot?.state).toBe("Closed")
      }).pipe(Effect.provide(policyLayer(upstream.url, { retry: fastRetry }, { failureThreshold: 1 })))
    }))

  it.scopedLive("one breaker per host: an upstream that is down does not stop calls to another", () =>
    Effect.gen(function*() {
      const down = yield* scriptedUpstream
      const up = yield* scriptedUpstream
      yield* Effect.gen(function*() {
        yield* get(`${down.url}/x?steps=503`)
        expect((yield* get(`${down.url}/x`))._tag).toBe("Left")
        const fine = yield* get(`${up.url}/y`)
        expect(fine._tag).toBe("Right")
        const registry = yield* CircuitBreaker.CircuitBreaker
        const states = new Map((yield* registry.snapshots).map((s) => [s.key, s.state]))
        expect(states.get(new URL(down.url).host)).toBe("Open")
        expect(states.get(new URL(up.url).host)).toBe("Closed")
      }).pipe(Effect.provide(policyLayer(undefined, { retry: false }, { failureThreshold: 1 })))
    }))
})

describe("Policy timeouts", () => {
  it.scopedLive("an attempt that stalls times out (phase attempt) and is retried", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const retried = yield* get("/slow?steps=stall,200").pipe(
        Effect.provide(policyLayer(upstream.url, { attemptTimeout: "200 millis", retry: fastRetry }))
      )
      expect(retried._tag).toBe("Right")
      expect(upstream.requests("/slow")).toBe(2)

      const once = yield* get("/stuck?steps=stall").pipe(
        Effect.provide(policyLayer(upstream.url, { attemptTimeout: "100 millis", retry: false }))
      )
      expect(once._tag === "Left" && once.left).toMatchObject({
        _tag: "TimeoutError",
        phase: "attempt",
        timeoutMillis: 100
      })
      expect(upstream.requests("/stuck")).toBe(1)
    }))

  it.scopedLive("the total timeout bounds the attempts and the delays between them", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const result = yield* get("/stuck?steps=stall").pipe(
        Effect.provide(policyLayer(upstream.url, {
          attemptTimeout: "200 millis",
          totalTimeout: "300 millis",
          retry: { ...fastRetry, maxAttempts: 10 }
        }))
      )
      expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "TimeoutError", phase: "total" })
      // Not ten attempts: the second starts at about 200 ms and is cut at 300 ms (a slow machine may not get it out).
      expect(upstream.requests("/stuck")).toBeGreaterThanOrEqual(1)
      expect(upstream.requests("/stuck")).toBeLessThanOrEqual(2)
    }))

  it.scopedLive("the wait for a pool slot counts against the attempt (not only the pool timeout)", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      // One connection, shared by a patient policy that holds it and a hurried one that waits for it.
      const http = yield* Http.make({
        baseUrl: upstream.url,
        pool: { maxConnections: 1 },
        timeouts: { pool: "10 seconds" }
      })
      const patient = yield* Policy.make(http, { attemptTimeout: "10 seconds", retry: false })
      const hurried = yield* Policy.make(http, { attemptTimeout: "200 millis", retry: false })
      const holder = yield* Effect.fork(get("/hold?steps=stall").pipe(Effect.provideService(Http.Http, patient)))
      while (upstream.requests("/hold") === 0) yield* Effect.sleep("5 millis")
      const waited = yield* get("/quick").pipe(Effect.provideService(Http.Http, hurried))
      expect(waited._tag === "Left" && waited.left).toMatchObject({
        _tag: "TimeoutError",
        phase: "attempt",
        timeoutMillis: 200
      })
      expect(upstream.requests("/quick")).toBe(0)
      yield* Fiber.interrupt(holder)
    }).pipe(Effect.provide(CircuitBreaker.layer())))
})

describe("Policy rate limit", () => {
  it.scopedLive("fail mode: over the limit is RateLimited, and nothing reaches the wire", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const results = yield* Effect.all([get("/a"), get("/b"), get("/c")]).pipe(
        Effect.provide(policyLayer(upstream.url, {
          rateLimit: { rule: RateLimit.slidingWindow({ limit: 2, window: "1 minute" }), mode: "fail" }
        }))
      )
      expect(results.map((result) => result._tag)).toEqual(["Right", "Right", "Left"])
      const limited = results[2]
      expect(limited?._tag === "Left" && limited.left).toMatchObject({
        _tag: "RateLimited",
        key: new URL(upstream.url).host
      })
      expect(upstream.requests()).toBe(2)
    }))
})

describe("Policy options", () => {
  const invalid: ReadonlyArray<readonly [Policy.Options, string]> = [
    [{ attemptTimeout: "10 seconds", totalTimeout: "5 seconds" }, "attemptTimeout"],
    [{ totalTimeout: 0 }, "totalTimeout"],
    [{ attemptTimeout: 0 }, "attemptTimeout"],
    [{ totalTimeout: "30 seconds", retry: { maxRetryAfter: "1 minute" } }, "retry.maxRetryAfter"],
    [{ retry: { maxAttempts: 0 } }, "maxAttempts"],
    [{ rateLimit: { rule: RateLimit.slidingWindow({ limit: 0, window: "1 second" }) } }, "rateLimit.limit"],
    [{ adaptive: { initial: 0 } }, "initial"]
  ]

  it.scopedLive("contradictory settings are InvalidOptions when the policy is built", () =>
    Effect.gen(function*() {
      const http = yield* Http.Http
      for (const [options, option] of invalid) {
        const error = yield* Effect.flip(Policy.make(http, options))
        expect(error).toMatchObject({ _tag: "InvalidOptions", option })
      }
      // The layer fails the same way.
      const error = yield* Effect.flip(Layer.build(policyLayer(undefined, invalid[0]![0])))
      expect(error).toMatchObject({ _tag: "InvalidOptions", option: "attemptTimeout" })
    }).pipe(
      Effect.provide(Layer.mergeAll(Http.layer(), CircuitBreaker.layer(), RateLimit.layerMemory()))
    ))
})

describe("Policy without a limiter, and from the environment", () => {
  const bare = (baseUrl: string, options: Policy.Options) =>
    Policy.layer(options).pipe(Layer.provide([Http.layer({ baseUrl }), CircuitBreaker.layer()]))

  it.scopedLive("without a rateLimit, no RateLimit is needed", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const result = yield* get("/ok").pipe(Effect.provide(bare(upstream.url, { retry: false })))
      expect(result._tag === "Right" && JSON.parse(result.right)).toEqual({ call: 1, status: 200 })
    }))

  it.scopedLive("a rateLimit without a RateLimit in context fails when the layer is built, naming the option", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      // Typed as plain `Options` (as from Config): the check is at build time.
      const options: Policy.Options = { rateLimit: { rule: RateLimit.tokenBucket({ limit: 5, interval: "1 second" }) } }
      const error = yield* Effect.flip(get("/ok").pipe(Effect.provide(bare(upstream.url, options))))
      expect(error).toMatchObject({ _tag: "InvalidOptions", option: "rateLimit" })
      expect(error.message).toContain("RateLimit.layerMemory()")
      expect(upstream.requests()).toBe(0)
    }))

  it.scopedLive("layerClientConfig: base URL, limit, retries and breaker from the environment", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      const env = ConfigProvider.fromMap(
        new Map([
          ["HTTP_BASE_URL", upstream.url],
          ["UPSTREAM_RATE_LIMIT", "1000"],
          ["UPSTREAM_ATTEMPT_TIMEOUT", "2 seconds"],
          ["RETRY_MAX_ATTEMPTS", "2"],
          ["RETRY_BASE_DELAY", "1 millis"],
          ["BREAKER_FAILURE_THRESHOLD", "2"]
        ])
      )
      const client = Policy.layerClientConfig().pipe(Layer.provide(Layer.setConfigProvider(env)))
      yield* Effect.gen(function*() {
        // Two attempts (RETRY_MAX_ATTEMPTS), two failures: the breaker (threshold 2) opens.
        const first = yield* get("/down?steps=503")
        expect(first._tag === "Left" && first.left).toMatchObject({ _tag: "StatusError", status: 503 })
        expect(upstream.requests("/down")).toBe(2)
        const second = yield* get("/other")
        expect(second._tag === "Left" && second.left._tag).toBe("CircuitOpen")
        expect(upstream.requests("/other")).toBe(0)
      }).pipe(Effect.provide(client))
    }))

  it.scopedLive("layerClientConfig: a malformed variable fails at start-up with its name", () =>
    Effect.gen(function*() {
      const env = ConfigProvider.fromMap(new Map([["UPSTREAM_RATE_LIMIT", "-3"]]))
      const client = Policy.layerClientConfig().pipe(Layer.provide(Layer.setConfigProvider(env)))
      const error = yield* Effect.flip(get("/ok").pipe(Effect.provide(client)))
      expect(String(error)).toContain("UPSTREAM_RATE_LIMIT")
    }))

  it.scopedLive("CircuitOpen names the failure that opened the breaker, URL redacted", () =>
    Effect.gen(function*() {
      const upstream = yield* scriptedUpstream
      yield* Effect.gen(function*() {
        yield* get("/down?steps=503&token=s3cret")
        const open = yield* get("/other")
        expect(open._tag).toBe("Left")
        if (open._tag !== "Left" || open.left._tag !== "CircuitOpen") return
        expect(open.left.openedBy).toEqual({ _tag: "StatusError", message: `GET ${upstream.url}/down answered 503` })
        const host = new URL(upstream.url).host
        expect(open.left.message).toContain(
          `circuit breaker for ${host} is open (after: GET ${upstream.url}/down answered 503); next probe in `
        )
        expect(open.left.message).not.toContain("s3cret")
      }).pipe(Effect.provide(policyLayer(upstream.url, { retry: false }, { failureThreshold: 1 })))
    }))
})
