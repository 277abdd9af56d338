/**
 * Retries with exponential backoff and jitter, built from `Schedule`, for the failures that a
 * retry can fix, and only where a retry is safe.
 *
 * - Delays: `Schedule.exponential(base, factor)`, jittered 0.5–1.5× (`Schedule.jitteredWith`),
 *   capped at `cap`; at most `maxAttempts` attempts (the first included).
 * - Retryable: statuses 408, 429, 500, 502, 503, 504, transport errors and attempt timeouts unless
 *   `HttpError.transience` calls them permanent (a refused address); `isRetryable` overrides case
 *   by case.
 * - Safe: GET, HEAD, OPTIONS, PUT and DELETE are retried; POST and PATCH only with an
 *   `Idempotency-Key` header or `retryNonIdempotent: true`.
 * - The server's word counts: after `Retry-After` (seconds or HTTP-date), `RateLimit-Reset` or
 *   `X-RateLimit-Reset`, the next attempt waits at least that long; if it asks for more than
 *   `maxRetryAfter`, the call fails at once with `RetryAfterTooLong` carrying the server's delay.
 * - A retry budget per host (default: 20% of the last 10 seconds' requests, plus 10 retries per
 *   second): when spent, a retryable failure fails fast with `RetryBudgetExhausted`. The budget
 *   is counted in a {@link BudgetStore}: by default each policy's own, in memory; with
 *   {@link layerBudgetStoreRedis} in context, one budget per host for every instance.
 * - `deadline` bounds the whole retried call (`TimeoutError` in phase `total`); a retry whose
 *   delay would end past the deadline is not attempted.
 *
 * {@link middleware} (or {@link layer}) retries every call of an `Http`; {@link make}'s `retry`
 * retries any effect failing with an `HttpError`.
 *
 * Unlike `HttpClient.retryTransient`, nothing here retries forever, POST is not replayed by
 * accident, and a server asking for time gets it.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as Http from "./Http.js"
import type { HttpError, RetryAfterTooLong, RetryBudgetExhausted, TimeoutError } from "./HttpError.js"
import * as internal from "./internal/retry.js"
import * as Budget from "./internal/retryBudget.js"
import type { InvalidOptions } from "./LiaisonError.js"
import * as Redis from "./Redis.js"

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

/**
 * A retry policy with its own budget.
 *
 * @since 0.1.0
 * @category models
 */
export interface Policy {
  /** Wraps an `Http` execute: every attempt in the caller's scope, a retried answer's body freed before the next. */
  readonly execute: (
    execute: Http.Service["execute"],
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

/**
 * The defaults of {@link Options}: 3 attempts, 1 s doubling up to 60 s, jitter 0.5–1.5×, a
 * server may ask for up to 60 s, a budget of 20 % of the last 10 s' requests plus 10 retries
 * per second.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: {
  readonly maxAttempts: number
  readonly base: Duration.Duration
  readonly factor: number
  readonly cap: Duration.Duration
  readonly jitter: { readonly min: number; readonly max: number }
  readonly statuses: ReadonlyArray<number>
  readonly idempotentMethods: ReadonlyArray<string>
  readonly retryNonIdempotent: boolean
  readonly maxRetryAfter: Duration.Duration
  readonly budget: {
    readonly ratio: number
    readonly minRetriesPerSecond: number
    readonly window: Duration.Duration
  }
} = {
  maxAttempts: 3,
  base: Duration.seconds(1),
  factor: 2,
  cap: Duration.seconds(60),
  jitter: { min: 0.5, max: 1.5 },
  statuses: defaultStatuses,
  idempotentMethods: defaultIdempotentMethods,
  retryNonIdempotent: false,
  maxRetryAfter: Duration.seconds(60),
  budget: { ratio: 0.2, minRetriesPerSecond: 10, window: Duration.seconds(10) }
}

/**
 * The counting behind the retry budget, per host. `settings` travel with each call, so policies
 * with different ratios can share one store (policies with different windows count apart).
 *
 * @since 0.1.0
 * @category models
 */
export interface BudgetStoreService {
  /** Counts a first attempt. Never waits: a shared store counts in the background. */
  readonly request: (host: string, settings: BudgetSettings, nowMillis: number) => void
  /** Takes one retry from the host's budget, if there is one left. */
  readonly tryRetry: (host: string, settings: BudgetSettings, nowMillis: number) => Effect.Effect<boolean>
}

/**
 * A budget as a store sees it: retries allowed per window are `minRetries + ratio × requests`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BudgetSettings {
  readonly ratio: number
  readonly minRetries: number
  readonly windowMillis: number
}

/**
 * Where retry budgets are counted. Optional: without one in context each policy counts its own
 * budget in memory (what {@link layerBudgetStoreMemory} shares across the policies of one
 * process).
 *
 * @since 0.1.0
 * @category tags
 */
export class BudgetStore extends Context.Tag("@liaison/core/Retry/BudgetStore")<BudgetStore, BudgetStoreService>() {}

/**
 * One in-memory budget per host, shared by every policy built with it in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBudgetStoreMemory: Layer.Layer<BudgetStore> = Layer.sync(BudgetStore, Budget.makeMemory)

/**
 * One budget per host for every instance on the shared {@link Redis.Redis}: atomic Lua under
 * `prefix` (default `liaison:retry-budget:`), keys expiring with the window, Redis `TIME` as the
 * clock. Fails open to a local budget: first attempts are counted in the background (a call
 * never waits for Redis), a retry waits at most 100 ms for Redis' answer, and while Redis fails
 * this instance's own count decides (one log line per outage).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBudgetStoreRedis = (
  options: { readonly prefix?: string | undefined } = {}
): Layer.Layer<BudgetStore, never, Redis.Redis> =>
  Layer.effect(
    BudgetStore,
    Effect.map(Redis.Redis, (redis) => Budget.makeRedis(redis, options.prefix ?? "liaison:retry-budget:"))
  )

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * The options from the environment: `RETRY_MAX_ATTEMPTS` (an integer ≥ 1), `RETRY_BASE_DELAY`,
 * `RETRY_MAX_DELAY` (the cap; durations such as `2 seconds`). Unset variables stay undefined:
 * {@link make} fills in the {@link defaults}.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  maxAttempts: optional(
    Config.integer("RETRY_MAX_ATTEMPTS").pipe(
      Config.validate({ message: "Expected an integer ≥ 1", validation: (n) => n >= 1 })
    )
  ),
  base: optional(Config.duration("RETRY_BASE_DELAY")),
  cap: optional(Config.duration("RETRY_MAX_DELAY"))
})

/**
 * The backoff schedule: exponential from `base` by `factor`, jittered, capped, `maxAttempts - 1`
 * recurrences.
 *
 * @since 0.1.0
 * @category constructors
 */
export const backoff = (options: Options = {}): Schedule.Schedule<Duration.Duration> =>
  internal.backoff(options, defaults)

/**
 * A retry policy. Its budget is counted in the {@link BudgetStore} in context, if any, else in a
 * memory store of its own (share one `Policy`, or provide a store, to share a budget).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Policy, InvalidOptions> =>
  Effect.flatMap(
    Effect.serviceOption(BudgetStore),
    (store) => Effect.map(internal.resolve(options, defaults, Option.getOrUndefined(store)), internal.makePolicy)
  )

/**
 * The policy as an {@link Http.Http} middleware: every call through it is retried.
 *
 * @since 0.1.0
 * @category constructors
 */
export const middleware = (options: Options = {}): Effect.Effect<Http.Middleware, InvalidOptions> =>
  Effect.map(make(options), (policy) => (execute, http) => policy.execute(execute, http.options.baseUrl))

/**
 * Wraps the {@link Http.Http} service so every call through it is retried by this policy.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Http.Http, InvalidOptions, Http.Http> =>
  Http.decorate(middleware(options))

/**
 * {@link layer} with its options from `Config` (default {@link config}; the caller may name its
 * own variables: `Retry.layerConfig({ maxAttempts: Config.integer("MY_RETRIES") })`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<Http.Http, InvalidOptions | ConfigError.ConfigError, Http.Http> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
