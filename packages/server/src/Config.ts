/**
 * The server's settings, read with Effect `Config` (from the environment by default):
 *
 * | variable | default | |
 * |---|---|---|
 * | `PORT` | `3000` | `0` picks a free port |
 * | `HOST` | `127.0.0.1` | loopback by default; anything else needs real secrets (see `Safety`) |
 * | `UPSTREAM_URL` | none | the users API to proxy; without it the built-in `Sandbox` is started |
 * | `REDIS_URL` | none | redacted; the state of every instance in one Redis (see `Stores`); without it memory, and `/health` reports `redis: "disabled"` |
 * | `SHUTDOWN_TIMEOUT` | `30 seconds` | how long in-flight requests may finish after SIGTERM |
 * | `SERVER_HEADERS_TIMEOUT` | `10 seconds` | a connection whose request headers are not complete by then is answered 408 and closed (slowloris) |
 * | `SERVER_REQUEST_TIMEOUT` | `30 seconds` | the same for the whole request, body included; at least `SERVER_HEADERS_TIMEOUT` |
 * | `SERVER_KEEP_ALIVE_TIMEOUT` | `5 seconds` | how long an idle kept-alive connection stays open |
 * | `SERVER_MAX_HEADER_SIZE` | `16384` | bytes of request line and headers; more → 431 |
 * | `SERVER_MAX_CONNECTIONS` | `1024` | open connections; further ones are closed at once |
 * | `UPSTREAM_RATE_LIMIT` | none | attempts per second to the upstream, retries included (sliding window; over it → 429) |
 * | `UPSTREAM_TOTAL_TIMEOUT`, `UPSTREAM_ATTEMPT_TIMEOUT` | `Policy.defaults` (30 s, 10 s) | a whole upstream call, retries included; one attempt, until its response headers |
 * | `RETRY_MAX_ATTEMPTS`, `RETRY_BASE_DELAY`, `RETRY_MAX_DELAY` | `Retry.defaults` (3, 1 s, 60 s) | attempts per call (the first included), the first backoff delay (doubling, jittered), the longest one |
 * | `BREAKER_FAILURE_THRESHOLD`, `BREAKER_OPEN_DURATION`, `BREAKER_HALF_OPEN_PROBES` | `CircuitBreaker.defaults` (5, 60 s, 2) | consecutive failures that open the circuit breaker, how long it stays open, probes that close it |
 * | `BREAKER_QUORUM`, `BREAKER_QUORUM_WINDOW` | `CircuitBreaker.sharedDefaults` (1, 10 s) | with `REDIS_URL`: instances that must trip within the window before the breaker opens for all (the breaker is shared: a trip is seen by every instance, one probe cluster-wide) |
 *
 * These are read by `Policy.config` (with `Retry.config`) and `CircuitBreaker.config`: the server
 * holds no resilience numbers of its own.
 *
 * The upstream client's timeouts and pool come from `@liaison/core`'s `Http.layerConfig`
 * (`HTTP_CONNECT_TIMEOUT`, `HTTP_READ_TIMEOUT`, `HTTP_WRITE_TIMEOUT`, `HTTP_POOL_TIMEOUT`,
 * `HTTP_TOTAL_TIMEOUT`, `HTTP_MAX_CONNECTIONS`); its base URL is always the upstream's
 * (`HTTP_BASE_URL` is ignored here).
 *
 * @since 0.1.0
 */
import { CircuitBreaker, Policy } from "@liaison/core"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import type * as Option from "effect/Option"
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
  readonly connections: Connections
  readonly resilience: {
    /** `false`: upstream calls without a policy. */
    readonly policy: Policy.Options | false
    readonly breaker: CircuitBreaker.SharedOptions
  }
}

/**
 * What the server allows a client connection: how long it may take to send its request headers
 * and its whole request, how long it may stay idle between requests, how large its headers may
 * be, and how many connections may be open at once. Node checks the timeouts once a second, so a
 * connection is closed within about a second after its timeout.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connections {
  readonly headersTimeout: Duration.Duration
  /** At least `headersTimeout`. */
  readonly requestTimeout: Duration.Duration
  readonly keepAliveTimeout: Duration.Duration
  /** Bytes. */
  readonly maxHeaderSize: number
  readonly maxConnections: number
}

/**
 * {@link Connections}' defaults: 10 s for the headers, 30 s for the whole request, 5 s idle
 * between requests, 16 KiB of headers, 1024 connections.
 *
 * @since 0.1.0
 * @category constants
 */
export const connectionDefaults: Connections = {
  headersTimeout: Duration.seconds(10),
  requestTimeout: Duration.seconds(30),
  keepAliveTimeout: Duration.seconds(5),
  maxHeaderSize: 16 * 1024,
  maxConnections: 1024
}

/**
 * Why `connections` cannot be used, or `undefined`: every timeout above zero (and finite), the
 * request timeout at least the headers timeout, the sizes positive integers.
 *
 * @since 0.1.0
 * @category validation
 */
export const connectionsProblem = (connections: Connections): { option: string; reason: string } | undefined => {
  for (const name of ["headersTimeout", "requestTimeout", "keepAliveTimeout"] as const) {
    const duration = connections[name]
    if (!Duration.isFinite(duration) || Duration.toMillis(duration) < 1) {
      return { option: name, reason: "expected a finite duration of at least 1 millisecond" }
    }
  }
  for (const name of ["maxHeaderSize", "maxConnections"] as const) {
    if (!Number.isSafeInteger(connections[name]) || connections[name] < 1) {
      return { option: name, reason: "expected a positive integer" }
    }
  }
  return Duration.lessThan(connections.requestTimeout, connections.headersTimeout)
    ? { option: "requestTimeout", reason: "expected at least the headers timeout" }
    : undefined
}

/**
 * The server's own defaults: port 3000 on every interface, 30 seconds for the requests in flight
 * at shutdown.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: {
  readonly port: number
  readonly host: string
  readonly shutdownTimeout: Duration.Duration
} = {
  port: 3000,
  // Loopback unless the operator says otherwise: see `Safety` for what a public bind needs.
  host: "127.0.0.1",
  shutdownTimeout: Duration.seconds(30)
}

/**
 * `PORT`: 0 to 65535 (0: any free port). Default 3000.
 *
 * @since 0.1.0
 * @category config
 */
export const port: Config.Config<number> = Config.integer("PORT").pipe(
  Config.validate({ message: "Expected a TCP port, 0 to 65535", validation: (port) => port >= 0 && port <= 65535 }),
  Config.withDefault(defaults.port)
)

/**
 * `HOST`. Default `127.0.0.1`.
 *
 * @since 0.1.0
 * @category config
 */
export const host: Config.Config<string> = Config.string("HOST").pipe(Config.withDefault(defaults.host))

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
  Config.withDefault(defaults.shutdownTimeout)
)

/**
 * An integer ≥ 1 read from `name`, `fallback` when unset.
 *
 * @since 0.1.0
 * @category config
 */
export const positiveInt = (name: string, fallback: number): Config.Config<number> =>
  Config.integer(name).pipe(
    Config.validate({ message: "Expected a positive integer", validation: (n) => n >= 1 }),
    Config.withDefault(fallback)
  )

const timeout = (name: string, fallback: Duration.Duration): Config.Config<Duration.Duration> =>
  Config.duration(name).pipe(
    Config.validate({
      message: "Expected a finite duration of at least 1 millisecond, e.g. 10 seconds",
      validation: (duration) => Duration.isFinite(duration) && Duration.toMillis(duration) >= 1
    }),
    Config.withDefault(fallback)
  )

/**
 * The {@link Connections} limits: `SERVER_HEADERS_TIMEOUT`, `SERVER_REQUEST_TIMEOUT` (at least
 * the headers timeout), `SERVER_KEEP_ALIVE_TIMEOUT`, `SERVER_MAX_HEADER_SIZE` (bytes),
 * `SERVER_MAX_CONNECTIONS`; defaults in {@link connectionDefaults}.
 *
 * @since 0.1.0
 * @category config
 */
export const connections: Config.Config<Connections> = Config.all({
  headersTimeout: timeout("SERVER_HEADERS_TIMEOUT", connectionDefaults.headersTimeout),
  requestTimeout: timeout("SERVER_REQUEST_TIMEOUT", connectionDefaults.requestTimeout),
  keepAliveTimeout: timeout("SERVER_KEEP_ALIVE_TIMEOUT", connectionDefaults.keepAliveTimeout),
  maxHeaderSize: positiveInt("SERVER_MAX_HEADER_SIZE", connectionDefaults.maxHeaderSize),
  maxConnections: positiveInt("SERVER_MAX_CONNECTIONS", connectionDefaults.maxConnections)
}).pipe(
  Config.validate({
    message: "Expected SERVER_REQUEST_TIMEOUT to be at least SERVER_HEADERS_TIMEOUT",
    validation: (limits) => !Duration.lessThan(limits.requestTimeout, limits.headersTimeout)
  })
)

/**
 * The resilience policy of the upstream calls (`Policy.config`: `UPSTREAM_*` and `RETRY_*`) and
 * its circuit breakers (`CircuitBreaker.config`: `BREAKER_*`). A rate limit fails fast: a server
 * should answer 429 rather than queue its callers without bound. Contradictions (an attempt
 * timeout above the total) are refused when the server starts.
 *
 * @since 0.1.0
 * @category config
 */
export const resilience: Config.Config<ServerConfig["resilience"]> = Config.all({
  policy: Config.map(
    Policy.config,
    (policy): Policy.Options =>
      policy.rateLimit === undefined ? policy : { ...policy, rateLimit: { ...policy.rateLimit, mode: "fail" } }
  ),
  breaker: CircuitBreaker.config
})

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
  connections,
  resilience
})
