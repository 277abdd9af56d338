import { Cookies } from "@effect/platform"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Http, HttpError } from "@liaison/core"
import { Effect, Fiber, Schema, Stream } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { currentHeadersDeadline } from "../../packages/core/src/internal/undiciTransport.js"
import type { ChaosUpstream } from "../fixtures/chaos.js"
import { startChaosUpstream } from "../fixtures/chaos.js"

/**
 * What each transport must do alike: compose with platform code, abort on interruption, free the
 * connection of an unread body, honour a per-request headers deadline. Both run here whatever
 * `LIAISON_HTTP_TRANSPORT` says.
 */
let chaos: ChaosUpstream
/** A server of our own: `/never` never answers, `/big` sends 4 MiB, `/slow-headers` answers after 3 s. */
let server: http.Server
let serverUrl = ""
const closed = new Set<string>()
const seen = new Set<string>()

beforeAll(async () => {
  chaos = await startChaosUpstream()
  server = http.createServer((req, res) => {
    const id = req.headers["x-id"]
    if (typeof id === "string") {
      seen.add(id)
      res.on("close", () => closed.add(id))
    }
    if (req.url === "/never") return
    if (req.url === "/big") return void res.end(Buffer.alloc(4 * 1024 * 1024, 97))
    if (req.url === "/slow-headers") return void setTimeout(() => res.end("late"), 3000).unref()
    res.end("small")
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  await chaos.close()
})

/** Waits, in real time, at most 5 s for a condition set by the server. */
const eventually = (check: () => boolean) =>
  Effect.promise(async () => {
    for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    return check()
  })

const Users = Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))

describe.each(["undici", "platform"] as const)("transport %s", (transport) => {
  it.effect("its client composes with platform code: filters, body readers, headers, cookies", () =>
    Effect.gen(function*() {
      const { client } = yield* Http.Http
      const ok = HttpClient.filterStatusOk(client)
      const response = yield* ok.get(
        "/json?size=2&header=x-twice:1&header=x-twice:2&header=set-cookie:a%3D1&header=set-cookie:b%3D2"
      )
      expect(yield* Schema.decodeUnknown(Users)(yield* response.json)).toEqual([
        { id: 1, name: "user-1" },
        { id: 2, name: "user-2" }
      ])
      // A second read gets the same body.
      expect(JSON.parse(yield* response.text)).toHaveLength(2)
      expect(response.headers["x-twice"]).toBe("1, 2")
      expect(response.headers["content-type"]).toMatch(/^application\/json/)
      expect(Cookies.toRecord(response.cookies)).toEqual({ a: "1", b: "2" })
      const missing = yield* Effect.flip(ok.get("/status/404"))
      expect(missing._tag).toBe("ResponseError")
    }).pipe(Effect.scoped, Effect.provide(Http.layer({ baseUrl: chaos.url, transport }))))

  it.effect("interrupting a call that waits for its headers aborts the request", () =>
    Effect.gen(function*() {
      const id = `${transport}-interrupt`
      const fiber = yield* Effect.fork(
        Http.text(HttpClientRequest.get(`${serverUrl}/never`, { headers: { "x-id": id } }))
      )
      expect(yield* eventually(() => seen.has(id))).toBe(true)
      yield* Fiber.interrupt(fiber)
      expect(yield* eventually(() => closed.has(id))).toBe(true)
    }).pipe(Effect.provide(Http.layer({ transport }))))

  it.effect("a body nobody reads is cancelled with its scope: the only connection is free again", () =>
    Effect.gen(function*() {
      const id = `${transport}-unread`
      const status = yield* Effect.scoped(
        Effect.map(
          Http.execute(HttpClientRequest.get(`${serverUrl}/big`, { headers: { "x-id": id } })),
          (r) => r.status
        )
      )
      expect(status).toBe(200)
      expect(yield* eventually(() => closed.has(id))).toBe(true)
      expect(yield* Http.text(HttpClientRequest.get(`${serverUrl}/small`))).toBe("small")
    }).pipe(Effect.provide(Http.layer({ transport, pool: { maxConnections: 1 }, timeouts: { pool: "2 seconds" } }))))

  it.effect("a 4 MiB body arrives whole, buffered or streamed (undici paused and resumed on the way)", () =>
    Effect.gen(function*() {
      const bytes = yield* Http.bytes(HttpClientRequest.get(`${serverUrl}/big`))
      expect(bytes.length).toBe(4 * 1024 * 1024)
      expect(bytes.every((byte) => byte === 97)).toBe(true)
      const streamed = yield* Http.stream(HttpClientRequest.get(`${serverUrl}/big`)).pipe(
        Stream.tap(() => Effect.yieldNow()),
        Stream.runFold({ size: 0, other: 0 }, (acc, chunk) => ({
          size: acc.size + chunk.length,
          other: acc.other + chunk.filter((byte) => byte !== 97).length
        }))
      )
      expect(streamed).toEqual({ size: 4 * 1024 * 1024, other: 0 })
    }).pipe(Effect.provide(Http.layer({ transport }))))

  it.effect("a headers deadline shorter than `read` fails the call with the deadline's own error", () =>
    Effect.gen(function*() {
      const request = HttpClientRequest.get(`${serverUrl}/slow-headers`)
      const error = yield* Http.text(request).pipe(
        Effect.locally(currentHeadersDeadline, {
          millis: 200,
          onTimeout: () => HttpError.timeout(request, "attempt", 200)
        }),
        Effect.flip
      )
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "attempt", timeoutMillis: 200 })
    }).pipe(Effect.provide(Http.layer({ transport }))))

  it.effect("a headers deadline longer than `read` leaves the read timeout in charge", () =>
    Effect.gen(function*() {
      const request = HttpClientRequest.get(`${serverUrl}/slow-headers`)
      const error = yield* Http.text(request).pipe(
        Effect.locally(currentHeadersDeadline, {
          millis: 60_000,
          onTimeout: () => HttpError.timeout(request, "attempt", 60_000)
        }),
        Effect.flip
      )
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "read", timeoutMillis: 300 })
    }).pipe(Effect.provide(Http.layer({ transport, timeouts: { read: "300 millis" } }))))
})
