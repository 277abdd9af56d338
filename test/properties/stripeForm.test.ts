import { describe, expect, it } from "@effect/vitest"
import { StripeSchema } from "@liaison/integrations"
import { DateTime, Either, FastCheck as fc } from "effect"

// ---------------------------------------------------------------------------------------------------------------
// A Rack-style nested parser (what Stripe's servers do with `a[b][0]=x`), written independently of the encoder:
// Rack's `normalize_params`, then hashes keyed "0".."n-1" read as arrays, as Stripe reads them.
// ---------------------------------------------------------------------------------------------------------------

type Parsed = string | Array<Parsed> | { [key: string]: Parsed }
type Hash = { [key: string]: string | Hash }

const unescape = (text: string) => decodeURIComponent(text.replace(/\+/g, " "))

// Rack: `k` is the first bracket-free run of the name (brackets around it skipped), `after` the rest;
// the value goes under `k` when nothing is after it, else into the hash under `k`, recursively.
const normalizeParams = (params: Hash, name: string, value: string): void => {
  const match = /^[[\]]*([^[\]]+)\]*/.exec(name)
  if (match === null) throw new Error(`unparseable name ${JSON.stringify(name)}`)
  const k = match[1] as string
  const after = name.slice(match[0].length)
  if (after === "") {
    params[k] = value
    return
  }
  // Own keys only: a key such as `toString` must not find the prototype's function.
  const child = Object.hasOwn(params, k) ? params[k] : undefined
  if (typeof child === "string") throw new Error(`${k} is both a value and a hash`)
  const hash: Hash = child ?? {}
  params[k] = hash
  normalizeParams(hash, after, value)
}

const arraysFromIndexedHashes = (value: string | Hash): Parsed => {
  if (typeof value === "string") return value
  const keys = Object.keys(value)
  const children = keys.map((key) => arraysFromIndexedHashes(value[key] as string | Hash))
  if (keys.length > 0 && keys.every((key, index) => key === `${index}`)) return children
  const object: { [key: string]: Parsed } = {}
  keys.forEach((key, index) => {
    object[key] = children[index] as Parsed
  })
  return object
}

const rackParse = (query: string): Parsed => {
  const params: Hash = {}
  for (const part of query.split("&")) {
    if (part === "") continue
    const eq = part.indexOf("=")
    normalizeParams(
      params,
      unescape(eq === -1 ? part : part.slice(0, eq)),
      unescape(eq === -1 ? "" : part.slice(eq + 1))
    )
  }
  return arraysFromIndexedHashes(params)
}

// ---------------------------------------------------------------------------------------------------------------
// What the receiver must read back: strings everywhere, per the encoding's rules
// ---------------------------------------------------------------------------------------------------------------

const expected = (value: unknown, inArray: boolean): Parsed | undefined => {
  if (value === undefined) return undefined
  if (value === null) return ""
  if (typeof value === "string") return value
  if (typeof value === "boolean") return value ? "true" : "false"
  if (typeof value === "number" || typeof value === "bigint") return String(value)
  if (value instanceof Date) return String(Math.floor(value.getTime() / 1000))
  if (DateTime.isDateTime(value)) return String(Math.floor(DateTime.toEpochMillis(value) / 1000))
  const children: Array<[string, Parsed]> = []
  for (const [key, child] of Object.entries(value as object)) {
    const read = expected(child, Array.isArray(value))
    if (read !== undefined) children.push([key, read])
  }
  // Nothing inside: left out, unless an array element (then empty, so no index is skipped).
  if (children.length === 0) return inArray ? "" : undefined
  if (Array.isArray(value)) return children.map(([, child]) => child)
  const object: { [key: string]: Parsed } = {}
  for (const [key, child] of children) object[key] = child
  return object
}

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries: any nesting of scalars, dates, nulls, undefineds (not as array elements), arrays and objects
// ---------------------------------------------------------------------------------------------------------------

const key = fc.string({ minLength: 1, maxLength: 8, unit: "grapheme" }).filter((name) =>
  !name.includes("[") && !name.includes("]") && !/^\d+$/.test(name) && name !== "__proto__"
)
const scalar = fc.oneof(
  fc.string({ unit: "grapheme" }),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.bigInt(),
  fc.date({ noInvalidDate: true }),
  fc.date({ noInvalidDate: true }).map((date) => DateTime.unsafeMake(date)),
  fc.constant(null)
)
const tree = fc.letrec((tie) => ({
  field: fc.oneof({ depthSize: "small" }, scalar, fc.constant(undefined), tie("array"), tie("object")),
  element: fc.oneof({ depthSize: "small" }, scalar, tie("array"), tie("object")),
  array: fc.array(tie("element"), { maxLength: 4 }),
  object: fc.dictionary(key, tie("field"), { maxKeys: 4 })
}))
const params = fc.dictionary(key, tree.field, { maxKeys: 6 }) as fc.Arbitrary<StripeSchema.Params>

describe("Stripe form encoding", () => {
  it.prop("encode → Rack-style parse gives the same value", [params], ([input]) => {
    const encoded = StripeSchema.encodeParams(input)
    expect(Either.isRight(encoded)).toBe(true)
    expect(rackParse(Either.getOrThrow(encoded))).toEqual(expected(input, false) ?? {})
  })

  it.prop("keys and values never leave a structural character unescaped", [params], ([input]) => {
    const encoded = Either.getOrThrow(StripeSchema.encodeParams(input))
    for (const part of encoded.split("&").filter((part) => part !== "")) {
      const [name = "", ...rest] = part.split("=")
      expect(rest.length).toBe(1)
      expect(name).toMatch(/^[^[\]]+(\[[^[\]]+\])*$/)
    }
  })

  it("sends Stripe's shapes: nested objects, indexed arrays, null as empty, dates as Unix seconds", () => {
    const encoded = StripeSchema.encodeParams({
      amount: 2000,
      currency: "usd",
      confirm: false,
      description: null,
      receipt_email: undefined,
      metadata: { order_id: "6735", "note with space": "a&b=c" },
      payment_method_types: ["card", "sepa_debit"],
      items: [{ price: "price_1", quantity: 2 }, {}],
      created: { gte: new Date("2024-01-01T00:00:00.000Z") },
      empty: {}
    })
    expect(encoded).toEqual(Either.right(
      "amount=2000&currency=usd&confirm=false&description=&metadata[order_id]=6735" +
        "&metadata[note%20with%20space]=a%26b%3Dc&payment_method_types[0]=card&payment_method_types[1]=sepa_debit" +
        "&items[0][price]=price_1&items[0][quantity]=2&items[1]=&created[gte]=1704067200"
    ))
  })

  it("refuses what does not encode, saying where", () => {
    const refused = (input: StripeSchema.Params) => Either.getLeft(StripeSchema.encodeParams(input))
    expect(refused({ amount: Number.NaN })._tag).toBe("Some")
    expect(refused({ "a[b]": "x" })).toEqual(expect.objectContaining({ value: expect.stringContaining("a[b]") }))
    expect(refused({ list: ["a", undefined] })).toEqual(
      expect.objectContaining({ value: "list[1] is undefined; an array element must have a value" })
    )
    expect(refused({ text: "\uD800" })).toEqual(
      expect.objectContaining({ value: "text is not well-formed Unicode (a lone surrogate)" })
    )
    expect(refused({ when: new Date(Number.NaN) })).toEqual(
      expect.objectContaining({ value: "when is an invalid date" })
    )
  })
})
