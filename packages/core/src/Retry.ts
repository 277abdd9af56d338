/**
 * Retries with exponential backoff and jitter, built from `Schedule`, for the failures that a
 * retry can fix, and only where a retry is safe.
 *
 * - Delays: `Schedule.exponential(base, factor)`, jittered 0.5–1.5× (`Schedule.jitteredWith`),
 *   capped at `cap`; at most `maxAttempts` attempts (the first included).
 * - Retryable: statuses 408, 429, 500, 502, 503, 504, transport errors and timeouts (`isRetryable`
 *   overrides case by case).
 * - Safe: GET, HEAD, OPTIONS, PUT and DELETE are retried; POST and PATCH only with an
 *   `Idempotency-Key` header or `retryNonIdempotent: true`.
 * - The server's word counts: after `Retry-After` (seconds or HTTP-date), `RateLimit-Reset` or
 *   `X-RateLimit-Reset`, the next attempt waits at least that long; if it asks for more than
 *   `maxRetryAfter`, the call fails at once with `RetryAfterTooLong` carrying the server's delay.
 * - A retry budget per host (default: 20% of the last 10 seconds' requests, plus 10 retries per
 *   second): when spent, a retryable failure fails fast with `RetryBudgetExhausted`.
 * - `deadline` bounds the whole retried call (`TimeoutError` in phase `total`); a retry whose
 *   delay would end past the deadline is not attempted.
 *
 * Unlike `HttpClient.retryTransient`, nothing here retries forever, POST is not replayed by
 * accident, and a server asking for time gets it.
 *
 * @since 0.1.0
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Http from "./Http.js"
import type { HttpError } from "./HttpError.js"
import { isHttpError, RetryAfterTooLong, RetryBudgetExhausted, TimeoutError } from "./HttpError.js"
import * as Invalid from "./internal/invalidOptions.js"
import { retryAfterMillis } from "./internal/retryAfter.js"
import * as Budget from "./internal/retryBudget.js"
import { timeoutFail } from "./internal/timeout.js"

/**
 * @since 0.1.0
 * @category errors
 */
export { InvalidOptions } from "./internal/invalidOptions.js"

/**
 * What an attempt ended with, for {@link Options.isRetryable}.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Response"; readonly status: number; readonly headers: Readonly<Record<string, string>> }
  | { readonly _tag: "Error"; readonly error: HttpError }

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Attempts in all, the first included. Default 3. */
  readonly maxAttempts?: number | undefined
  /** The first delay. Default 1 second. */
  readonly base?: Duration.DurationInput | undefined
  /** Default 2. */
  readonly factor?: number | undefined
  /** The longest backoff delay (a server's `Retry-After` may ask for more, up to `maxRetryAfter`). Default 60 seconds. */
  readonly cap?: Duration.DurationInput | undefined
  /** The jitter factor's range; `false` for none. Default 0.5–1.5. */
  readonly jitter?: { readonly min: number; readonly max: number } | false | undefined
  /** Retryable statuses. Default 408, 429, 500, 502, 503, 504. */
  readonly statuses?: Iterable<number> | undefined
  /** Methods retried without an `Idempotency-Key`. Default GET, HEAD, OPTIONS, PUT, DELETE. */
  readonly idempotentMethods?: Iterable<string> | undefined
  /** Retry every method, POST and PATCH included. Default false. */
  readonly retryNonIdempotent?: boolean | undefined
  /** The longest wait a server may ask for. Default 60 seconds. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Bounds the whole retried call. Default none (attempts are bounded by `maxAttempts`). */
  readonly deadline?: Duration.DurationInput | undefined
  /** The retry budget per host; `false` turns it off. */
  readonly budget?:
    | {
      /** Retries as a share of requests. Default 0.2. */
      readonly ratio?: number | undefined
      /** Retries always allowed per second. Default 10. */
      readonly minRetriesPerSecond?: number | undefined
      /** Default 10 seconds. */
      readonly window?: Duration.DurationInput | undefined
    }
    | false
    | undefined
  /** Decides for an outcome (`true`/`false`), or leaves it to the defaults (`undefined`). */
  readonly isRetryable?: ((outcome: Outcome) => boolean | undefined) | undefined
}

interface Settings {
  readonly maxAttempts: number
  readonly backoff: Schedule.Schedule<Duration.Duration>
  readonly statuses: ReadonlySet<number>
  readonly idempotentMethods: ReadonlySet<string>
  readonly retryNonIdempotent: boolean
  readonly maxRetryAfterMillis: number
  readonly deadline: Duration.Duration | undefined
  readonly budget: Budget.RetryBudget | undefined
  readonly isRetryable: ((outcome: Outcome) => boolean | undefined) | undefined
}

/**
 * A retry policy with its own budget.
 *
 * @since 0.1.0
 * @category models
 */
export interface Retry {
  /** Wraps an `Http` execute: each attempt in its own scope, closed (body cancelled) before the next. */
  readonly execute: (
    execute: Http.Service["execute"],
    baseUrl?: string | undefined
  ) => Http.Service["execute"]
  /**
   * Like `execute`, for an attempt that bounds itself: it is given what is left of the deadline
   * (`undefined` without one) and must fail with a `TimeoutError` in phase `total` when that runs
   * out (`Policy` folds it into its attempt timeout: one timer per attempt).
   */
  readonly executeWithin: (
    attempt: (
      request: HttpClientRequest.HttpClientRequest,
      remainingMillis: number | undefined
    ) => Effect.Effect<Http.Response, HttpError, Scope.Scope>,
    baseUrl?: string | undefined
  ) => Http.Service["execute"]
  /**
   * Retries any effect failing with an `HttpError`; `target` says what the call is (for the
   * budget, the method rule and the errors).
   */
  readonly retry: <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    target: { readonly method: string; readonly url: string; readonly idempotent?: boolean | undefined }
  ) => Effect.Effect<A, E | RetryAfterTooLong | RetryBudgetExhausted | TimeoutError, R>
}

/**
 * Retried by default: 408, 429, 500, 502, 503, 504.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultStatuses: ReadonlyArray<number> = [408, 429, 500, 502, 503, 504]

/**
 * Retried without an `Idempotency-Key`: GET, HEAD, OPTIONS, PUT, DELETE.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultIdempotentMethods: ReadonlyArray<string> = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]

const millis = (duration: Duration.DurationInput) => Duration.toMillis(Duration.decode(duration))

/**
 * The backoff schedule: exponential from `base` by `factor`, jittered, capped, `maxAttempts - 1`
 * recurrences.
 *
 * @since 0.1.0
 * @category schedules
 */
export const backoff = (options: Options = {}): Schedule.Schedule<Duration.Duration> => {
  const cap = Duration.decode(options.cap ?? "60 seconds")
  const jitter = options.jitter ?? { min: 0.5, max: 1.5 }
  const exponential = Schedule.exponential(options.base ?? "1 second", options.factor ?? 2)
  return (jitter === false ? exponential : Schedule.jitteredWith(exponential, jitter)).pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, cap)),
    Schedule.intersect(Schedule.recurs((options.maxAttempts ?? 3) - 1)),
    Schedule.map(([delay]) => delay)
  )
}

const resolve = (options: Options): Effect.Effect<Settings, Invalid.InvalidOptions> => {
  const maxAttempts = options.maxAttempts ?? 3
  const jitter = options.jitter ?? { min: 0.5, max: 1.5 }
  const budget = options.budget === false ? undefined : options.budget ?? {}
  const ratio = budget?.ratio ?? 0.2
  const windowMillis = millis(budget?.window ?? "10 seconds")
  const minRetriesPerSecond = budget?.minRetriesPerSecond ?? 10
  const invalid = Invalid.check([
    [Number.isInteger(maxAttempts) && maxAttempts >= 1, "maxAttempts", "must be an integer ≥ 1"],
    [millis(options.base ?? "1 second") > 0, "base", "must be positive"],
    [(options.factor ?? 2) >= 1, "factor", "must be ≥ 1"],
    [millis(options.cap ?? "60 seconds") >= millis(options.base ?? "1 second"), "cap", "must be at least base"],
    [jitter === false || (jitter.min >= 0 && jitter.min <= jitter.max), "jitter", "needs 0 ≤ min ≤ max"],
    [ratio >= 0, "budget.ratio", "must be ≥ 0"],
    [windowMillis > 0, "budget.window", "must be positive"],
    [options.deadline === undefined || millis(options.deadline) > 0, "deadline", "must be positive"]
  ])
  if (invalid !== undefined) return Effect.fail(invalid)
  return Effect.succeed({
    maxAttempts,
    backoff: backoff(options),
    statuses: new Set(options.statuses ?? defaultStatuses),
    idempotentMethods: new Set(
      [...(options.idempotentMethods ?? defaultIdempotentMethods)].map((m) => m.toUpperCase())
    ),
    retryNonIdempotent: options.retryNonIdempotent ?? false,
    maxRetryAfterMillis: millis(options.maxRetryAfter ?? "60 seconds"),
    deadline: options.deadline === undefined ? undefined : Duration.decode(options.deadline),
    budget: budget === undefined
      ? undefined
      : Budget.make({ ratio, windowMillis, minRetries: (minRetriesPerSecond * windowMillis) / 1000 }),
    isRetryable: options.isRetryable
  })
}

/** One attempt's result, judged. */
interface Step<A, E> {
  readonly exit: Exit.Exit<A, E>
  readonly retryable: boolean
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly describe: string
  /** Frees what the attempt holds (its response body) before the next one. */
  readonly release: Effect.Effect<void>
}

const isRetryableError = (error: HttpError, statuses: ReadonlySet<number>): boolean => {
  switch (error._tag) {
    case "TransportError":
      return true
    case "TimeoutError":
      return error.phase !== "total"
    case "StatusError":
      return statuses.has(error.status)
    default:
      return false
  }
}

/** Judges a failed attempt (an error, not a response). */
const judgeError = <A, E>(exit: Exit.Exit<A, E>, settings: Settings): Step<A, E> => {
  // A failure's cause is not always a bare `Fail` (e.g. `Sequential(Fail, Empty)` after a finalizer).
  const error = exit._tag === "Failure" ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
  if (error === undefined || !isHttpError(error)) {
    return { exit, retryable: false, status: 0, headers: {}, describe: "failed", release: Effect.void }
  }
  const decided = settings.isRetryable?.({ _tag: "Error", error })
  const status = error._tag === "StatusError" ? error.status : 0
  return {
    exit,
    retryable: decided ?? isRetryableError(error, settings.statuses),
    status,
    headers: error._tag === "StatusError" ? error.headers : {},
    describe: status === 0 ? error._tag : `answered ${status}`,
    release: Effect.void
  }
}

const hostOf = (url: string, baseUrl: string | undefined): string => {
  try {
    return new URL(url, baseUrl).host
  } catch {
    return "unknown"
  }
}

/**
 * The retry loop: `attempt` until its step is not retryable, attempts run out, the server asks
 * for too long, the budget is spent or the deadline would pass.
 */
const loop = <A, E, R>(
  settings: Settings,
  target: { readonly method: string; readonly url: string; readonly host: string; readonly safe: boolean },
  attempt: (remainingMillis: number | undefined) => Effect.Effect<Step<A, E>, never, R>
): Effect.Effect<A, E | RetryAfterTooLong | RetryBudgetExhausted | TimeoutError, R> => {
  const deadlineMillis = settings.deadline === undefined ? undefined : Duration.toMillis(settings.deadline)
  const timedOut = () =>
    new TimeoutError({ phase: "total", method: target.method, url: target.url, timeoutMillis: deadlineMillis ?? 0 })
  return Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const remaining = (now: number) => deadlineMillis === undefined ? undefined : deadlineMillis - (now - start)
    settings.budget?.request(target.host, start)
    // The deadline bounds each attempt (one timer per attempt, not one more around them all) and each wait.
    let step = yield* attempt(deadlineMillis)
    if (!target.safe || !step.retryable || settings.maxAttempts === 1) return yield* step.exit
    const driver = yield* Schedule.driver(settings.backoff)
    for (let n = 1; step.retryable && n < settings.maxAttempts; n++) {
      const now = yield* Clock.currentTimeMillis
      const asked = retryAfterMillis(step.headers, now)
      if (asked !== undefined && asked > settings.maxRetryAfterMillis) {
        yield* step.release
        return yield* new RetryAfterTooLong({
          method: target.method,
          url: target.url,
          status: step.status,
          retryAfterMillis: asked,
          maxRetryAfterMillis: settings.maxRetryAfterMillis
        })
      }
      // Waiting past the deadline would only end in a timeout: the last answer is better.
      const left = remaining(now)
      if (left !== undefined && asked !== undefined && asked >= left) break
      if (settings.budget !== undefined && !settings.budget.tryRetry(target.host, now)) {
        yield* step.release
        return yield* new RetryBudgetExhausted({
          host: target.host,
          method: target.method,
          url: target.url,
          lastOutcome: step.describe
        })
      }
      yield* step.release
      // The schedule sleeps the backoff delay; the server's ask is the floor.
      const wait = Effect.gen(function*() {
        const before = yield* Clock.currentTimeMillis
        const stopped = yield* Effect.isFailure(driver.next(undefined))
        const slept = (yield* Clock.currentTimeMillis) - before
        if (!stopped && asked !== undefined && asked > slept) yield* Effect.sleep(Duration.millis(asked - slept))
        return stopped
      })
      const stopped = left === undefined
        ? yield* wait
        : yield* Effect.timeoutFail(wait, { duration: Duration.millis(Math.max(0, left)), onTimeout: timedOut })
      if (stopped) return yield* step.exit
      const stillLeft = remaining(yield* Clock.currentTimeMillis)
      if (stillLeft !== undefined && stillLeft <= 0) return yield* timedOut()
      step = yield* attempt(stillLeft)
    }
    return yield* step.exit
  })
}

/** Bounds an attempt by what is left of the deadline, if there is one. */
const within = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  remainingMillis: number | undefined,
  settings: Settings,
  target: { readonly method: string; readonly url: string }
): Effect.Effect<A, E | TimeoutError, R> =>
  remainingMillis === undefined ? effect : timeoutFail(effect, Math.max(0, remainingMillis), () =>
    new TimeoutError({
      phase: "total",
      method: target.method,
      url: target.url,
      timeoutMillis: settings.deadline === undefined ? 0 : Duration.toMillis(settings.deadline)
    }))

const isSafe = (settings: Settings, method: string, headers: Readonly<Record<string, string>>): boolean =>
  settings.retryNonIdempotent || settings.idempotentMethods.has(method) || headers["idempotency-key"] !== undefined

/** A retried answer's body is read this many chunks at most, then cancelled. */
const drainedChunks = 4

const makeRetry = (settings: Settings): Retry => {
  const executeWithin: Retry["executeWithin"] =
    (execute, baseUrl) => (request: HttpClientRequest.HttpClientRequest) => {
      // Each attempt runs in the caller's scope: a response that is retried has its body drained
      // (a few chunks: an error page) or cancelled, which frees its connection before the next
      // attempt; a failed attempt holds nothing.
      const attempt = (
        remainingMillis: number | undefined
      ): Effect.Effect<Step<Http.Response, HttpError>, never, Scope.Scope> =>
        Effect.map(Effect.exit(execute(request, remainingMillis)), (exit): Step<Http.Response, HttpError> => {
          if (exit._tag === "Failure") return judgeError(exit, settings)
          const { headers, status } = exit.value
          const decided = settings.isRetryable?.({ _tag: "Response", status, headers })
          return {
            exit,
            retryable: decided ?? settings.statuses.has(status),
            status,
            headers,
            describe: `answered ${status}`,
            release: Effect.ignore(Stream.runDrain(Stream.take(exit.value.stream, drainedChunks)))
          }
        })
      return loop(settings, {
        method: request.method,
        url: request.url,
        host: hostOf(request.url, baseUrl),
        safe: isSafe(settings, request.method, request.headers)
      }, attempt)
    }
  return {
    executeWithin,
    execute: (execute, baseUrl) =>
      executeWithin(
        (request, remainingMillis) => within(execute(request), remainingMillis, settings, request),
        baseUrl
      ),
    retry: (effect, target) =>
      loop(settings, {
        method: target.method,
        url: target.url,
        host: hostOf(target.url, undefined),
        safe: target.idempotent ?? isSafe(settings, target.method.toUpperCase(), {})
      }, (remainingMillis) =>
        Effect.map(
          Effect.exit(within(effect, remainingMillis, settings, target)),
          (exit) => judgeError(exit, settings)
        ))
  }
}

/**
 * A retry policy (its budget is its own: share one `Retry` to share a budget).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Retry, Invalid.InvalidOptions> =>
  Effect.map(resolve(options), makeRetry)

/**
 * Wraps the {@link Http.Http} service so every call through it is retried by this policy.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Http.Http, Invalid.InvalidOptions, Http.Http> =>
  Layer.effect(
    Http.Http,
    Effect.gen(function*() {
      const http = yield* Http.Http
      const retry = yield* make(options)
      return { ...http, execute: retry.execute(http.execute, http.options.baseUrl) }
    })
  )
