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
// Types only: ioredis itself is loaded by `make`, and no public declaration names it.
import type { Redis as IORedis } from "ioredis"
import { guard } from "./internal/redisGuard.js"

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
 * The part of an ioredis client Liaison's stores use, written out so that no public
 * declaration names an ioredis type: a program that never uses Redis needs no `ioredis`
 * installed, not even to type-check. The value is a real ioredis `Redis` instance; `call`
 * runs any other command.
 *
 * @since 0.1.0
 * @category models
 */
export interface Client {
  /** ioredis' connection status: `"wait"`, `"connecting"`, `"ready"`, `"reconnecting"`, `"end"`, ... */
  readonly status: string
  connect(): Promise<void>
  /** Closes the connection at once; pending replies are dropped (see {@link Client.quit}). */
  disconnect(): void
  /** Sends `QUIT`: pending replies arrive first. */
  quit(): Promise<string>
  on(event: string, listener: (...args: Array<never>) => void): this
  once(event: string, listener: (...args: Array<never>) => void): this
  /** A new connection with this one's options, `overrides` on top. */
  duplicate(overrides?: ClientOptions): Client
  /** Any command, e.g. `call("CLIENT", "PAUSE", "1500", "ALL")`. */
  call(command: string, ...args: Array<string | number>): Promise<unknown>
  ping(): Promise<"PONG">
  get(key: string): Promise<string | null>
  mget(keys: Array<string>): Promise<Array<string | null>>
  set(key: string, value: string | number): Promise<"OK">
  set(key: string, value: string | number, secondsToken: "EX", seconds: number | string): Promise<"OK">
  set(key: string, value: string | number, millisecondsToken: "PX", milliseconds: number | string): Promise<"OK">
  set(
    key: string,
    value: string | number,
    millisecondsToken: "PX",
    milliseconds: number | string,
    nx: "NX"
  ): Promise<"OK" | null>
  unlink(...keys: Array<string>): Promise<number>
  exists(...keys: Array<string>): Promise<number>
  pttl(key: string): Promise<number>
  scan(
    cursor: number | string,
    patternToken: "MATCH",
    pattern: string,
    countToken: "COUNT",
    count: number | string
  ): Promise<[cursor: string, elements: Array<string>]>
  srandmember(key: string, count: number | string): Promise<Array<string>>
  hget(key: string, field: string): Promise<string | null>
  hdel(key: string, ...fields: Array<string>): Promise<number>
  publish(channel: string, message: string): Promise<number>
  subscribe(...channels: Array<string>): Promise<unknown>
  eval(script: string, numkeys: number, ...args: Array<string | number>): Promise<unknown>
  evalsha(sha1: string, numkeys: number, ...args: Array<string | number>): Promise<unknown>
  /** A `MULTI … EXEC` transaction. */
  multi(): Pipeline
}

/**
 * The commands Liaison queues in a `MULTI` transaction; `exec` answers `[error, reply]` per command.
 *
 * @since 0.1.0
 * @category models
 */
export interface Pipeline {
  set(key: string, value: string | number, millisecondsToken: "PX", milliseconds: number | string): Pipeline
  unlink(...keys: Array<string>): Pipeline
  srem(key: string, ...members: Array<string>): Pipeline
  hset(key: string, field: string, value: string): Pipeline
  hgetall(key: string): Pipeline
  pexpire(key: string, milliseconds: number | string): Pipeline
  exec(): Promise<Array<[error: Error | null, result: unknown]> | null>
}

/**
 * Connection options passed to ioredis (its `RedisOptions`); the common ones are typed here,
 * any other ioredis option is passed through as given. Liaison's own defaults fail fast
 * (see {@link defaults}): no offline queue, a short command timeout, quick reconnection.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** Delay before reconnection attempt `times`; `null` stops reconnecting. Default `min(50 ms × times, 1 s)`. */
  readonly retryStrategy?: ((times: number) => number | null | void) | undefined
  /** Retries of one command while reconnecting before it fails; `null`: wait for ever. Default 1. */
  readonly maxRetriesPerRequest?: number | null | undefined
  /** Queue commands while not connected (ioredis' default `true`; Liaison's `false`: fail at once). */
  readonly enableOfflineQueue?: boolean | undefined
  /** Milliseconds to establish a connection. Default 1000. */
  readonly connectTimeout?: number | undefined
  /**
   * Milliseconds before a command without a reply fails. Default 500. Applied by Liaison, not
   * ioredis: a reply that arrived while the application blocked its event loop is not failed
   * (ioredis' own timeout would). Not applied to `subscribe`, `multi()` or `duplicate()` connections.
   */
  readonly commandTimeout?: number | undefined
  readonly [option: string]: unknown
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The ioredis client; use {@link use} to run a command as an Effect. */
  readonly client: Client
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
  readonly redisOptions?: ClientOptions | undefined
  /**
   * `"await"` (default): `make` fails when the first connection fails. `"background"`: `make`
   * succeeds at once and the client keeps (re)connecting; commands meanwhile fail with
   * `RedisError` after ioredis' retries, so a service built on it can degrade instead of
   * keeping a whole application from starting.
   */
  readonly connect?: "await" | "background" | undefined
  /**
   * The breaker on Redis itself: after `failures` commands in a row fail for want of Redis
   * (timeout, connection lost), commands fail at once for `openMillis` (then are tried again;
   * a reconnection closes it at once). `false`: none. Default 3 failures, 1 s.
   */
  readonly breaker?:
    | { readonly failures?: number | undefined; readonly openMillis?: number | undefined }
    | false
    | undefined
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  connect: "await",
  /** ioredis' retries of one command while reconnecting, before it fails with `RedisError`. */
  maxRetriesPerRequest: 1,
  /** No queue while disconnected: a command fails at once instead of waiting for Redis to return. */
  enableOfflineQueue: false,
  /** A command without a reply in this many ms fails (a hung Redis costs this, then the breaker opens). */
  commandTimeout: 500,
  connectTimeout: 1000,
  /** Reconnect quickly: attempt `n` after `min(50 ms × n, this)`. */
  maxReconnectDelayMillis: 1000,
  breaker: { failures: 3, openMillis: 1000 }
} as const

/** Sends QUIT (pending replies arrive first), then waits for the socket to end. */
const close = async (client: Client): Promise<void> => {
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

/** What `npm install` line a missing `ioredis` needs; kept in step with the package's peer range. */
const missingIoredis = "the Redis backends need the optional peer dependency ioredis: npm install ioredis@^5.9.2"

const isModuleNotFound = (cause: unknown): boolean =>
  typeof cause === "object" && cause !== null && "code" in cause &&
  (cause.code === "ERR_MODULE_NOT_FOUND" || cause.code === "MODULE_NOT_FOUND")

/** Loads ioredis on first use, so that a program that never connects to Redis runs without it. */
const loadIoredis: Effect.Effect<typeof IORedis, RedisError> = Effect.tryPromise({
  try: () => import("ioredis"),
  catch: (cause) =>
    new RedisError({
      operation: "load ioredis",
      cause: isModuleNotFound(cause) ? new Error(missingIoredis, { cause }) : cause
    })
}).pipe(Effect.map((module) => module.Redis))

/** Resolves once the client is ready or its first connection attempt failed, whichever comes first. */
const firstAttempt = (client: Client): Promise<void> =>
  new Promise((resolve) => {
    if (client.status === "ready") return resolve()
    const done = () => resolve()
    client.once("ready", done)
    client.once("error", done)
    client.once("close", done)
  })

/** Creates the client and connects it as `options.connect` says. */
const connect = async (Constructor: typeof IORedis, options: Options): Promise<Client> => {
  const client = new Constructor(Redacted.value(options.url), {
    lazyConnect: true,
    maxRetriesPerRequest: defaults.maxRetriesPerRequest,
    enableOfflineQueue: defaults.enableOfflineQueue,
    connectTimeout: defaults.connectTimeout,
    retryStrategy: (times: number) => Math.min(50 * times, defaults.maxReconnectDelayMillis),
    ...options.redisOptions,
    // Liaison's own (see `ClientOptions.commandTimeout`).
    commandTimeout: undefined
  })
  // Failures surface as rejected commands (RedisError); without a listener ioredis
  // would also print every reconnection error to stderr.
  client.on("error", () => {})
  if ((options.connect ?? defaults.connect) === "background") {
    // ioredis keeps reconnecting on its own after a failed first attempt. The first attempt is
    // awaited (it is quick either way): without an offline queue, a command sent before the
    // connection is ready would fail although Redis is up.
    client.connect().catch(() => {})
    await firstAttempt(client)
    return client
  }
  try {
    await client.connect()
  } catch (cause) {
    client.disconnect()
    throw cause
  }
  return client
}

/**
 * Loads `ioredis` (an optional peer dependency: a `RedisError` says to install it when it is
 * missing), connects (failing with `RedisError` when Redis cannot be reached) and disconnects
 * gracefully when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, RedisError, Scope.Scope> =>
  Effect.flatMap(loadIoredis, (Constructor) =>
    Effect.acquireRelease(
      Effect.tryPromise({
        try: () => connect(Constructor, options),
        catch: (cause) => new RedisError({ operation: "connect", cause })
      }),
      (client) => Effect.promise(() => close(client))
    )).pipe(Effect.map((client) => Redis.of({ client: guarded(client, options) })))

const guarded = (client: Client, { breaker, redisOptions }: Options): Client =>
  guard(client, {
    failures: breaker === false ? Infinity : breaker?.failures ?? defaults.breaker.failures,
    openMillis: breaker === false ? 0 : breaker?.openMillis ?? defaults.breaker.openMillis,
    commandTimeout: redisOptions?.commandTimeout ?? defaults.commandTimeout
  })

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
export const use = <A>(operation: string, f: (client: Client) => Promise<A>): Effect.Effect<A, RedisError, Redis> =>
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
