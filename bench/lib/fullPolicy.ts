/**
 * The full policy the `resilience` workload measures (and `telemetry` and `bench/profile.ts` with it):
 * every stage on, nothing throttling.
 */
import { CircuitBreaker, type Http, Policy, RateLimit } from "@liaison/core"
import * as Layer from "effect/Layer"

/** The same settings for every contender's resilience, as far as each library has them. */
export const settings = {
  attemptTimeoutMillis: 10_000,
  totalTimeoutMillis: 30_000,
  /** Attempts in all, the first included. */
  maxAttempts: 3,
  backoffBaseMillis: 10,
  consecutiveFailures: 5,
  openMillis: 60_000,
  /** Far above what the machine can send: the limiter is on the path but never makes anyone wait. */
  rateLimitPerSecond: 10_000_000
}

/** The full policy over `http`, with its own breaker registry and in-memory limiter. */
export const fullPolicy = (http: Layer.Layer<Http.Http>): Layer.Layer<Http.Http, unknown> =>
  Policy.layer({
    rateLimit: {
      rule: RateLimit.tokenBucket({ limit: settings.rateLimitPerSecond, interval: "1 second" }),
      mode: "wait"
    },
    totalTimeout: settings.totalTimeoutMillis,
    attemptTimeout: settings.attemptTimeoutMillis,
    retry: { maxAttempts: settings.maxAttempts, base: settings.backoffBaseMillis }
  }).pipe(
    Layer.provide([
      http,
      CircuitBreaker.layer({ failureThreshold: settings.consecutiveFailures, openDuration: settings.openMillis }),
      RateLimit.layerMemory()
    ])
  )
