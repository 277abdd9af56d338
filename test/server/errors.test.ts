import { describe, expect, layer } from "@effect/vitest"
import { Server } from "@liaison/server"
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import type * as NodeHttp from "node:http"
import type { Reply } from "./support.js"
import { call, closedPort, jsonBody, routeMembers, serverLayer, stubUpstream } from "./support.js"

const json = (res: NodeHttp.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

const user = {
  id: 1,
  username: "u",
  email: "u@example.com",
  full_name: null,
  active: true,
  created_at: "2024-01-01T00:00:00Z"
}

/** An upstream that fails in every way the table below expects, chosen by the request path. */
const misbehave: NodeHttp.RequestListener = (req, res) => {
  const route = `${req.method} ${(req.url ?? "").split("?")[0]}`
  switch (route) {
    case "GET /users/1":
      return json(res, 500, { error: "boom", secret: "upstream-internal-detail" })
    case "GET /users/2":
      return json(res, 404, { error: "not_found" })
    case "GET /users/3":
      res.writeHead(200, { "content-type": "application/json" })
      return res.end("{ this is not json")
    case "GET /users/4":
      return json(res, 200, { ...user, id: "not-a-number" })
    case "GET /users/5":
    case "GET /files/hang.bin":
      return // never answers: the read timeout must fire
    case "GET /users/6":
      return json(res, 401, { error: "unauthorized" })
    case "GET /users/7":
      return json(res, 429, { error: "slow down" })
    case "GET /users/8":
      return json(res, 503, { error: "maintenance" })
    case "GET /users/9":
      return req.socket.destroy()
    case "GET /users/10":
      return json(res, 200, user)
    case "GET /users":
      return json(res, 500, { error: "boom" })
    case "POST /users":
      return json(res, 409, { error: "conflict" })
    case "PUT /users/1":
      return json(res, 422, { error: "invalid" })
    case "PATCH /users/1":
      return json(res, 400, { error: "bad request" })
    case "DELETE /users/1":
      return json(res, 500, { error: "boom" })
    case "GET /files/broken.bin":
      return json(res, 500, { error: "disk on fire" })
    default:
      return json(res, 404, { error: "not_found" })
  }
}

const expectAnswer = (reply: Reply, status: number, tag: string, error: string) => {
  expect({ status: reply.status, body: routeMembers(reply) }).toEqual({
    status,
    body: { _tag: tag, error, message: expect.any(String) }
  })
}

const misbehavingUpstream = Layer.unwrapScoped(
  Effect.map(
    stubUpstream(misbehave),
    ({ url }) => serverLayer({ upstreamUrl: url, http: { timeouts: { read: "250 millis", connect: "1 second" } } })
  )
)

layer(misbehavingUpstream, { excludeTestServices: true })("upstream failures become answers", (it) => {
  it.effect("the status table", () =>
    Effect.gen(function*() {
      const table: ReadonlyArray<readonly [string, number, string, string]> = [
        ["/users/1", 502, "BadGateway", "upstream_error"],
        ["/users/2", 404, "NotFound", "upstream_rejected"],
        ["/users/3", 502, "BadGateway", "upstream_bad_response"],
        ["/users/4", 502, "BadGateway", "upstream_bad_response"],
        ["/users/5", 504, "UpstreamTimeout", "upstream_timeout"],
        ["/users/6", 502, "BadGateway", "upstream_rejected"],
        ["/users/7", 429, "TooManyRequests", "upstream_rejected"],
        ["/users/8", 502, "BadGateway", "upstream_error"],
        ["/users/9", 502, "BadGateway", "upstream_unavailable"],
        ["/download/broken.bin", 502, "BadGateway", "upstream_error"],
        ["/download/hang.bin", 504, "UpstreamTimeout", "upstream_timeout"]
      ]
      for (const [path, status, tag, error] of table) {
        const reply = yield* call(path)
        expect(reply.status, path).toBe(status)
        expectAnswer(reply, status, tag, error)
      }
    }))

  it.effect("writes: upstream 409, 422 and 400 are passed on; its 5xx is a 502", () =>
    Effect.gen(function*() {
      const created = yield* call(
        "/users",
        jsonBody("POST", { username: "taken", email: "t@ex.io", password: "12345678" })
      )
      expectAnswer(created, 409, "Conflict", "upstream_rejected")
      const replaced = yield* call("/users/1", jsonBody("PUT", { email: "a@b.co", full_name: null, active: true }))
      expectAnswer(replaced, 422, "Unprocessable", "upstream_rejected")
      const patched = yield* call("/users/1", jsonBody("PATCH", { active: false }))
      expectAnswer(patched, 400, "UpstreamBadRequest", "upstream_rejected")
      const deleted = yield* call("/users/1", { method: "DELETE" })
      expectAnswer(deleted, 502, "BadGateway", "upstream_error")
    }))

  it.effect("messages name the method and path only: no query, no upstream host, no upstream body", () =>
    Effect.gen(function*() {
      const reply = yield* call("/users?name=token-abc123&email=secret")
      expectAnswer(reply, 502, "BadGateway", "upstream_error")
      const { message } = reply.json as { readonly message: string }
      expect(message).toBe("the upstream answered GET /users with 500")
      const failed = yield* call("/users/1")
      expect(failed.text).not.toContain("upstream-internal-detail")
      expect(failed.text).not.toContain("127.0.0.1")
      const timedOut = yield* call("/users/5")
      expect((timedOut.json as { readonly message: string }).message).toBe(
        "the upstream did not answer GET /users/5 in time (read timeout, 250 ms)"
      )
    }))

  it.effect("a batch skips missing ids, and fails as its first other failure", () =>
    Effect.gen(function*() {
      const found = yield* call("/users/batch?ids=10,2")
      expect(found.status).toBe(200)
      expect(found.json).toMatchObject({ count: 1, missing: [2] })
      expectAnswer(yield* call("/users/batch?ids=2,10,5"), 504, "UpstreamTimeout", "upstream_timeout")
      expectAnswer(yield* call("/users/batch?ids=10,1"), 502, "BadGateway", "upstream_error")
    }))

  it.effect("/health does not depend on the upstream", () =>
    Effect.gen(function*() {
      expect((yield* call("/health")).json).toEqual({ status: "ok", redis: "disabled" })
    }))
})

// The same server configured from the environment: the timeouts reach the client through `Http.layerConfig`.
const configuredFromEnv = Layer.unwrapScoped(
  Effect.map(stubUpstream(misbehave), ({ url }) =>
    Server.layerConfig.pipe(
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
        new Map([
          ["PORT", "0"],
          ["HOST", "127.0.0.1"],
          ["UPSTREAM_URL", url],
          ["HTTP_READ_TIMEOUT", "150 millis"]
        ])
      ))),
      Layer.provide(Logger.minimumLogLevel(LogLevel.None))
    ))
)

layer(configuredFromEnv, { excludeTestServices: true })("configured by the environment", (it) => {
  it.effect("HTTP_READ_TIMEOUT bounds the upstream call", () =>
    Effect.gen(function*() {
      const reply = yield* call("/users/5")
      expectAnswer(reply, 504, "UpstreamTimeout", "upstream_timeout")
      expect((reply.json as { readonly message: string }).message).toContain("read timeout, 150 ms")
      expect((yield* call("/users/10")).status).toBe(200)
    }))
})

const unreachableUpstream = Layer.unwrapEffect(
  Effect.map(closedPort, (port) => serverLayer({ upstreamUrl: `http://127.0.0.1:${port}` }))
)

layer(unreachableUpstream, { excludeTestServices: true })("an upstream nobody listens on", (it) => {
  it.effect("is a 503 upstream_unavailable for every call", () =>
    Effect.gen(function*() {
      for (const path of ["/users/1", "/users", "/users/batch?ids=1,2", "/download/1B.bin"]) {
        const reply = yield* call(path)
        expectAnswer(reply, 503, "UpstreamUnavailable", "upstream_unavailable")
      }
      const reply = yield* call("/users/1")
      expect((reply.json as { readonly message: string }).message).toBe(
        "the upstream could not be reached for GET /users/1: connection refused"
      )
    }))
})

describe("an upstream whose name does not resolve", () => {
  layer(serverLayer({ upstreamUrl: "http://liaison-upstream.invalid" }), { excludeTestServices: true })((it) => {
    it.effect("is a 503 upstream_unavailable", () =>
      Effect.gen(function*() {
        expectAnswer(yield* call("/users/1"), 503, "UpstreamUnavailable", "upstream_unavailable")
      }))
  })
})
