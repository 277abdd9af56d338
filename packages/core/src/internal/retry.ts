/**
 * The retry engine: options resolved once into `Settings`, then a loop of judged attempts.
 * `executeWithin` is the entry for an attempt that bounds itself (`Policy` folds the deadline
 * into its attempt timeout: one timer per attempt).
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Http from "../Http.js"
import * as HttpError from "../HttpError.js"
import type { InvalidOptions } from "../LiaisonError.js"
import type * as Retry from "../Retry.js"
import { millis } from "./duration.js"
import * as Invalid from "./invalidOptions.js"
import { retryAfterMillis } from "./retryAfter.js"
import * as Budget from "./retryBudget.js"
import { timeoutFail } from "./timeout.js"

/** @internal */
export interface Settings {
  readonly maxAttempts: number
  readonly backoff: Schedule.Schedule<Duration.Duration>
  readonly statuses: ReadonlySet<number>
  readonly idempotentMethods: ReadonlySet<string>
  readonly retryNonIdempotent: boolean
  readonly maxRetryAfterMillis: number
  /** The deadline in milliseconds, if there is one. */
  readonly deadlineMillis: number | undefined
  readonly budget: Budget.RetryBudget | undefined
  readonly isRetryable: ((outcome: Retry.Outcome) => boolean | undefined) | undefined
}

/** @internal */
export type RetryError = HttpError.RetryAfterTooLong | HttpError.RetryBudgetExhausted | HttpError.TimeoutError

/**
 * An attempt that bounds itself by what is left of the deadline (`undefined`: no deadline).
 *
 * @internal
 */
export type Attempt = (
  request: HttpClientRequest.HttpClientRequest,
  remainingMillis: number | undefined,
  info: AttemptInfo
) => Effect.Effect<Http.Response, HttpError.HttpError, Scope.Scope>

/** @internal */
export const backoff = (
  options: Retry.Options,
  defaults: typeof Retry.defaults
): Schedule.Schedule<Duration.Duration> => {
  const cap = Duration.decode(options.cap ?? defaults.cap)
  const jitter = options.jitter ?? defaults.jitter
  const exponential = Schedule.exponential(options.base ?? defaults.base, options.factor ?? defaults.factor)
  return (jitter === false ? exponential : Schedule.jitteredWith(exponential, jitter)).pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, cap)),
    Schedule.intersect(Schedule.recurs((options.maxAttempts ?? defaults.maxAttempts) - 1)),
    Schedule.map(([delay]) => delay)
  )
}

/** @internal */
export const resolve = (
  options: Retry.Options,
  defaults: typeof Retry.defaults,
  store?: Retry.BudgetStoreService | undefined
): Effect.Effect<Settings, InvalidOptions> => {
  const maxAttempts = options.maxAttempts ?? defaults.maxAttempts
  const jitter = options.jitter ?? defaults.jitter
  const budget = options.budget === false ? undefined : options.budget ?? {}
  const ratio = budget?.ratio ?? defaults.budget.ratio
  const windowMillis = millis(budget?.window ?? defaults.budget.window)
  const minRetriesPerSecond = budget?.minRetriesPerSecond ?? defaults.budget.minRetriesPerSecond
  const baseMillis = millis(options.base ?? defaults.base)
  const invalid = Invalid.check([
    [Number.isInteger(maxAttempts) && maxAttempts >= 1, "maxAttempts", "must be an integer ≥ 1"],
    [baseMillis > 0, "base", "must be positive"],
    [(options.factor ?? defaults.factor) >= 1, "factor", "must be ≥ 1"],
    [millis(options.cap ?? defaults.cap) >= baseMillis, "cap", "must be at least base"],
    [jitter === false || (jitter.min >= 0 && jitter.min <= jitter.max), "jitter", "needs 0 ≤ min ≤ max"],
    [ratio >= 0, "budget.ratio", "must be ≥ 0"],
    [windowMillis > 0, "budget.window", "must be positive"],
    [options.deadline === undefined || millis(options.deadline) > 0, "deadline", "must be positive"]
  ])
  if (invalid !== undefined) return Effect.fail(invalid)
  return Effect.succeed({
    maxAttempts,
    backoff: backoff(options, defaults),
    statuses: new Set(options.statuses ?? defaults.statuses),
    idempotentMethods: new Set(
      [...(options.idempotentMethods ?? defaults.idempotentMethods)].map((m) => m.toUpperCase())
    ),
    retryNonIdempotent: options.retryNonIdempotent ?? defaults.retryNonIdempotent,
    maxRetryAfterMillis: millis(options.maxRetryAfter ?? defaults.maxRetryAfter),
    deadlineMillis: options.deadline === undefined ? undefined : millis(options.deadline),
    budget: budget === undefined
      ? undefined
      : Budget.make({ ratio, windowMillis, minRetries: (minRetriesPerSecond * windowMillis) / 1000 }, store),
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
  readonly release: () => Effect.Effect<void>
}

const releaseNothing = () => Effect.void
const noHeaders: Readonly<Record<string, string>> = {}

/**
 * The default rule for a failed attempt, from `HttpError.transience`: a status by the policy's
 * own list; a transport error or an attempt's timeout unless permanent (the method was checked
 * to be safe to repeat); nothing else. A refusal on this side (`CircuitOpen`, `RateLimited`, …)
 * would meet the same gate again, and a `total` timeout means the deadline is spent.
 */
const isRetryableError = (error: HttpError.HttpError, statuses: ReadonlySet<number>): boolean => {
  if (error._tag === "StatusError") return statuses.has(error.status)
  if (error._tag === "TransportError" || (error._tag === "TimeoutError" && error.phase !== "total")) {
    return HttpError.transience(error) !== "permanent"
  }
  return false
}

/** Judges a failed attempt (an error, not a response). */
const judgeError = <A, E>(exit: Exit.Exit<A, E>, settings: Settings): Step<A, E> => {
  // A failure's cause is not always a bare `Fail` (e.g. `Sequential(Fail, Empty)` after a finalizer).
  const error = exit._tag === "Failure" ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
  if (error === undefined || !HttpError.isHttpError(error)) {
    return { exit, retryable: false, status: 0, headers: noHeaders, describe: "failed", release: releaseNothing }
  }
  const decided = settings.isRetryable?.({ _tag: "Error", error })
  const status = error._tag === "StatusError" ? error.status : 0
  return {
    exit,
    retryable: decided ?? isRetryableError(error, settings.statuses),
    status,
    headers: error._tag === "StatusError" ? error.headers : noHeaders,
    describe: status === 0 ? error._tag : `answered ${status}`,
    release: releaseNothing
  }
}

/** A retried answer's body is read this many chunks at most, then cancelled. */
const drainedChunks = 4

/** Judges a finished attempt: a response by its status, a failure by its error. */
const judgeResponse = (
  exit: Exit.Exit<Http.Response, HttpError.HttpError>,
  settings: Settings
): Step<Http.Response, HttpError.HttpError> => {
  if (exit._tag === "Failure") return judgeError(exit, settings)
  const response = exit.value
  const status = response.status
  // The headers and the body stream are only read to retry: the transport makes neither until asked.
  const decided = settings.isRetryable?.({ _tag: "Response", status, headers: response.headers })
  const retryable = decided ?? settings.statuses.has(status)
  return {
    exit,
    retryable,
    status,
    headers: retryable ? response.headers : noHeaders,
    describe: `answered ${status}`,
    release: () => Effect.ignore(Stream.runDrain(Stream.take(response.stream, drainedChunks)))
  }
}

const hostOf = (url: string, baseUrl: string | undefined): string => {
  try {
    return new URL(url, baseUrl).host
  } catch {
    return "unknown"
  }
}

interface Target {
  readonly method: string
  readonly url: string
  readonly host: string
  readonly safe: boolean
}

/**
 * Where an attempt stands in its call: 1-based, the milliseconds waited before it, and the
 * server's `Retry-After` (or reset) it honoured, if any.
 *
 * @internal
 */
export interface AttemptInfo {
  readonly attempt: number
  readonly delayMillis: number
  readonly retryAfterMillis: number | undefined
}

/** @internal */
export const firstAttempt: AttemptInfo = { attempt: 1, delayMillis: 0, retryAfterMillis: undefined }

const retries = Metric.counter("liaison_http_client_retries_total", {
  description: "Retries (attempts after the first) of outbound HTTP calls, by host and method",
  incremental: true
})
const budgetExhausted = Metric.counter("liaison_retry_budget_exhausted_total", {
  description: "Retries refused because the host's retry budget was spent, by host",
  incremental: true
})

/**
 * Sleeps the schedule's next delay, at least the server's ask; `true` when the schedule is done.
 */
const wait = (
  driver: Schedule.ScheduleDriver<Duration.Duration, unknown>,
  asked: number | undefined
): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    const before = yield* Clock.currentTimeMillis
    const stopped = yield* Effect.isFailure(driver.next(undefined))
    const slept = (yield* Clock.currentTimeMillis) - before
    if (!stopped && asked !== undefined && asked > slept) yield* Effect.sleep(Duration.millis(asked - slept))
    return stopped
  })

/** One judged attempt, given what is left of the deadline and where it stands in its call. */
type Judged<A, E, R> = (remainingMillis: number | undefined, info: AttemptInfo) => Effect.Effect<Step<A, E>, never, R>

/**
 * The retry loop: `attempt` until its step is not retryable, attempts run out, the server asks
 * for too long, the budget is spent or the deadline would pass. The first attempt skips the
 * machinery: no generator, no schedule driver until a retry is needed.
 */
const loop = <A, E, R>(
  settings: Settings,
  target: Target,
  attempt: Judged<A, E, R>
): Effect.Effect<A, E | RetryError, R> =>
  Effect.clockWith((clock) => {
    const start = clock.unsafeCurrentTimeMillis()
    const budget = settings.budget
    if (budget !== undefined) budget.store.request(target.host, budget.settings, start)
    // The deadline bounds each attempt (one timer per attempt, not one more around them all) and each wait.
    return Effect.flatMap(attempt(settings.deadlineMillis, firstAttempt), (step) =>
      !target.safe || !step.retryable || settings.maxAttempts === 1
        ? step.exit
        : retryLoop(settings, target, attempt, step, start))
  })

/** The attempts after a retryable first one. */
const retryLoop = <A, E, R>(
  settings: Settings,
  target: Target,
  attempt: Judged<A, E, R>,
  first: Step<A, E>,
  start: number
): Effect.Effect<A, E | RetryError, R> => {
  const { deadlineMillis } = settings
  const timedOut = () => HttpError.timeout(target, "total", deadlineMillis ?? 0)
  const remaining = (now: number) => deadlineMillis === undefined ? undefined : deadlineMillis - (now - start)
  return Effect.gen(function*() {
    let step = first
    const driver = yield* Schedule.driver(settings.backoff)
    for (let n = 1; step.retryable && n < settings.maxAttempts; n++) {
      const now = yield* Clock.currentTimeMillis
      const asked = retryAfterMillis(step.headers, now)
      if (asked !== undefined && asked > settings.maxRetryAfterMillis) {
        yield* step.release()
        return yield* HttpError.retryAfterTooLong(target, {
          status: step.status,
          retryAfterMillis: asked,
          maxRetryAfterMillis: settings.maxRetryAfterMillis
        })
      }
      // Waiting past the deadline would only end in a timeout: the last answer is better.
      const left = remaining(now)
      if (left !== undefined && asked !== undefined && asked >= left) break
      const budget = settings.budget
      if (budget !== undefined && !(yield* budget.store.tryRetry(target.host, budget.settings, now))) {
        yield* step.release()
        yield* Metric.increment(Metric.tagged(budgetExhausted, "host", target.host))
        return yield* HttpError.retryBudgetExhausted(target, { host: target.host, lastOutcome: step.describe })
      }
      yield* step.release()
      // The schedule sleeps the backoff delay; the server's ask is the floor.
      const stopped = left === undefined
        ? yield* wait(driver, asked)
        : yield* Effect.timeoutFail(wait(driver, asked), {
          duration: Duration.millis(Math.max(0, left)),
          onTimeout: timedOut
        })
      if (stopped) return yield* step.exit
      const after = yield* Clock.currentTimeMillis
      const stillLeft = remaining(after)
      if (stillLeft !== undefined && stillLeft <= 0) return yield* timedOut()
      yield* Metric.increment(Metric.tagged(Metric.tagged(retries, "host", target.host), "method", target.method))
      step = yield* attempt(stillLeft, { attempt: n + 1, delayMillis: after - now, retryAfterMillis: asked })
    }
    return yield* step.exit
  })
}

/** Bounds an attempt by what is left of the deadline, if there is one. */
const within = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  remainingMillis: number | undefined,
  settings: Settings,
  target: HttpError.Target
): Effect.Effect<A, E | HttpError.TimeoutError, R> =>
  remainingMillis === undefined
    ? effect
    : timeoutFail(
      effect,
      Math.max(0, remainingMillis),
      () => HttpError.timeout(target, "total", settings.deadlineMillis ?? 0)
    )

const isSafe = (settings: Settings, method: string, headers: Readonly<Record<string, string>>): boolean =>
  settings.retryNonIdempotent || settings.idempotentMethods.has(method) || headers["idempotency-key"] !== undefined

/**
 * Retries an attempt that bounds itself, for a request whose host is known. Each attempt runs
 * in the caller's scope: a response that is retried has its body drained (a few chunks: an
 * error page) or cancelled, which frees its connection before the next attempt; a failed
 * attempt holds nothing.
 *
 * @internal
 */
export const executeFor = (
  settings: Settings,
  attempt: Attempt,
  request: HttpClientRequest.HttpClientRequest,
  host: string,
  observe?: ((exit: Exit.Exit<Http.Response, HttpError.HttpError>) => void) | undefined
): ReturnType<Http.Service["execute"]> =>
  loop(
    settings,
    { method: request.method, url: request.url, host, safe: isSafe(settings, request.method, request.headers) },
    (remainingMillis, info) =>
      Effect.map(Effect.exit(attempt(request, remainingMillis, info)), (exit) => {
        if (observe !== undefined) observe(exit)
        return judgeResponse(exit, settings)
      })
  )

/**
 * {@link executeFor}, the host read from the request's URL. `observe` sees every attempt's end.
 *
 * @internal
 */
export const executeWithin = (
  settings: Settings,
  attempt: Attempt,
  baseUrl: string | undefined
): Http.Service["execute"] =>
(request) => executeFor(settings, attempt, request, hostOf(request.url, baseUrl))

/** @internal */
export const makePolicy = (settings: Settings): Retry.Policy => ({
  execute: (execute, baseUrl) =>
    executeWithin(
      settings,
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
})
