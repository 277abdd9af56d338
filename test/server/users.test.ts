import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { blamedFields, byteAt, call, callBytes, jsonBody, routeMembers, serverLayer } from "./support.js"

interface UserJson {
  readonly id: number
  readonly username: string
  readonly email: string
  readonly full_name: string | null
  readonly active: boolean
  readonly created_at: string
}

interface PageJson {
  readonly users: ReadonlyArray<UserJson>
  readonly page: number
  readonly page_size: number
  readonly total: number
}

interface BatchJson {
  readonly users: ReadonlyArray<UserJson>
  readonly count: number
  readonly missing: ReadonlyArray<number>
}

const ids = (users: ReadonlyArray<UserJson>) => users.map((user) => user.id)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index)

// One server (with its sandbox upstream) for the whole file; tests that write use their own users.
layer(serverLayer(), { excludeTestServices: true })("the server over the sandbox upstream", (it) => {
  it.effect("GET /health: ok, Redis disabled without REDIS_URL", () =>
    Effect.gen(function*() {
      const reply = yield* call("/health")
      expect(reply.status).toBe(200)
      expect(reply.json).toEqual({ status: "ok", redis: "disabled" })
    }))

  describe("GET /users", () => {
    it.effect("defaults to page 1 of 10, in id order", () =>
      Effect.gen(function*() {
        const reply = yield* call("/users")
        expect(reply.status).toBe(200)
        const page = reply.json as PageJson
        expect({ page: page.page, page_size: page.page_size }).toEqual({ page: 1, page_size: 10 })
        expect(ids(page.users)).toEqual(range(1, 10))
        expect(page.users[0]).toEqual({
          id: 1,
          username: "user01",
          email: "user01@example.com",
          full_name: "User 01",
          active: true,
          created_at: "2024-01-01T00:00:00.000Z"
        })
      }))

    it.effect("filters by name, email and active, and paginates", () =>
      Effect.gen(function*() {
        const byName = (yield* call("/users?name=USER1&page_size=100")).json as PageJson
        expect(ids(byName.users)).toEqual(range(10, 19))
        expect(byName.total).toBe(10)

        const byEmail = (yield* call("/users?email=user05%40")).json as PageJson
        expect(ids(byEmail.users)).toEqual([5])

        const inactive = (yield* call("/users?active=false&name=user&page_size=3&page=2")).json as PageJson
        expect(ids(inactive.users)).toEqual([20, 25, 30])
        expect(inactive.users.every((user) => !user.active)).toBe(true)
        expect({ page: inactive.page, page_size: inactive.page_size }).toEqual({ page: 2, page_size: 3 })

        const pastTheEnd = (yield* call("/users?page=99")).json as PageJson
        expect(pastTheEnd.users).toEqual([])
        expect(pastTheEnd.total).toBeGreaterThan(0)
      }))

    it.effect("bad query values are 400s naming the field", () =>
      Effect.gen(function*() {
        const cases: ReadonlyArray<readonly [string, string]> = [
          ["page=0", "page"],
          ["page=1.5", "page"],
          ["page=abc", "page"],
          ["page_size=0", "page_size"],
          ["page_size=101", "page_size"],
          ["active=yes", "active"],
          [`name=${"x".repeat(101)}`, "name"]
        ]
        for (const [query, field] of cases) {
          const reply = yield* call(`/users?${query}`)
          expect(reply.status, query).toBe(400)
          expect(blamedFields(reply), query).toEqual([field])
        }
        const active = yield* call("/users?active=1")
        expect((active.json as { message: string }).message).toContain("must be true or false")
      }))
  })

  describe("GET /users/{id}", () => {
    it.effect("answers the user", () =>
      Effect.gen(function*() {
        const reply = yield* call("/users/7")
        expect(reply.status).toBe(200)
        expect(reply.json).toMatchObject({ id: 7, username: "user07", full_name: null })
      }))

    it.effect("a missing user is the upstream's 404, as { error, message }", () =>
      Effect.gen(function*() {
        const reply = yield* call("/users/9999")
        expect(reply.status).toBe(404)
        expect(routeMembers(reply)).toEqual({
          _tag: "NotFound",
          error: "upstream_rejected",
          message: "the upstream answered GET /users/9999 with 404"
        })
      }))

    it.effect("an id that is not a positive integer is a 400 naming id", () =>
      Effect.gen(function*() {
        for (const id of ["abc", "0", "-1", "1.5", "1e3", "0x10"]) {
          const reply = yield* call(`/users/${id}`)
          expect(reply.status, id).toBe(400)
          expect(blamedFields(reply), id).toEqual(["id"])
        }
      }))
  })

  describe("POST /users", () => {
    it.effect("creates a user: 201, and the password is never echoed", () =>
      Effect.gen(function*() {
        const reply = yield* call(
          "/users",
          jsonBody("POST", { username: "ada", email: "ada@example.com", password: "correct horse", full_name: "Ada" })
        )
        expect(reply.status).toBe(201)
        const user = reply.json as UserJson
        expect(user).toMatchObject({ username: "ada", email: "ada@example.com", full_name: "Ada", active: true })
        expect(reply.text).not.toContain("correct horse")
        expect(reply.text).not.toContain("password")
        expect((yield* call(`/users/${user.id}`)).json).toEqual(user)
      }))

    it.effect("full_name is optional", () =>
      Effect.gen(function*() {
        const reply = yield* call(
          "/users",
          jsonBody("POST", { username: "bob", email: "b@ex.io", password: "12345678" })
        )
        expect(reply.status).toBe(201)
        expect(reply.json).toMatchObject({ username: "bob", full_name: null })
      }))

    it.effect("a taken username is the upstream's 409", () =>
      Effect.gen(function*() {
        const reply = yield* call(
          "/users",
          jsonBody("POST", { username: "user01", email: "x@example.com", password: "12345678" })
        )
        expect(reply.status).toBe(409)
        expect(reply.json).toMatchObject({ _tag: "Conflict", error: "upstream_rejected" })
      }))

    it.effect("an invalid body is a 400 naming the field, without echoing the password", () =>
      Effect.gen(function*() {
        const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
          [{ username: "ok_name", email: "not-an-email", password: "12345678" }, "email"],
          [{ username: "No Spaces", email: "a@b.co", password: "12345678" }, "username"],
          [{ username: "ok_name", email: "a@b.co" }, "password"],
          [{ username: "ok_name", email: "a@b.co", password: "hunter2" }, "password"],
          [{ username: "ok_name", email: "a@b.co", password: "12345678", full_name: 42 }, "full_name"]
        ]
        for (const [body, field] of cases) {
          const reply = yield* call("/users", jsonBody("POST", body))
          expect(reply.status, field).toBe(400)
          expect(blamedFields(reply), field).toEqual([field])
        }
        for (const password of ["hunter2", 31415926]) {
          const reply = yield* call("/users", jsonBody("POST", { username: "ok_name", email: "a@b.co", password }))
          expect(reply.status).toBe(400)
          expect(reply.text).not.toContain(String(password))
        }
      }))
  })

  describe("PUT, PATCH, DELETE /users/{id}", () => {
    it.effect("PUT replaces email, full_name and active", () =>
      Effect.gen(function*() {
        const reply = yield* call(
          "/users/11",
          jsonBody("PUT", { email: "eleven@example.org", full_name: null, active: false })
        )
        expect(reply.status).toBe(200)
        expect(reply.json).toMatchObject({
          id: 11,
          username: "user11",
          email: "eleven@example.org",
          full_name: null,
          active: false
        })
        expect((yield* call("/users/11")).json).toEqual(reply.json)
      }))

    it.effect("PUT needs every field; a missing user is a 404", () =>
      Effect.gen(function*() {
        const partial = yield* call("/users/12", jsonBody("PUT", { email: "twelve@example.org", active: true }))
        expect(partial.status).toBe(400)
        expect(blamedFields(partial)).toEqual(["full_name"])
        const missing = yield* call("/users/9999", jsonBody("PUT", { email: "a@b.co", full_name: "A", active: true }))
        expect(missing.status).toBe(404)
      }))

    it.effect("PATCH changes only the fields present; null clears full_name", () =>
      Effect.gen(function*() {
        const before = (yield* call("/users/13")).json as UserJson
        const cleared = yield* call("/users/13", jsonBody("PATCH", { full_name: null }))
        expect(cleared.status).toBe(200)
        expect(cleared.json).toEqual({ ...before, full_name: null })
        const deactivated = yield* call("/users/13", jsonBody("PATCH", { active: false }))
        expect(deactivated.json).toEqual({ ...before, full_name: null, active: false })
        const bad = yield* call("/users/13", jsonBody("PATCH", { email: "nope" }))
        expect(bad.status).toBe(400)
        expect(blamedFields(bad)).toEqual(["email"])
      }))

    it.effect("DELETE answers { status: deleted, id }, then the user is gone", () =>
      Effect.gen(function*() {
        const reply = yield* call("/users/14", { method: "DELETE" })
        expect(reply.status).toBe(200)
        expect(reply.json).toEqual({ status: "deleted", id: 14 })
        expect((yield* call("/users/14")).status).toBe(404)
        expect((yield* call("/users/14", { method: "DELETE" })).status).toBe(404)
      }))
  })

  describe("GET /users/batch", () => {
    it.effect("fetches each distinct id once, in the order asked, and lists the missing", () =>
      Effect.gen(function*() {
        const reply = yield* call("/users/batch?ids=3,1,2,3,1,9999")
        expect(reply.status).toBe(200)
        const batch = reply.json as BatchJson
        expect(ids(batch.users)).toEqual([3, 1, 2])
        expect(batch.count).toBe(3)
        expect(batch.missing).toEqual([9999])
      }))

    it.effect("100 distinct ids are allowed, duplicates do not count", () =>
      Effect.gen(function*() {
        const hundred = range(1, 100).join(",")
        const reply = yield* call(`/users/batch?ids=${hundred},${hundred}`)
        expect(reply.status).toBe(200)
        const batch = reply.json as BatchJson
        expect(batch.count).toBe(batch.users.length)
        expect(batch.count + batch.missing.length).toBe(100)
        expect(batch.missing).toEqual(expect.arrayContaining(range(60, 100)))
      }))

    it.effect("more than 100 ids, or one that is not a positive integer, is a 400 naming ids", () =>
      Effect.gen(function*() {
        for (const query of [`ids=${range(1, 101).join(",")}`, "ids=1,abc", "ids=1,,2", "ids=0", "ids=", ""]) {
          const reply = yield* call(`/users/batch?${query}`)
          expect(reply.status, query).toBe(400)
          expect(blamedFields(reply), query).toEqual(["ids"])
        }
      }))
  })

  describe("GET /download/{name}", () => {
    it.effect("streams the upstream file byte for byte, with its type and length", () =>
      Effect.gen(function*() {
        const reply = yield* callBytes("/download/1MiB.bin")
        expect(reply.status).toBe(200)
        expect(reply.headers.get("content-type")).toBe("application/octet-stream")
        expect(reply.headers.get("content-length")).toBe(String(1024 * 1024))
        expect(reply.bytes.length).toBe(1024 * 1024)
        const wrong = reply.bytes.findIndex((byte, offset) => byte !== byteAt(offset))
        expect(wrong).toBe(-1)
      }))

    it.effect("an empty file is an empty body", () =>
      Effect.gen(function*() {
        const reply = yield* call("/download/0B.bin")
        expect(reply.status).toBe(200)
        expect(reply.text).toBe("")
      }))

    it.effect("a name the upstream does not have is its 404; a name with path tricks is a 400", () =>
      Effect.gen(function*() {
        for (const name of ["nope.bin", "12XiB.bin", "1MiB.txt", "99999GiB.bin"]) {
          const reply = yield* call(`/download/${name}`)
          expect(reply.status, name).toBe(404)
          expect(reply.json, name).toMatchObject({ _tag: "NotFound", error: "upstream_rejected" })
        }
        for (const name of ["..bin", ".hidden", "a%2Fb", "a%20b"]) {
          const reply = yield* call(`/download/${name}`)
          expect(reply.status, name).toBe(400)
          expect(blamedFields(reply), name).toEqual(["name"])
        }
      }))
  })

  describe("documentation", () => {
    it.effect("Swagger UI at /docs", () =>
      Effect.gen(function*() {
        const reply = yield* call("/docs")
        expect(reply.status).toBe(200)
        expect(reply.headers.get("content-type")).toContain("text/html")
        expect(reply.text).toContain("SwaggerUIBundle")
      }))

    it.effect("/openapi.json lists every endpoint and its error answers", () =>
      Effect.gen(function*() {
        const reply = yield* call("/openapi.json")
        expect(reply.status).toBe(200)
        const spec = reply.json as {
          readonly info: { readonly title: string }
          readonly paths: Record<string, Record<string, { readonly responses: Record<string, unknown> }>>
        }
        expect(spec.info.title).toBe("Liaison demo server")
        // Each feature adds its own paths; these are the ones this file is about.
        expect(Object.keys(spec.paths)).toEqual(
          expect.arrayContaining([
            "/download/{name}",
            "/health",
            "/resilience",
            "/users",
            "/users/batch",
            "/users/{id}"
          ])
        )
        expect(Object.keys(spec.paths["/users/{id}"] ?? {}).sort()).toEqual(["delete", "get", "patch", "put"])
        const getUser = spec.paths["/users/{id}"]?.["get"]?.responses ?? {}
        expect(Object.keys(getUser).sort()).toEqual(["200", "400", "404", "409", "422", "429", "502", "503", "504"])
        expect(Object.keys(spec.paths["/users"]?.["post"]?.responses ?? {})).toContain("201")
        expect(Object.keys(spec.paths["/download/{name}"]?.["get"]?.responses ?? {})).toContain("504")
      }))

    it.effect("an unknown route is a 404", () =>
      Effect.gen(function*() {
        expect((yield* call("/fetch?url=http://example.com")).status).toBe(404)
      }))
  })
})
