/**
 * The server's settings, read with Effect `Config` (from the environment by default):
 *
 * | variable | default | |
 * |---|---|---|
 * | `PORT` | `3000` | `0` picks a free port |
 * | `HOST` | `0.0.0.0` | |
 * | `UPSTREAM_URL` | none | the users API to proxy; without it the built-in `Sandbox` is started |
 * | `REDIS_URL` | none | redacted; without it `/health` reports `redis: "disabled"` |
 * | `SHUTDOWN_TIMEOUT` | `30 seconds` | how long in-flight requests may finish after SIGTERM |
 * | `UPSTREAM_RATE_LIMIT` | none | calls per second to the upstream (token bucket; over it → 429) |
 * | `UPSTREAM_TOTAL_TIMEOUT` | `30 seconds` | a whole upstream call, retries included |
 * | `UPSTREAM_ATTEMPT_TIMEOUT` | `10 seconds` | one attempt, until its response headers |
 * | `RETRY_MAX_ATTEMPTS` | `3` | attempts per call, the first included (1: no retries) |
 * | `RETRY_BASE_DELAY` | `1 second` | the first backoff delay (doubling, jittered 0.5–1.5×) |
 * | `RETRY_MAX_DELAY` | `60 seconds` | the longest backoff delay |
 * | `BREAKER_FAILURE_THRESHOLD` | `5` | consecutive failures that open the circuit breaker |
 * | `BREAKER_OPEN_DURATION` | `60 seconds` | how long it stays open (or the upstream's `Retry-After`) |
 * | `BREAKER_HALF_OPEN_PROBES` | `2` | probe calls that must succeed to close it again |
 *
 * The upstream client's timeouts and pool come from `@liaison/core`'s `Http.layerConfig`
 * (`HTTP_CONNECT_TIMEOUT`, `HTTP_READ_TIMEOUT`, `HTTP_WRITE_TIMEOUT`, `HTTP_POOL_TIMEOUT`,
 * `HTTP_TOTAL_TIMEOUT`, `HTTP_MAX_CONNECTIONS`); its base URL is always the upstream's
 * (`HTTP_BASE_URL` is ignored here).
 *
 * @since 0.1.0
 */
import type { CircuitBreaker, Policy } from "@liaison/core"
import { RateLimit } from "@liaison/core"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerConfig {
  readonly port: number
  readonly host: string
  readonly upstreamUrl: Option.Option<string>
  readonly redisUrl: Option.Option<Redacted.Redacted<string>>
  readonly shutdownTimeout: Duration.Duration
  readonly resilience: {
    /** `false`: upstream calls without a policy. */
    readonly policy: Policy.Options | false
    readonly breaker: CircuitBreaker.Options
  }
}

/**
 * `PORT`: 0 to 65535 (0: any free port). Default 3000.
 *
 * @since 0.1.0
 * @category config
 */
export const port: Config.Config<number> = Config.integer("PORT").pipe(
  Config.validate({ message: "Expected a TCP port, 0 to 65535", validation: (port) => port >= 0 && port <= 65535 }),
  Config.withDefault(3000)
)

/**
 * `HOST`. Default `0.0.0.0`.
 *
 * @since 0.1.0
 * @category config
 */
export const host: Config.Config<string> = Config.string("HOST").pipe(Config.withDefault("0.0.0.0"))

/**
 * `UPSTREAM_URL`: an `http:` or `https:` URL without query or fragment, e.g.
 * `https://users.example.com/v1`.
 *
 * @since 0.1.0
 * @category config
 */
export const upstreamUrl: Config.Config<Option.Option<string>> = Config.option(
  Config.url("UPSTREAM_URL").pipe(
    Config.validate({
      message: "Expected an http(s) URL without query or fragment",
      validation: (url) =>
        (url.protocol === "http:" || url.protocol === "https:") && url.search === "" && url.hash === ""
    }),
    Config.map((url) => url.href)
  )
)

/**
 * `REDIS_URL`, redacted: it may carry a password.
 *
 * @since 0.1.0
 * @category config
 */
export const redisUrl: Config.Config<Option.Option<Redacted.Redacted<string>>> = Config.option(
  Config.redacted("REDIS_URL")
)

/**
 * `SHUTDOWN_TIMEOUT`: how long in-flight requests may take to finish once shutdown starts;
 * connections still open then are closed. Default 30 seconds.
 *
 * @since 0.1.0
 * @category config
 */
export const shutdownTimeout: Config.Config<Duration.Duration> = Config.duration("SHUTDOWN_TIMEOUT").pipe(
  Config.withDefault(Duration.seconds(30))
)

const positiveInt = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "Expected an integer ≥ 1", validation: (n) => n >= 1 }),
    Config.withDefault(fallback)
  )

/**
 * The resilience policy of the upstream calls: `UPSTREAM_RATE_LIMIT`, `UPSTREAM_TOTAL_TIMEOUT`,
 * `UPSTREAM_ATTEMPT_TIMEOUT`, `RETRY_MAX_ATTEMPTS`, `RETRY_BASE_DELAY`, `RETRY_MAX_DELAY`,
 * `BREAKER_FAILURE_THRESHOLD`, `BREAKER_OPEN_DURATION`, `BREAKER_HALF_OPEN_PROBES`.
 * Contradictions (an attempt timeout above the total) are refused when the server starts.
 *
 * @since 0.1.0
 * @category config
 */
export const resilience: Config.Config<ServerConfig["resilience"]> = Config.all({
  rateLimit: Config.option(
    Config.number("UPSTREAM_RATE_LIMIT").pipe(
      Config.validate({ message: "Expected calls per second, > 0", validation: (n) => n > 0 })
    )
  ),
  totalTimeout: Config.duration("UPSTREAM_TOTAL_TIMEOUT").pipe(Config.withDefault(Duration.seconds(30))),
  attemptTimeout: Config.duration("UPSTREAM_ATTEMPT_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10))),
  maxAttempts: positiveInt("RETRY_MAX_ATTEMPTS", 3),
  base: Config.duration("RETRY_BASE_DELAY").pipe(Config.withDefault(Duration.seconds(1))),
  cap: Config.duration("RETRY_MAX_DELAY").pipe(Config.withDefault(Duration.seconds(60))),
  failureThreshold: positiveInt("BREAKER_FAILURE_THRESHOLD", 5),
  openDuration: Config.duration("BREAKER_OPEN_DURATION").pipe(Config.withDefault(Duration.seconds(60))),
  halfOpenProbes: positiveInt("BREAKER_HALF_OPEN_PROBES", 2)
}).pipe(Config.map((c) => ({
  policy: {
    totalTimeout: c.totalTimeout,
    attemptTimeout: c.attemptTimeout,
    retry: { maxAttempts: c.maxAttempts, base: c.base, cap: c.cap },
    ...Option.match(c.rateLimit, {
      onNone: () => ({}),
      // Fail fast: a server should answer 429 rather than queue its callers without bound.
      onSome: (perSecond) => ({
        rateLimit: { rule: RateLimit.tokenBucket({ limit: perSecond, interval: "1 second" }), mode: "fail" as const }
      })
    })
  },
  breaker: { failureThreshold: c.failureThreshold, openDuration: c.openDuration, halfOpenProbes: c.halfOpenProbes }
})))

/**
 * Every setting.
 *
 * @since 0.1.0
 * @category config
 */
export const ServerConfig: Config.Config<ServerConfig> = Config.all({
  port,
  host,
  upstreamUrl,
  redisUrl,
  shutdownTimeout,
  resilience
})
