/**
 * The policy engine: options checked once, then per call: key → adaptive limiter → rate limit →
 * retry → breaker → attempt timeout. Every step is a top-level function over one `Engine`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as CircuitBreaker from "../CircuitBreaker.js"
import type * as Http from "../Http.js"
import * as HttpError from "../HttpError.js"
import { InvalidOptions } from "../LiaisonError.js"
import type * as Policy from "../Policy.js"
import * as RateLimit from "../RateLimit.js"
import * as Retry from "../Retry.js"
import { millis } from "./duration.js"
import { isAbsoluteUrl } from "./httpClient.js"
import * as Invalid from "./invalidOptions.js"
import * as RetryEngine from "./retry.js"
import { timeoutFail } from "./timeout.js"

/**
 * What every call of one policy shares.
 *
 * @internal
 */
export interface Engine {
  readonly options: Policy.Options
  readonly breakers: CircuitBreaker.Service
  /** The limit per key and the limiter that counts it; `undefined` without `rateLimit`. */
  readonly rateLimit:
    | {
      readonly limiter: RateLimit.Service
      readonly rule: RateLimit.Rule
      readonly mode: RateLimit.Mode | undefined
    }
    | undefined
  readonly retry: RetryEngine.Settings | undefined
  readonly attemptMillis: number
  readonly totalMillis: number
  readonly keyOf: (url: URL) => string
  /** One adaptive limiter per key, created on first use. */
  readonly adaptives: Map<string, RateLimit.Adaptive>
}

type Attempt = RetryEngine.Attempt

const hostKey = (url: URL) => url.host

const check = (options: Policy.Options, totalMillis: number, attemptMillis: number): InvalidOptions | undefined =>
  Invalid.check([
    [totalMillis > 0, "totalTimeout", "must be positive"],
    [attemptMillis > 0, "attemptTimeout", "must be positive"],
    [
      attemptMillis <= totalMillis,
      "attemptTimeout",
      `must not exceed totalTimeout (${Duration.format(Duration.millis(totalMillis))})`
    ],
    [
      options.retry === false || options.retry?.maxRetryAfter === undefined ||
      millis(options.retry.maxRetryAfter) < totalMillis,
      "retry.maxRetryAfter",
      "must be shorter than totalTimeout: a wait that long could never end in a retry"
    ]
  ])

/**
 * The limit of `options.rateLimit`, checked, with the `RateLimit` in context: a limit without a
 * limiter fails here, when the policy is built. Without a limit no limiter is needed.
 */
const rateLimitOf = (
  options: Policy.Options
): Effect.Effect<Engine["rateLimit"], InvalidOptions> => {
  const rateLimit = options.rateLimit
  if (rateLimit === undefined) return Effect.succeed(undefined)
  return Effect.zipRight(
    RateLimit.validate(rateLimit.rule),
    Effect.flatMap(Effect.serviceOption(RateLimit.RateLimit), (limiter) =>
      Option.isSome(limiter)
        ? Effect.succeed({ limiter: limiter.value, rule: rateLimit.rule, mode: rateLimit.mode })
        : Effect.fail(
          new InvalidOptions({
            option: "rateLimit",
            reason: "a limit needs a RateLimit service in context (e.g. RateLimit.layerMemory()); none was provided"
          })
        ))
  )
}

/**
 * Checks the options and takes the breakers (and, when a limit is configured, the limiter)
 * from context.
 *
 * @internal
 */
export const make = (
  options: Policy.Options,
  defaults: typeof Policy.defaults
): Effect.Effect<Engine, InvalidOptions, CircuitBreaker.CircuitBreaker> =>
  Effect.gen(function*() {
    const total = Duration.decode(options.totalTimeout ?? defaults.totalTimeout)
    const totalMillis = Duration.toMillis(total)
    const attemptMillis = millis(options.attemptTimeout ?? defaults.attemptTimeout)
    const invalid = check(options, totalMillis, attemptMillis)
    if (invalid !== undefined) return yield* invalid
    const rateLimit = yield* rateLimitOf(options)
    const breakers = yield* CircuitBreaker.CircuitBreaker
    const retry = options.retry === false
      ? undefined
      : yield* RetryEngine.resolve({ ...options.retry, deadline: total }, Retry.defaults)
    // Checked now, not at the first call.
    if (options.adaptive !== undefined) yield* RateLimit.makeAdaptive(options.adaptive)
    return {
      options,
      breakers,
      rateLimit,
      retry,
      attemptMillis,
      totalMillis,
      keyOf: options.keyOf ?? hostKey,
      adaptives: new Map()
    }
  })

const adaptiveFor = (engine: Engine, key: string): Effect.Effect<RateLimit.Adaptive | undefined> =>
  Effect.suspend(() => {
    const existing = engine.adaptives.get(key)
    if (existing !== undefined || engine.options.adaptive === undefined) return Effect.succeed(existing)
    return Effect.map(Effect.orDie(RateLimit.makeAdaptive(engine.options.adaptive)), (adaptive) => {
      engine.adaptives.set(key, adaptive)
      return adaptive
    })
  })

/** One timer per attempt: the attempt timeout, or what is left of the total when that is less. */
const timed = (engine: Engine, execute: Http.Service["execute"]): Attempt => (request, remainingMillis) => {
  const byTotal = remainingMillis !== undefined && remainingMillis < engine.attemptMillis
  return timeoutFail(
    execute(request),
    byTotal ? Math.max(0, remainingMillis) : engine.attemptMillis,
    () =>
      HttpError.timeout(
        request,
        byTotal ? "total" : "attempt",
        byTotal ? engine.totalMillis : engine.attemptMillis
      )
  )
}

/**
 * The breaker's verdict on a response: a 5xx or 429 is a failure, described (URL redacted) for
 * the `CircuitOpen` errors of the breaker it opens.
 */
const verdictOfResponse = (response: Http.Response, baseUrl: string | undefined): CircuitBreaker.Verdict => {
  const verdict = CircuitBreaker.verdictOfResponse(response.status, response.headers, Date.now())
  if (verdict._tag === "Success") return verdict
  const { method, url } = response.request
  const full = baseUrl === undefined || isAbsoluteUrl(url) ? url : baseUrl + url
  return {
    ...verdict,
    openedBy: { _tag: "StatusError", message: `${method} ${HttpError.redactUrl(full)} answered ${response.status}` }
  }
}

/**
 * The attempt of one key: timed, observed by its adaptive limiter, judged by its breaker (a 5xx
 * or 429 answer is a failure even though it is a response).
 */
const attemptFor = (
  engine: Engine,
  timedAttempt: Attempt,
  key: string,
  adaptive: RateLimit.Adaptive | undefined,
  baseUrl: string | undefined
): Attempt => {
  const observed: Attempt = adaptive === undefined
    ? timedAttempt
    : (request, remaining) =>
      Effect.tap(timedAttempt(request, remaining), (response) => adaptive.observe(response.status, response.headers))
  if (engine.options.breaker === false) return observed
  return (request, remaining) =>
    Effect.flatMap(
      engine.breakers.get(key),
      (breaker) =>
        breaker.protectWith(observed(request, remaining), (exit) =>
          exit._tag === "Success"
            ? verdictOfResponse(exit.value, baseUrl)
            : exit.cause._tag === "Fail"
            ? CircuitBreaker.defaultVerdict(exit.cause.error)
            : { _tag: "Failure", retryAfterMillis: undefined })
    )
}

/** One call of one key: the limiters outside, then the retried attempts. */
const call = (
  engine: Engine,
  timedAttempt: Attempt,
  baseUrl: string | undefined,
  request: Parameters<Http.Service["execute"]>[0],
  key: string,
  adaptive: RateLimit.Adaptive | undefined
): ReturnType<Http.Service["execute"]> => {
  const { options, rateLimit } = engine
  const attempt = attemptFor(engine, timedAttempt, key, adaptive, baseUrl)
  const retried = engine.retry === undefined
    ? attempt(request, engine.totalMillis)
    : RetryEngine.executeWithin(engine.retry, attempt, baseUrl)(request)
  const limited = rateLimit === undefined
    ? retried
    : Effect.zipRight(rateLimit.limiter.acquire(key, rateLimit.rule, rateLimit.mode), retried)
  return adaptive === undefined ? limited : Effect.zipRight(adaptive.acquire(options.rateLimit?.mode), limited)
}

/**
 * The policy around `execute`.
 *
 * @internal
 */
export const wrap = (
  engine: Engine,
  execute: Http.Service["execute"],
  baseUrl: string | undefined
): Http.Service["execute"] => {
  const timedAttempt = timed(engine, execute)
  return (request) => {
    let url: URL
    try {
      url = new URL(request.url, baseUrl)
    } catch {
      return execute(request) // not a URL: the client reports it as an InvalidRequest
    }
    const key = engine.keyOf(url)
    return Effect.flatMap(
      adaptiveFor(engine, key),
      (adaptive) => call(engine, timedAttempt, baseUrl, request, key, adaptive)
    )
  }
}
