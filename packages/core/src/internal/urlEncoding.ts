import * as Either from "effect/Either"

/**
 * Flattens an encoded (Schema `Encoded` side) record into ordered key/value pairs for a
 * query string or a form body, predictably:
 *
 * - `undefined` and `null` fields are dropped (an unset filter is not sent);
 * - booleans become `true` / `false`, finite numbers and bigints their decimal form;
 * - arrays repeat the key once per element (`tag=a&tag=b`), in order, dropping
 *   `undefined` / `null` elements;
 * - `Date`s become ISO-8601 strings;
 * - nested objects are refused: there is no single convention for them
 *   (Stripe's `a[b]=…` form lives in the Stripe client).
 *
 * `@effect/platform`'s `UrlParams.fromInput` throws on `null`; this never throws.
 *
 * @internal
 */
export const encodePairs = (input: unknown): Either.Either<Array<[string, string]>, string> => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return Either.left(`expected an object of fields, got ${describe(input)}`)
  }
  const pairs: Array<[string, string]> = []
  for (const [key, value] of Object.entries(input)) {
    if (Array.isArray(value)) {
      for (const element of value) {
        const encoded = encodeScalar(key, element)
        if (Either.isLeft(encoded)) return Either.left(encoded.left)
        if (encoded.right !== undefined) pairs.push([key, encoded.right])
      }
    } else {
      const encoded = encodeScalar(key, value)
      if (Either.isLeft(encoded)) return Either.left(encoded.left)
      if (encoded.right !== undefined) pairs.push([key, encoded.right])
    }
  }
  return Either.right(pairs)
}

const encodeScalar = (key: string, value: unknown): Either.Either<string | undefined, string> => {
  switch (typeof value) {
    case "undefined":
      return Either.right(undefined)
    case "string":
      return Either.right(value)
    case "boolean":
      return Either.right(value ? "true" : "false")
    case "bigint":
      return Either.right(value.toString())
    case "number":
      return Number.isFinite(value)
        ? Either.right(String(value))
        : Either.left(`field "${key}" is not a finite number`)
    case "object":
      if (value === null) return Either.right(undefined)
      if (value instanceof Date) {
        return Number.isNaN(value.getTime())
          ? Either.left(`field "${key}" is an invalid date`)
          : Either.right(value.toISOString())
      }
      return Either.left(`field "${key}" is a nested ${describe(value)}; only scalars and arrays of scalars encode`)
    default:
      return Either.left(`field "${key}" is a ${typeof value}; only scalars and arrays of scalars encode`)
  }
}

const describe = (u: unknown): string => u === null ? "null" : Array.isArray(u) ? "array" : typeof u
