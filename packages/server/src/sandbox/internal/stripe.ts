/**
 * The fake Stripe's request handling, around the PaymentIntents state machine
 * (`stripeIntents.ts`): authentication, `Stripe-Version`, `Stripe-Account`, the form body, and
 * idempotency keys. All of it is one pure transition of the fake's state per request; the server
 * (`serve.ts`) applies it atomically.
 */
import type * as HttpServerError from "@effect/platform/HttpServerError"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { FakeStripeOptions } from "../Stripe.js"
import type { Answer, RecordedRequest, Served } from "./serve.js"
import { randomId, serve } from "./serve.js"
import * as Intents from "./stripeIntents.js"
import { decodeForm, Failure, invalid } from "./stripeParams.js"

/** The pinned default when a request names no `Stripe-Version`. @internal */
export const defaultVersion = "2026-09-30.endive"

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

const authenticate = (request: RecordedRequest, expected: string | undefined): Failure | undefined => {
  const key = secretKey(request.headers)
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
  if (key.startsWith("rk_") && request.method !== "GET") {
    return invalid(
      `The provided key '${mask(key)}' does not have the required permissions for this endpoint. Having the ` +
        "'rak_payment_intent_write' permission would allow this request to continue.",
      {},
      403
    )
  }
  return undefined
}

/** Refused before anything runs: a bad key, or a malformed `Stripe-Version`. */
const refuse = (request: RecordedRequest, version: string, expectedKey: string | undefined): Failure | undefined =>
  authenticate(request, expectedKey) ??
    (/^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$/.test(version)
      ? undefined
      : invalid(`Invalid Stripe API version: ${version}`, { param: "Stripe-Version" }))

const failureAnswer = (failure: Failure): Answer => ({ status: failure.status, body: { error: failure.error } })

/** The answer an idempotency key keeps, with the `Request-Id` it was first given. */
interface Saved {
  readonly fingerprint: string
  readonly requestId: string
  readonly answer: Answer
}

/** The fake's whole state. @internal */
export interface State {
  readonly intents: Intents.State
  /** By `Stripe-Account` and key. */
  readonly saved: ReadonlyMap<string, Saved>
}

/** @internal */
export const initial: State = { intents: Intents.initial, saved: new Map() }

/** The body, the account and the route: the endpoint's answer. */
const run = (state: Intents.State, request: RecordedRequest, env: Intents.Env): readonly [Answer, Intents.State] => {
  const contentType = (request.headers["content-type"] ?? "").split(";", 1)[0]?.trim().toLowerCase()
  if (request.method === "POST" && request.body !== "" && contentType !== "application/x-www-form-urlencoded") {
    const failure = invalid(
      `Invalid request: the body must be application/x-www-form-urlencoded, not ${contentType || "(none)"}. ` +
        "See https://stripe.com/docs/api for details."
    )
    return [failureAnswer(failure), state]
  }
  const params = decodeForm(request.method === "GET" ? request.query : request.body)
  if (params instanceof Failure) return [failureAnswer(params), state]
  const account = request.headers["stripe-account"]
  if (account !== undefined && !/^acct_[A-Za-z0-9]{4,}$/.test(account)) {
    const failure = invalid(
      `The provided key does not have access to account '${account}' (or that account does not exist). ` +
        "Application access may have been revoked.",
      {},
      403
    )
    return [failureAnswer(failure), state]
  }
  const routed = Intents.transition(state, { ...request, account: account ?? "", params }, env)
  if (routed === undefined) {
    const failure = invalid(
      `Unrecognized request URL (${request.method}: ${request.path}). Please see https://stripe.com/docs or we ` +
        "can help at https://support.stripe.com/.",
      {},
      404
    )
    return [failureAnswer(failure), state]
  }
  const [result, next] = routed
  return [result instanceof Failure ? failureAnswer(result) : { status: 200, body: result }, next]
}

const mismatch = (key: string) =>
  failureAnswer(
    new Failure(400, {
      type: "idempotency_error",
      message: "Keys for idempotent requests can only be used with the same parameters they were first " +
        `used with. Try using a key other than '${key}' if you meant to execute a different request.`
    })
  )

/** A POST with an `Idempotency-Key`: the saved answer again, or the endpoint's, saved. */
const idempotently = (state: State, request: RecordedRequest, key: string, requestId: string, env: Intents.Env) => {
  if (key.length > 255) {
    return [failureAnswer(invalid("Invalid Idempotency-Key: must be at most 255 characters long")), state] as const
  }
  const scoped = `${request.headers["stripe-account"] ?? ""} ${key}`
  const fingerprint = `${request.method} ${request.path} ${request.body}`
  const saved = state.saved.get(scoped)
  if (saved !== undefined) {
    if (saved.fingerprint !== fingerprint) return [mismatch(key), state] as const
    const headers = { ...saved.answer.headers, "idempotent-replayed": "true", "original-request": saved.requestId }
    return [{ ...saved.answer, headers }, state] as const
  }
  const [answer, intents] = run(state.intents, request, env)
  // Saved once the endpoint ran (success or a card error); a request refused before that is not.
  const keep = answer.status === 200 || answer.status === 402
  const next: State = {
    intents,
    saved: keep ? new Map(state.saved).set(scoped, { fingerprint, requestId, answer }) : state.saved
  }
  return [{ ...answer, headers: { ...answer.headers, "idempotency-key": key } }, next] as const
}

/** A request without an idempotency key just runs. */
const withoutKey = (state: State, request: RecordedRequest, env: Intents.Env): readonly [Answer, State] => {
  const [answer, intents] = run(state.intents, request, env)
  return [answer, { ...state, intents }]
}

/**
 * One request: its answer (with the `Stripe-Version` it was served with) and the next state;
 * `env` brings the wall clock and random ids.
 *
 * @internal
 */
export const transition = (
  state: State,
  request: RecordedRequest,
  requestId: string,
  expectedKey: string | undefined,
  env: Intents.Env
): readonly [Answer, State] => {
  const version = request.headers["stripe-version"] ?? defaultVersion
  const refused = refuse(request, version, expectedKey)
  const key = request.method === "POST" ? request.headers["idempotency-key"] : undefined
  const [answer, next] = refused !== undefined
    ? [failureAnswer(refused), state] as const
    : key === undefined
    ? withoutKey(state, request, env)
    : idempotently(state, request, key, requestId, env)
  return [{ ...answer, headers: { ...answer.headers, "stripe-version": version } }, next]
}

/**
 * The fake for the life of the scope.
 *
 * @internal
 */
export const serveStripe = (
  options: FakeStripeOptions
): Effect.Effect<Served<State>, HttpServerError.ServeError, Scope.Scope> =>
  serve({
    host: options.host,
    port: options.port,
    maxBodyBytes: 1024 * 1024,
    tooLarge: failureAnswer(invalid("Request body too large", {}, 413)),
    commonHeaders: () => ({ "request-id": `req_${randomId(14)}` }),
    initial,
    transition: (state, request, common) =>
      transition(state, request, common["request-id"] ?? "", options.apiKey, {
        nowSeconds: Date.now() / 1000,
        randomId
      })
  })
