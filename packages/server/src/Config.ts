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
 *
 * The upstream client's timeouts and pool come from `@liaison/core`'s `Http.layerConfig`
 * (`HTTP_CONNECT_TIMEOUT`, `HTTP_READ_TIMEOUT`, `HTTP_WRITE_TIMEOUT`, `HTTP_POOL_TIMEOUT`,
 * `HTTP_TOTAL_TIMEOUT`, `HTTP_MAX_CONNECTIONS`); its base URL is always the upstream's
 * (`HTTP_BASE_URL` is ignored here).
 *
 * @since 0.1.0
 */
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
  shutdownTimeout
})
