import { inject } from "vitest"

/** The private test Redis' URL; throws (failing the test, never skipping it) when there is none. */
export const redisUrl = (): string => {
  const url = inject("redisUrl")
  if (url === "") throw new Error(inject("redisError"))
  return url
}
