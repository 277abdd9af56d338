import { describe, expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Logger, LogLevel, Redacted, Schedule } from "effect"
import type * as NodeHttp from "node:http"
import { redisUrl } from "../setup/redisUrl.js"
import { call, jsonBody, serverLayer, stubUpstream } from "./support.js"

interface UserJson {
  readonly id: number
  readonly full_name: string | null
  readonly email: string
}

interface PageJson {
  readonly users: ReadonlyArray<UserJson>
}

const withConfig = (entries: ReadonlyArray<readonly [string, string]>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(entries)))

const adminKey = "the-admin-key-0123456789"

const admin = (body: unknown, key: string | null = adminKey) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...(key === null ? {} : { "x-api-key": key }) },
  body: JSON.stringify(body)
})

describe("stale-if-error at the server", () => {
  it.scoped("a user is served from its expired copy, x-cache: stale, while the upstream answers 503; a 404 never is", () =>
    Effect.gen(function*() {
      let failing: number | undefined
      const upstream = yield* stubUpstream((req: NodeHttp.IncomingMessage, res: NodeHttp.ServerResponse) => {
        if (failing !== undefined) {
          res.writeHead(failing, { "content-type": "application/json" }).end(JSON.stringify({ error: "down" }))
          return
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
          id: Number((req.url ?? "").split("/").pop()),
          username: "someone",
          email: "someone@example.com",
          full_name: null,
          active: true,
          created_at: "2024-01-01T00:00:00.000Z"
        }))
      })
      // Users expire at once (kept for the grace period): every read asks the upstream. No
      // retries, so that a 503 is answered at once.
      const server = yield* Layer.build(
        serverLayer({ upstreamUrl: upstream.url, resilience: { policy: false } }).pipe(
          Layer.provide(withConfig([["CACHE_USERS_TTL", "0 millis"]]))
        )
      )
      const get = (path: string) => Effect.provide(call(path), server)
      expect((yield* get("/users/1")).headers.get("x-cache")).toBe("miss")
      expect((yield* get("/users/2")).headers.get("x-cache")).toBe("miss")
      failing = 503
      const stale = yield* get("/users/1")
      expect(stale.status).toBe(200)
      expect(stale.headers.get("x-cache")).toBe("stale")
      expect(stale.json).toMatchObject({ id: 1 })
      // A 404 means the user is gone: never answered from a stale copy.
      failing = 404
      expect((yield* get("/users/2")).status).toBe(404)
      // Nor is a user the cache never had.
      failing = 503
      expect((yield* get("/users/3")).status).toBe(502)
    }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))))
})

layer(serverLayer().pipe(Layer.provide(withConfig([["ADMIN_API_KEY", adminKey]]))), { excludeTestServices: true })(
  "the users cache over the sandbox upstream",
  (it) => {
    it.effect("GET /users/{id}: a miss, then hits, said in x-cache", () =>
      Effect.gen(function*() {
        const first = yield* call("/users/21")
        const second = yield* call("/users/21")
        expect([first.status, second.status]).toEqual([200, 200])
        expect([first.headers.get("x-cache"), second.headers.get("x-cache")]).toEqual(["miss", "hit"])
        expect(second.json).toEqual(first.json)
      }))

    it.effect("PUT and PATCH write the new user through, and the lists show it", () =>
      Effect.gen(function*() {
        yield* call("/users/22")
        const listed = (yield* call("/users?page=3&page_size=10")).json as PageJson
        expect(listed.users.map((user) => user.id)).toContain(22)

        const patched = yield* call("/users/22", jsonBody("PATCH", { full_name: "Patched Name" }))
        expect(patched.status).toBe(200)
        const read = yield* call("/users/22")
        expect(read.headers.get("x-cache")).toBe("hit")
        expect((read.json as UserJson).full_name).toBe("Patched Name")
        const relisted = (yield* call("/users?page=3&page_size=10")).json as PageJson
        expect(relisted.users.find((user) => user.id === 22)?.full_name).toBe("Patched Name")

        const replaced = yield* call(
          "/users/22",
          jsonBody("PUT", { email: "new22@example.com", full_name: null, active: true })
        )
        expect(replaced.status).toBe(200)
        const reread = yield* call("/users/22")
        expect(reread.headers.get("x-cache")).toBe("hit")
        expect(reread.json).toMatchObject({ email: "new22@example.com", full_name: null })
      }))

    it.effect("DELETE invalidates: the next read goes to the upstream, which has no such user", () =>
      Effect.gen(function*() {
        expect((yield* call("/users/23")).status).toBe(200)
        expect((yield* call("/users/23")).headers.get("x-cache")).toBe("hit")
        expect((yield* call("/users/23", { method: "DELETE" })).status).toBe(200)
        expect((yield* call("/users/23")).status).toBe(404)
      }))

    it.effect("POST /cache/invalidate by key, pattern and tag, with the admin key", () =>
      Effect.gen(function*() {
        yield* call("/users/24")
        yield* call("/users/25")
        const byKey = yield* call("/cache/invalidate", admin({ key: "users:24" }))
        expect(byKey.status).toBe(200)
        expect(byKey.json).toEqual({ removed: 1 })
        expect((yield* call("/users/24")).headers.get("x-cache")).toBe("miss")
        expect((yield* call("/users/25")).headers.get("x-cache")).toBe("hit")

        const byPattern = yield* call("/cache/invalidate", admin({ pattern: "users:2[5-6]" }))
        expect(byPattern.json).toEqual({ removed: 1 })
        expect((yield* call("/users/25")).headers.get("x-cache")).toBe("miss")

        const byTag = yield* call("/cache/invalidate", admin({ tag: "users" }))
        expect((byTag.json as { removed: number }).removed).toBeGreaterThanOrEqual(2)
        expect((yield* call("/users/24")).headers.get("x-cache")).toBe("miss")
      }))

    it.effect("POST /cache/invalidate refuses a missing or wrong key, and an ambiguous body", () =>
      Effect.gen(function*() {
        const missing = yield* call("/cache/invalidate", admin({ key: "users:1" }, null))
        expect(missing.status).toBe(401)
        expect(missing.json).toMatchObject({ _tag: "Unauthorized", error: "unauthorized" })
        const wrong = yield* call("/cache/invalidate", admin({ key: "users:1" }, `${adminKey}x`))
        expect(wrong.status).toBe(401)
        expect(wrong.text).not.toContain(adminKey)
        const both = yield* call("/cache/invalidate", admin({ key: "users:1", pattern: "users:*" }))
        expect(both.status).toBe(400)
      }))

    it.effect("GET /cache/stats counts hits and misses; memory only without REDIS_URL", () =>
      Effect.gen(function*() {
        yield* call("/users/26")
        yield* call("/users/26")
        const stats = yield* call("/cache/stats")
        expect(stats.status).toBe(200)
        expect(stats.json).toMatchObject({ redis: "none", errors: 0 })
        const { hits, misses } = stats.json as { hits: number; misses: number }
        expect(hits).toBeGreaterThan(0)
        expect(misses).toBeGreaterThan(0)
      }))
  }
)

layer(serverLayer(), { excludeTestServices: true })("without ADMIN_API_KEY", (it) => {
  it.effect("POST /cache/invalidate is disabled, and says so", () =>
    Effect.gen(function*() {
      const reply = yield* call("/cache/invalidate", admin({ key: "users:1" }, "anything"))
      expect(reply.status).toBe(403)
      expect(reply.json).toMatchObject({ _tag: "AdminDisabled", error: "admin_disabled" })
      expect((reply.json as { message: string }).message).toContain("ADMIN_API_KEY")
    }))
})

layer(
  serverLayer({ redisUrl: Redacted.make(redisUrl()) }).pipe(Layer.provide(withConfig([["ADMIN_API_KEY", adminKey]]))),
  { excludeTestServices: true }
)("with REDIS_URL", (it) => {
  it.effect("the users cache is two-tier on Redis: a miss, then hits; stats say Redis is up", () =>
    Effect.gen(function*() {
      // A Redis given by REDIS_URL may hold this user from an earlier run; the server connects to
      // Redis in the background, so the first attempts may find it not connected yet (503).
      const cleared = yield* call("/cache/invalidate", admin({ key: "users:31" })).pipe(
        Effect.filterOrFail((reply) => reply.status === 200),
        Effect.retry({ times: 50, schedule: Schedule.spaced("100 millis") })
      )
      expect(cleared.json).toMatchObject({ removed: expect.any(Number) })
      const first = yield* call("/users/31")
      const second = yield* call("/users/31")
      expect([first.headers.get("x-cache"), second.headers.get("x-cache")]).toEqual(["miss", "hit"])
      expect((yield* call("/cache/stats")).json).toMatchObject({ redis: "up" })
    }))
})
