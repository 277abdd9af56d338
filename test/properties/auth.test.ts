import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Auth, Http } from "@liaison/core"
import { Duration, Effect, FastCheck as fc, Layer, Redacted, Schema } from "effect"
import { cacheMillis } from "../../packages/core/src/internal/auth.js"
import type { ChaosUpstream } from "../fixtures/chaos.js"
import { startChaosUpstream } from "../fixtures/chaos.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"

let chaos: ChaosUpstream
beforeAll(async () => {
  chaos = await startChaosUpstream()
})
afterAll(() => chaos.close())

const Echo = Schema.Struct({
  query: Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Schema.Array(Schema.String)) }),
  headers: Schema.Record({ key: Schema.String, value: Schema.String })
})

const echo = (options: Auth.Options, path = "/echo") =>
  Http.json(HttpClientRequest.get(path), Echo).pipe(
    Effect.provide(Auth.layerHttp({ baseUrl: chaos.url }).pipe(Layer.provide(Auth.layer(options))))
  )

// No control characters (refused), no ':' in the user name (RFC 7617); anything else in Unicode.
const printable = (s: string) => [...s].every((c) => c.charCodeAt(0) >= 0x20 && c !== "\x7f")
const text = fc.string({ unit: "grapheme", maxLength: 24 }).filter(printable)

describe("Auth properties", () => {
  it.effect.prop(
    "Basic: the header decodes (base64, UTF-8) to exactly user:password",
    [text.filter((s) => !s.includes(":")), text],
    ([username, password]) =>
      Effect.gen(function*() {
        const seen = yield* echo({ scheme: "basic", username, password: Redacted.make(password) })
        const header = seen.headers.authorization ?? ""
        expect(header.startsWith("Basic ")).toBe(true)
        expect(Buffer.from(header.slice(6), "base64").toString("utf8")).toBe(`${username}:${password}`)
      }),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect.prop(
    "API key in the query: it arrives intact, and no span attribute shows it, raw or encoded",
    // Long enough that it cannot turn up in a span by chance (a host, a path).
    [fc.string({ unit: "grapheme", minLength: 12, maxLength: 40 }).filter((s) => s.trim().length >= 12)],
    ([key]) =>
      Effect.gen(function*() {
        const { spans, text, tracer } = recordingTracer()
        const seen = yield* echo({ scheme: "api-key", in: "query", key: Redacted.make(key) }, "/echo?page=1").pipe(
          Effect.withTracer(tracer)
        )
        expect(seen.query.api_key).toBe(key)
        expect(spans.some((span) => span.attributes.has("url.full"))).toBe(true)
        const recorded = text()
        expect(recorded).toContain("api_key=<redacted>")
        for (const form of [key, encodeURIComponent(key), new URLSearchParams([["k", key]]).toString().slice(2)]) {
          expect(recorded).not.toContain(form)
        }
      }),
    { fastCheck: { numRuns: 20 } }
  )

  it.prop(
    "a token is kept expires_in minus the skew, never longer than its lifetime nor shorter than half of it",
    [fc.integer({ min: 1, max: 86_400 }), fc.integer({ min: 0, max: 3_600 })],
    ([lifetime, skew]) => {
      const kept = cacheMillis(Duration.seconds(lifetime), Duration.seconds(skew))
      expect(kept).toBeLessThanOrEqual(lifetime * 1000)
      expect(kept).toBeGreaterThanOrEqual(lifetime * 500)
      if (lifetime >= 2 * skew) expect(kept).toBe((lifetime - skew) * 1000)
    }
  )
})
