/**
 * Vitest global setup: a private `redis-server` on a free port for the whole run
 * (or the server named by `REDIS_URL`). Tests read the URL with `inject("redisUrl")`;
 * when no Redis can be had, `redisError` says why and Redis tests fail with it — never skip.
 *
 * Every key a test writes goes under this run's prefix (`redisKeyPrefix`, see `testPrefix` in
 * `redisUrl.ts`). With a private server everything goes with it; with an external `REDIS_URL`
 * the keys under the run's prefix are removed (SCAN + UNLINK) when the run ends, and nothing
 * else is touched.
 */
import { Redis as IORedis } from "ioredis"
import * as crypto from "node:crypto"
import type { TestProject } from "vitest/node"
import type { PrivateRedis } from "../fixtures/redisServer.js"
import { privateRedis } from "../fixtures/redisServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
    redisError: string
    /** This run's key prefix, e.g. `liaison-test:m3x1k2-9f3a1c:`: removed at the end of the run. */
    redisKeyPrefix: string
  }
}

let redis: PrivateRedis | undefined

/** A prefix no other run shares: the time (base 36) and 6 random hex digits. */
export const runPrefix = (): string =>
  `liaison-test:${Date.now().toString(36)}-${crypto.randomBytes(3).toString("hex")}:`

/** Removes every key under `prefix` (SCAN, never KEYS; UNLINK in batches); resolves with how many. */
export const removeKeys = async (url: string, prefix: string): Promise<number> => {
  const client = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  client.on("error", () => {})
  try {
    await client.connect()
    let removed = 0
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) removed += await client.unlink(...keys)
    } while (cursor !== "0")
    return removed
  } finally {
    client.disconnect()
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const prefix = runPrefix()
  project.provide("redisKeyPrefix", prefix)
  const external = process.env.REDIS_URL
  if (external !== undefined && external !== "") {
    project.provide("redisUrl", external)
    project.provide("redisError", "")
    return async () => {
      const removed = await removeKeys(external, prefix)
      if (removed > 0) console.info(`test Redis: removed ${removed} keys under ${prefix}`)
    }
  }
  try {
    redis = await privateRedis()
    project.provide("redisUrl", redis.url)
    project.provide("redisError", "")
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    project.provide("redisUrl", "")
    project.provide(
      "redisError",
      `No Redis for the tests: could not start redis-server (${reason}). Install it (apt-get install redis-server) or set REDIS_URL.`
    )
  }
  return teardown
}

const teardown = async (): Promise<void> => {
  await redis?.dispose()
}
