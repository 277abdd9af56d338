/**
 * `GET /protected/{mode}` at the server (each mode against the sandbox's protected routes, a real OAuth2 server,
 * a configured upstream) and the sandbox's own protected routes and token endpoint.
 */
import type * as HttpServer from "@effect/platform/HttpServer"
import { afterAll, beforeAll, describe, expect, it, layer } from "@effect/vitest"
import { Sandbox } from "@liaison/server"
import { Effect, Layer, Redacted } from "effect"
import type * as NodeHttp from "node:http"
import type { OAuth2Mock } from "../fixtures/oauth2.js"
import { startOAuth2Server } from "../fixtures/oauth2.js"
import { call, serverLayer, stubUpstream } from "./support.js"

const modes = ["bearer", "api-key", "basic", "oauth2"] as const

/** Runs `test` against a server built with these options. */
const withServer = <A, E>(
  options: Parameters<typeof serverLayer>[0],
  test: Effect.Effect<A, E, HttpServer.HttpServer>
) =>
  Effect.gen(function*() {
    const server = yield* Layer.build(serverLayer(options))
    return yield* Effect.provide(test, server)
  }).pipe(Effect.scoped)

describe("GET /protected/{mode} with the built-in sandbox", () => {
  it.live("every mode works offline with the sandbox's demo credentials", () =>
    withServer(
      {},
      Effect.gen(function*() {
        for (const mode of modes) {
          const reply = yield* call(`/protected/${mode}`)
          expect(reply.status, mode).toBe(200)
          expect(reply.json, mode).toMatchObject({ mode, authenticated: true })
        }
        expect((yield* call("/protected/basic")).json).toMatchObject({ principal: "sandbox" })
        expect((yield* call("/protected/oauth2")).json).toMatchObject({ principal: "liaison-demo", verified: true })
      })
    ))

  it.live("configured credentials are the ones used, and the sandbox is started with them", () =>
    withServer(
      {
        auth: {
          bearer: { token: Redacted.make("my-own-token") },
          apiKey: { key: Redacted.make("my-own-key"), in: "query", name: "key" },
          basic: { username: "ünïcode", password: Redacted.make("p:w") }
        }
      },
      Effect.gen(function*() {
        for (const mode of ["bearer", "api-key", "basic"]) {
          expect((yield* call(`/protected/${mode}`)).status, mode).toBe(200)
        }
        expect((yield* call("/protected/basic")).json).toMatchObject({ principal: "ünïcode" })
      })
    ))

  it.live("an unknown mode is a 400 naming the field", () =>
    withServer(
      {},
      Effect.gen(function*() {
        const reply = yield* call("/protected/digest")
        expect(reply.status).toBe(400)
        expect(reply.text).toContain("mode")
      })
    ))

  it.live("the OpenAPI document lists the endpoint", () =>
    withServer(
      {},
      Effect.gen(function*() {
        const reply = yield* call("/openapi.json")
        expect(Object.keys((reply.json as { paths: Record<string, unknown> }).paths)).toContain("/protected/{mode}")
      })
    ))
})

describe("GET /protected/oauth2 with a real token endpoint", () => {
  let oauth: OAuth2Mock
  beforeAll(async () => {
    oauth = await startOAuth2Server({ clientId: "server-client", clientSecret: "server-s3cret" })
  })
  afterAll(() => oauth?.stop())

  const oauth2 = (secret: string) => ({
    tokenUrl: oauth.tokenUrl,
    clientId: "server-client",
    clientSecret: Redacted.make(secret),
    scope: ["demo"]
  })

  it.live("tokens come from the configured endpoint, one for many calls", () =>
    withServer(
      { auth: { oauth2: oauth2("server-s3cret") } },
      Effect.gen(function*() {
        yield* Effect.promise(() => oauth.reset())
        const replies = yield* Effect.all(Array.from({ length: 10 }, () => call("/protected/oauth2")), {
          concurrency: "unbounded"
        })
        for (const reply of replies) {
          expect(reply.status).toBe(200)
          // The sandbox cannot check a token it did not issue, and says so.
          expect(reply.json).toMatchObject({ mode: "oauth2", verified: false })
        }
        const stats = yield* Effect.promise(() => oauth.stats())
        expect(stats.tokenRequests).toBe(1)
        expect(stats.requests[0]).toMatchObject({ authMethod: "client_secret_basic", scope: "demo" })
      })
    ))

  it.live("a refused client is a 502 upstream_auth_failed that names no secret", () =>
    withServer(
      { auth: { oauth2: oauth2("wrong-s3cret") }, resilience: { policy: false } },
      Effect.gen(function*() {
        const reply = yield* call("/protected/oauth2")
        expect(reply.status).toBe(502)
        expect(reply.json).toMatchObject({ error: "upstream_auth_failed" })
        expect(reply.text).toContain("invalid_client")
        expect(reply.text).not.toContain("wrong-s3cret")
        expect(reply.text).not.toContain("127.0.0.1")
      })
    ))
})

describe("GET /protected/{mode} with a configured upstream", () => {
  const seen: Array<NodeHttp.IncomingHttpHeaders> = []
  const upstream = stubUpstream((request, response) => {
    seen.push(request.headers)
    const ok = request.headers.authorization === "Bearer upstream-token"
    response.writeHead(ok ? 200 : 401, { "content-type": "application/json" })
    response.end(JSON.stringify(ok ? { hello: "from upstream", path: request.url } : { error: "unauthorized" }))
  })

  it.live("a mode with credentials calls the upstream's /protected/{mode} and answers its JSON", () =>
    Effect.gen(function*() {
      const { url } = yield* upstream
      yield* withServer(
        { upstreamUrl: url, auth: { bearer: { token: Redacted.make("upstream-token") } } },
        Effect.gen(function*() {
          const reply = yield* call("/protected/bearer")
          expect(reply.status).toBe(200)
          expect(reply.json).toEqual({ hello: "from upstream", path: "/protected/bearer" })
        })
      )
    }).pipe(Effect.scoped))

  it.live("a mode without credentials answers 501; refused credentials a 502", () =>
    Effect.gen(function*() {
      const { url } = yield* upstream
      yield* withServer(
        {
          upstreamUrl: url,
          auth: { basic: { username: "u", password: Redacted.make("wrong") } },
          resilience: { policy: false }
        },
        Effect.gen(function*() {
          const before = seen.length
          for (const mode of ["bearer", "api-key", "oauth2"]) {
            const reply = yield* call(`/protected/${mode}`)
            expect(reply.status, mode).toBe(501)
            expect(reply.json, mode).toMatchObject({ error: "not_configured" })
          }
          expect(seen.length).toBe(before)
          const refused = yield* call("/protected/basic")
          expect(refused.status).toBe(502)
          expect(refused.text).not.toContain("wrong")
        })
      )
    }).pipe(Effect.scoped))
})

/** Sends a request straight to the sandbox. */
const sandbox = (path: string, init?: RequestInit) =>
  Effect.flatMap(Sandbox.Sandbox, ({ baseUrl }) =>
    Effect.promise(async () => {
      const response = await fetch(`${baseUrl}${path}`, init)
      const text = await response.text()
      return { status: response.status, headers: response.headers, json: JSON.parse(text) as unknown }
    }))

const form = (fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(fields).toString()
})

const basicHeader = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`
})

layer(Sandbox.layer(), { excludeTestServices: true })("the sandbox's token endpoint and protected routes", (it) => {
  it.effect("client_secret_basic and client_secret_post get a token the oauth2 route accepts", () =>
    Effect.gen(function*() {
      for (
        const init of [
          form({ grant_type: "client_credentials" }, basicHeader("liaison-demo", "sandbox-client-secret")),
          form({ grant_type: "client_credentials", client_id: "liaison-demo", client_secret: "sandbox-client-secret" })
        ]
      ) {
        const issued = yield* sandbox("/oauth2/token", init)
        expect(issued.status).toBe(200)
        expect(issued.headers.get("cache-control")).toBe("no-store")
        const token = issued.json as { access_token: string; token_type: string; expires_in: number }
        expect(token).toMatchObject({ token_type: "Bearer", expires_in: 3600 })
        const used = yield* sandbox("/protected/oauth2", { headers: { authorization: `Bearer ${token.access_token}` } })
        expect(used.json).toMatchObject({ authenticated: true, principal: "liaison-demo", verified: true })
      }
    }))

  it.effect("RFC 6749 §5.2 errors: invalid_client, unsupported_grant_type, invalid_request", () =>
    Effect.gen(function*() {
      const wrong = yield* sandbox("/oauth2/token", form({ grant_type: "client_credentials" }, basicHeader("x", "y")))
      expect(wrong.status).toBe(401)
      expect(wrong.json).toMatchObject({ error: "invalid_client" })
      const grant = yield* sandbox("/oauth2/token", form({ grant_type: "password" }))
      expect(grant.json).toMatchObject({ error: "unsupported_grant_type" })
      const both = yield* sandbox(
        "/oauth2/token",
        form(
          { grant_type: "client_credentials", client_id: "liaison-demo", client_secret: "sandbox-client-secret" },
          basicHeader("liaison-demo", "sandbox-client-secret")
        )
      )
      expect(both.json).toMatchObject({ error: "invalid_request" })
    }))

  it.effect("protected routes answer 401 with a challenge to wrong or missing credentials", () =>
    Effect.gen(function*() {
      for (const mode of modes) {
        const reply = yield* sandbox(`/protected/${mode}`, {
          headers: { authorization: "Bearer nope", "x-api-key": "no" }
        })
        expect(reply.status, mode).toBe(401)
        expect(reply.headers.get("www-authenticate"), mode).not.toBeNull()
      }
      const basic = yield* sandbox("/protected/basic", { headers: basicHeader("sandbox", "sandbox-password") })
      expect(basic.status).toBe(200)
    }))
})
