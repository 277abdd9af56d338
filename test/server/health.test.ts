import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { redisUrl } from "../setup/redisUrl.js"
import { call, closedPort, serverLayer } from "./support.js"

describe("GET /health with REDIS_URL", () => {
  layer(
    Layer.suspend(() => serverLayer({ redisUrl: Redacted.make(redisUrl()) })),
    { excludeTestServices: true }
  )((it) => {
    it.effect("reports redis ok when Redis answers", () =>
      Effect.gen(function*() {
        const reply = yield* call("/health")
        expect(reply.status).toBe(200)
        expect(reply.json).toEqual({ status: "ok", redis: "ok" })
      }))
  })

  layer(
    Layer.unwrapEffect(
      Effect.map(closedPort, (port) => serverLayer({ redisUrl: Redacted.make(`redis://127.0.0.1:${port}`) }))
    ),
    { excludeTestServices: true }
  )((it) => {
    it.effect("starts anyway when Redis is down, and reports redis down", () =>
      Effect.gen(function*() {
        const reply = yield* call("/health")
        expect(reply.status).toBe(200)
        expect(reply.json).toEqual({ status: "ok", redis: "down" })
        expect((yield* call("/users/1")).status).toBe(200)
      }))
  })
})
