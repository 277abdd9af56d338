import { createHash } from "node:crypto"
import type { Client as IORedis } from "../Redis.js"

/**
 * A Lua script run with `EVALSHA` (the script body is sent only once per Redis server, on `NOSCRIPT`),
 * without touching the shared client's command table.
 *
 * @internal
 */
export interface RedisScript {
  readonly run: (client: IORedis, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>) => Promise<unknown>
}

/** @internal */
export const redisScript = (lua: string): RedisScript => {
  const sha = createHash("sha1").update(lua).digest("hex")
  return {
    run: (client, keys, args) =>
      client.evalsha(sha, keys.length, ...keys, ...args).catch((error: unknown) =>
        error instanceof Error && error.message.startsWith("NOSCRIPT")
          ? client.eval(lua, keys.length, ...keys, ...args)
          : Promise.reject(error)
      )
  }
}
