/**
 * The fake Stripe's request parameters: Stripe's form encoding (`a[b][0]=x`) decoded into nested
 * values, and readers that return a value or a {@link Failure} with Stripe's wording, code and
 * `param`. Pure functions, no state.
 */

/** @internal */
export type Params = { readonly [key: string]: Param }
/** @internal */
export type Param = string | ReadonlyArray<Param> | Params

/** @internal */
export interface StripeErrorBody {
  readonly type: string
  readonly message: string
  readonly code?: string
  readonly decline_code?: string
  readonly param?: string
  readonly doc_url?: string
  readonly payment_intent?: unknown
}

/** A failure of a request: its status and Stripe's error object. @internal */
export class Failure {
  constructor(readonly status: number, readonly error: StripeErrorBody) {}
}

/** @internal */
export const docUrl = (code: string) => `https://stripe.com/docs/error-codes/${code.replace(/_/g, "-")}`

/** @internal */
export const invalid = (
  message: string,
  extra: Partial<Omit<StripeErrorBody, "type" | "message">> = {},
  status = 400
) =>
  new Failure(status, {
    type: "invalid_request_error",
    message,
    ...extra,
    ...(extra.code === undefined ? {} : { doc_url: docUrl(extra.code) })
  })

/** @internal */
export const missing = (param: string) =>
  invalid(`Missing required param: ${param}.`, { code: "parameter_missing", param })

const unknownParam = (param: string) =>
  invalid(`Received unknown parameter: ${param}`, { code: "parameter_unknown", param })

// ---------------------------------------------------------------------------------------------------------------
// Form decoding: `a[b][0]=x` into nested objects; objects keyed 0..n-1 become arrays
// ---------------------------------------------------------------------------------------------------------------

interface Tree {
  [key: string]: string | Tree
}

const keyPath = (key: string): Array<string> | undefined => {
  const open = key.indexOf("[")
  if (open === -1) return key === "" ? undefined : [key]
  const head = key.slice(0, open)
  if (head === "") return undefined
  const path = [head]
  let rest = key.slice(open)
  while (rest !== "") {
    const match = /^\[([^[\]]*)\]/.exec(rest)
    if (match === null) return undefined
    path.push(match[1] ?? "")
    rest = rest.slice(match[0].length)
  }
  return path
}

/** A node without a prototype: a key such as `__proto__` is a key like any other. */
const emptyTree = (): Tree => Object.create(null)

const entriesOf = (tree: Tree): Array<readonly [string, Param]> =>
  Object.entries(tree).map(([key, value]) => [key, toParams(value)] as const)

const toParams = (tree: Tree | string): Param => {
  if (typeof tree === "string") return tree
  const entries = entriesOf(tree)
  const isList = entries.length > 0 && entries.every(([key], index) => key === String(index))
  return isList ? entries.map(([, value]) => value) : Object.fromEntries(entries)
}

/** Decodes a form body or query into parameters; a malformed or clashing key is a 400. @internal */
export const decodeForm = (text: string): Params | Failure => {
  const root = emptyTree()
  for (const [key, value] of new URLSearchParams(text)) {
    const path = keyPath(key)
    if (path === undefined || path.some((part) => part === "")) {
      return invalid(`Invalid request: malformed parameter name ${JSON.stringify(key)}`)
    }
    let node = root
    for (const [index, part] of path.slice(0, -1).entries()) {
      const next = node[part]
      if (typeof next === "string") return invalid(`Invalid ${path.slice(0, index + 1).join(".")}: expected an object`)
      node = next ?? (node[part] = emptyTree())
    }
    const last = path[path.length - 1] ?? ""
    if (typeof node[last] === "object") return invalid(`Invalid ${path.join(".")}: expected a value, got an object`)
    node[last] = value
  }
  // The top level stays an object even when its keys are 0..n-1 (every endpoint refuses them as unknown).
  return Object.fromEntries(entriesOf(root))
}

// ---------------------------------------------------------------------------------------------------------------
// Parameter readers: each returns the value or a Failure with Stripe's wording
// ---------------------------------------------------------------------------------------------------------------

/** @internal */
export const checkKnown = (params: Params, known: ReadonlyArray<string>): Failure | undefined => {
  const unknown = Object.keys(params).find((key) => !known.includes(key))
  return unknown === undefined ? undefined : unknownParam(unknown)
}

/** @internal */
export const str = (params: Params, name: string): string | undefined | Failure => {
  const value = params[name]
  if (value === undefined || typeof value === "string") return value
  return invalid(`Invalid string: ${name} must be a string`, { param: name, code: "parameter_invalid_string" })
}

/** @internal */
export const integer = (params: Params, name: string): number | undefined | Failure => {
  const value = str(params, name)
  if (value === undefined || value instanceof Failure) return value
  if (!/^-?\d{1,15}$/.test(value)) {
    return invalid(`Invalid integer: ${value}`, { param: name, code: "parameter_invalid_integer" })
  }
  return Number(value)
}

/** @internal */
export const bool = (params: Params, name: string): boolean | undefined | Failure => {
  const value = str(params, name)
  if (value === undefined || value instanceof Failure) return value
  if (value !== "true" && value !== "false") return invalid(`Invalid boolean: ${value}`, { param: name })
  return value === "true"
}

/** @internal */
export const oneOf = <A extends string>(
  params: Params,
  name: string,
  allowed: ReadonlyArray<A>
): A | undefined | Failure => {
  const value = str(params, name)
  if (value === undefined || value instanceof Failure) return value
  const found = allowed.find((option) => option === value)
  return found ?? invalid(`Invalid ${name}: must be one of ${allowed.join(", ")}`, { param: name })
}

const currencies = ["usd", "eur", "gbp", "uah", "pln", "cad", "aud", "chf", "jpy", "sek"]

/** @internal */
export const readCurrency = (params: Params): string | undefined | Failure => {
  const value = str(params, "currency")
  if (value === undefined || value instanceof Failure) return value
  if (!currencies.includes(value)) {
    return invalid(
      `Invalid currency: ${value}. Stripe currently supports these currencies: ${currencies.join(", ")}`,
      { param: "currency" }
    )
  }
  return value
}

/** @internal */
export const readAmount = (params: Params, name: string): number | undefined | Failure => {
  const amount = integer(params, name)
  if (amount === undefined || amount instanceof Failure) return amount
  if (amount < 50) {
    return invalid(`Amount must be at least 50 cents`, { param: name, code: "amount_too_small" })
  }
  if (amount > 99_999_999) {
    return invalid(`Amount must be no more than 99,999,999`, { param: name, code: "amount_too_large" })
  }
  return amount
}

const isParams = (value: Param): value is Params => typeof value !== "string" && !Array.isArray(value)

/** @internal */
export const readMetadata = (
  params: Params,
  current: Readonly<Record<string, string>>
): Record<string, string> | Failure => {
  const value = params.metadata
  if (value === undefined) return { ...current }
  if (value === "") return {}
  if (!isParams(value)) {
    return invalid("Invalid metadata: metadata must be a hash of keys and values", { param: "metadata" })
  }
  const next: Record<string, string> = { ...current }
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== "string") {
      return invalid(`Invalid value for metadata[${key}]: must be a string`, { param: `metadata[${key}]` })
    }
    if (key.length > 40) {
      return invalid(`Metadata keys can have up to 40 characters; ${key} has ${key.length}`, {
        param: `metadata[${key}]`
      })
    }
    if (entry.length > 500) {
      return invalid(`Metadata values can have up to 500 characters`, { param: `metadata[${key}]` })
    }
    if (entry === "") delete next[key]
    else next[key] = entry
  }
  if (Object.keys(next).length > 50) {
    return invalid("Metadata can have up to 50 keys", { param: "metadata" })
  }
  return next
}
