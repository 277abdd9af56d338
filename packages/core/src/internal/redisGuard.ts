import type { Client } from "../Redis.js"

/**
 * A small breaker in front of the shared Redis client: after `failures` commands in a row fail
 * for want of Redis (no reply within `commandTimeout`, a closed or unwritable connection — not a
 * Redis error reply), it refuses commands at once for `openMillis`, then lets them through again
 * (one success closes it, one failure opens it again). The client's `ready` event closes it too.
 * While Redis is down a caller then never waits on it, not even for a command timeout.
 *
 * @internal
 */
export interface GuardOptions {
  readonly failures: number
  readonly openMillis: number
  readonly commandTimeout: number
}

/** The commands of {@link Client} guarded; `subscribe` (a subscriber waits) and the connection methods are not. */
const guarded: ReadonlySet<PropertyKey> = new Set([
  "call",
  "ping",
  "get",
  "mget",
  "set",
  "unlink",
  "exists",
  "pttl",
  "scan",
  "srandmember",
  "hget",
  "hdel",
  "publish",
  "eval",
  "evalsha"
])

/** A Redis error reply (`ReplyError`) means Redis answered: not an outage. */
const isOutage = (error: unknown): boolean => !(error instanceof Error && error.name === "ReplyError")

/** @internal */
export class RedisUnavailable extends Error {
  override readonly name = "RedisUnavailable"
}

/**
 * `reply`, or a failure after `millis` without it. Timers run before I/O in Node's event loop:
 * after the loop was blocked (a long synchronous task), a reply may be waiting unread when the
 * timer fires. So the timeout looks once more after the I/O phase (`setImmediate`), and only a
 * reply that is really late fails — unlike ioredis' own `commandTimeout`, which failed healthy
 * commands whenever the application blocked its loop for longer than the timeout.
 *
 * @internal
 */
export const withTimeout = <A>(reply: Promise<A>, millis: number, what = "Redis command"): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    let settled = false
    const timer = setTimeout(() =>
      setImmediate(() => {
        if (settled) return
        settled = true
        reject(new RedisUnavailable(`${what} timed out: no reply in ${millis} ms`))
      }), millis)
    reply.then(
      (value) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        reject(error)
      }
    )
  })

/**
 * The breaker of a guarded client, for a caller that sends a hot command on the client itself
 * (the cache's hit path: no proxy, no promise around the reply, no timer per command) and keeps
 * its own timeout: it asks {@link GuardHandle.refusal} first and reports every outcome.
 *
 * @internal
 */
export interface GuardHandle {
  /** The ioredis client behind the proxy. */
  readonly client: Client
  readonly commandTimeout: number
  /** What the guarded command would reject with now (the breaker is open), or `undefined`. */
  readonly refusal: () => RedisUnavailable | undefined
  readonly succeeded: () => void
  /** A failure: counted when it is an outage (anything but a Redis error reply). */
  readonly failedWith: (error: unknown) => void
}

const handles = new WeakMap<Client, GuardHandle>()

/** The breaker behind a client made by {@link guard}; `undefined` for any other client. @internal */
export const guardOf = (client: Client): GuardHandle | undefined => handles.get(client)

/**
 * `client` behind the breaker: the same object for everything but the guarded commands, which
 * time out after `commandTimeout` and reject with {@link RedisUnavailable} while it is open.
 * `subscribe`, transactions and `duplicate()` connections (subscribers) are not guarded.
 *
 * @internal
 */
export const guard = (client: Client, options: GuardOptions): Client => {
  let failed = 0
  let openUntil = 0
  const succeeded = () => {
    failed = 0
  }
  const failedWith = (error: unknown) => {
    if (!isOutage(error)) return succeeded()
    failed++
    if (failed >= options.failures) openUntil = Date.now() + options.openMillis
  }
  client.on("ready", () => {
    failed = 0
    openUntil = 0
  })
  type Method = (...args: Array<unknown>) => Promise<unknown>
  /** Per name, the method seen and what stands for it (a method replaced on the client is wrapped anew). */
  const wrappers = new Map<PropertyKey, { readonly method: Method; readonly wrapper: Method }>()
  const refusal = (): RedisUnavailable | undefined =>
    openUntil !== 0 && Date.now() < openUntil
      ? new RedisUnavailable(`Redis unavailable: ${failed} commands failed in a row; not retried before the pause ends`)
      : undefined
  const wrap = (name: PropertyKey, command: Method): Method => {
    const wrapper = (...args: Array<unknown>): Promise<unknown> => {
      const refused = refusal()
      if (refused !== undefined) return Promise.reject(refused)
      const reply = withTimeout(command.apply(client, args), options.commandTimeout)
      reply.then(succeeded, failedWith)
      return reply
    }
    wrappers.set(name, { method: command, wrapper })
    return wrapper
  }
  const proxy = new Proxy(client, {
    get: (target, name) => {
      const value: unknown = Reflect.get(target, name, target)
      if (typeof value !== "function") return value
      const cached = wrappers.get(name)
      if (cached !== undefined && cached.method === value) return cached.wrapper
      const method = value as Method
      if (guarded.has(name)) return wrap(name, method)
      // Bound to the client itself: ioredis' own property reads then never go through this proxy.
      const bound: Method = method.bind(target)
      wrappers.set(name, { method, wrapper: bound })
      return bound
    }
  })
  handles.set(proxy, { client, commandTimeout: options.commandTimeout, refusal, succeeded, failedWith })
  return proxy
}
