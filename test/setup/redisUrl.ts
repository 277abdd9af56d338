import * as crypto from "node:crypto"
import { inject } from "vitest"

/** The private test Redis' URL; throws (failing the test, never skipping it) when there is none. */
export const redisUrl = (): string => {
  const url = inject("redisUrl")
  if (url === "") throw new Error(inject("redisError"))
  return url
}

/**
 * A key prefix of its own for one test or one store, under this run's prefix (removed when the
 * run ends, see `test/setup/redis.ts`): `liaison-test:<run>:<name>:<uuid>:`. `name` may hold a
 * Redis Cluster hash tag, e.g. `{queue}`.
 */
export const testPrefix = (name: string): string => `${inject("redisKeyPrefix")}${name}:${crypto.randomUUID()}:`

/**
 * This run's prefix without its trailing colon, for stores that add `:` themselves, e.g.
 * `DurableQueue.layerStoreRedis({ prefix: testStorePrefix() })` → `liaison-test:<run>:{dq:<name>}:…`.
 */
export const testStorePrefix = (): string => inject("redisKeyPrefix").replace(/:$/, "")
