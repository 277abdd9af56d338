/**
 * The one shared Redis connection (ioredis) every Redis-backed service builds on,
 * acquired and released with its layer's scope.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { Redis as IORedis } from "ioredis"
import type { RedisOptions } from "ioredis"

/**
 * A Redis command or connection failed. The message names the operation and the cause's own
 * message, never the connection URL (which may carry a password).
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisError extends Schema.TaggedError<RedisError>("@liaison/core/Redis/RedisError")("RedisError", {
  operation: Schema.String,
  cause: Schema.Defect
}) {
  override get message(): string {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `Redis ${this.operation} failed: ${reason}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The ioredis client; use {@link use} to run a command as an Effect. */
  readonly client: IORedis
}

/**
 * The shared connection: every Redis-backed store (cache, rate limits, queues, subscriptions,
 * OAuth2 tokens) takes this one handle from context.
 *
 * @since 0.1.0
 * @category models
 */
export class Redis extends Context.Tag("@liaison/core/Redis")<Redis, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `redis://[:password@]host:port[/db]`; redacted because it may carry a password. */
  readonly url: Redacted.Redacted<string>
  /** Extra ioredis options. */
  readonly redisOptions?: RedisOptions | undefined
  /**
   * `"await"` (default): `make` fails when the first connection fails. `"background"`: `make`
   * succeeds at once and the client keeps (re)connecting; commands meanwhile fail with
   * `RedisError` after ioredis' retries, so a service built on it can degrade instead of
   * keeping a whole application from starting.
   */
  readonly connect?: "await" | "background" | undefined
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  connect: "await",
  /** ioredis' retries of one command while reconnecting, before it fails with `RedisError`. */
  maxRetriesPerRequest: 2
} as const

/** Sends QUIT (pending replies arrive first), then waits for the socket to end. */
const close = async (client: IORedis): Promise<void> => {
  if (client.status === "end") return
  if (client.status !== "ready") {
    // Not connected (yet): QUIT would wait in the offline queue for a connection that may never come.
    client.disconnect()
    return
  }
  const ended = new Promise<void>((resolve) => client.once("end", () => resolve()))
  await client.quit().catch(() => client.disconnect())
  await ended
}

/**
 * Connects (failing with `RedisError` when Redis cannot be reached) and disconnects
 * gracefully when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, RedisError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const client = new IORedis(Redacted.value(options.url), {
          lazyConnect: true,
          maxRetriesPerRequest: defaults.maxRetriesPerRequest,
          enableOfflineQueue: true,
          ...options.redisOptions
        })
        // Failures surface as rejected commands (RedisError); without a listener ioredis
        // would also print every reconnection error to stderr.
        client.on("error", () => {})
        if ((options.connect ?? defaults.connect) === "background") {
          // ioredis keeps reconnecting on its own after a failed first attempt.
          client.connect().catch(() => {})
          return client
        }
        try {
          await client.connect()
        } catch (cause) {
          client.disconnect()
          throw cause
        }
        return client
      },
      catch: (cause) => new RedisError({ operation: "connect", cause })
    }),
    (client) => Effect.promise(() => close(client))
  ).pipe(Effect.map((client) => Redis.of({ client })))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Redis, RedisError> => Layer.scoped(Redis, make(options))

/**
 * The connection from the environment: `REDIS_URL` (redacted: it may carry a password). Give
 * {@link layerConfig} your own `Config` to read other names.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({ url: Config.redacted("REDIS_URL") })

/**
 * The connection configured by `config`, {@link config} by default.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config<Options> = config
): Layer.Layer<Redis, RedisError | ConfigError.ConfigError> => Layer.unwrapEffect(Effect.map(options, layer))

/**
 * Runs one ioredis call as an Effect, failing with `RedisError`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const use = <A>(operation: string, f: (client: IORedis) => Promise<A>): Effect.Effect<A, RedisError, Redis> =>
  Effect.flatMap(
    Redis,
    ({ client }) => Effect.tryPromise({ try: () => f(client), catch: (cause) => new RedisError({ operation, cause }) })
  )

/**
 * `PING`: succeeds when Redis answers.
 *
 * @since 0.1.0
 * @category combinators
 */
export const ping: Effect.Effect<void, RedisError, Redis> = Effect.asVoid(use("PING", (client) => client.ping()))
