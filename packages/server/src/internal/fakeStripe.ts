/**
 * A fake Stripe API for tests and the demo server's sandbox: PaymentIntents in memory, checked
 * and answered the way https://api.stripe.com does (https://docs.stripe.com/api):
 *
 * - `Authorization: Bearer sk_test_…` (or HTTP Basic with the key as the user name); a missing or
 *   malformed key is a 401, a live key is refused, a restricted `rk_test_…` key may read but not
 *   write (403);
 * - `Stripe-Version` must look like one (`2025-07-30.basil`) and is echoed; `Stripe-Account`
 *   (`acct_…`) selects a connected account's own objects;
 * - bodies in Stripe's form encoding (`application/x-www-form-urlencoded`, `a[b]=…`, `a[0]=…`),
 *   unknown parameters refused, required ones and formats checked with Stripe's messages, codes
 *   and `param`;
 * - `Idempotency-Key` on POSTs: the first result is saved once the request runs, a retry with the
 *   same key gets it again (`Idempotent-Replayed: true`), the same key with other parameters is an
 *   `idempotency_error`;
 * - every answer has a `Request-Id`; errors are `{ error: { type, code, decline_code, message,
 *   param, doc_url } }` with Stripe's statuses (400, 401, 402, 403, 404, 409, 429, 5xx);
 * - test payment methods: `pm_card_visa`, `pm_card_mastercard` succeed; `pm_card_chargeDeclined`,
 *   `pm_card_chargeDeclinedInsufficientFunds`, `pm_card_chargeDeclinedExpiredCard` are declined
 *   (402); `pm_card_authenticationRequired` needs 3-D Secure (`requires_action`).
 *
 * Faults (errors, 429s, dropped connections, lost answers) are injected with `inject` / `outage`.
 */
import type { Answer, FakeControls, Fault, RecordedRequest } from "./fakeHttp.js"
import { randomId, serveFake } from "./fakeHttp.js"

/** */
export interface FakeStripeOptions {
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** Accept only this secret key. Default: any well-formed `sk_test_…` key (and `rk_test_…`). */
  readonly apiKey?: string | undefined
}

/** */
export interface FakeStripe extends FakeControls {
  /** PaymentIntents created so far, on every account. */
  readonly paymentIntentCount: () => number
}

/** A well-formed test key that {@link startFakeStripe} accepts by default. */
export const sandboxSecretKey = "sk_test_liaisonSandbox000000000000"

/** The pinned default when a request names no `Stripe-Version`. */
export const defaultVersion = "2025-07-30.basil"

type Params = { readonly [key: string]: Param }
type Param = string | ReadonlyArray<Param> | Params

interface StripeErrorBody {
  readonly type: string
  readonly message: string
  readonly code?: string
  readonly decline_code?: string
  readonly param?: string
  readonly doc_url?: string
  readonly payment_intent?: unknown
}

/** A failure of a request: its status and Stripe's error object. */
class Failure {
  constructor(readonly status: number, readonly error: StripeErrorBody) {}
}

const docUrl = (code: string) => `https://stripe.com/docs/error-codes/${code.replace(/_/g, "-")}`

const invalid = (message: string, extra: Partial<Omit<StripeErrorBody, "type" | "message">> = {}, status = 400) =>
  new Failure(status, {
    type: "invalid_request_error",
    message,
    ...extra,
    ...(extra.code === undefined ? {} : { doc_url: docUrl(extra.code) })
  })

const missing = (param: string) => invalid(`Missing required param: ${param}.`, { code: "parameter_missing", param })

const unknownParam = (param: string) =>
  invalid(`Received unknown parameter: ${param}`, { code: "parameter_unknown", param })

/** Faults with Stripe's own bodies, for tests. */
export const faults = {
  /** A Stripe-side failure (`api_error`); `shouldRetry` sets `Stripe-Should-Retry`. */
  apiError: (status = 500, shouldRetry?: boolean): Fault => ({
    _tag: "Respond",
    status,
    body: { error: { type: "api_error", message: "An unknown error occurred" } },
    headers: shouldRetry === undefined ? {} : { "stripe-should-retry": String(shouldRetry) }
  }),
  /** 429 `rate_limit`, with `Retry-After` seconds when given. */
  rateLimited: (retryAfterSeconds?: number): Fault => ({
    _tag: "Respond",
    status: 429,
    body: {
      error: {
        type: "invalid_request_error",
        code: "rate_limit",
        doc_url: docUrl("rate_limit"),
        message: "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
      }
    },
    headers: retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) }
  }),
  /** 409: another request with the same key is still running, or a lock timed out. */
  conflict: (shouldRetry?: boolean): Fault => ({
    _tag: "Respond",
    status: 409,
    body: {
      error: {
        type: "idempotency_error",
        code: "idempotency_key_in_use",
        doc_url: docUrl("idempotency_key_in_use"),
        message: "There is currently another in-progress request using this Idempotent Key (that probably means " +
          "you submitted twice, and the other request is still going through): please try again later."
      }
    },
    headers: shouldRetry === undefined ? {} : { "stripe-should-retry": String(shouldRetry) }
  })
} as const

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

const toParams = (tree: Tree | string): Param => {
  if (typeof tree === "string") return tree
  const keys = Object.keys(tree)
  const values = keys.map((key) => toParams(tree[key] as Tree | string))
  const isList = keys.length > 0 && keys.every((key, index) => key === String(index))
  return isList ? values : Object.fromEntries(keys.map((key, index) => [key, values[index] as Param]))
}

/** Decodes a form body or query into parameters; a malformed or clashing key is a 400. */
const decodeForm = (text: string): Params | Failure => {
  const root: Tree = {}
  for (const [key, value] of new URLSearchParams(text)) {
    const path = keyPath(key)
    if (path === undefined || path.some((part) => part === "")) {
      return invalid(`Invalid request: malformed parameter name ${JSON.stringify(key)}`)
    }
    let node = root
    for (let index = 0; index < path.length - 1; index++) {
      const part = path[index] as string
      const next = node[part]
      if (typeof next === "string") return invalid(`Invalid ${path.slice(0, index + 1).join(".")}: expected an object`)
      node = next ?? (node[part] = {})
    }
    const last = path[path.length - 1] as string
    if (typeof node[last] === "object") return invalid(`Invalid ${path.join(".")}: expected a value, got an object`)
    node[last] = value
  }
  return toParams(root) as Params
}

// ---------------------------------------------------------------------------------------------------------------
// Parameter readers: each returns the value or a Failure with Stripe's wording
// ---------------------------------------------------------------------------------------------------------------

const checkKnown = (params: Params, known: ReadonlyArray<string>): Failure | undefined => {
  const unknown = Object.keys(params).find((key) => !known.includes(key))
  return unknown === undefined ? undefined : unknownParam(unknown)
}

const str = (params: Params, name: string): string | undefined | Failure => {
  const value = params[name]
  if (value === undefined || typeof value === "string") return value
  return invalid(`Invalid string: ${name} must be a string`, { param: name, code: "parameter_invalid_string" })
}

const integer = (params: Params, name: string): number | undefined | Failure => {
  const value = str(params, name)
  if (value === undefined || value instanceof Failure) return value
  if (!/^-?\d{1,15}$/.test(value)) {
    return invalid(`Invalid integer: ${value}`, { param: name, code: "parameter_invalid_integer" })
  }
  return Number(value)
}

const bool = (params: Params, name: string): boolean | undefined | Failure => {
  const value = str(params, name)
  if (value === undefined || value instanceof Failure) return value
  if (value !== "true" && value !== "false") return invalid(`Invalid boolean: ${value}`, { param: name })
  return value === "true"
}

const oneOf = <A extends string>(
  params: Params,
  name: string,
  allowed: ReadonlyArray<A>
): A | undefined | Failure => {
  const value = str(params, name)
  if (value === undefined || value instanceof Failure) return value
  if (!(allowed as ReadonlyArray<string>).includes(value)) {
    return invalid(`Invalid ${name}: must be one of ${allowed.join(", ")}`, { param: name })
  }
  return value as A
}

const currencies = ["usd", "eur", "gbp", "uah", "pln", "cad", "aud", "chf", "jpy", "sek"]

const readCurrency = (params: Params): string | undefined | Failure => {
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

const readAmount = (params: Params, name: string): number | undefined | Failure => {
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

const readMetadata = (params: Params, current: Readonly<Record<string, string>>): Record<string, string> | Failure => {
  const value = params.metadata
  if (value === undefined) return { ...current }
  if (value === "") return {}
  if (typeof value === "string" || Array.isArray(value)) {
    return invalid("Invalid metadata: metadata must be a hash of keys and values", { param: "metadata" })
  }
  const next: Record<string, string> = { ...current }
  for (const [key, entry] of Object.entries(value as Params)) {
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

// ---------------------------------------------------------------------------------------------------------------
// PaymentIntents
// ---------------------------------------------------------------------------------------------------------------

type Status =
  | "requires_payment_method"
  | "requires_confirmation"
  | "requires_action"
  | "processing"
  | "requires_capture"
  | "canceled"
  | "succeeded"

interface Intent {
  id: string
  object: "payment_intent"
  amount: number
  amount_capturable: number
  amount_received: number
  currency: string
  status: Status
  client_secret: string
  capture_method: string
  confirmation_method: "automatic"
  created: number
  livemode: false
  metadata: Record<string, string>
  description: string | null
  customer: string | null
  payment_method: string | null
  payment_method_types: Array<string>
  latest_charge: string | null
  last_payment_error: StripeErrorBody | null
  receipt_email: string | null
  canceled_at: number | null
  cancellation_reason: string | null
}

interface Card {
  readonly outcome: "succeeded" | "declined" | "requires_action"
  readonly code?: string
  readonly decline_code?: string
  readonly message?: string
}

const testCards: Readonly<Record<string, Card>> = {
  pm_card_visa: { outcome: "succeeded" },
  pm_card_mastercard: { outcome: "succeeded" },
  pm_card_chargeDeclined: {
    outcome: "declined",
    code: "card_declined",
    decline_code: "generic_decline",
    message: "Your card was declined."
  },
  pm_card_chargeDeclinedInsufficientFunds: {
    outcome: "declined",
    code: "card_declined",
    decline_code: "insufficient_funds",
    message: "Your card has insufficient funds."
  },
  pm_card_chargeDeclinedExpiredCard: {
    outcome: "declined",
    code: "expired_card",
    decline_code: "expired_card",
    message: "Your card has expired."
  },
  pm_card_authenticationRequired: { outcome: "requires_action" }
}

const readPaymentMethod = (params: Params): string | undefined | Failure => {
  const value = str(params, "payment_method")
  if (value === undefined || value instanceof Failure) return value
  if (testCards[value] === undefined) {
    return invalid(`No such PaymentMethod: '${value}'`, { code: "resource_missing", param: "payment_method" })
  }
  return value
}

const cancelable: ReadonlyArray<Status> = [
  "requires_payment_method",
  "requires_capture",
  "requires_confirmation",
  "requires_action",
  "processing"
]
const confirmable: ReadonlyArray<Status> = ["requires_payment_method", "requires_confirmation", "requires_action"]
const updatable: ReadonlyArray<Status> = ["requires_payment_method", "requires_confirmation", "requires_action"]

const unexpectedState = (what: string, intent: Intent, allowed: ReadonlyArray<Status>) =>
  invalid(
    `You cannot ${what} this PaymentIntent because it has a status of ${intent.status}. ` +
      `Only a PaymentIntent with one of the following statuses may be ${
        what === "cancel" ? "canceled" : `${what}d`
      }: ` +
      `${allowed.join(", ")}.`,
    { code: "payment_intent_unexpected_state" }
  )

/** One account's objects. */
class Account {
  readonly intents = new Map<string, Intent>()
  /** Newest last. */
  readonly order: Array<string> = []
}

const intentFields = [
  "amount",
  "currency",
  "automatic_payment_methods",
  "capture_method",
  "confirm",
  "customer",
  "description",
  "expand",
  "metadata",
  "payment_method",
  "payment_method_types",
  "receipt_email",
  "return_url",
  "statement_descriptor"
]

/** Seconds, strictly increasing, so that "newest first" is well defined. */
const makeClock = () => {
  let last = 0
  return () => {
    last = Math.max(last + 1, Math.floor(Date.now() / 1000))
    return last
  }
}

const makeIntents = () => {
  const accounts = new Map<string, Account>()
  const now = makeClock()
  const account = (id: string) => accounts.get(id) ?? accounts.set(id, new Account()).get(id) as Account

  const find = (scope: Account, id: string, param = "intent"): Intent | Failure =>
    scope.intents.get(id) ??
      invalid(`No such payment_intent: '${id}'`, { code: "resource_missing", param }, 404)

  /** Attaches and charges the payment method: the intent's new state, or a card error (saved). */
  const confirm = (intent: Intent, params: Params): Intent | Failure => {
    const paymentMethod = readPaymentMethod(params)
    if (paymentMethod instanceof Failure) return paymentMethod
    const method = paymentMethod ?? intent.payment_method
    if (method === null) {
      return invalid(
        "You cannot confirm this PaymentIntent because it's missing a payment method. Update the PaymentIntent " +
          "with a payment method and then confirm it again.",
        { code: "payment_intent_unexpected_state" }
      )
    }
    const card = testCards[method] as Card
    if (card.outcome === "declined") {
      const error: StripeErrorBody = {
        type: "card_error",
        message: card.message ?? "Your card was declined.",
        ...(card.code === undefined ? {} : { code: card.code, doc_url: docUrl(card.code) }),
        ...(card.decline_code === undefined ? {} : { decline_code: card.decline_code })
      }
      Object.assign(intent, {
        status: "requires_payment_method",
        payment_method: null,
        last_payment_error: error
      })
      return new Failure(402, { ...error, payment_intent: structuredClone(intent) })
    }
    const manual = intent.capture_method === "manual"
    Object.assign(intent, {
      payment_method: method,
      last_payment_error: null,
      status: card.outcome === "requires_action" ? "requires_action" : manual ? "requires_capture" : "succeeded",
      amount_capturable: card.outcome === "succeeded" && manual ? intent.amount : 0,
      amount_received: card.outcome === "succeeded" && !manual ? intent.amount : 0,
      latest_charge: card.outcome === "succeeded" ? `ch_${randomId(24)}` : null
    })
    return intent
  }

  const create = (scope: Account, params: Params): Intent | Failure => {
    const unknown = checkKnown(params, intentFields)
    if (unknown !== undefined) return unknown
    if (params.amount === undefined) return missing("amount")
    if (params.currency === undefined) return missing("currency")
    const currency = readCurrency(params)
    if (currency === undefined || currency instanceof Failure) return currency ?? missing("currency")
    const amount = readAmount(params, "amount")
    if (amount === undefined || amount instanceof Failure) return amount ?? missing("amount")
    const metadata = readMetadata(params, {})
    if (metadata instanceof Failure) return metadata
    const captureMethod = oneOf(params, "capture_method", ["automatic", "automatic_async", "manual"] as const)
    if (captureMethod instanceof Failure) return captureMethod
    const doConfirm = bool(params, "confirm")
    if (doConfirm instanceof Failure) return doConfirm
    const paymentMethod = readPaymentMethod(params)
    if (paymentMethod instanceof Failure) return paymentMethod
    const strings: Array<string | undefined | Failure> = ["description", "receipt_email", "customer"].map((name) =>
      str(params, name)
    )
    const bad = strings.find((value) => value instanceof Failure)
    if (bad instanceof Failure) return bad
    const [description, receiptEmail, customer] = strings as Array<string | undefined>
    const types = params.payment_method_types
    if (types !== undefined && !(Array.isArray(types) && types.every((type) => typeof type === "string"))) {
      return invalid("Invalid array", { param: "payment_method_types" })
    }
    const id = `pi_${randomId(24)}`
    const intent: Intent = {
      id,
      object: "payment_intent",
      amount,
      amount_capturable: 0,
      amount_received: 0,
      currency,
      status: paymentMethod === undefined ? "requires_payment_method" : "requires_confirmation",
      client_secret: `${id}_secret_${randomId(25)}`,
      capture_method: captureMethod ?? "automatic_async",
      confirmation_method: "automatic",
      created: now(),
      livemode: false,
      metadata,
      description: description ?? null,
      customer: customer ?? null,
      payment_method: paymentMethod ?? null,
      payment_method_types: (types as Array<string> | undefined) ?? ["card"],
      latest_charge: null,
      last_payment_error: null,
      receipt_email: receiptEmail ?? null,
      canceled_at: null,
      cancellation_reason: null
    }
    scope.intents.set(id, intent)
    scope.order.push(id)
    return doConfirm === true ? confirm(intent, {}) : intent
  }

  const update = (scope: Account, id: string, params: Params): Intent | Failure => {
    const intent = find(scope, id)
    if (intent instanceof Failure) return intent
    const unknown = checkKnown(params, [
      "amount",
      "currency",
      "customer",
      "description",
      "expand",
      "metadata",
      "payment_method",
      "receipt_email"
    ])
    if (unknown !== undefined) return unknown
    if (!updatable.includes(intent.status)) return unexpectedState("update", intent, updatable)
    const currency = params.currency === undefined ? intent.currency : readCurrency(params)
    if (currency === undefined || currency instanceof Failure) return currency ?? missing("currency")
    const amount = params.amount === undefined ? intent.amount : readAmount(params, "amount")
    if (amount === undefined || amount instanceof Failure) return amount ?? missing("amount")
    const metadata = readMetadata(params, intent.metadata)
    if (metadata instanceof Failure) return metadata
    const paymentMethod = readPaymentMethod(params)
    if (paymentMethod instanceof Failure) return paymentMethod
    const nullable = (name: "description" | "receipt_email" | "customer"): string | null | Failure => {
      const value = str(params, name)
      if (value instanceof Failure) return value
      return value === undefined ? intent[name] : value === "" ? null : value
    }
    const description = nullable("description")
    const receiptEmail = nullable("receipt_email")
    const customer = nullable("customer")
    for (const value of [description, receiptEmail, customer]) if (value instanceof Failure) return value
    Object.assign(intent, {
      amount,
      currency,
      metadata,
      description,
      receipt_email: receiptEmail,
      customer,
      ...(paymentMethod === undefined ? {} : { payment_method: paymentMethod, status: "requires_confirmation" })
    })
    return intent
  }

  const confirmById = (scope: Account, id: string, params: Params): Intent | Failure => {
    const intent = find(scope, id)
    if (intent instanceof Failure) return intent
    const unknown = checkKnown(params, ["payment_method", "capture_method", "receipt_email", "return_url", "expand"])
    if (unknown !== undefined) return unknown
    if (!confirmable.includes(intent.status)) return unexpectedState("confirm", intent, confirmable)
    const captureMethod = oneOf(params, "capture_method", ["automatic", "automatic_async", "manual"] as const)
    if (captureMethod instanceof Failure) return captureMethod
    if (captureMethod !== undefined) intent.capture_method = captureMethod
    return confirm(intent, params)
  }

  const cancel = (scope: Account, id: string, params: Params): Intent | Failure => {
    const intent = find(scope, id)
    if (intent instanceof Failure) return intent
    const unknown = checkKnown(params, ["cancellation_reason", "expand"])
    if (unknown !== undefined) return unknown
    const reason = oneOf(
      params,
      "cancellation_reason",
      ["duplicate", "fraudulent", "requested_by_customer", "abandoned"] as const
    )
    if (reason instanceof Failure) return reason
    if (!cancelable.includes(intent.status)) return unexpectedState("cancel", intent, cancelable)
    Object.assign(intent, {
      status: "canceled",
      canceled_at: now(),
      cancellation_reason: reason ?? null,
      amount_capturable: 0
    })
    return intent
  }

  const capture = (scope: Account, id: string, params: Params): Intent | Failure => {
    const intent = find(scope, id)
    if (intent instanceof Failure) return intent
    const unknown = checkKnown(params, ["amount_to_capture", "metadata", "statement_descriptor", "expand"])
    if (unknown !== undefined) return unknown
    if (intent.status !== "requires_capture") {
      return invalid(
        `This PaymentIntent could not be captured because it has a status of ${intent.status}. Only a ` +
          "PaymentIntent with one of the following statuses may be captured: requires_capture.",
        { code: "payment_intent_unexpected_state" }
      )
    }
    const amount = integer(params, "amount_to_capture")
    if (amount instanceof Failure) return amount
    const captured = amount ?? intent.amount_capturable
    if (captured > intent.amount_capturable) {
      return invalid(
        `The amount_to_capture (${captured}) is greater than the amount capturable (${intent.amount_capturable}).`,
        { code: "amount_too_large", param: "amount_to_capture" }
      )
    }
    const metadata = readMetadata(params, intent.metadata)
    if (metadata instanceof Failure) return metadata
    Object.assign(intent, { status: "succeeded", amount_received: captured, amount_capturable: 0, metadata })
    return intent
  }

  const list = (scope: Account, params: Params): unknown => {
    const unknown = checkKnown(params, ["limit", "starting_after", "ending_before", "customer", "created", "expand"])
    if (unknown !== undefined) return unknown
    const limit = integer(params, "limit")
    if (limit instanceof Failure) return limit
    if (limit !== undefined && (limit < 1 || limit > 100)) {
      return invalid(`This value must be between 1 and 100 (it currently is ${limit}).`, { param: "limit" })
    }
    const after = str(params, "starting_after")
    const before = str(params, "ending_before")
    if (after instanceof Failure) return after
    if (before instanceof Failure) return before
    if (after !== undefined && before !== undefined) {
      return invalid("You may only specify one of these parameters: ending_before, starting_after.")
    }
    const customer = str(params, "customer")
    if (customer instanceof Failure) return customer
    const newestFirst = [...scope.order].reverse().map((id) => scope.intents.get(id) as Intent)
      .filter((intent) => customer === undefined || intent.customer === customer)
    const size = limit ?? 10
    const cursor = after ?? before
    let start = 0
    let end = newestFirst.length
    if (cursor !== undefined) {
      const at = newestFirst.findIndex((intent) => intent.id === cursor)
      if (at === -1) {
        return invalid(`No such payment_intent: '${cursor}'`, {
          code: "resource_missing",
          param: after === undefined ? "ending_before" : "starting_after"
        })
      }
      if (after !== undefined) start = at + 1
      else end = at
    }
    const page = before === undefined
      ? newestFirst.slice(start, start + size)
      : newestFirst.slice(Math.max(0, end - size), end)
    const hasMore = before === undefined ? start + size < newestFirst.length : end - size > 0
    return { object: "list", data: page, has_more: hasMore, url: "/v1/payment_intents" }
  }

  return {
    count: () => [...accounts.values()].reduce((total, scope) => total + scope.intents.size, 0),
    route: (method: string, path: string, scope: string, params: Params): Intent | Failure | unknown => {
      const segments = path.split("/").slice(1)
      const [version, resource, rawId, action, ...rest] = segments
      if (version !== "v1" || resource !== "payment_intents" || rest.length > 0) return undefined
      const id = rawId === undefined ? undefined : decodeURIComponent(rawId)
      const account_ = account(scope)
      if (id === undefined) {
        if (method === "POST") return create(account_, params)
        if (method === "GET") return list(account_, params)
        return undefined
      }
      if (method === "GET" && action === undefined) {
        const unknown = checkKnown(params, ["client_secret", "expand"])
        return unknown ?? find(account_, id)
      }
      if (method !== "POST") return undefined
      switch (action) {
        case undefined:
          return update(account_, id, params)
        case "confirm":
          return confirmById(account_, id, params)
        case "cancel":
          return cancel(account_, id, params)
        case "capture":
          return capture(account_, id, params)
        default:
          return undefined
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Authentication, idempotency and the server
// ---------------------------------------------------------------------------------------------------------------

const mask = (key: string) =>
  key.length <= 12 ? "****" : `${key.slice(0, 8)}${"*".repeat(key.length - 12)}${key.slice(-4)}`

const keyShape = /^(sk|rk)_test_[A-Za-z0-9]{10,247}$/

/** The secret key of a request, from Bearer or Basic authorization. */
const secretKey = (headers: Readonly<Record<string, string>>): string | undefined => {
  const authorization = headers.authorization ?? ""
  const bearer = /^Bearer (.+)$/i.exec(authorization)
  if (bearer !== null) return bearer[1]?.trim()
  const basic = /^Basic (.+)$/i.exec(authorization)
  if (basic === null) return undefined
  const decoded = Buffer.from(basic[1] ?? "", "base64").toString("utf8")
  return decoded.split(":", 1)[0]
}

const authenticate = (
  headers: Readonly<Record<string, string>>,
  method: string,
  expected: string | undefined
): Failure | undefined => {
  const key = secretKey(headers)
  if (key === undefined || key === "") {
    return invalid(
      "You did not provide an API key. You need to provide your API key in the Authorization header, using " +
        "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication " +
        "for details, or we can help at https://support.stripe.com/.",
      {},
      401
    )
  }
  if (!keyShape.test(key) || (expected !== undefined && key !== expected)) {
    return invalid(`Invalid API Key provided: ${mask(key)}`, {}, 401)
  }
  if (key.startsWith("rk_") && method !== "GET") {
    return invalid(
      `The provided key '${mask(key)}' does not have the required permissions for this endpoint. Having the ` +
        "'rak_payment_intent_write' permission would allow this request to continue.",
      {},
      403
    )
  }
  return undefined
}

interface Saved {
  readonly fingerprint: string
  readonly requestId: string
  readonly answer: Answer
}

const failureAnswer = (failure: Failure): Answer => ({ status: failure.status, body: { error: failure.error } })

/**
 * Starts the fake on a free port of `127.0.0.1` (by default).
 */
export const startFakeStripe = async (options: FakeStripeOptions = {}): Promise<FakeStripe> => {
  const intents = makeIntents()
  const idempotent = new Map<string, Saved>()
  let requestId = ""

  const run = (request: RecordedRequest): Answer => {
    const contentType = (request.headers["content-type"] ?? "").split(";", 1)[0]?.trim().toLowerCase()
    if (request.method === "POST" && request.body !== "" && contentType !== "application/x-www-form-urlencoded") {
      return failureAnswer(invalid(
        `Invalid request: the body must be application/x-www-form-urlencoded, not ${contentType || "(none)"}. ` +
          "See https://stripe.com/docs/api for details."
      ))
    }
    const params = decodeForm(request.method === "GET" ? request.query : request.body)
    if (params instanceof Failure) return failureAnswer(params)
    const account = request.headers["stripe-account"]
    if (account !== undefined && !/^acct_[A-Za-z0-9]{4,}$/.test(account)) {
      return failureAnswer(invalid(
        `The provided key does not have access to account '${account}' (or that account does not exist). ` +
          "Application access may have been revoked.",
        {},
        403
      ))
    }
    const routed = intents.route(request.method, request.path, account ?? "", params)
    if (routed === undefined) {
      return failureAnswer(invalid(
        `Unrecognized request URL (${request.method}: ${request.path}). Please see https://stripe.com/docs or we ` +
          "can help at https://support.stripe.com/.",
        {},
        404
      ))
    }
    // A copy: later changes to the object must not change a saved answer.
    return routed instanceof Failure ? failureAnswer(routed) : { status: 200, body: structuredClone(routed) }
  }

  const idempotently = (request: RecordedRequest): Answer => {
    const key = request.method === "POST" ? request.headers["idempotency-key"] : undefined
    if (key === undefined) return run(request)
    if (key.length > 255) {
      return failureAnswer(invalid("Invalid Idempotency-Key: must be at most 255 characters long"))
    }
    const scoped = `${request.headers["stripe-account"] ?? ""} ${key}`
    const fingerprint = `${request.method} ${request.path} ${request.body}`
    const saved = idempotent.get(scoped)
    if (saved !== undefined) {
      if (saved.fingerprint !== fingerprint) {
        return failureAnswer(
          new Failure(400, {
            type: "idempotency_error",
            message: "Keys for idempotent requests can only be used with the same parameters they were first " +
              `used with. Try using a key other than '${key}' if you meant to execute a different request.`
          })
        )
      }
      return {
        ...saved.answer,
        headers: { ...saved.answer.headers, "idempotent-replayed": "true", "original-request": saved.requestId }
      }
    }
    const answer = run(request)
    // Saved once the endpoint ran (success or a card error); a request refused before that is not.
    if (answer.status === 200 || answer.status === 402) {
      idempotent.set(scoped, { fingerprint, requestId, answer })
    }
    return { ...answer, headers: { ...answer.headers, "idempotency-key": key } }
  }

  const handle = (request: RecordedRequest): Answer => {
    const version = request.headers["stripe-version"] ?? defaultVersion
    const answer = check(request, version) ?? idempotently(request)
    return { ...answer, headers: { ...answer.headers, "stripe-version": version } }
  }

  const check = (request: RecordedRequest, version: string): Answer | undefined => {
    const auth = authenticate(request.headers, request.method, options.apiKey)
    if (auth !== undefined) return failureAnswer(auth)
    if (!/^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$/.test(version)) {
      return failureAnswer(invalid(`Invalid Stripe API version: ${version}`, { param: "Stripe-Version" }))
    }
    return undefined
  }

  const controls = await serveFake({
    host: options.host,
    port: options.port,
    maxBodyBytes: 1024 * 1024,
    tooLarge: failureAnswer(invalid("Request body too large", {}, 413)),
    commonHeaders: () => {
      requestId = `req_${randomId(14)}`
      return { "request-id": requestId }
    },
    handle
  })
  return { ...controls, paymentIntentCount: intents.count }
}
