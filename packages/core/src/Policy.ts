/**
 * One resilience policy for every call of an {@link Http.Http} client, per upstream host:
 *
 * 1. total timeout (the whole call, retries and their delays included; default 30 s),
 * 2. retry (`Retry`: backoff with jitter, idempotent methods only, Retry-After, a budget per
 *    host, shared by every instance with `Retry.layerBudgetStoreRedis`),
 * 3. per attempt, the gates: rate limit (`RateLimit`, one limit per host; off unless configured)
 *    and circuit breaker (`CircuitBreaker`, one per host: each attempt is judged, a 5xx or 429
 *    answer counts as a failure even though it is a response),
 * 4. attempt timeout (each attempt until its response headers; default 10 s).
 *
 * Every attempt, a retry too, takes a permit: the upstream never sees more than the limit,
 * whatever fails. While a host is healthy the limiter comes first and the breaker times only the
 * attempt (a wait for a permit is never a slow call); once an attempt has failed, the breaker is
 * looked at first, and an open (or half-open) breaker refuses before the limiter, so a refused
 * attempt spends no permit. An open breaker stops the retries at once.
 *
 * Telemetry: a `liaison.call` span per call with one `liaison.attempt` child per attempt (only
 * when a tracer that records is installed), and the metrics
 * `liaison_http_client_duration_seconds`, `liaison_http_client_attempts_total`,
 * `liaison_http_client_retries_total` and `liaison_retry_budget_exhausted_total`.
 *
 * ```ts
 * const HttpLive = Policy.layer({ rateLimit: { rule: RateLimit.tokenBucket({ limit: 50, interval: "1 second" }) } }).pipe(
 *   Layer.provide([Http.layer({ baseUrl: "https://api.example.com" }), CircuitBreaker.layer(), RateLimit.layerMemory()])
 * )
 * // without a limit, no limiter: Policy.layer().pipe(Layer.provide([Http.layer(...), CircuitBreaker.layer()]))
 * // or all of it from the environment: Policy.layerClientConfig()
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as Http from "./Http.js"
import * as internal from "./internal/policy.js"
import type { InvalidOptions } from "./LiaisonError.js"
import * as RateLimit from "./RateLimit.js"
import * as Retry from "./Retry.js"

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

/**
 * The defaults of {@link Options}: 30 seconds for the whole call, 10 seconds per attempt.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: {
  readonly totalTimeout: Duration.Duration
  readonly attemptTimeout: Duration.Duration
} = {
  totalTimeout: Duration.seconds(30),
  attemptTimeout: Duration.seconds(10)
}

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * The options from the environment: `UPSTREAM_TOTAL_TIMEOUT`, `UPSTREAM_ATTEMPT_TIMEOUT`
 * (durations), `UPSTREAM_RATE_LIMIT` (attempts per second, an integer ≥ 1, retries included: a
 * sliding window counted over 1.1 s, so that no second at the upstream holds more even when calls
 * take up to 100 ms more or less to get there; waiting for a permit unless the caller sets
 * `mode`) and the retry's {@link Retry.config}.
 * Unset variables stay undefined: {@link make} fills in the {@link defaults}.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  totalTimeout: optional(Config.duration("UPSTREAM_TOTAL_TIMEOUT")),
  attemptTimeout: optional(Config.duration("UPSTREAM_ATTEMPT_TIMEOUT")),
  rateLimit: optional(
    Config.integer("UPSTREAM_RATE_LIMIT").pipe(
      Config.validate({ message: "Expected calls per second, an integer ≥ 1", validation: (n) => n >= 1 }),
      // A sliding window (a token bucket would let its burst through on top), counted over 1.1 s:
      // calls take different times from their permit to the upstream, and up to 100 ms of that
      // spread must not put limit + 1 of them into one of the upstream's seconds.
      Config.map((perSecond) => ({ rule: RateLimit.slidingWindow({ limit: perSecond, window: "1100 millis" }) }))
    )
  ),
  retry: Retry.config
})

/**
 * Options that configure a rate limit: a policy built with them needs a {@link RateLimit.RateLimit}.
 *
 * @since 0.1.0
 * @category models
 */
export type OptionsWithRateLimit = Options & { readonly rateLimit: NonNullable<Options["rateLimit"]> }

/**
 * The policy as an {@link Http.Http} middleware. Its breakers come from context, and so does
 * its limiter when `rateLimit` is set (only then: a policy without a limit needs no
 * `RateLimit`). Contradictory options fail here, never at call time, and so does a `rateLimit`
 * with no `RateLimit` in context.
 *
 * The types follow the options: literal options with a `rateLimit` require
 * `RateLimit.RateLimit`; any other `Options` value (e.g. read from `Config`) requires only
 * `CircuitBreaker`, and a limit it turns out to carry is checked when the policy is built.
 *
 * @since 0.1.0
 * @category constructors
 */
export const middleware: {
  (
    options: OptionsWithRateLimit
  ): Effect.Effect<Http.Middleware, InvalidOptions, CircuitBreaker.CircuitBreaker | RateLimit.RateLimit>
  (options?: Options): Effect.Effect<Http.Middleware, InvalidOptions, CircuitBreaker.CircuitBreaker>
} = (options: Options = {}): Effect.Effect<Http.Middleware, InvalidOptions, CircuitBreaker.CircuitBreaker> =>
  Effect.map(
    internal.make(options, defaults),
    (engine): Http.Middleware => (execute, http) => internal.wrap(engine, execute, http.options.baseUrl)
  )

/**
 * Wraps an {@link Http.Service} in the policy (requirements as for {@link middleware}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: {
  (
    http: Http.Service,
    options: OptionsWithRateLimit
  ): Effect.Effect<Http.Service, InvalidOptions, CircuitBreaker.CircuitBreaker | RateLimit.RateLimit>
  (http: Http.Service, options?: Options): Effect.Effect<Http.Service, InvalidOptions, CircuitBreaker.CircuitBreaker>
} = (
  http: Http.Service,
  options: Options = {}
): Effect.Effect<Http.Service, InvalidOptions, CircuitBreaker.CircuitBreaker> =>
  Effect.map(middleware(options), (m) => Http.withMiddleware(http, m))

/**
 * Replaces the {@link Http.Http} service with one whose every call goes through the policy:
 * over `Http | CircuitBreaker`, and `RateLimit` too when a `rateLimit` is configured (see
 * {@link middleware}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: {
  (
    options: OptionsWithRateLimit
  ): Layer.Layer<Http.Http, InvalidOptions, Http.Http | CircuitBreaker.CircuitBreaker | RateLimit.RateLimit>
  (options?: Options): Layer.Layer<Http.Http, InvalidOptions, Http.Http | CircuitBreaker.CircuitBreaker>
} = (options: Options = {}): Layer.Layer<Http.Http, InvalidOptions, Http.Http | CircuitBreaker.CircuitBreaker> =>
  Http.decorate(middleware(options))

/**
 * {@link layer} with its options from `Config` (default {@link config}; the caller may name its
 * own variables). A configured limit (`UPSTREAM_RATE_LIMIT`) needs a `RateLimit` in context:
 * without one the layer fails with `InvalidOptions` when it is built ({@link layerClientConfig}
 * provides one).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<
  Http.Http,
  InvalidOptions | ConfigError.ConfigError,
  Http.Http | CircuitBreaker.CircuitBreaker
> => Layer.unwrapEffect(Effect.map(Config.unwrap(options), (resolved) => layer(resolved)))

/**
 * What {@link layerClientConfig} reads; each field defaults to its module's own `config`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientConfig {
  /** Passed to `Http.layerConfig` (which reads `HTTP_BASE_URL`, `HTTP_*_TIMEOUT`, `HTTP_MAX_CONNECTIONS`). */
  readonly http?: Omit<Http.Options, "timeouts" | "pool"> | undefined
  /** Default {@link config} (`UPSTREAM_*`, `RETRY_*`). */
  readonly policy?: Config.Config.Wrap<Options> | undefined
  /** Default `CircuitBreaker.config` (`BREAKER_*`). */
  readonly breaker?: Config.Config.Wrap<CircuitBreaker.Options> | undefined
}

/**
 * A whole resilient client from the environment in one line: `Http.layerConfig` under
 * {@link layerConfig}, with its own `CircuitBreaker.layerConfig` registry and, only when a limit
 * is configured (`UPSTREAM_RATE_LIMIT`), a limiter: the `RateLimit` in context if there is one
 * (e.g. `RateLimit.layerRedis()`, shared by every instance), else an in-memory one.
 *
 * ```ts
 * // HTTP_BASE_URL=https://api.example.com UPSTREAM_RATE_LIMIT=50 BREAKER_FAILURE_THRESHOLD=3
 * const program = Http.json(HttpClientRequest.get("/users/1"), User).pipe(
 *   Effect.provide(Policy.layerClientConfig())
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClientConfig = (
  options: ClientConfig = {}
): Layer.Layer<Http.Http, InvalidOptions | ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const policy = yield* Config.unwrap(options.policy ?? config)
      const inContext = yield* Effect.serviceOption(RateLimit.RateLimit)
      const limiter: Layer.Layer<never> | Layer.Layer<RateLimit.RateLimit> = policy.rateLimit === undefined
        ? Layer.empty
        : Option.match(inContext, {
          onNone: () => RateLimit.layerMemory(),
          onSome: (existing) => Layer.succeed(RateLimit.RateLimit, existing)
        })
      return layer(policy).pipe(
        Layer.provide(Layer.mergeAll(
          Http.layerConfig(options.http),
          CircuitBreaker.layerConfig(options.breaker ?? CircuitBreaker.config),
          limiter
        ))
      )
    })
  )
