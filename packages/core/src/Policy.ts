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
 *   Layer.provide([Http.layer({ baseUrl: "https://api.example.com" }), CircuitBreaker.layer(), RateLimit.layerMemory()])
 * )
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
import type * as CircuitBreaker from "./CircuitBreaker.js"
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
 * (durations), `UPSTREAM_RATE_LIMIT` (calls per second, > 0: a token bucket of that many per
 * second, waiting for a permit unless the caller sets `mode`) and the retry's {@link Retry.config}.
 * Unset variables stay undefined: {@link make} fills in the {@link defaults}.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  totalTimeout: optional(Config.duration("UPSTREAM_TOTAL_TIMEOUT")),
  attemptTimeout: optional(Config.duration("UPSTREAM_ATTEMPT_TIMEOUT")),
  rateLimit: optional(
    Config.number("UPSTREAM_RATE_LIMIT").pipe(
      Config.validate({ message: "Expected calls per second, > 0", validation: (n) => n > 0 }),
      Config.map((perSecond) => ({ rule: RateLimit.tokenBucket({ limit: perSecond, interval: "1 second" }) }))
    )
  ),
  retry: Retry.config
})

/**
 * The policy as an {@link Http.Http} middleware. Its breakers and limiter come from context;
 * contradictory options fail here, never at call time.
 *
 * @since 0.1.0
 * @category constructors
 */
export const middleware = (
  options: Options = {}
): Effect.Effect<Http.Middleware, InvalidOptions, CircuitBreaker.CircuitBreaker | RateLimit.RateLimit> =>
  Effect.map(
    internal.make(options, defaults),
    (engine): Http.Middleware => (execute, http) => internal.wrap(engine, execute, http.options.baseUrl)
  )

/**
 * Wraps an {@link Http.Service} in the policy.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  http: Http.Service,
  options: Options = {}
): Effect.Effect<Http.Service, InvalidOptions, CircuitBreaker.CircuitBreaker | RateLimit.RateLimit> =>
  Effect.map(middleware(options), (m) => Http.withMiddleware(http, m))

/**
 * Replaces the {@link Http.Http} service with one whose every call goes through the policy.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Http.Http, InvalidOptions, Http.Http | CircuitBreaker.CircuitBreaker | RateLimit.RateLimit> =>
  Http.decorate(middleware(options))

/**
 * {@link layer} with its options from `Config` (default {@link config}; the caller may name its
 * own variables).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<
  Http.Http,
  InvalidOptions | ConfigError.ConfigError,
  Http.Http | CircuitBreaker.CircuitBreaker | RateLimit.RateLimit
> => Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))
