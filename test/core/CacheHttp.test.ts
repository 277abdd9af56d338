import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Cache, Http, HttpCache, Redis } from "@liaison/core"
import { Effect, Layer, Option, Redacted, Schema, TestClock } from "effect"
import type { RevalidatingUpstream } from "../fixtures/revalidatingUpstream.js"
import { startRevalidatingUpstream } from "../fixtures/revalidatingUpstream.js"
import { redisUrl, testPrefix } from "../setup/redisUrl.js"

let upstream: RevalidatingUpstream
beforeAll(async () => {
  upstream = await startRevalidatingUpstream()
})
afterAll(() => upstream.close())

const Doc = Schema.Struct({ name: Schema.String, version: Schema.Number })

let docs = 0
/** A document name of its own per test. */
const fresh = () => `doc${++docs}-${Date.now()}`

const get = (name: string, query: string, options: Partial<HttpCache.JsonOptions> = {}) =>
  HttpCache.json(HttpClientRequest.get(`/doc/${name}?${query}`), Doc, {
    key: `docs:${name}`,
    ttl: "10 minutes",
    ...options
  })

const memory = <A, E>(effect: Effect.Effect<A, E, Cache.Cache | Http.Http>) =>
  effect.pipe(Effect.provide(Cache.layerMemory()), Effect.provide(Http.layer({ baseUrl: upstream.url })))

const redis = Layer.scoped(Redis.Redis, Effect.suspend(() => Redis.make({ url: Redacted.make(redisUrl()) })))

describe("HttpCache.policy", () => {
  it("reads Cache-Control, Age and ETag", () => {
    expect(HttpCache.policy({})).toEqual({ storage: "shared", ttlMillis: undefined, etag: undefined })
    expect(HttpCache.policy({ "cache-control": "public, max-age=60", etag: "\"a\"" })).toEqual({
      storage: "shared",
      ttlMillis: 60_000,
      etag: "\"a\""
    })
    expect(HttpCache.policy({ "cache-control": "max-age=60, s-maxage=10", age: "4" }).ttlMillis).toBe(6_000)
    expect(HttpCache.policy({ "cache-control": "max-age=5", age: "9" }).ttlMillis).toBe(0)
    expect(HttpCache.policy({ "cache-control": "private, max-age=60, s-maxage=10" })).toMatchObject({
      storage: "local",
      ttlMillis: 60_000
    })
    expect(HttpCache.policy({ "cache-control": "No-Store" }).storage).toBe("none")
    expect(HttpCache.policy({ vary: "*" }).storage).toBe("none")
    expect(HttpCache.policy({ "cache-control": "no-cache, max-age=600" }).ttlMillis).toBe(0)
    expect(HttpCache.policy({ "cache-control": "max-age=\"30\"" }).ttlMillis).toBe(30_000)
    expect(HttpCache.policy({ "cache-control": "max-age=soon" }).ttlMillis).toBe(0)
    expect(HttpCache.policy({ "cache-control": "private=\"set-cookie, x-a\", max-age=9" })).toMatchObject({
      storage: "local",
      ttlMillis: 9_000
    })
  })
})

describe("HttpCache.json", () => {
  it.effect("max-age bounds the time to live", () =>
    Effect.gen(function*() {
      const name = fresh()
      expect((yield* get(name, "cc=max-age%3D60&etag=0")).status).toBe("miss")
      expect((yield* get(name, "cc=max-age%3D60&etag=0")).status).toBe("hit")
      yield* TestClock.adjust("61 seconds")
      expect((yield* get(name, "cc=max-age%3D60&etag=0")).status).toBe("miss")
      expect(upstream.seen(name).requests).toBe(2)
    }).pipe(memory))

  it.effect("an expired entry is revalidated with If-None-Match: a 304 refreshes it without a body", () =>
    Effect.gen(function*() {
      const name = fresh()
      const first = yield* get(name, "cc=max-age%3D60")
      expect(first).toEqual({ value: { name, version: 1 }, status: "miss" })
      yield* TestClock.adjust("61 seconds")
      const revalidated = yield* get(name, "cc=max-age%3D60")
      expect(revalidated).toEqual({ value: { name, version: 1 }, status: "hit" })
      expect(upstream.lastIfNoneMatch(name)).toBe(`"${name}-v1"`)
      expect(upstream.seen(name)).toEqual({ requests: 2, notModified: 1 })
      // Refreshed for another max-age: no request.
      yield* TestClock.adjust("30 seconds")
      expect((yield* get(name, "cc=max-age%3D60")).status).toBe("hit")
      expect(upstream.seen(name).requests).toBe(2)
      // A new version is a 200 with its body.
      upstream.bump(name)
      yield* TestClock.adjust("31 seconds")
      expect(yield* get(name, "cc=max-age%3D60")).toEqual({ value: { name, version: 2 }, status: "miss" })
    }).pipe(memory))

  it.effect("no-cache is stored but revalidated on every use", () =>
    Effect.gen(function*() {
      const name = fresh()
      yield* get(name, "cc=no-cache")
      const again = yield* get(name, "cc=no-cache")
      expect(again.value.version).toBe(1)
      expect(upstream.seen(name)).toEqual({ requests: 2, notModified: 1 })
    }).pipe(memory))

  it.effect("no-store is never stored", () =>
    Effect.gen(function*() {
      const name = fresh()
      yield* get(name, "cc=no-store")
      expect((yield* get(name, "cc=no-store")).status).toBe("miss")
      expect(upstream.seen(name).requests).toBe(2)
      expect(yield* Cache.get(`docs:${name}`, Doc)).toEqual(Option.none())
    }).pipe(memory))

  it.effect("an upstream failure is answered from a stale entry; without one it is the HttpError", () =>
    Effect.gen(function*() {
      const name = fresh()
      yield* get(name, "cc=max-age%3D60", { staleFor: "5 minutes" })
      upstream.failWith(name, 503)
      yield* TestClock.adjust("2 minutes")
      expect(yield* get(name, "cc=max-age%3D60", { staleFor: "5 minutes" })).toEqual({
        value: { name, version: 1 },
        status: "stale"
      })
      upstream.failWith(name, undefined)
      const never = fresh()
      upstream.failWith(never, 503)
      const error = yield* Effect.flip(get(never, "cc=max-age%3D60"))
      expect(error._tag).toBe("StatusError")
    }).pipe(memory))

  it.effect("private answers stay out of Redis: kept in the local tier only", () =>
    Effect.gen(function*() {
      const prefix = testPrefix("{cache-http}")
      const name = fresh()
      const twoTier = Cache.layerTwoTier({ prefix }).pipe(Layer.provide(redis))
      const [first, second] = yield* Effect.all([
        get(name, "cc=private%2C%20max-age%3D60"),
        get(name, "cc=private%2C%20max-age%3D60")
      ]).pipe(Effect.provide(twoTier))
      expect([first.status, second.status]).toEqual(["miss", "hit"])
      expect(yield* Redis.use("EXISTS", (client) => client.exists(`${prefix}v:docs:${name}`))).toBe(0)
      // A shared answer does reach Redis.
      const other = fresh()
      yield* get(other, "cc=max-age%3D60").pipe(Effect.provide(twoTier))
      expect(yield* Redis.use("EXISTS", (client) => client.exists(`${prefix}v:docs:${other}`))).toBe(1)
    }).pipe(Effect.provide(Http.layer({ baseUrl: upstream.url })), Effect.provide(redis)))
})
