/**
 * One resilience policy for every call of an {@link Http.Http} client, per upstream host, in the
 * order of Microsoft's standard resilience pipeline:
 *
 * 1. rate limit (`RateLimit`, one limit per host; off unless configured),
 * 2. total timeout (the whole call, retries and their delays included; default 30 s),
 * 3. retry (`Retry`: backoff with jitter, idempotent methods only, Retry-After, budget),
 * 4. circuit breaker (`CircuitBreaker`, one per host: each attempt is judged, a 5xx or 429
 *    answer counts as a failure even though it is a response),
 * 5. attempt timeout (each attempt until its response headers; default 10 s).
 *
 * The limiter sits outside the retry so a permit covers the whole call (the retry budget keeps
 * retries from multiplying the load), and the breaker inside it so every attempt is judged and an
 * open breaker stops the retries at once.
 *
 * ```ts
 * const HttpLive = Policy.layer({ rateLimit: { rule: RateLimit.tokenBucket({ limit: 50, interval: "1 second" }) } }).pipe(
 *   Layer.provide([Http.layer({ baseUrl: "https://api.example.com" }), CircuitBreaker.layer(), RateLimit.layerMemory])
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as Http from "./Http.js"
import { TimeoutError } from "./HttpError.js"
import * as Invalid from "./internal/invalidOptions.js"
import { timeoutFail } from "./internal/timeout.js"
import * as RateLimit from "./RateLimit.js"
import * as Retry from "./Retry.js"

/**
 * @since 0.1.0
 * @category errors
 */
export { InvalidOptions } from "./internal/invalidOptions.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A limit per host; none by default. */
  readonly rateLimit?: { readonly rule: RateLimit.Rule; readonly mode?: RateLimit.Mode | undefined } | undefined
  /** Learn the upstream's limit (AIMD on 429 and `RateLimit-*` headers), per host. Off by default. */
  readonly adaptive?: RateLimit.AdaptiveOptions | undefined
  /** The whole call, retries included. Default 30 seconds. */
  readonly totalTimeout?: Duration.DurationInput | undefined
  /** Each attempt, until its headers arrive. Default 10 seconds. */
  readonly attemptTimeout?: Duration.DurationInput | undefined
  /** `false` turns retries off. Its `deadline` is the total timeout. */
  readonly retry?: Omit<Retry.Options, "deadline"> | false | undefined
  /** Breakers come from the `CircuitBreaker` registry (its options); `false` bypasses them. */
  readonly breaker?: false | undefined
  /** The key of a call's limiter and breaker. Default: the request URL's host. */
  readonly keyOf?: ((url: URL) => string) | undefined
}

const millis = (duration: Duration.DurationInput) => Duration.toMillis(Duration.decode(duration))

const hostKey = (url: URL) => url.host

/**
 * Wraps an {@link Http.Service} in the policy.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  http: Http.Service,
  options: Options = {}
): Effect.Effect<Http.Service, Invalid.InvalidOptions, CircuitBreaker.CircuitBreaker | RateLimit.RateLimiter> =>
  Effect.gen(function*() {
    const total = Duration.decode(options.totalTimeout ?? "30 seconds")
    const attemptTimeout = Duration.decode(options.attemptTimeout ?? "10 seconds")
    const invalid = Invalid.check([
      [Duration.toMillis(total) > 0, "totalTimeout", "must be positive"],
      [Duration.toMillis(attemptTimeout) > 0, "attemptTimeout", "must be positive"],
      [
        Duration.lessThanOrEqualTo(attemptTimeout, total),
        "attemptTimeout",
        `must not exceed totalTimeout (${Duration.format(total)})`
      ],
      [
        options.retry === false || options.retry?.maxRetryAfter === undefined ||
        millis(options.retry.maxRetryAfter) < Duration.toMillis(total),
        "retry.maxRetryAfter",
        "must be shorter than totalTimeout: a wait that long could never end in a retry"
      ]
    ])
    if (invalid !== undefined) return yield* invalid
    if (options.rateLimit !== undefined) yield* RateLimit.validate(options.rateLimit.rule)
    const breakers = yield* CircuitBreaker.CircuitBreaker
    const limiter = yield* RateLimit.RateLimiter
    const retry = options.retry === false
      ? undefined
      : yield* Retry.make({ ...options.retry, deadline: total })
    const adaptives = new Map<string, RateLimit.Adaptive>()
    const adaptiveFor = (key: string) =>
      Effect.suspend(() => {
        const existing = adaptives.get(key)
        if (existing !== undefined || options.adaptive === undefined) return Effect.succeed(existing)
        return Effect.map(Effect.orDie(RateLimit.makeAdaptive(options.adaptive)), (adaptive) => {
          adaptives.set(key, adaptive)
          return adaptive
        })
      })
    // Checked now, not at the first call.
    if (options.adaptive !== undefined) yield* RateLimit.makeAdaptive(options.adaptive)
    const keyOf = options.keyOf ?? hostKey
    const { baseUrl } = http.options

    const attemptMillis = Duration.toMillis(attemptTimeout)
    const totalMillis = Duration.toMillis(total)
    /** One timer per attempt: the attempt timeout, or what is left of the total when that is less. */
    const timed = (request: HttpClientRequest.HttpClientRequest, remainingMillis: number | undefined) => {
      const byTotal = remainingMillis !== undefined && remainingMillis < attemptMillis
      return timeoutFail(
        http.execute(request),
        byTotal ? Math.max(0, remainingMillis) : attemptMillis,
        () =>
          new TimeoutError({
            phase: byTotal ? "total" : "attempt",
            method: request.method,
            url: request.url,
            timeoutMillis: byTotal ? totalMillis : attemptMillis
          })
      )
    }

    type Attempt = (
      request: HttpClientRequest.HttpClientRequest,
      remainingMillis: number | undefined
    ) => ReturnType<Http.Service["execute"]>

    const attemptFor = (key: string, adaptive: RateLimit.Adaptive | undefined): Attempt => {
      const observed: Attempt = adaptive === undefined
        ? timed
        : (request, remaining) =>
          Effect.tap(timed(request, remaining), (response) => adaptive.observe(response.status, response.headers))
      if (options.breaker === false) return observed
      return (request, remaining) =>
        Effect.flatMap(
          breakers.get(key),
          (breaker) =>
            breaker.protectWith(observed(request, remaining), (exit) =>
              exit._tag === "Success"
                ? CircuitBreaker.verdictOfResponse(exit.value.status, exit.value.headers, Date.now())
                : exit.cause._tag === "Fail"
                ? CircuitBreaker.defaultVerdict(exit.cause.error)
                : { _tag: "Failure", retryAfterMillis: undefined })
        )
    }

    const execute: Http.Service["execute"] = (request) => {
      let url: URL
      try {
        url = new URL(request.url, baseUrl)
      } catch {
        return http.execute(request) // not a URL: the client reports it as an InvalidRequest
      }
      const key = keyOf(url)
      return Effect.flatMap(adaptiveFor(key), (adaptive) => {
        const attempt = attemptFor(key, adaptive)
        const retried = retry === undefined
          ? attempt(request, totalMillis)
          : retry.executeWithin(attempt, baseUrl)(request)
        const limited = options.rateLimit === undefined
          ? retried
          : Effect.zipRight(limiter.acquire(key, options.rateLimit.rule, options.rateLimit.mode), retried)
        return adaptive === undefined ? limited : Effect.zipRight(adaptive.acquire(options.rateLimit?.mode), limited)
      })
    }
    return { ...http, execute }
  })

/**
 * Replaces the {@link Http.Http} service with one whose every call goes through the policy.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Http.Http, Invalid.InvalidOptions, Http.Http | CircuitBreaker.CircuitBreaker | RateLimit.RateLimiter> =>
  Layer.effect(Http.Http, Effect.flatMap(Http.Http, (http) => make(http, options)))
