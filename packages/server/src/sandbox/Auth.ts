/**
 * The users sandbox's protected routes and its token endpoint:
 *
 * - `POST /oauth2/token`: OAuth2 client credentials (RFC 6749 §4.4), `client_secret_basic` or
 *   `client_secret_post`; RFC 6749 §5.2 errors.
 * - `GET /protected/bearer`, `/protected/api-key`, `/protected/basic`, `/protected/oauth2`: 200
 *   `{ mode, authenticated, principal }` with the right credentials, else 401.
 *
 * Like every sandbox: the state (the issued tokens) is pure functions over an immutable value,
 * the routes are thin Effect handlers.
 *
 * @since 0.1.0
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import type { Issued, Tokens } from "./internal/tokens.js"
import { issue, lookup, tokenLifetimeSeconds } from "./internal/tokens.js"

/**
 * What the sandbox's protected routes accept.
 *
 * @since 0.1.0
 * @category models
 */
export interface SandboxCredentials {
  readonly bearerToken: Redacted.Redacted<string>
  readonly apiKey: {
    readonly key: Redacted.Redacted<string>
    readonly in: "header" | "query"
    readonly name: string
  }
  readonly basic: { readonly username: string; readonly password: Redacted.Redacted<string> }
  /** The one client of the built-in token endpoint. */
  readonly oauth2Client: { readonly clientId: string; readonly clientSecret: Redacted.Redacted<string> }
  /**
   * `/protected/oauth2` also takes bearer tokens it did not issue (the server gets them from a
   * real identity provider, whose tokens the sandbox cannot check); its answer says `verified: false`.
   */
  readonly acceptExternalTokens: boolean
}

/** Equal strings, in time that does not depend on where they differ. */
const same = (given: string, expected: Redacted.Redacted<string>): boolean =>
  timingSafeEqual(
    createHash("sha256").update(given).digest(),
    createHash("sha256").update(Redacted.value(expected)).digest()
  )

const unauthorized = (challenge: string, message: string) =>
  HttpServerResponse.unsafeJson(
    { error: "unauthorized", message },
    { status: 401, headers: { "www-authenticate": challenge } }
  )

const tokenError = (status: number, error: string, description: string) =>
  HttpServerResponse.unsafeJson(
    { error, error_description: description },
    {
      status,
      headers: {
        "cache-control": "no-store",
        ...(status === 401 ? { "www-authenticate": "Basic realm=\"sandbox\"" } : {})
      }
    }
  )

const authenticated = (mode: string, principal: string, extra: Record<string, unknown> = {}) =>
  HttpServerResponse.unsafeJson({ mode, authenticated: true, principal, ...extra })

const bearerOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const header = request.headers.authorization
  return header !== undefined && header.startsWith("Bearer ") ? header.slice(7) : undefined
}

const formDecode = (value: string): string | undefined => {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "))
  } catch {
    return undefined
  }
}

/** `Basic` credentials; `form`: each part form-encoded first (RFC 6749 §2.3.1, client credentials). */
const basicOf = (
  request: HttpServerRequest.HttpServerRequest,
  form: boolean
): { readonly user: string; readonly password: string } | undefined => {
  const header = request.headers.authorization
  if (header === undefined || !header.startsWith("Basic ")) return undefined
  const decoded = Buffer.from(header.slice(6), "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  if (colon === -1) return undefined
  const user = form ? formDecode(decoded.slice(0, colon)) : decoded.slice(0, colon)
  const password = form ? formDecode(decoded.slice(colon + 1)) : decoded.slice(colon + 1)
  return user === undefined || password === undefined ? undefined : { user, password }
}

type Field = (name: string) => string | undefined

/** The token request's client check: `undefined` when it may have a token, else the error answer. */
const refuseClient = (
  request: HttpServerRequest.HttpServerRequest,
  field: Field,
  credentials: SandboxCredentials
): HttpServerResponse.HttpServerResponse | undefined => {
  if (field("grant_type") !== "client_credentials") {
    return tokenError(400, "unsupported_grant_type", "only client_credentials is supported")
  }
  const basic = basicOf(request, true)
  const posted = field("client_secret")
  if (basic !== undefined && posted !== undefined) {
    return tokenError(400, "invalid_request", "more than one client authentication method")
  }
  const client = basic !== undefined
    ? { id: basic.user, secret: basic.password }
    : { id: field("client_id"), secret: posted }
  const clientOk = client.id === credentials.oauth2Client.clientId && client.secret !== undefined &&
    same(client.secret, credentials.oauth2Client.clientSecret)
  return clientOk ? undefined : tokenError(401, "invalid_client", "client authentication failed")
}

const token = (credentials: SandboxCredentials, tokens: Ref.Ref<Tokens>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const form = yield* Effect.orElseSucceed(request.urlParamsBody, () => UrlParams.empty)
    const field: Field = (name) => Option.getOrUndefined(UrlParams.getFirst(form, name))
    const refused = refuseClient(request, field, credentials)
    if (refused !== undefined) return refused
    const now = yield* Clock.currentTimeMillis
    const accessToken = randomBytes(32).toString("base64url")
    const scope = field("scope")
    const issued: Issued = {
      clientId: credentials.oauth2Client.clientId,
      scope,
      expiresAt: now + tokenLifetimeSeconds * 1000
    }
    yield* Ref.update(tokens, (current) => issue(current, accessToken, issued, now))
    return HttpServerResponse.unsafeJson(
      {
        access_token: accessToken,
        token_type: "Bearer",
        expires_in: tokenLifetimeSeconds,
        ...(scope === undefined ? {} : { scope })
      },
      { headers: { "cache-control": "no-store" } }
    )
  })

const bearer = (credentials: SandboxCredentials) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const given = bearerOf(request)
    return given !== undefined && same(given, credentials.bearerToken)
      ? authenticated("bearer", "bearer token holder")
      : unauthorized("Bearer realm=\"sandbox\"", "a valid bearer token is required")
  })

const apiKey = (credentials: SandboxCredentials) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const { in: where, key, name } = credentials.apiKey
    const given = where === "header"
      ? request.headers[name.toLowerCase()]
      : new URL(request.url, "http://sandbox").searchParams.get(name) ?? undefined
    return given !== undefined && same(given, key)
      ? authenticated("api-key", "API key holder")
      : unauthorized("ApiKey", `a valid API key is required in the ${where} ${name}`)
  })

const basic = (credentials: SandboxCredentials) =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const given = basicOf(request, false)
    const ok = given !== undefined && given.user === credentials.basic.username &&
      same(given.password, credentials.basic.password)
    return ok && given !== undefined
      ? authenticated("basic", given.user)
      : unauthorized("Basic realm=\"sandbox\", charset=\"UTF-8\"", "a valid user name and password are required")
  })

const oauth2 = (credentials: SandboxCredentials, tokens: Ref.Ref<Tokens>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const given = bearerOf(request)
    const now = yield* Clock.currentTimeMillis
    const found = lookup(yield* Ref.get(tokens), given, now)
    if (found._tag === "Live") {
      return authenticated("oauth2", found.issued.clientId, {
        verified: true,
        ...(found.issued.scope ? { scope: found.issued.scope } : {})
      })
    }
    if (given !== undefined && found._tag === "Unknown" && credentials.acceptExternalTokens) {
      return authenticated("oauth2", "holder of an external token", { verified: false })
    }
    return unauthorized("Bearer realm=\"sandbox\", error=\"invalid_token\"", "a valid access token is required")
  })

/**
 * The routes, over a fresh token table.
 *
 * @internal
 */
export const makeAuthRoutes = (credentials: SandboxCredentials) =>
  Effect.map(Ref.make<Tokens>(new Map()), (tokens) =>
    HttpRouter.empty.pipe(
      HttpRouter.post("/oauth2/token", token(credentials, tokens)),
      HttpRouter.get("/protected/bearer", bearer(credentials)),
      HttpRouter.get("/protected/api-key", apiKey(credentials)),
      HttpRouter.get("/protected/basic", basic(credentials)),
      HttpRouter.get("/protected/oauth2", oauth2(credentials, tokens))
    ))
