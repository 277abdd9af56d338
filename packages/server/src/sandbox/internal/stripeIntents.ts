/**
 * The fake Stripe's PaymentIntents as a state machine: every request is a pure transition
 * `(state, request, env) → [result, state]` over immutable values, like `breakerState.ts` in core.
 * The server holds the state in one cell and applies each transition whole, so a request's checks
 * and its changes are atomic; `env` brings what is not pure (the wall clock, random ids).
 *
 * Statuses (https://docs.stripe.com/payments/paymentintents/lifecycle):
 * `requires_payment_method` → (`payment_method`) `requires_confirmation` → (confirm) `succeeded`,
 * `requires_capture` (manual capture; then capture → `succeeded`), `requires_action` (3-D Secure),
 * or back to `requires_payment_method` with a card error; cancel from any unfinished status.
 */
import type { Params, StripeErrorBody } from "./stripeParams.js"
import {
  bool,
  checkKnown,
  docUrl,
  Failure,
  integer,
  invalid,
  missing,
  oneOf,
  readAmount,
  readCurrency,
  readMetadata,
  str
} from "./stripeParams.js"

type Status =
  | "requires_payment_method"
  | "requires_confirmation"
  | "requires_action"
  | "processing"
  | "requires_capture"
  | "canceled"
  | "succeeded"

/** @internal */
export interface Intent {
  readonly id: string
  readonly object: "payment_intent"
  readonly amount: number
  readonly amount_capturable: number
  readonly amount_received: number
  readonly currency: string
  readonly status: Status
  readonly client_secret: string
  readonly capture_method: string
  readonly confirmation_method: "automatic"
  readonly created: number
  readonly livemode: false
  readonly metadata: Readonly<Record<string, string>>
  readonly description: string | null
  readonly customer: string | null
  readonly payment_method: string | null
  readonly payment_method_types: ReadonlyArray<string>
  readonly latest_charge: string | null
  readonly last_payment_error: StripeErrorBody | null
  readonly receipt_email: string | null
  readonly canceled_at: number | null
  readonly cancellation_reason: string | null
}

/** A page of `GET /v1/payment_intents`. @internal */
export interface IntentList {
  readonly object: "list"
  readonly data: ReadonlyArray<Intent>
  readonly has_more: boolean
  readonly url: string
}

/** One account's objects. */
interface Account {
  readonly intents: ReadonlyMap<string, Intent>
  /** Ids, newest last. */
  readonly order: ReadonlyArray<string>
}

/** @internal */
export interface State {
  /** By `Stripe-Account` (`""`: the platform's own). */
  readonly accounts: ReadonlyMap<string, Account>
  /** The last timestamp handed out, in seconds: strictly increasing, so "newest first" is well defined. */
  readonly clock: number
}

/** @internal */
export const initial: State = { accounts: new Map(), clock: 0 }

/** What a transition needs from outside. @internal */
export interface Env {
  /** The wall clock, in seconds. */
  readonly nowSeconds: number
  readonly randomId: (length: number) => string
}

/** A request, once authenticated and decoded. @internal */
export interface Request {
  readonly method: string
  readonly path: string
  readonly account: string
  readonly params: Params
}

/** @internal */
export type Result = Intent | IntentList | Failure

/** What a transition on one intent answers, and the intent to keep (`undefined`: nothing changes). */
type Step = readonly [Result, Intent | undefined]

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

const noSuchPaymentMethod = (id: string) =>
  invalid(`No such PaymentMethod: '${id}'`, { code: "resource_missing", param: "payment_method" })

const readPaymentMethod = (params: Params): string | undefined | Failure => {
  const value = str(params, "payment_method")
  if (value === undefined || value instanceof Failure) return value
  return testCards[value] === undefined ? noSuchPaymentMethod(value) : value
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

const captureMethods = ["automatic", "automatic_async", "manual"] as const

/** The intent, or Stripe's 404 (with `param: "intent"`, as Stripe says). */
const find = (account: Account | undefined, id: string): Intent | Failure =>
  account?.intents.get(id) ??
    invalid(`No such payment_intent: '${id}'`, { code: "resource_missing", param: "intent" }, 404)

/** The card error of a declined test card. */
const cardError = (card: Card): StripeErrorBody => ({
  type: "card_error",
  message: card.message ?? "Your card was declined.",
  ...(card.code === undefined ? {} : { code: card.code, doc_url: docUrl(card.code) }),
  ...(card.decline_code === undefined ? {} : { decline_code: card.decline_code })
})

/**
 * Attaches and charges the payment method. A card error is answered (402) and kept on the
 * intent; a refused request keeps the intent as it was given.
 */
const confirm = (intent: Intent, params: Params, env: Env): Step => {
  const paymentMethod = readPaymentMethod(params)
  if (paymentMethod instanceof Failure) return [paymentMethod, intent]
  const method = paymentMethod ?? intent.payment_method
  if (method === null) {
    const failure = invalid(
      "You cannot confirm this PaymentIntent because it's missing a payment method. Update the PaymentIntent " +
        "with a payment method and then confirm it again.",
      { code: "payment_intent_unexpected_state" }
    )
    return [failure, intent]
  }
  const card = testCards[method]
  if (card === undefined) return [noSuchPaymentMethod(method), intent]
  if (card.outcome === "declined") {
    const error = cardError(card)
    const declined: Intent = {
      ...intent,
      status: "requires_payment_method",
      payment_method: null,
      last_payment_error: error
    }
    return [new Failure(402, { ...error, payment_intent: declined }), declined]
  }
  const manual = intent.capture_method === "manual"
  const charged: Intent = {
    ...intent,
    payment_method: method,
    last_payment_error: null,
    status: card.outcome === "requires_action" ? "requires_action" : manual ? "requires_capture" : "succeeded",
    amount_capturable: card.outcome === "succeeded" && manual ? intent.amount : 0,
    amount_received: card.outcome === "succeeded" && !manual ? intent.amount : 0,
    latest_charge: card.outcome === "succeeded" ? `ch_${env.randomId(24)}` : null
  }
  return [charged, charged]
}

/** The checked parameters of a create. */
interface CreateInput {
  readonly amount: number
  readonly currency: string
  readonly metadata: Record<string, string>
  readonly captureMethod: string | undefined
  readonly confirm: boolean | undefined
  readonly paymentMethod: string | undefined
  readonly description: string | undefined
  readonly receiptEmail: string | undefined
  readonly customer: string | undefined
  readonly paymentMethodTypes: ReadonlyArray<string> | undefined
}

const isStringList = (value: Params[string] | undefined): value is ReadonlyArray<string> =>
  Array.isArray(value) && value.every((type) => typeof type === "string")

/** Checks a create's parameters in Stripe's order: the first problem, or the input. */
const readCreate = (params: Params): CreateInput | Failure => {
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
  const captureMethod = oneOf(params, "capture_method", captureMethods)
  if (captureMethod instanceof Failure) return captureMethod
  const doConfirm = bool(params, "confirm")
  if (doConfirm instanceof Failure) return doConfirm
  const paymentMethod = readPaymentMethod(params)
  if (paymentMethod instanceof Failure) return paymentMethod
  const description = str(params, "description")
  if (description instanceof Failure) return description
  const receiptEmail = str(params, "receipt_email")
  if (receiptEmail instanceof Failure) return receiptEmail
  const customer = str(params, "customer")
  if (customer instanceof Failure) return customer
  const types = params.payment_method_types
  if (types !== undefined && !isStringList(types)) return invalid("Invalid array", { param: "payment_method_types" })
  return {
    amount,
    currency,
    metadata,
    captureMethod,
    confirm: doConfirm,
    paymentMethod,
    description,
    receiptEmail,
    customer,
    paymentMethodTypes: types
  }
}

const newIntent = (input: CreateInput, env: Env, created: number): Intent => {
  const id = `pi_${env.randomId(24)}`
  return {
    id,
    object: "payment_intent",
    amount: input.amount,
    amount_capturable: 0,
    amount_received: 0,
    currency: input.currency,
    status: input.paymentMethod === undefined ? "requires_payment_method" : "requires_confirmation",
    client_secret: `${id}_secret_${env.randomId(25)}`,
    capture_method: input.captureMethod ?? "automatic_async",
    confirmation_method: "automatic",
    created,
    livemode: false,
    metadata: input.metadata,
    description: input.description ?? null,
    customer: input.customer ?? null,
    payment_method: input.paymentMethod ?? null,
    payment_method_types: input.paymentMethodTypes ?? ["card"],
    latest_charge: null,
    last_payment_error: null,
    receipt_email: input.receiptEmail ?? null,
    canceled_at: null,
    cancellation_reason: null
  }
}

/** `POST /v1/payment_intents`; with `confirm=true` the new intent is kept even when the charge fails. */
const create = (params: Params, env: Env, now: number): Step => {
  const input = readCreate(params)
  if (input instanceof Failure) return [input, undefined]
  const intent = newIntent(input, env, now)
  return input.confirm === true ? confirm(intent, {}, env) : [intent, intent]
}

/** `description`, `receipt_email`, `customer` on update: unchanged when absent, cleared by `""`. */
const nullable = (params: Params, intent: Intent, name: "description" | "receipt_email" | "customer") => {
  const value = str(params, name)
  if (value instanceof Failure) return value
  return value === undefined ? intent[name] : value === "" ? null : value
}

const updateFields = [
  "amount",
  "currency",
  "customer",
  "description",
  "expand",
  "metadata",
  "payment_method",
  "receipt_email"
]

/** `POST /v1/payment_intents/:id`. */
const update = (intent: Intent, params: Params): Step => {
  const unknown = checkKnown(params, updateFields)
  if (unknown !== undefined) return [unknown, undefined]
  if (!updatable.includes(intent.status)) return [unexpectedState("update", intent, updatable), undefined]
  const currency = params.currency === undefined ? intent.currency : readCurrency(params)
  if (currency === undefined || currency instanceof Failure) return [currency ?? missing("currency"), undefined]
  const amount = params.amount === undefined ? intent.amount : readAmount(params, "amount")
  if (amount === undefined || amount instanceof Failure) return [amount ?? missing("amount"), undefined]
  const metadata = readMetadata(params, intent.metadata)
  if (metadata instanceof Failure) return [metadata, undefined]
  const paymentMethod = readPaymentMethod(params)
  if (paymentMethod instanceof Failure) return [paymentMethod, undefined]
  const description = nullable(params, intent, "description")
  if (description instanceof Failure) return [description, undefined]
  const receiptEmail = nullable(params, intent, "receipt_email")
  if (receiptEmail instanceof Failure) return [receiptEmail, undefined]
  const customer = nullable(params, intent, "customer")
  if (customer instanceof Failure) return [customer, undefined]
  const updated: Intent = {
    ...intent,
    amount,
    currency,
    metadata,
    description,
    receipt_email: receiptEmail,
    customer,
    ...(paymentMethod === undefined ? {} : { payment_method: paymentMethod, status: "requires_confirmation" })
  }
  return [updated, updated]
}

/** `POST /v1/payment_intents/:id/confirm`: a new `capture_method` is kept even when the confirmation fails. */
const confirmById = (intent: Intent, params: Params, env: Env): Step => {
  const unknown = checkKnown(params, ["payment_method", "capture_method", "receipt_email", "return_url", "expand"])
  if (unknown !== undefined) return [unknown, undefined]
  if (!confirmable.includes(intent.status)) return [unexpectedState("confirm", intent, confirmable), undefined]
  const captureMethod = oneOf(params, "capture_method", captureMethods)
  if (captureMethod instanceof Failure) return [captureMethod, undefined]
  return confirm(captureMethod === undefined ? intent : { ...intent, capture_method: captureMethod }, params, env)
}

const cancellationReasons = ["duplicate", "fraudulent", "requested_by_customer", "abandoned"] as const

/** `POST /v1/payment_intents/:id/cancel`. */
const cancel = (intent: Intent, params: Params, now: number): Step => {
  const unknown = checkKnown(params, ["cancellation_reason", "expand"])
  if (unknown !== undefined) return [unknown, undefined]
  const reason = oneOf(params, "cancellation_reason", cancellationReasons)
  if (reason instanceof Failure) return [reason, undefined]
  if (!cancelable.includes(intent.status)) return [unexpectedState("cancel", intent, cancelable), undefined]
  const canceled: Intent = {
    ...intent,
    status: "canceled",
    canceled_at: now,
    cancellation_reason: reason ?? null,
    amount_capturable: 0
  }
  return [canceled, canceled]
}

/** `POST /v1/payment_intents/:id/capture`. */
const capture = (intent: Intent, params: Params): Step => {
  const unknown = checkKnown(params, ["amount_to_capture", "metadata", "statement_descriptor", "expand"])
  if (unknown !== undefined) return [unknown, undefined]
  if (intent.status !== "requires_capture") {
    const failure = invalid(
      `This PaymentIntent could not be captured because it has a status of ${intent.status}. Only a ` +
        "PaymentIntent with one of the following statuses may be captured: requires_capture.",
      { code: "payment_intent_unexpected_state" }
    )
    return [failure, undefined]
  }
  const amount = integer(params, "amount_to_capture")
  if (amount instanceof Failure) return [amount, undefined]
  const captured = amount ?? intent.amount_capturable
  if (captured > intent.amount_capturable) {
    const failure = invalid(
      `The amount_to_capture (${captured}) is greater than the amount capturable (${intent.amount_capturable}).`,
      { code: "amount_too_large", param: "amount_to_capture" }
    )
    return [failure, undefined]
  }
  const metadata = readMetadata(params, intent.metadata)
  if (metadata instanceof Failure) return [metadata, undefined]
  const succeeded: Intent = {
    ...intent,
    status: "succeeded",
    amount_received: captured,
    amount_capturable: 0,
    metadata
  }
  return [succeeded, succeeded]
}

/** The checked paging parameters of a list. */
interface ListInput {
  readonly limit: number
  readonly after: string | undefined
  readonly before: string | undefined
  readonly customer: string | undefined
}

const readList = (params: Params): ListInput | Failure => {
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
  return { limit: limit ?? 10, after, before, customer }
}

/** `GET /v1/payment_intents`: newest first, pages by `starting_after` / `ending_before`. */
const list = (account: Account | undefined, params: Params): IntentList | Failure => {
  const input = readList(params)
  if (input instanceof Failure) return input
  const { after, before, customer, limit: size } = input
  const newestFirst = [...(account?.order ?? [])].reverse()
    .flatMap((id) => account?.intents.get(id) ?? [])
    .filter((intent) => customer === undefined || intent.customer === customer)
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

/** The state with `intent` kept in `accountId` (added, newest, when it is new). */
const keep = (state: State, accountId: string, intent: Intent, clock: number): State => {
  const account = state.accounts.get(accountId) ?? { intents: new Map(), order: [] }
  const isNew = !account.intents.has(intent.id)
  const next: Account = {
    intents: new Map(account.intents).set(intent.id, intent),
    order: isNew ? [...account.order, intent.id] : account.order
  }
  return { accounts: new Map(state.accounts).set(accountId, next), clock }
}

/** The next timestamp: the wall clock, or one more than the last when the wall clock has not moved on. */
const tick = (state: State, env: Env): number => Math.max(state.clock + 1, Math.floor(env.nowSeconds))

/** A transition on an existing intent: 404 when there is none. */
const onIntent = (state: State, request: Request, id: string, step: (intent: Intent) => Step): Step => {
  const intent = find(state.accounts.get(request.account), id)
  return intent instanceof Failure ? [intent, undefined] : step(intent)
}

/** The step of a `POST /v1/payment_intents/:id[/action]`; `undefined` for an unknown action. */
const post = (state: State, request: Request, id: string, action: string | undefined, env: Env) => {
  const { params } = request
  switch (action) {
    case undefined:
      return onIntent(state, request, id, (intent) => update(intent, params))
    case "confirm":
      return onIntent(state, request, id, (intent) => confirmById(intent, params, env))
    case "cancel":
      return onIntent(state, request, id, (intent) => cancel(intent, params, tick(state, env)))
    case "capture":
      return onIntent(state, request, id, (intent) => capture(intent, params))
    default:
      return undefined
  }
}

/** Keeps a step's intent; the clock moves on when the step used it (a create, a cancel). */
const commit = (state: State, request: Request, step: Step, usedClock: boolean, env: Env) => {
  const [result, intent] = step
  if (intent === undefined) return [result, state] as const
  const clock = usedClock ? tick(state, env) : state.clock
  return [result, keep(state, request.account, intent, clock)] as const
}

/**
 * One request's transition: the answer and the next state; `undefined` when no route matches
 * (Stripe's 404 for an unrecognized URL).
 *
 * @internal
 */
export const transition = (state: State, request: Request, env: Env): readonly [Result, State] | undefined => {
  const [version, resource, rawId, action, ...rest] = request.path.split("/").slice(1)
  if (version !== "v1" || resource !== "payment_intents" || rest.length > 0) return undefined
  const { method, params } = request
  if (rawId === undefined) {
    if (method === "POST") return commit(state, request, create(params, env, tick(state, env)), true, env)
    if (method === "GET") return [list(state.accounts.get(request.account), params), state]
    return undefined
  }
  const id = decodeURIComponent(rawId)
  if (method === "GET" && action === undefined) {
    return [checkKnown(params, ["client_secret", "expand"]) ?? find(state.accounts.get(request.account), id), state]
  }
  if (method !== "POST") return undefined
  const step = post(state, request, id, action, env)
  return step === undefined ? undefined : commit(state, request, step, action === "cancel", env)
}

/** PaymentIntents on every account. @internal */
export const count = (state: State): number =>
  [...state.accounts.values()].reduce((total, account) => total + account.intents.size, 0)
