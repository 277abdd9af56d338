import * as DateTime from "effect/DateTime"
import * as Either from "effect/Either"

const isPlainObject = (u: unknown): u is Readonly<Record<string, unknown>> => {
  if (typeof u !== "object" || u === null) return false
  const proto: unknown = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

const describe = (u: unknown): string =>
  u === null ? "null" : Array.isArray(u) ? "array" : u instanceof Date ? "Date" : typeof u

/**
 * Flattens parameters into the ordered key/value pairs of Stripe's form encoding (keys still
 * unescaped, e.g. `metadata[order_id]`):
 *
 * - nested objects as `a[b][c]`, arrays as `a[0]`, `a[1]`, …;
 * - `null` as an empty value: Stripe reads it as "unset this field" (`metadata: null` clears
 *   all metadata, `metadata: { key: null }` one key);
 * - `undefined` fields are dropped, and so are empty objects and arrays (nothing to send);
 *   as an array element, where dropping would shift the indices after it, `undefined` is
 *   refused and an empty object or array is sent as an empty value;
 * - booleans as `true` / `false`, finite numbers and bigints in decimal;
 * - `Date`s and `DateTime`s as Unix seconds.
 *
 * Keys must be non-empty and free of `[` and `]` (they would be read as nesting); keys and
 * strings must be well-formed Unicode (no lone surrogates: they cannot be percent-encoded).
 *
 * @internal
 */
export const encodeForm = (params: unknown): Either.Either<Array<[string, string]>, string> => {
  if (!isPlainObject(params)) return Either.left(`expected an object of parameters, got ${describe(params)}`)
  const pairs: Array<[string, string]> = []
  const problem = encodeFields(params, undefined, pairs)
  return problem === undefined ? Either.right(pairs) : Either.left(problem)
}

/** Appends the pairs of every field of `fields` under `prefix`; returns what went wrong, if anything. */
const encodeFields = (
  fields: Readonly<Record<string, unknown>>,
  prefix: string | undefined,
  pairs: Array<[string, string]>
): string | undefined => {
  for (const [name, value] of Object.entries(fields)) {
    if (name === "" || name.includes("[") || name.includes("]") || loneSurrogate.test(name)) {
      return `parameter name ${JSON.stringify(name)}${where(prefix)} must be non-empty Unicode free of "[" and "]"`
    }
    if (value === undefined) continue
    const problem = encodeValue(prefix === undefined ? name : `${prefix}[${name}]`, value, false, pairs)
    if (problem !== undefined) return problem
  }
  return undefined
}

/** A lone UTF-16 surrogate: not Unicode, it cannot be percent-encoded. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const where = (prefix: string | undefined) => prefix === undefined ? "" : ` in ${prefix}`

const encodeValue = (
  key: string,
  value: unknown,
  inArray: boolean,
  pairs: Array<[string, string]>
): string | undefined => {
  switch (typeof value) {
    case "string":
      if (loneSurrogate.test(value)) return `${key} is not well-formed Unicode (a lone surrogate)`
      pairs.push([key, value])
      return undefined
    case "boolean":
      pairs.push([key, value ? "true" : "false"])
      return undefined
    case "bigint":
      pairs.push([key, value.toString()])
      return undefined
    case "number":
      if (!Number.isFinite(value)) return `${key} is not a finite number`
      pairs.push([key, String(value)])
      return undefined
    case "object":
      return encodeObject(key, value, inArray, pairs)
    default:
      return `${key} is a ${typeof value}, which does not encode`
  }
}

const encodeObject = (
  key: string,
  value: object | null,
  inArray: boolean,
  pairs: Array<[string, string]>
): string | undefined => {
  if (value === null) {
    pairs.push([key, ""])
    return undefined
  }
  if (value instanceof Date) {
    const millis = value.getTime()
    if (Number.isNaN(millis)) return `${key} is an invalid date`
    pairs.push([key, String(Math.floor(millis / 1000))])
    return undefined
  }
  if (DateTime.isDateTime(value)) {
    pairs.push([key, String(Math.floor(DateTime.toEpochMillis(value) / 1000))])
    return undefined
  }
  const before = pairs.length
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const element: unknown = value[index]
      if (element === undefined) return `${key}[${index}] is undefined; an array element must have a value`
      const problem = encodeValue(`${key}[${index}]`, element, true, pairs)
      if (problem !== undefined) return problem
    }
  } else if (isPlainObject(value)) {
    const problem = encodeFields(value, key, pairs)
    if (problem !== undefined) return problem
  } else {
    return `${key} is a ${value.constructor?.name ?? "object"}, which does not encode`
  }
  // Nothing inside (empty, or only undefined fields): an array element keeps its place, empty.
  if (inArray && pairs.length === before) pairs.push([key, ""])
  return undefined
}

/** Percent-encodes one part of a key or a value (brackets of the structure stay literal). */
const escape = (part: string): string => encodeURIComponent(part)

/** `metadata[order id]` → `metadata[order%20id]`: each name escaped, the brackets kept. */
const escapeKey = (key: string): string => key.replace(/[^[\]]+/g, escape)

/**
 * The pairs as an `application/x-www-form-urlencoded` body or query string, brackets literal
 * as Stripe's own libraries send them (`metadata[order_id]=6735&payment_method_types[0]=card`).
 *
 * @internal
 */
export const formString = (pairs: ReadonlyArray<readonly [string, string]>): string =>
  pairs.map(([key, value]) => `${escapeKey(key)}=${escape(value)}`).join("&")
