import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as UrlParams from "@effect/platform/UrlParams"
import { describe, expect, it } from "@effect/vitest"
import { Http } from "@liaison/core"
import { Effect, FastCheck as fc, Schema } from "effect"

// Any record of scalars, nulls, undefineds and arrays of scalars: what a filter object encodes to.
const Fields = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const scalar = fc.oneof(
  fc.string({ unit: "grapheme" }),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constant(null),
  fc.constant(undefined)
)
const fields = fc.dictionary(
  fc.string({ minLength: 1, unit: "grapheme" }).filter((key) => key !== "__proto__"),
  fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }))
)

/** What a receiver must read back for one field, in order: values, nulls and undefineds skipped. */
const expected = (value: unknown): Array<unknown> =>
  (Array.isArray(value) ? value : [value]).filter((element) => element !== null && element !== undefined)

/** Reads a parsed value back the way the receiver would, given what type was sent. */
const readBack = (sent: unknown, received: string): unknown =>
  typeof sent === "number" ? Number(received) : typeof sent === "boolean" ? received === "true" : received

const checkRoundTrip = (input: Record<string, unknown>, parsed: URLSearchParams) => {
  const seen = new Map<string, Array<string>>()
  for (const [key, value] of parsed) seen.set(key, [...(seen.get(key) ?? []), value])
  for (const [key, value] of Object.entries(input)) {
    const sent = expected(value)
    const received = seen.get(key) ?? []
    expect(received.length).toBe(sent.length)
    sent.forEach((element, i) =>
      expect(readBack(element, received[i]!)).toStrictEqual(Object.is(element, -0) ? 0 : element)
    )
    seen.delete(key)
  }
  expect([...seen.keys()]).toEqual([])
}

describe("query and form encoding", () => {
  it.effect.prop(
    "query: encode → parse gives back every set field, in order",
    [fields],
    ([input]) =>
      Effect.gen(function*() {
        const request = yield* Http.withQuery(HttpClientRequest.get("http://example.test/users"), Fields, input)
        const url = new URL(`http://example.test/?${UrlParams.toString(request.urlParams)}`)
        checkRoundTrip(input, url.searchParams)
      })
  )

  it.effect.prop(
    "form: encode → parse gives back every set field, in order",
    [fields],
    ([input]) =>
      Effect.gen(function*() {
        const request = yield* Http.withForm(HttpClientRequest.post("http://example.test/users"), Fields, input)
        expect(request.body._tag).toBe("Uint8Array")
        if (request.body._tag !== "Uint8Array") return
        expect(request.body.contentType).toBe("application/x-www-form-urlencoded")
        checkRoundTrip(input, new URLSearchParams(new TextDecoder().decode(request.body.body)))
      })
  )

  it.effect("nested objects and non-finite numbers are an InvalidRequest naming the field", () =>
    Effect.gen(function*() {
      const nested = yield* Http.withQuery(HttpClientRequest.get("/x"), Fields, { filter: { a: 1 } }).pipe(Effect.flip)
      expect(nested._tag).toBe("InvalidRequest")
      expect(nested.message).toContain(`"filter"`)
      const infinite = yield* Http.withQuery(HttpClientRequest.get("/x"), Fields, { n: Infinity }).pipe(Effect.flip)
      expect(infinite.message).toContain(`"n"`)
    }))

  it.effect("a value the Schema refuses to encode is an InvalidRequest", () =>
    Effect.gen(function*() {
      const Filter = Schema.Struct({ page: Schema.Int.pipe(Schema.positive()) })
      const error = yield* Http.withQuery(HttpClientRequest.get("/x"), Filter, { page: 0 }).pipe(Effect.flip)
      expect(error._tag).toBe("InvalidRequest")
      expect(error.message).toContain("page")
    }))

  it.effect("a Schema-typed filter: undefined dropped, booleans and arrays predictable, transformations applied", () =>
    Effect.gen(function*() {
      const Filter = Schema.Struct({
        name: Schema.optional(Schema.String),
        active: Schema.optional(Schema.Boolean),
        tags: Schema.optional(Schema.Array(Schema.String)),
        since: Schema.optional(Schema.DateFromString),
        page: Schema.Number
      })
      const request = yield* Http.withQuery(HttpClientRequest.get("/users"), Filter, {
        name: undefined,
        active: false,
        tags: ["a b", "c&d"],
        since: new Date("2026-01-02T03:04:05.000Z"),
        page: 2
      })
      expect(UrlParams.toString(request.urlParams)).toBe(
        "active=false&tags=a+b&tags=c%26d&since=2026-01-02T03%3A04%3A05.000Z&page=2"
      )
    }))
})
