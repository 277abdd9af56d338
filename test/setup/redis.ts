/**
 * Vitest global setup: a private `redis-server` on a free port for the whole run
 * (or the server named by `REDIS_URL`). Tests read the URL with `inject("redisUrl")`;
 * when no Redis can be had, `redisError` says why and Redis tests fail with it — never skip.
 */
import type { TestProject } from "vitest/node"
import type { PrivateRedis } from "../fixtures/redisServer.js"
import { privateRedis } from "../fixtures/redisServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
    redisError: string
  }
}

let redis: PrivateRedis | undefined

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.REDIS_URL
  if (external !== undefined && external !== "") {
    project.provide("redisUrl", external)
    project.provide("redisError", "")
    return teardown
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
