/**
 * The policy engine: options checked once, then per call: key → total timeout → retry → per
 * attempt: breaker and limiters (see `guarded` for their order) → attempt timeout. Every step is
 * a top-level function over one `Engine`; what a key needs (its breaker, adaptive limiter,
 * labels) is resolved once and kept in a `KeyState`.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as CircuitBreaker from "../CircuitBreaker.js"
import type * as Http from "../Http.js"
import * as HttpError from "../HttpError.js"
import { InvalidOptions } from "../LiaisonError.js"
import type * as Policy from "../Policy.js"
import * as RateLimit from "../RateLimit.js"
import * as Retry from "../Retry.js"
import { millis } from "./duration.js"
import { directCallOf, honoursDeadlines, isAbsoluteUrl, type Open, openOf, setDirectCall } from "./httpClient.js"
import * as Invalid from "./invalidOptions.js"
import { locally } from "./locally.js"
import * as Telemetry from "./policyTelemetry.js"
import * as RetryEngine from "./retry.js"
import { liveClock, timeoutFail } from "./timeout.js"
import { currentHeadersDeadline } from "./undiciTransport.js"

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
  /** `undefined`: the key is the URL's host (found without parsing the URL on every call). */
  readonly keyOf: ((url: URL) => string) | undefined
  /** One adaptive limiter per key, created on first use. */
  readonly adaptives: Map<string, RateLimit.Adaptive>
}

/**
 * What the calls of one key (to one host) share, resolved once.
 *
 * @internal
 */
export interface KeyState {
  readonly key: string
  readonly host: string
  readonly breaker: CircuitBreaker.Breaker | undefined
  readonly adaptive: RateLimit.Adaptive | undefined
  readonly labels: Telemetry.HostLabels
  /** The permits of every limiter of the key (one effect, reused by every attempt). */
  readonly permit: Effect.Effect<void, HttpError.RateLimited> | undefined
  /** The breaker's verdict on an attempt; notes whether the key is healthy. */
  readonly judge: (exit: Exit.Exit<unknown, unknown>) => CircuitBreaker.Verdict
  /** The attempt of an untraced call. */
  readonly attempt: Attempt
  /**
   * The last attempt through the breaker succeeded: the breaker is (almost surely) closed, so
   * the limiter is asked first with no look at the breaker (see `guarded`).
   */
  healthy: boolean
}

type Attempt = RetryEngine.Attempt
type Request = Parameters<Http.Service["execute"]>[0]

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
 * Checks the options and takes the breakers (and, when a limit is configured, the limiter;
 * and a retry budget store, if one is in context) from context.
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
    const store = Option.getOrUndefined(yield* Effect.serviceOption(Retry.BudgetStore))
    const retry = options.retry === false
      ? undefined
      : yield* RetryEngine.resolve({ ...options.retry, deadline: total }, Retry.defaults, store)
    // Checked now, not at the first call.
    if (options.adaptive !== undefined) yield* RateLimit.makeAdaptive(options.adaptive)
    return {
      options,
      breakers,
      rateLimit,
      retry,
      attemptMillis,
      totalMillis,
      keyOf: options.keyOf,
      adaptives: new Map()
    }
  })

/** What a wrapped `execute` shares with its calls. */
interface Wrapped {
  readonly engine: Engine
  readonly send: Send
  readonly baseUrl: string | undefined
  /** Per key and host, resolved on first use. */
  readonly states: Map<string, KeyState>
}

/** The key's state, created (breaker and adaptive limiter resolved) on its first call. */
const stateFor = (wrapped: Wrapped, key: string, host: string): Effect.Effect<KeyState> => {
  const id = key === host ? key : `${key}\u0000${host}`
  const existing = wrapped.states.get(id)
  if (existing !== undefined) return Effect.succeed(existing)
  const { engine } = wrapped
  const breaker = engine.options.breaker === false ? Effect.succeed(undefined) : engine.breakers.get(key)
  return Effect.zipWith(breaker, adaptiveFor(engine, key), (breaker, adaptive) => {
    const state: KeyState = {
      key,
      host,
      breaker,
      adaptive,
      labels: Telemetry.hostLabels(host),
      permit: permits(engine, key, adaptive),
      judge: (exit) => judge(state, exit, wrapped.baseUrl),
      attempt: (request, remaining, info) => attemptWith(wrapped.send, state, undefined, request, remaining, info),
      healthy: true
    }
    wrapped.states.set(id, state)
    return state
  })
}

const adaptiveFor = (engine: Engine, key: string): Effect.Effect<RateLimit.Adaptive | undefined> =>
  Effect.suspend(() => {
    const existing = engine.adaptives.get(key)
    if (existing !== undefined || engine.options.adaptive === undefined) return Effect.succeed(existing)
    return Effect.map(Effect.orDie(RateLimit.makeAdaptive(engine.options.adaptive)), (adaptive) => {
      engine.adaptives.set(key, adaptive)
      return adaptive
    })
  })

type Send = (request: Request, remainingMillis: number | undefined) => ReturnType<Http.Service["execute"]>

/**
 * One deadline per attempt: the attempt timeout, or what is left of the total when that is less.
 * Over Liaison's own transport (and the live clock) the transport keeps it, as one plain timer
 * from the wait for a pool slot to the response headers; otherwise a timer interrupts the attempt
 * (under a `TestClock`, Effect's own, which the test clock drives).
 */
const timed =
  (engine: Engine, execute: Http.Service["execute"], transportKeepsIt: boolean): Send => (request, remainingMillis) => {
    const byTotal = remainingMillis !== undefined && remainingMillis < engine.attemptMillis
    const millis = byTotal ? Math.max(0, remainingMillis) : engine.attemptMillis
    const onTimeout = () =>
      HttpError.timeout(request, byTotal ? "total" : "attempt", byTotal ? engine.totalMillis : engine.attemptMillis)
    if (!transportKeepsIt) return timeoutFail(execute(request), millis, onTimeout)
    return Effect.withFiberRuntime((fiber) =>
      Context.get(fiber.currentDefaultServices, Clock.Clock) === liveClock
        ? locally(execute(request), currentHeadersDeadline, { millis, at: Date.now() + millis, onTimeout })
        : timeoutFail(execute(request), millis, onTimeout)
    )
  }

const healthy: CircuitBreaker.Verdict = { _tag: "Success" }

/**
 * The breaker's verdict on a response: a 5xx or 429 is a failure, described (URL redacted) for
 * the `CircuitOpen` errors of the breaker it opens.
 */
const verdictOfResponse = (response: Http.Response, baseUrl: string | undefined): CircuitBreaker.Verdict => {
  // A success reads no header: the transport converts them only when asked.
  if (!CircuitBreaker.isFailureStatus(response.status)) return healthy
  const verdict = CircuitBreaker.verdictOfResponse(response.status, response.headers, Date.now())
  if (verdict._tag === "Success") return verdict
  const { method, url } = response.request
  const full = baseUrl === undefined || isAbsoluteUrl(url) ? url : baseUrl + url
  return {
    ...verdict,
    openedBy: { _tag: "StatusError", message: `${method} ${HttpError.redactUrl(full)} answered ${response.status}` }
  }
}

const judge = (
  state: KeyState,
  exit: Exit.Exit<unknown, unknown>,
  baseUrl: string | undefined
): CircuitBreaker.Verdict => {
  const verdict = exit._tag === "Success"
    ? verdictOfResponse(exit.value as Http.Response, baseUrl)
    : exit.cause._tag === "Fail"
    ? CircuitBreaker.defaultVerdict(exit.cause.error)
    : { _tag: "Failure" as const, retryAfterMillis: undefined }
  state.healthy = verdict._tag === "Success"
  return verdict
}

/** Waits for (or is refused) a permit of every limiter of the key. */
const permits = (
  engine: Engine,
  key: string,
  adaptive: RateLimit.Adaptive | undefined
): Effect.Effect<void, HttpError.RateLimited> | undefined => {
  const { rateLimit } = engine
  const limit = rateLimit === undefined
    ? undefined
    : rateLimit.limiter.acquire(key, rateLimit.rule, rateLimit.mode, key)
  const adaptivePermit = adaptive?.acquire(engine.options.rateLimit?.mode)
  return adaptivePermit === undefined
    ? limit
    : limit === undefined
    ? adaptivePermit
    : Effect.zipRight(adaptivePermit, limit)
}

/**
 * One attempt with its gates. Every attempt (a retry too) takes a permit, so the upstream never
 * sees more than the limit. The order: while the key is healthy, the limiter first, then the
 * breaker (a limiter's wait is not part of the attempt the breaker times, so it never counts as
 * a slow call). After a failure, the breaker is looked at first: open or half-open, it judges
 * before the limiter (a call it refuses spends no permit); closed, the order stays.
 */
const guarded = (
  state: KeyState,
  attempt: ReturnType<Http.Service["execute"]>
): ReturnType<Http.Service["execute"]> => {
  const adaptive = state.adaptive
  const observed = adaptive === undefined
    ? attempt
    : Effect.tap(attempt, (response) => adaptive.observe(response.status, response.headers))
  const { breaker, permit } = state
  if (breaker === undefined) return permit === undefined ? observed : Effect.zipRight(permit, observed)
  if (permit === undefined) return breaker.protectWith(observed, state.judge)
  if (state.healthy) return Effect.zipRight(permit, breaker.protectWith(observed, state.judge))
  return Effect.flatMap(breaker.snapshot, (snapshot) =>
    snapshot.state === "Closed"
      ? Effect.zipRight(permit, breaker.protectWith(observed, state.judge))
      : breaker.protectWith(Effect.zipRight(permit, observed), state.judge))
}

/** One attempt of one key (in a span of its own inside a traced call). */
const attemptWith = (
  send: Send,
  state: KeyState,
  call: Telemetry.CallSpan | undefined,
  request: Request,
  remaining: number | undefined,
  info: RetryEngine.AttemptInfo
): ReturnType<Http.Service["execute"]> => {
  const attempt = guarded(state, send(request, remaining))
  return call === undefined ? attempt : Telemetry.tracedAttempt(state.labels, request.method, info, call, attempt)
}

/**
 * One call of one key: the retried attempts, the call's span and duration around them. An
 * untraced attempt is counted by the retry loop, from the exit it looks at anyway.
 */
const call = (
  wrapped: Wrapped,
  request: Request,
  state: KeyState,
  send: Send | undefined
): ReturnType<Http.Service["execute"]> =>
  Telemetry.call(state.labels, request, (span, fiberLabels) => {
    const { engine } = wrapped
    const attempt: Attempt = span === undefined && send === undefined
      ? state.attempt
      : (request, remaining, info) => attemptWith(send ?? wrapped.send, state, span, request, remaining, info)
    const count = span === undefined
      ? (exit: Exit.Exit<Http.Response, HttpError.HttpError>) => {
        Telemetry.countAttempt(state.labels, request.method, fiberLabels, exit)
      }
      : undefined
    if (engine.retry !== undefined) return RetryEngine.executeFor(engine.retry, attempt, request, state.host, count)
    const once = attempt(request, engine.totalMillis, RetryEngine.firstAttempt)
    return count === undefined ? once : Effect.onExit(once, (exit) => Effect.sync(() => count(exit)))
  })

/** Hosts by the authority of absolute URLs, so a call does not parse its URL (bounded). */
const hostCache = new Map<string, string>()
const hostCacheLimit = 1024

/** The host of a request URL (as `URL#host` has it), or `undefined` when it is not a valid URL. */
const hostOf = (url: string, baseHost: string | undefined, baseUrl: string | undefined): string | undefined => {
  if (!isAbsoluteUrl(url)) {
    if (baseHost !== undefined && !url.startsWith("//")) return baseHost
    return parsedHost(url, baseUrl)
  }
  const from = url.indexOf("://") + 3
  let end = from
  while (end < url.length && url[end] !== "/" && url[end] !== "?" && url[end] !== "#") end++
  const authority = url.slice(0, end)
  const cached = hostCache.get(authority)
  if (cached !== undefined) return cached
  const host = parsedHost(authority, undefined)
  if (host === undefined) return undefined
  if (hostCache.size >= hostCacheLimit) hostCache.clear()
  hostCache.set(authority, host)
  return host
}

const parsedHost = (url: string, baseUrl: string | undefined): string | undefined => {
  try {
    return new URL(url, baseUrl).host
  } catch {
    return undefined
  }
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
  const transportKeepsIt = honoursDeadlines(execute)
  const wrapped: Wrapped = { engine, send: timed(engine, execute, transportKeepsIt), baseUrl, states: new Map() }
  const baseHost = baseUrl === undefined ? undefined : parsedHost(baseUrl, undefined)
  /** `f` with the request's key state; `otherwise()` when its URL is not one (the client reports it). */
  const withState = <A, E, R>(
    request: Request,
    f: (state: KeyState) => Effect.Effect<A, E, R>,
    otherwise: () => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    let key: string
    let host: string | undefined
    if (engine.keyOf === undefined) {
      host = hostOf(request.url, baseHost, baseUrl)
      key = host ?? ""
    } else {
      let url: URL
      try {
        url = new URL(request.url, baseUrl)
      } catch {
        return otherwise()
      }
      host = url.host
      key = engine.keyOf(url)
    }
    if (host === undefined) return otherwise()
    const state = wrapped.states.get(key === host ? key : `${key}\u0000${host}`)
    return state !== undefined ? f(state) : Effect.flatMap(stateFor(wrapped, key, host), f)
  }
  const policyExecute: Http.Service["execute"] = (request) =>
    withState(request, (state) => call(wrapped, request, state, undefined), () => execute(request))
  const open = openOf(execute)
  const underlying = directCallOf(execute)
  if (open !== undefined && underlying !== undefined) {
    setDirectCall(policyExecute, (request, read) =>
      withState(
        request,
        (state) => directCall(wrapped, state, timedOpen(engine, open, transportKeepsIt), request, read),
        () => underlying(request, read)
      ))
  }
  return policyExecute
}

/** The send of one direct call: `open` under the attempt's deadline, each slot's close kept for the end. */
const timedOpen = (engine: Engine, open: Open, transportKeepsIt: boolean) => {
  const closes: Array<Effect.Effect<void>> = []
  const register = (close: Effect.Effect<void>) => {
    closes.push(close)
  }
  return { closes, send: timed(engine, (request) => open(request, register), transportKeepsIt) }
}

/**
 * A call through the policy read in one step, without a `Scope`: every attempt's slot is given
 * back when the call ends (a retried attempt's as soon as its body is drained, the last one's
 * when `read` has read it), an unread body cancelled.
 */
const directCall = <A, R>(
  wrapped: Wrapped,
  state: KeyState,
  sends: ReturnType<typeof timedOpen>,
  request: Request,
  read: (response: Http.Response) => Effect.Effect<A, HttpError.HttpError, R>
): Effect.Effect<A, HttpError.HttpError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.onExit(
      // The attempts' sends hold their slots without a scope: none is needed here.
      restore(Effect.flatMap(
        call(wrapped, request, state, sends.send) as Effect.Effect<Http.Response, HttpError.HttpError>,
        read
      )),
      () =>
        sends.closes.length === 1 ? sends.closes[0]! : Effect.forEach(sends.closes, (close) => close, { discard: true })
    )
  )
