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

/**
 * What the sandbox's protected routes accept.
 *
 * @internal
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

/**
 * The sandbox's demo credentials: public, for the offline demo only.
 *
 * @internal
 */
export const demoCredentials: SandboxCredentials = {
  bearerToken: Redacted.make("sandbox-bearer-token"),
  apiKey: { key: Redacted.make("sandbox-api-key"), in: "header", name: "X-API-Key" },
  basic: { username: "sandbox", password: Redacted.make("sandbox-password") },
  oauth2Client: { clientId: "liaison-demo", clientSecret: Redacted.make("sandbox-client-secret") },
  acceptExternalTokens: false
}

/** How long a token of the built-in endpoint lives. */
const tokenLifetimeSeconds = 3600
/** The most live tokens kept; the oldest go first. */
const maxTokens = 10_000

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

interface Issued {
  readonly clientId: string
  readonly scope: string | undefined
  readonly expiresAt: number
}

/**
 * The sandbox's protected routes and its token endpoint:
 *
 * - `POST /oauth2/token`: OAuth2 client credentials (RFC 6749 §4.4), `client_secret_basic` or
 *   `client_secret_post`; RFC 6749 §5.2 errors.
 * - `GET /protected/bearer`, `/protected/api-key`, `/protected/basic`, `/protected/oauth2`: 200
 *   `{ mode, authenticated, principal }` with the right credentials, else 401.
 *
 * @internal
 */
export const makeAuthRoutes = (credentials: SandboxCredentials) =>
  Effect.map(Ref.make(new Map<string, Issued>()), (issued) => {
    const token = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const form = yield* Effect.orElseSucceed(request.urlParamsBody, () => UrlParams.empty)
      const field = (name: string) => Option.getOrUndefined(UrlParams.getFirst(form, name))
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
      if (!clientOk) return tokenError(401, "invalid_client", "client authentication failed")
      const now = yield* Clock.currentTimeMillis
      const accessToken = randomBytes(32).toString("base64url")
      const scope = field("scope")
      yield* Ref.update(issued, (tokens) => {
        const live = new Map([...tokens].filter(([, token]) => token.expiresAt > now).slice(-(maxTokens - 1)))
        return live.set(accessToken, {
          clientId: credentials.oauth2Client.clientId,
          scope,
          expiresAt: now + tokenLifetimeSeconds * 1000
        })
      })
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

    const bearer = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
      const given = bearerOf(request)
      return given !== undefined && same(given, credentials.bearerToken)
        ? authenticated("bearer", "bearer token holder")
        : unauthorized("Bearer realm=\"sandbox\"", "a valid bearer token is required")
    })

    const apiKey = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
      const { in: where, key, name } = credentials.apiKey
      const given = where === "header"
        ? request.headers[name.toLowerCase()]
        : new URL(request.url, "http://sandbox").searchParams.get(name) ?? undefined
      return given !== undefined && same(given, key)
        ? authenticated("api-key", "API key holder")
        : unauthorized("ApiKey", `a valid API key is required in the ${where} ${name}`)
    })

    const basic = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
      const given = basicOf(request, false)
      const ok = given !== undefined && given.user === credentials.basic.username &&
        same(given.password, credentials.basic.password)
      return ok && given !== undefined
        ? authenticated("basic", given.user)
        : unauthorized("Basic realm=\"sandbox\", charset=\"UTF-8\"", "a valid user name and password are required")
    })

    const oauth2 = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const given = bearerOf(request)
      const now = yield* Clock.currentTimeMillis
      const found = given === undefined ? undefined : (yield* Ref.get(issued)).get(given)
      if (found !== undefined && found.expiresAt > now) {
        return authenticated("oauth2", found.clientId, {
          verified: true,
          ...(found.scope ? { scope: found.scope } : {})
        })
      }
      if (given !== undefined && found === undefined && credentials.acceptExternalTokens) {
        return authenticated("oauth2", "holder of an external token", { verified: false })
      }
      return unauthorized("Bearer realm=\"sandbox\", error=\"invalid_token\"", "a valid access token is required")
    })

    return HttpRouter.empty.pipe(
      HttpRouter.post("/oauth2/token", token),
      HttpRouter.get("/protected/bearer", bearer),
      HttpRouter.get("/protected/api-key", apiKey),
      HttpRouter.get("/protected/basic", basic),
      HttpRouter.get("/protected/oauth2", oauth2)
    )
  })
