import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import { constTrue } from "effect/Function"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type * as Tracer from "effect/Tracer"
import type * as Http from "../Http.js"
import type { AuthError, AuthFailure, HttpError } from "../HttpError.js"
import * as HttpErrors from "../HttpError.js"
import { cancelBody, describeParseError } from "./httpClient.js"

// ---------------------------------------------------------------------------
// Headers and spans
// ---------------------------------------------------------------------------

/** Runs `effect` with these header names redacted in the spans (and logs) of its fibers. */
const redacting = <A, E, R>(effect: Effect.Effect<A, E, R>, names: ReadonlyArray<string>): Effect.Effect<A, E, R> =>
  Effect.locallyWith(effect, Headers.currentRedactedNames, (current) => [...current, ...names])

type Execute = (
  request: HttpClientRequest.HttpClientRequest
) => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>

/**
 * A client that hands every request, as its caller built it, to `f` with the inner client's
 * `execute` (which then adds the base URL and default headers): `f` may send it changed, or
 * more than once.
 */
const around = (
  client: HttpClient.HttpClient,
  f: (
    request: HttpClientRequest.HttpClientRequest,
    execute: Execute
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>
): HttpClient.HttpClient =>
  HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
    (effect) => Effect.flatMap(effect, (request) => f(request, client.execute)),
    Effect.succeed
  )

/**
 * Sends every request with a header carrying a secret, its name redacted in spans.
 *
 * @internal
 */
export const withSecretHeader = (
  client: HttpClient.HttpClient,
  name: string,
  value: Redacted.Redacted<string>
): HttpClient.HttpClient => {
  const names = [name.toLowerCase()]
  return around(
    client,
    (request, execute) => redacting(execute(HttpClientRequest.setHeader(request, name, Redacted.value(value))), names)
  )
}

/**
 * {@link withSecretHeader} as an `Http` middleware.
 *
 * @internal
 */
export const secretHeaderMiddleware = (name: string, value: Redacted.Redacted<string>): Http.Middleware => {
  const names = [name.toLowerCase()]
  return (execute) => (request) =>
    redacting(execute(HttpClientRequest.setHeader(request, name, Redacted.value(value))), names)
}

/**
 * A secret query parameter as an `Http` middleware: `Http`'s own span never records the query.
 *
 * @internal
 */
export const secretQueryMiddleware =
  (name: string, value: Redacted.Redacted<string>): Http.Middleware => (execute) => (request) =>
    execute(HttpClientRequest.setUrlParam(request, name, Redacted.value(value)))

const redactedMarker = "<redacted>"
const encodedMarker = encodeURIComponent(redactedMarker)

/** The span of a request whose query carries a secret, while it is being sent. */
class QuerySecretSpan extends Context.Tag("@liaison/core/Auth/QuerySecretSpan")<QuerySecretSpan, {
  readonly span: Tracer.Span
  readonly propagate: boolean
}>() {}

/** What `@effect/platform`'s client span records of a request, the secret parameter's value redacted. */
const recordRequest = (
  span: Tracer.Span,
  request: HttpClientRequest.HttpClientRequest,
  name: string,
  redactedNames: ReadonlyArray<string | RegExp>
): void => {
  const built = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
  if (built._tag === "Left") return
  const url = built.right
  url.searchParams.set(name, redactedMarker)
  span.attribute("http.request.method", request.method)
  span.attribute("server.address", url.origin)
  if (url.port !== "") span.attribute("server.port", Number(url.port))
  span.attribute("url.full", url.toString().replace(encodedMarker, redactedMarker))
  span.attribute("url.path", url.pathname)
  span.attribute("url.scheme", url.protocol.slice(0, -1))
  span.attribute("url.query", url.search.slice(1).replace(encodedMarker, redactedMarker))
  const headers = Headers.redact(request.headers, redactedNames)
  for (const header in headers) span.attribute(`http.request.header.${header}`, String(headers[header]))
}

/**
 * Sends every request with a secret query parameter. `@effect/platform`'s client span records
 * the whole URL (`url.full`, `url.query`), so for these requests its span is turned off and
 * one with the same name and attributes, the secret's value redacted, is made instead. The key
 * is added last, once the base URL is in (so the span sees the whole URL, minus the key).
 *
 * @internal
 */
export const withSecretQueryParam = (
  client: HttpClient.HttpClient,
  name: string,
  value: Redacted.Redacted<string>
): HttpClient.HttpClient => {
  const keyed = HttpClient.mapRequestEffect(client, (request) =>
    Effect.gen(function*() {
      const traced = yield* Effect.serviceOption(QuerySecretSpan)
      const withKey = HttpClientRequest.setUrlParam(request, name, Redacted.value(value))
      if (Option.isNone(traced)) return withKey
      const { propagate, span } = traced.value
      recordRequest(span, request, name, yield* FiberRef.get(Headers.currentRedactedNames))
      return propagate ? HttpClientRequest.setHeaders(withKey, HttpTraceContext.toHeaders(span)) : withKey
    }))
  return around(keyed, (request, execute) =>
    Effect.gen(function*() {
      const untraced = Effect.locally(execute(request), HttpClient.currentTracerDisabledWhen, constTrue)
      const disabledWhen = yield* FiberRef.get(HttpClient.currentTracerDisabledWhen)
      if (disabledWhen(request)) return yield* untraced
      const spanName = (yield* HttpClient.SpanNameGenerator)(request)
      const propagate = yield* FiberRef.get(HttpClient.currentTracerPropagation)
      const redactedNames = yield* FiberRef.get(Headers.currentRedactedNames)
      return yield* Effect.useSpan(spanName, { kind: "client", captureStackTrace: false }, (span) =>
        untraced.pipe(
          Effect.provideService(QuerySecretSpan, { span, propagate }),
          Effect.withParentSpan(span),
          Effect.tap((response) => {
            span.attribute("http.response.status_code", response.status)
            const headers = Headers.redact(response.headers, redactedNames)
            for (const header in headers) span.attribute(`http.response.header.${header}`, String(headers[header]))
          })
        ))
    }))
}

// ---------------------------------------------------------------------------
// OAuth2 client credentials: the token cell
// ---------------------------------------------------------------------------

/**
 * An access token and the moment (by the Effect `Clock`, in epoch milliseconds) it is to be
 * replaced.
 *
 * @internal
 */
export interface Token {
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshAt: number
}

type CellState =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Ready"; readonly token: Token }
  | { readonly _tag: "Fetching"; readonly done: Deferred.Deferred<Token, HttpError> }

/** @internal */
export interface TokenCell {
  /** A token that is still fresh; when there is none, one fetch for every caller waiting. */
  readonly get: Effect.Effect<Token, HttpError>
  /** Forgets `token`, unless it was already replaced. */
  readonly invalidate: (token: Token) => Effect.Effect<void>
}

const empty: CellState = { _tag: "Empty" }

const sameToken = (a: Token, b: Token) => Redacted.value(a.accessToken) === Redacted.value(b.accessToken)

/**
 * The cached token of one client. A fresh token is read without any lock; otherwise the
 * first caller starts a fetch and everyone else awaits the same one (single flight). The
 * fetch runs in `scope`, not in the caller's fiber, so a caller that is interrupted does not
 * fail the others. A failed fetch is not cached: the next caller tries again.
 *
 * @internal
 */
export const makeTokenCell = (
  fetch: Effect.Effect<Token, HttpError>
): Effect.Effect<TokenCell, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const state = yield* SynchronizedRef.make<CellState>(empty)
    const fresh = (current: CellState, now: number): Token | undefined =>
      current._tag === "Ready" && now < current.token.refreshAt ? current.token : undefined

    const start = SynchronizedRef.modifyEffect(state, (current) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const token = fresh(current, now)
        if (token !== undefined) return [Effect.succeed(token), current] as const
        if (current._tag === "Fetching") return [Deferred.await(current.done), current] as const
        const done = yield* Deferred.make<Token, HttpError>()
        const settle = (exit: Exit.Exit<Token, HttpError>) =>
          SynchronizedRef.update(state, (now): CellState =>
            now._tag === "Fetching" && now.done === done
              ? Exit.isSuccess(exit) ? { _tag: "Ready", token: exit.value } : empty
              : now).pipe(Effect.zipRight(Deferred.done(done, exit)))
        // `onExit`: an interrupted fetch (the scope closing) fails the waiters too, rather than leaving them hanging.
        yield* Effect.forkIn(Effect.exit(Effect.onExit(fetch, settle)), scope)
        return [Deferred.await(done), { _tag: "Fetching", done }] as const
      }))

    const get = Effect.flatMap(
      Effect.zip(SynchronizedRef.get(state), Clock.currentTimeMillis),
      ([current, now]) => {
        const token = fresh(current, now)
        return token !== undefined ? Effect.succeed(token) : Effect.flatten(start)
      }
    )

    const invalidate = (token: Token) =>
      SynchronizedRef.update(state, (current) =>
        current._tag === "Ready" && sameToken(current.token, token) ? empty : current)

    return { get, invalidate }
  })

// ---------------------------------------------------------------------------
// OAuth2 client credentials: the token request
// ---------------------------------------------------------------------------

/** @internal */
export interface TokenRequestSettings {
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  readonly clientAuthentication: "client_secret_basic" | "client_secret_post"
  readonly scope: string | undefined
  readonly audience: string | undefined
  readonly audienceParameter: string
  readonly expirySkew: Duration.Duration
  readonly defaultExpiresIn: Duration.Duration
}

/** RFC 6749 §2.3.1: the client id and secret are form-encoded before they go into Basic. */
const formEncode = (value: string): string => new URLSearchParams([["", value]]).toString().slice(1)

const base64Utf8 = (value: string): string => Buffer.from(value, "utf8").toString("base64")

/**
 * An `Authorization: Basic` value (RFC 7617): `user:password` as UTF-8, in base64.
 *
 * @internal
 */
export const basicCredentials = (username: string, password: string): string =>
  `Basic ${base64Utf8(`${username}:${password}`)}`

const tokenRequest = (settings: TokenRequestSettings): HttpClientRequest.HttpClientRequest => {
  const params: Array<[string, string]> = [["grant_type", "client_credentials"]]
  if (settings.scope !== undefined) params.push(["scope", settings.scope])
  if (settings.audience !== undefined) params.push([settings.audienceParameter, settings.audience])
  const secret = Redacted.value(settings.clientSecret)
  if (settings.clientAuthentication === "client_secret_post") {
    params.push(["client_id", settings.clientId], ["client_secret", secret])
  }
  const request = HttpClientRequest.post(settings.tokenUrl).pipe(
    HttpClientRequest.acceptJson,
    HttpClientRequest.bodyUrlParams(params)
  )
  return settings.clientAuthentication === "client_secret_basic"
    ? HttpClientRequest.setHeader(
      request,
      "authorization",
      basicCredentials(formEncode(settings.clientId), formEncode(secret))
    )
    : request
}

/** Printable ASCII with no spaces: what a header may carry after `Bearer `. */
const headerSafeToken = /^[\x21-\x7e]+$/

const TokenResponse = Schema.Struct({
  access_token: Schema.String.pipe(
    Schema.nonEmptyString({ message: () => "access_token must be a non-empty string" }),
    Schema.pattern(headerSafeToken, { message: () => "access_token has characters a header cannot carry" })
  ),
  token_type: Schema.optional(Schema.String),
  expires_in: Schema.optional(
    Schema.Union(Schema.Number, Schema.NumberFromString).pipe(
      Schema.filter((seconds) => Number.isFinite(seconds) && seconds > 0, {
        message: () => "expires_in must be a positive number of seconds"
      })
    )
  )
})

const TokenError = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String)
})

/** What an identity provider says goes into an error message: printable, and short. */
const clip = (text: string, max: number): string => {
  const printable = text.replace(/[^\x20-\x7e]/g, "?")
  return printable.length > max ? `${printable.slice(0, max)}…` : printable
}

const redactedText = "[redacted]"

/**
 * A credential after an authentication scheme's name, e.g. `Basic dXNlcjpwYXNz`; a lowercase
 * word after it (`Basic authentication failed`) is prose, not a credential.
 */
const schemeCredential = /\b(Basic|Bearer|Digest|Negotiate|NTLM|DPoP)(\s+)([\w.~+/=-]+)/gi

const redactSchemeCredential = (match: string, scheme: string, space: string, value: string): string =>
  /^[a-z]{1,19}$/.test(value) ? match : `${scheme}${space}${redactedText}`

/** A credential after its parameter's name, e.g. `client_secret=…` or `"password": "…"`. */
const namedCredential =
  /\b(client_secret|client_assertion|password|passwd|secret|access_token|refresh_token|id_token|assertion|api_key|apikey|token)(["']?\s*[=:]\s*["']?)[^\s"'&,;]+/gi

const absoluteUrl = /\b[a-z][a-z\d+.-]*:\/\/[^\s"'<>]+/gi

/** Base64 (or base64url) of 8 bytes or more. */
const base64Run = /[A-Za-z\d+/_-]{12,}={0,2}/g

/** Whether a base64 run decodes to printable `user:password`-like text: Basic credentials without their scheme name. */
const encodesCredentials = (run: string): boolean => {
  const decoded = Buffer.from(run, run.includes("-") || run.includes("_") ? "base64url" : "base64").toString("utf8")
  return decoded.length >= 3 && /^[\x20-\x7e]+$/.test(decoded) && decoded.includes(":")
}

/**
 * Text from upstream (an error body, an error message) as logs, spans and errors may show it:
 * every URL through `HttpError.redactUrl`, and anything that looks like a credential — `Basic` /
 * `Bearer` values, `client_secret=` or `"password":` values, base64 of `user:password` —
 * replaced by `[redacted]`.
 *
 * @internal
 */
export const redactText = (text: string): string =>
  text
    .replace(absoluteUrl, (url) => HttpErrors.redactUrl(url))
    .replace(schemeCredential, redactSchemeCredential)
    .replace(namedCredential, `$1$2${redactedText}`)
    .replace(base64Run, (run) => encodesCredentials(run) ? redactedText : run)

/** The forms a client's credentials take on the wire: raw, form- and URL-encoded, and Basic's base64 of `id:secret`. */
const credentialForms = (clientId: string, secret: string): ReadonlyArray<string> => {
  const pairs = [`${clientId}:${secret}`, `${formEncode(clientId)}:${formEncode(secret)}`]
  const encoded = [...pairs, secret].flatMap((text) => {
    const bytes = Buffer.from(text, "utf8")
    return [bytes.toString("base64"), bytes.toString("base64").replace(/=+$/, ""), bytes.toString("base64url")]
  })
  const forms = [secret, formEncode(secret), encodeURIComponent(secret), ...encoded]
  // Longest first: a secret inside its own encodings is not replaced piecemeal.
  return [...new Set(forms)].filter((form) => form.length > 0).sort((a, b) => b.length - a.length)
}

/**
 * What a token endpoint's error text may show: {@link redactText}, and the client secret gone in
 * every encoding it was sent in, then clipped to `max` printable characters.
 */
const scrubbed = (settings: TokenRequestSettings, text: string, max: number): string => {
  let clean = text
  for (const form of credentialForms(settings.clientId, Redacted.value(settings.clientSecret))) {
    clean = clean.split(form).join(redactedText)
  }
  return clip(redactText(clean), max)
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * How long a token is kept: until `expires_in` minus the skew, but at least half its
 * lifetime (a token shorter than twice the skew would otherwise hardly be cached at all).
 * (Left in the declarations: the property tests import it.)
 */
export const cacheMillis = (lifetime: Duration.Duration, skew: Duration.Duration): number => {
  const life = Duration.toMillis(lifetime)
  return Math.max(life - Duration.toMillis(skew), life / 2)
}

/** @internal */
export const tokenFromResponse = (
  settings: TokenRequestSettings,
  request: HttpClientRequest.HttpClientRequest,
  status: number,
  body: string,
  sentAt: number
): Effect.Effect<Token, AuthError> => {
  const fail = (reason: AuthFailure, details: { error?: string; description?: string }) =>
    Effect.fail(HttpErrors.authError(request, { reason, status, ...details }))
  const json = parseJson(body)
  if (status < 200 || status >= 300) {
    const error = Schema.decodeUnknownOption(TokenError)(json)
    return error._tag === "Some"
      ? fail("token_endpoint", {
        error: scrubbed(settings, error.value.error, 64),
        ...(error.value.error_description === undefined
          ? {}
          : { description: scrubbed(settings, error.value.error_description, 200) })
      })
      : fail("token_endpoint", {})
  }
  if (json === undefined) return fail("token_response", { description: "the body is not JSON" })
  const decoded = Schema.decodeUnknownEither(TokenResponse)(json)
  if (decoded._tag === "Left") return fail("token_response", { description: describeParseError(decoded.left) })
  const { access_token, expires_in, token_type } = decoded.right
  if (token_type !== undefined && token_type.toLowerCase() !== "bearer") {
    return fail("token_response", { description: `token_type ${clip(token_type, 32)} is not Bearer` })
  }
  const lifetime = expires_in === undefined ? settings.defaultExpiresIn : Duration.seconds(expires_in)
  return Effect.succeed({
    accessToken: Redacted.make(access_token),
    refreshAt: sentAt + cacheMillis(lifetime, settings.expirySkew)
  })
}

/**
 * Asks the token endpoint for a token (RFC 6749 §4.4), on its own client (never the API's:
 * the API's default headers must not reach the identity provider).
 *
 * @internal
 */
export const fetchToken = (http: Http.Service, settings: TokenRequestSettings): Effect.Effect<Token, HttpError> => {
  const request = tokenRequest(settings)
  return Effect.gen(function*() {
    const sentAt = yield* Clock.currentTimeMillis
    const { body, status } = yield* Effect.scoped(
      Effect.flatMap(
        http.execute(request),
        (response) => Effect.map(response.text, (body) => ({ status: response.status, body }))
      )
    ).pipe(
      Effect.catchTag("DecodeError", (error) =>
        Effect.fail(
          HttpErrors.authError(request, { reason: "token_response", status: error.status, description: error.reason })
        ))
    )
    return yield* tokenFromResponse(settings, request, status, body, sentAt)
  }).pipe(
    // The body itself is never logged: its status, `error` and `error_description`, scrubbed.
    Effect.tapError((error) => error._tag === "AuthError" ? Effect.logDebug(`auth: ${error.message}`) : Effect.void),
    (effect) => redacting(effect, ["authorization"]),
    Effect.withSpan("liaison.auth.token", {
      kind: "client",
      attributes: { "auth.scheme": "oauth2", "auth.token_endpoint": HttpErrors.redactUrl(request.url) }
    })
  )
}

// ---------------------------------------------------------------------------
// OAuth2 client credentials: the client
// ---------------------------------------------------------------------------

/** Bodies that can be sent twice: a stream (or a raw body of unknown kind) is used up by the first send. */
const replayable = (request: HttpClientRequest.HttpClientRequest): boolean =>
  request.body._tag === "Empty" || request.body._tag === "Uint8Array" || request.body._tag === "FormData"

/** How one client sends, reads and fails: the platform's client, or `Http`'s `execute`. */
interface Transport<Res, E, R> {
  readonly send: (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<Res, E, R>
  readonly status: (response: Res) => number
  /** The request a response answers (its URL, redacted, goes into `AuthError`). */
  readonly target: (response: Res) => HttpErrors.Target
  /** Frees a 401 answer's connection before the replay. */
  readonly release: (response: Res) => Effect.Effect<void>
  readonly fail: (request: HttpClientRequest.HttpClientRequest, cause: HttpError) => Effect.Effect<never, E>
}

const authorization = ["authorization"]

/**
 * One request with `Authorization: Bearer <token>`. A 401 answer invalidates the token, fetches a
 * fresh one and replays the request once (a body that cannot be sent twice is answered as it
 * is); a second 401 fails with `AuthError` (`rejected`).
 */
const sendWithBearer = <Res, E, R>(
  cell: TokenCell,
  request: HttpClientRequest.HttpClientRequest,
  io: Transport<Res, E, R>
): Effect.Effect<Res, E, R> => {
  const token = Effect.catchAll(cell.get, (cause) => io.fail(request, cause))
  const sendWith = (current: Token) =>
    redacting(
      io.send(HttpClientRequest.setHeader(request, "authorization", `Bearer ${Redacted.value(current.accessToken)}`)),
      authorization
    )
  const rejected = (again: Res): AuthError =>
    HttpErrors.authError(io.target(again), { reason: "rejected", status: 401 })
  return Effect.flatMap(token, (first) =>
    Effect.flatMap(sendWith(first), (response) => {
      if (io.status(response) !== 401 || !replayable(request)) return Effect.succeed(response)
      return io.release(response).pipe(
        Effect.zipRight(cell.invalidate(first)),
        Effect.zipRight(token),
        Effect.flatMap(sendWith),
        Effect.flatMap((again) =>
          io.status(again) !== 401
            ? Effect.succeed(again)
            : Effect.zipRight(io.release(again), io.fail(request, rejected(again)))
        )
      )
    }))
}

/**
 * Sends every request of a platform client with a bearer token from `cell` (see
 * {@link sendWithBearer}). Failures to get a token are the client's `RequestError`, their `cause`
 * the `HttpError` (which `Http` passes on as it is).
 *
 * @internal
 */
export const withBearerFrom = (client: HttpClient.HttpClient, cell: TokenCell): HttpClient.HttpClient => {
  // Built once per client: a call allocates nothing more than before.
  const io: Transport<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError, never> = {
    send: client.execute,
    status: (response) => response.status,
    target: (response) => response.request,
    release: cancelBody,
    fail: (request, cause) =>
      Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport", cause, description: cause.message }))
  }
  return around(client, (request) => sendWithBearer(cell, request, io))
}

/** A 401's body is read this many chunks at most (an error page), then cancelled. */
const drainedChunks = 4

const httpTransport = (execute: Http.Execute): Transport<Http.Response, HttpError, Scope.Scope> => ({
  send: execute,
  status: (response) => response.status,
  target: (response) => response.request,
  release: (response) => Effect.ignore(Stream.runDrain(Stream.take(response.stream, drainedChunks))),
  fail: (_request, cause) => Effect.fail(cause)
})

/**
 * {@link withBearerFrom} as an `Http` middleware: failures are the `HttpError`s themselves.
 *
 * @internal
 */
export const bearerMiddleware = (cell: TokenCell): Http.Middleware => (execute) => {
  const io = httpTransport(execute)
  return (request) => sendWithBearer(cell, request, io)
}
