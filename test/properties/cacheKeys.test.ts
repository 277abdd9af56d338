import { describe, expect, it, layer } from "@effect/vitest"
import { Cache, Redis } from "@liaison/core"
import { Effect, FastCheck as fc, Layer, Redacted } from "effect"
import { escapeGlob, matchGlob } from "../../packages/core/src/internal/glob.js"
import { redisUrl, testPrefix } from "../setup/redisUrl.js"

const redis = Layer.scoped(Redis.Redis, Effect.suspend(() => Redis.make({ url: Redacted.make(redisUrl()) })))

/** Keys and patterns over a small alphabet, so that matches, near misses and odd patterns are all common. */
const key = fc.string({ unit: fc.constantFrom("a", "b", ":", "-", "^"), minLength: 1, maxLength: 6 })
const pattern = fc.string({
  unit: fc.constantFrom("a", "b", ":", "*", "?", "[", "]", "^", "-", "\\"),
  minLength: 0,
  maxLength: 7
})

/** The keys under `prefix` that Redis' own `SCAN … MATCH` finds for `pattern`. */
const scanMatch = (prefix: string, glob: string) =>
  Redis.use("SCAN", async (client) => {
    const found: Array<string> = []
    let cursor = "0"
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${escapeGlob(prefix)}${glob}`, "COUNT", 1000)
      found.push(...keys.map((k) => k.slice(prefix.length)))
      cursor = next
    } while (cursor !== "0")
    return found.sort()
  })

layer(redis)("cache keys (Redis)", (it) => {
  it.effect.prop(
    "the memory tier matches a pattern exactly as Redis' SCAN MATCH does",
    [fc.uniqueArray(key, { minLength: 1, maxLength: 12 }), pattern],
    ([keys, glob]) =>
      Effect.gen(function*() {
        const prefix = testPrefix("{glob-test}")
        yield* Redis.use("SET", (client) => {
          const batch = client.multi()
          for (const k of keys) batch.set(prefix + k, "1", "PX", 60_000)
          return batch.exec()
        })
        const redisSays = yield* scanMatch(prefix, glob)
        const memorySays = keys.filter((k) => matchGlob(glob, k)).sort()
        expect(memorySays).toEqual(redisSays)
        yield* Redis.use("UNLINK", (client) => client.unlink(...keys.map((k) => prefix + k)))
      }),
    { fastCheck: { numRuns: 200 } }
  )
})

describe("cache keys", () => {
  it.prop("an escaped text matches itself and nothing else of the same length", [key, key], ([a, b]) => {
    expect(matchGlob(escapeGlob(a), a)).toBe(true)
    expect(matchGlob(escapeGlob(a), b)).toBe(a === b)
  })

  it.prop(
    "list keys do not depend on the order of their parameters",
    [fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), fc.oneof(fc.string(), fc.integer(), fc.boolean()))],
    ([params]) => {
      const reversed = Object.fromEntries(Object.entries(params).reverse())
      expect(Cache.listKey("users", reversed)).toBe(Cache.listKey("users", params))
      expect(Cache.listKey("users", params).startsWith("users:list:")).toBe(true)
    }
  )
})
