/**
 * The way in for a person: `GET /` leads to the API docs, and the start-up line says where they
 * are and what runs on built-in sandboxes.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it, layer } from "@effect/vitest"
import { Server } from "@liaison/server"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { startupLine } from "../../packages/server/src/internal/listener.js"
import { call, serverLayer } from "./support.js"

describe("GET /", () => {
  layer(serverLayer(), { excludeTestServices: true })((it) => {
    it.effect("redirects (302) to /docs, which serves Swagger UI", () =>
      Effect.gen(function*() {
        const root = yield* call("/", { redirect: "manual" })
        expect(root.status).toBe(302)
        expect(root.headers.get("location")).toBe("/docs")
        const docs = yield* call("/", { redirect: "follow" })
        expect(docs.status).toBe(200)
        expect(docs.headers.get("content-type")).toContain("text/html")
        expect(docs.text).toContain("swagger")
      }))

    it.effect("leaves other unknown paths a 404", () =>
      Effect.gen(function*() {
        expect((yield* call("/no-such-page", { redirect: "manual" })).status).toBe(404)
      }))
  })
})

describe("the start-up line", () => {
  it.effect("names the address, the docs URL and the parts on built-in sandboxes", () => {
    const lines: Array<string> = []
    const capture = Logger.make(({ message }) => {
      lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
    return Effect.gen(function*() {
      const url = yield* Effect.scoped(
        Effect.map(
          Layer.build(Server.layer({ port: 0, host: "127.0.0.1" })),
          (context) => HttpServer.formatAddress(Context.get(context, HttpServer.HttpServer).address)
        )
      )
      const line = lines.find((l) => l.startsWith("Liaison demo server listening on"))
      expect(line, lines.join("\n")).toBeDefined()
      expect(line).toContain(`listening on ${url} — API docs at ${url}/docs; built-in sandboxes: `)
      expect(line).toContain("users upstream (UPSTREAM_URL unset)")
    }).pipe(Effect.provide(Logger.add(capture)), Logger.withMinimumLogLevel(LogLevel.Info))
  }, { timeout: 30_000 })

  it("points a browser at localhost when the server listens on every interface", () => {
    expect(startupLine("http://0.0.0.0:3000", ["Stripe", "SendGrid"])).toBe(
      "Liaison demo server listening on http://0.0.0.0:3000 — API docs at http://localhost:3000/docs; " +
        "built-in sandboxes: Stripe, SendGrid"
    )
    expect(startupLine("http://127.0.0.1:8080", [])).toBe(
      "Liaison demo server listening on http://127.0.0.1:8080 — API docs at http://127.0.0.1:8080/docs; " +
        "no built-in sandboxes"
    )
  })
})
