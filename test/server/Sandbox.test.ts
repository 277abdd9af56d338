import { expect, layer } from "@effect/vitest"
import { Sandbox } from "@liaison/server"
import { Effect } from "effect"
import { byteAt, jsonBody } from "./support.js"

/** Sends a request straight to the sandbox. */
const sandbox = (path: string, init?: RequestInit) =>
  Effect.flatMap(Sandbox.Sandbox, ({ baseUrl }) =>
    Effect.promise(async () => {
      const response = await fetch(`${baseUrl}${path}`, init)
      const bytes = new Uint8Array(await response.arrayBuffer())
      const text = new TextDecoder().decode(bytes)
      const isJson = (response.headers.get("content-type") ?? "").includes("json")
      return {
        status: response.status,
        headers: response.headers,
        bytes,
        text,
        json: isJson ? JSON.parse(text) : undefined
      }
    }))

layer(Sandbox.layer(), { excludeTestServices: true })("the sandbox users upstream", (it) => {
  it.effect("listens on loopback and seeds 50 users", () =>
    Effect.gen(function*() {
      const { baseUrl } = yield* Sandbox.Sandbox
      expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const reply = yield* sandbox("/users?page_size=100")
      expect(reply.json).toMatchObject({ page: 1, page_size: 100, total: 50 })
      const inactive = yield* sandbox("/users?active=false&page_size=100")
      expect((inactive.json as { total: number }).total).toBe(10)
    }))

  it.effect("GET /users/:id: the user, or a JSON 404", () =>
    Effect.gen(function*() {
      expect((yield* sandbox("/users/2")).json).toMatchObject({ id: 2, username: "user02" })
      for (const id of ["999", "abc", "0"]) {
        const reply = yield* sandbox(`/users/${id}`)
        expect(reply.status, id).toBe(404)
        expect(reply.json, id).toMatchObject({ error: "not_found" })
      }
    }))

  it.effect("POST /users: 201 without the password; 422 when invalid; 409 on a taken username; 400 when not JSON", () =>
    Effect.gen(function*() {
      const created = yield* sandbox(
        "/users",
        jsonBody("POST", { username: "grace", email: "grace@example.com", password: "s3cret-pass" })
      )
      expect(created.status).toBe(201)
      expect(created.json).toMatchObject({ id: 51, username: "grace", full_name: null, active: true })
      expect(created.text).not.toContain("s3cret-pass")
      expect(created.text).not.toContain("password")

      const invalid = yield* sandbox("/users", jsonBody("POST", { username: "g", email: "nope", password: "tiny" }))
      expect(invalid.status).toBe(422)
      expect(invalid.json).toMatchObject({ error: "invalid" })
      expect(invalid.text).not.toContain("tiny")

      const taken = yield* sandbox(
        "/users",
        jsonBody("POST", { username: "grace", email: "other@example.com", password: "12345678" })
      )
      expect(taken.status).toBe(409)
      expect(taken.json).toMatchObject({ error: "conflict" })

      const notJson = yield* sandbox("/users", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{"
      })
      expect(notJson.status).toBe(400)
    }))

  it.effect("PUT replaces, PATCH merges (null clears full_name), DELETE removes", () =>
    Effect.gen(function*() {
      const put = yield* sandbox(
        "/users/3",
        jsonBody("PUT", { email: "three@example.org", full_name: "Three", active: false })
      )
      expect(put.json).toMatchObject({ id: 3, email: "three@example.org", full_name: "Three", active: false })
      expect((yield* sandbox("/users/3", jsonBody("PUT", { email: "three@example.org" }))).status).toBe(422)
      expect((yield* sandbox("/users/999", jsonBody("PUT", { email: "a@b.co", full_name: null, active: true }))).status)
        .toBe(404)

      const patch = yield* sandbox("/users/3", jsonBody("PATCH", { full_name: null }))
      expect(patch.json).toMatchObject({ id: 3, email: "three@example.org", full_name: null, active: false })

      expect((yield* sandbox("/users/3", { method: "DELETE" })).status).toBe(204)
      expect((yield* sandbox("/users/3", { method: "DELETE" })).status).toBe(404)
      expect((yield* sandbox("/users/3")).status).toBe(404)
    }))

  it.effect("GET /files/<n><unit>.bin: that many pattern bytes, with type and length", () =>
    Effect.gen(function*() {
      const reply = yield* sandbox("/files/3KiB.bin")
      expect(reply.status).toBe(200)
      expect(reply.headers.get("content-type")).toBe("application/octet-stream")
      expect(reply.headers.get("content-length")).toBe("3072")
      expect(reply.bytes.length).toBe(3072)
      expect(reply.bytes.every((byte, offset) => byte === byteAt(offset))).toBe(true)
      expect((yield* sandbox("/files/70000B.bin")).bytes.length).toBe(70000)
      for (const name of ["x.bin", "1KB.bin", "1MiB.txt", "5GiB.bin"]) {
        expect((yield* sandbox(`/files/${name}`)).status, name).toBe(404)
      }
    }))
})
