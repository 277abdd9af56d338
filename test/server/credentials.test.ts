/**
 * Every route that changes state (and `/resilience`, which shows the topology) needs an API key:
 * `Authorization: Bearer <key>` or `X-API-Key: <key>`. Without one, or with a wrong one, the
 * answer is a 401 and nothing happens.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { SandboxSecrets } from "@liaison/server"
import { ConfigProvider, Effect, Layer } from "effect"
import { call, demoKey, serverLayer } from "./support.js"

const user = { username: "keyholder", email: "keyholder@example.com", password: "correct-horse-battery" }

/** Every guarded operation, with a body that would be valid. */
const guarded: ReadonlyArray<readonly [method: string, path: string, body?: unknown]> = [
  ["POST", "/users", user],
  ["PUT", "/users/1", { ...user, active: true }],
  ["PATCH", "/users/1", { email: "new@example.com" }],
  ["DELETE", "/users/1"],
  ["POST", "/payments", { amount: 2000, currency: "usd" }],
  ["GET", "/payments"],
  ["GET", "/payments/pi_123"],
  ["POST", "/payments/pi_123/cancel", {}],
  ["POST", "/emails", { from: { email: "a@example.com" }, to: [{ email: "b@example.com" }], subject: "s", text: "t" }],
  ["GET", "/emails/email_00000000-0000-0000-0000-000000000000"],
  ["POST", "/webhook-subscriptions", { url: "https://example.com/hook", events: ["*"] }],
  ["GET", "/webhook-subscriptions"],
  ["DELETE", "/webhook-subscriptions/sub_123"],
  ["POST", "/events", { type: "user.created", data: {} }],
  ["GET", "/webhook-deliveries/del_123"],
  ["GET", "/resilience"]
]

const send = (method: string, path: string, body: unknown, headers: Record<string, string>, anonymous = true) =>
  call(path, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    anonymous
  })

layer(serverLayer(), { excludeTestServices: true })("with the demo key (API_KEYS unset, loopback)", (it) => {
  it.effect("every guarded route answers 401 without a key, or with a wrong one, naming both ways to give one", () =>
    Effect.gen(function*() {
      for (const [method, path, body] of guarded) {
        const none = yield* send(method, path, body, {})
        expect(none.status, `${method} ${path}`).toBe(401)
        expect(none.json).toMatchObject({ _tag: "Unauthorized", error: "unauthorized" })
        expect((none.json as { message: string }).message).toContain("X-API-Key")
        const wrongBearer = yield* send(method, path, body, { authorization: "Bearer not-the-key" })
        expect(wrongBearer.status, `${method} ${path}`).toBe(401)
        const wrongHeader = yield* send(method, path, body, { "x-api-key": `${demoKey}x` })
        expect(wrongHeader.status, `${method} ${path}`).toBe(401)
      }
    }))

  it.effect("the key as a bearer token or as X-API-Key gets through; reads of users need none", () =>
    Effect.gen(function*() {
      for (const [method, path, body] of guarded) {
        const bearer = yield* send(method, path, body, { authorization: `Bearer ${demoKey}` })
        expect(bearer.status, `${method} ${path}`).not.toBe(401)
        const header = yield* send(method, path, body, { "x-api-key": demoKey })
        expect(header.status, `${method} ${path}`).not.toBe(401)
      }
      expect((yield* send("GET", "/users/2", undefined, {})).status).toBe(200)
      expect((yield* send("GET", "/users", undefined, {})).status).toBe(200)
    }))
})

layer(serverLayer(), { excludeTestServices: true })("JSON bodies only", (it) => {
  it.effect("a form, multipart or text body to a JSON route is a 415 before anything is decoded; JSON passes", () =>
    Effect.gen(function*() {
      const withBody = guarded.filter(([, , body]) => body !== undefined)
      expect(withBody).toHaveLength(8)
      for (const [method, path] of withBody) {
        for (const contentType of ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]) {
          const reply = yield* call(path, { method, headers: { "content-type": contentType }, body: "username=ann" })
          expect(reply.status, `${method} ${path} as ${contentType}`).toBe(415)
          expect(reply.json).toMatchObject({ _tag: "UnsupportedMediaType", error: "unsupported_media_type" })
        }
      }
      const json = yield* call("/users", {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8" },
        body: JSON.stringify({ username: "jsonly", email: "jsonly@example.com", password: "correct-horse-battery" })
      })
      expect(json.status).toBe(201)
    }))
})

const ownKeys = "first-operator-key-0123, second-operator-key-4567"

layer(
  serverLayer().pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["API_KEYS", ownKeys]]))))),
  { excludeTestServices: true }
)("with API_KEYS set", (it) => {
  it.effect("each configured key works; the published demo key no longer does", () =>
    Effect.gen(function*() {
      expect(
        (yield* send("GET", "/resilience", undefined, { authorization: `Bearer ${SandboxSecrets.demoApiKey}` }))
          .status
      ).toBe(401)
      expect((yield* send("GET", "/resilience", undefined, { authorization: "Bearer first-operator-key-0123" })).status)
        .toBe(200)
      expect((yield* send("GET", "/resilience", undefined, { "x-api-key": "second-operator-key-4567" })).status)
        .toBe(200)
    }))
})

describe("the keys", () => {
  it("the demo key is published in the sandbox secrets, so Safety refuses it beyond loopback", () => {
    expect(SandboxSecrets.demoApiKey).toBe(demoKey)
  })
})
