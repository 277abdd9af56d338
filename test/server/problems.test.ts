/**
 * Every non-2xx answer is `application/problem+json` (RFC 9457), unknown routes and undecodable
 * bodies included; rejected values appear at most as a short preview, never for a secret field.
 */
import { expect, layer } from "@effect/vitest"
import { Server } from "@liaison/server"
import { Effect } from "effect"
import * as NodeHttp from "node:http"
import type { Reply } from "./support.js"
import { call, demoKey, serverLayer } from "./support.js"

interface Problem {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly detail: string
  readonly errors?: ReadonlyArray<{ readonly pointer: string; readonly detail: string }>
}

const expectProblem = (reply: Reply, status: number): Problem => {
  expect(reply.status).toBe(status)
  expect(reply.headers.get("content-type")).toBe("application/problem+json")
  const problem = reply.json as Problem
  expect(problem).toMatchObject({ type: "about:blank", status })
  expect(problem.title.length).toBeGreaterThan(0)
  expect(problem.detail.length).toBeGreaterThan(0)
  return problem
}

const postUser = (body: string) =>
  call("/users", { method: "POST", headers: { "content-type": "application/json" }, body })

layer(serverLayer(), { excludeTestServices: true })("problem+json answers", (it) => {
  it.effect("an unknown route and a wrong method are problems, not empty bodies", () =>
    Effect.gen(function*() {
      expectProblem(yield* call("/no-such-route"), 404)
      const wrongMethod = yield* call("/health", { method: "PATCH" })
      expect(wrongMethod.status).toBeGreaterThanOrEqual(400)
      expectProblem(wrongMethod, wrongMethod.status)
    }))

  it.effect("invalid JSON and a body of the wrong shape are 400 problems with the fields' paths", () =>
    Effect.gen(function*() {
      expectProblem(yield* postUser("{not json"), 400)
      const wrong = expectProblem(yield* postUser(JSON.stringify({ username: 7 })), 400)
      expect(wrong.errors?.map((error) => error.pointer)).toContain("/username")
    }))

  it.effect("JSON nested 3,000 levels deep is a 4xx problem, not a 500", () =>
    Effect.gen(function*() {
      const deep = `${"[".repeat(3000)}${"]".repeat(3000)}`
      const reply = yield* postUser(`{"username":${deep}}`)
      expect(reply.status).toBeGreaterThanOrEqual(400)
      expect(reply.status).toBeLessThan(500)
      expectProblem(reply, reply.status)
    }))

  it.effect("a rejected password never appears; a long rejected value only as a short preview", () =>
    Effect.gen(function*() {
      const password = "tiny"
      const tooShort = yield* postUser(JSON.stringify({ username: "ann", email: "ann@example.com", password }))
      expectProblem(tooShort, 400)
      expect(tooShort.text).not.toContain(`"${password}"`)
      expect(tooShort.text).not.toContain(`\\"${password}\\"`)
      const huge = "x".repeat(200_000)
      const long = yield* postUser(JSON.stringify({ username: "ann", email: huge, password: "correct-horse-battery" }))
      expectProblem(long, 400)
      expect(long.text.length).toBeLessThan(4_000)
    }))

  it.effect("a JSON body over 1 MiB is a 413 problem", () =>
    Effect.gen(function*() {
      const big = JSON.stringify({ username: "x".repeat(2 * 1024 * 1024) })
      expectProblem(yield* postUser(big), 413)
    }))

  it.effect(
    "1 GiB streamed at a JSON route is refused after about the limit; memory stays flat",
    () =>
      Effect.gen(function*() {
        const url = new URL(yield* Server.url)
        const before = process.memoryUsage().rss
        // With its length declared, as an upload tool sends it: a 413 problem before the body is read.
        const declared = yield* Effect.promise(() => streamGiB(url, true))
        expect(declared.status).toBe(413)
        expect(declared.contentType).toBe("application/problem+json")
        // Chunked: read up to the limit, then the connection is closed under the client still
        // writing (it may see the reset before the 413); the rest is never read.
        const chunked = yield* Effect.promise(() => streamGiB(url, false))
        expect([0, 413]).toContain(chunked.status)
        const growth = (process.memoryUsage().rss - before) / (1024 * 1024)
        for (const outcome of [declared, chunked]) expect(outcome.sentMiB).toBeLessThan(256)
        expect(growth).toBeLessThan(64)
        console.log(
          `1 GiB bodies: declared → ${declared.status} after ${declared.sentMiB.toFixed(1)} MiB sent; chunked → ${
            chunked.status === 0 ? "connection closed" : chunked.status
          } after ${chunked.sentMiB.toFixed(1)} MiB; RSS growth ${growth.toFixed(1)} MiB`
        )
        expect((yield* call("/health")).status).toBe(200)
      }),
    60_000
  )
})

/** Streams up to 1 GiB to POST /users until the server answers or closes the connection. */
const streamGiB = (url: URL, declared: boolean) =>
  new Promise<{ status: number; contentType: string | undefined; sentMiB: number }>((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, 0x61)
    const total = 1024 * 1024 * 1024
    let sent = 0
    let done = false
    const finish = (status: number, contentType: string | undefined) => {
      if (done) return
      done = true
      resolve({ status, contentType, sentMiB: sent / (1024 * 1024) })
    }
    const request = NodeHttp.request({
      host: url.hostname,
      port: url.port,
      method: "POST",
      path: "/users",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${demoKey}`,
        ...(declared ? { "content-length": String(total + 16) } : {})
      }
    }, (response) => {
      response.resume()
      finish(response.statusCode ?? 0, response.headers["content-type"])
      request.destroy()
    })
    request.on(
      "error",
      (error: NodeJS.ErrnoException) =>
        error.code === "ECONNRESET" || error.code === "EPIPE" ? finish(0, undefined) : done ? undefined : reject(error)
    )
    request.write("{\"username\":\"")
    const pump = () => {
      while (!done && sent < total) {
        sent += chunk.length
        if (!request.write(chunk)) return void request.once("drain", pump)
      }
      if (!done) request.end("\"}")
    }
    pump()
  })
