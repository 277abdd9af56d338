/**
 * Authentication for outbound calls: Bearer, API key, Basic and OAuth2 client credentials,
 * each a transform of `@effect/platform`'s `HttpClient` provided as a Layer.
 *
 * - {@link bearer}: a static token, `Authorization: Bearer <token>`.
 * - {@link apiKey}: a key in a header (default `X-API-Key`) or a query parameter (default `api_key`).
 * - {@link basic}: RFC 7617, UTF-8 credentials; a user name with `:` is refused when built.
 * - {@link oauth2}: RFC 6749 §4.4. Tokens are fetched with a form POST (`client_secret_basic` or
 *   `client_secret_post`), cached until `expires_in` minus a skew (60 s), fetched once for any
 *   number of concurrent callers, refreshed and the request replayed once on a 401, and shared
 *   by every instance through a Redis {@link TokenStore} when one is provided.
 *
 * Every secret is `Redacted`; the header that carries it is redacted in spans, and an API key
 * in the query is redacted from the URL spans record. Failures are `HttpError.AuthError`s (or
 * the token endpoint's own `TimeoutError` / `TransportError`), in the `HttpError` union of
 * every call made through `Http`.
 *
 * Authentication sits inside a retry: {@link layerHttp} applies it to the client first, so
 * `Retry.layer` (or any `transformClient`) wraps the authenticated client and each attempt
 * carries the token that is current then. {@link middleware} is the same as an `Http.Middleware`,
 * for `Http.decorate` under the other middlewares.
 *
 * @example
 * ```ts
 * import { HttpClientRequest } from "@effect/platform"
 * import { Auth, Http, Retry } from "@liaison/core"
 * import { Effect, Layer, Redacted, Schema } from "effect"
 *
 * const HttpLive = Retry.layer().pipe(
 *   Layer.provide(Auth.layerHttp({ baseUrl: "https://api.example.com" })),
 *   Layer.provide(Auth.layer({
 *     scheme: "oauth2",
 *     tokenUrl: "https://id.example.com/oauth2/token",
 *     clientId: "my-service",
 *     clientSecret: Redacted.make(process.env.CLIENT_SECRET ?? ""),
 *     scope: ["orders:read"]
 *   }))
 * )
 *
 * const orders = Http.json(HttpClientRequest.get("/orders"), Schema.Array(Schema.Unknown)).pipe(
 *   Effect.provide(HttpLive)
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual, identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { createHash } from "node:crypto"
import * as Http from "./Http.js"
import * as internal from "./internal/auth.js"
import * as store from "./internal/authTokenStore.js"
import * as Redis from "./Redis.js"

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export type Scheme = "bearer" | "api-key" | "basic" | "oauth2"

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly scheme: Scheme
  /** Adds the credentials to every request of a client (give it to `Http.Options.transformClient`). */
  readonly authenticate: (client: HttpClient.HttpClient) => HttpClient.HttpClient
  /** Adds the credentials to every call of an `Http` (give it to `Http.decorate`). */
  readonly middleware: Http.Middleware
  /**
   * The secret headers a static scheme sends (bearer, basic, an API key in a header), as `Http`
   * default headers: {@link layerHttp} gives them to `Http` so that its span records their
   * names (values redacted). Empty for OAuth2 and a key in the query.
   */
  readonly headers: Readonly<Record<string, Redacted.Redacted<string>>>
}

/**
 * The authentication of a client.
 *
 * @since 0.1.0
 * @category models
 */
export class Auth extends Context.Tag("@liaison/core/Auth")<Auth, Service>() {}

/**
 * Credentials, or their settings, that cannot work; found when the scheme is built, never at
 * call time. Names the field and what is wrong, never its value.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCredentials
  extends Schema.TaggedError<InvalidCredentials>("@liaison/core/Auth/InvalidCredentials")("InvalidCredentials", {
    /** The option at fault, e.g. `username`. */
    field: Schema.String,
    /** What is wrong with it (never its value). */
    reason: Schema.String
  })
{
  override get message(): string {
    return `invalid ${this.field}: ${this.reason}`
  }
}

/**
 * The defaults of every scheme and of the Redis token store.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  apiKeyHeader: "X-API-Key",
  apiKeyQueryParameter: "api_key",
  clientAuthentication: "client_secret_basic",
  audienceParameter: "audience",
  expirySkew: Duration.seconds(60),
  defaultExpiresIn: Duration.seconds(3600),
  /** The token endpoint's answers are capped at this many bytes. */
  tokenMaxBodyBytes: 64 * 1024,
  lockTtl: Duration.seconds(10),
  pollInterval: Duration.millis(50)
} as const

/**
 * @since 0.1.0
 * @category models
 */
export interface BearerOptions {
  readonly token: Redacted.Redacted<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ApiKeyOptions {
  readonly key: Redacted.Redacted<string>
  /** Where the key goes. Default `"header"`. */
  readonly in?: "header" | "query" | undefined
  /** The header (default `X-API-Key`) or query parameter (default `api_key`) name. */
  readonly name?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface BasicOptions {
  /** Must not contain `:` (RFC 7617) nor control characters. */
  readonly username: string
  readonly password: Redacted.Redacted<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface OAuth2Options {
  /** The token endpoint, e.g. `https://id.example.com/oauth2/token`. */
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  /** How the client authenticates to the token endpoint. Default `"client_secret_basic"`. */
  readonly clientAuthentication?: "client_secret_basic" | "client_secret_post" | undefined
  /** Scopes to ask for (sent space-separated). Default none. */
  readonly scope?: string | ReadonlyArray<string> | undefined
  /** The API the token is for, when the identity provider asks (Auth0, …). Default none. */
  readonly audience?: string | undefined
  /** The form field that carries `audience`. Default `"audience"` (RFC 8707 uses `"resource"`). */
  readonly audienceParameter?: string | undefined
  /**
   * A token is replaced this long before it expires (but is kept at least half its lifetime).
   * Default 60 seconds.
   */
  readonly expirySkew?: Duration.DurationInput | undefined
  /** The lifetime of a token whose response has no `expires_in`. Default 3600 seconds. */
  readonly defaultExpiresIn?: Duration.DurationInput | undefined
  /** Timeouts, pool and CA of the token endpoint's own client. Bodies are capped at 64 KiB by default. */
  readonly http?: Omit<Http.Options, "baseUrl" | "headers" | "transformClient"> | undefined
  /**
   * The token's name in a shared {@link TokenStore}. Default: a hash of the token URL, client
   * id, scope and audience, so that only clients asking for the same token share it.
   */
  readonly storeKey?: string | undefined
}

/**
 * One scheme and its settings, for {@link make} and {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export type Options =
  | ({ readonly scheme: "bearer" } & BearerOptions)
  | ({ readonly scheme: "api-key" } & ApiKeyOptions)
  | ({ readonly scheme: "basic" } & BasicOptions)
  | ({ readonly scheme: "oauth2" } & OAuth2Options)

// ---------------------------------------------------------------------------
// validation
// ---------------------------------------------------------------------------

type Check = readonly [ok: boolean, field: string, reason: string]

const validate = (checks: ReadonlyArray<Check>): Effect.Effect<void, InvalidCredentials> => {
  const failed = checks.find(([ok]) => !ok)
  return failed === undefined
    ? Effect.void
    : Effect.fail(new InvalidCredentials({ field: failed[1], reason: failed[2] }))
}

// eslint-disable-next-line no-control-regex
const controlCharacters = /[\x00-\x1f\x7f]/
const visibleAscii = /^[\x21-\x7e]+$/
const printableAscii = /^[\x20-\x7e]+$/
/** RFC 9110 `token`: what a header name may be. */
const headerName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

// ---------------------------------------------------------------------------
// schemes
// ---------------------------------------------------------------------------

/** A scheme that sends one secret header, on a platform client and as an `Http` middleware alike. */
const headerScheme = (scheme: Scheme, name: string, value: Redacted.Redacted<string>): Service =>
  Auth.of({
    scheme,
    authenticate: (client) => internal.withSecretHeader(client, name, value),
    middleware: internal.secretHeaderMiddleware(name, value),
    headers: { [name]: value }
  })

/**
 * `Authorization: Bearer <token>` on every request.
 *
 * @since 0.1.0
 * @category constructors
 */
export const bearer = (options: BearerOptions): Effect.Effect<Service, InvalidCredentials> =>
  Effect.as(
    validate([[visibleAscii.test(Redacted.value(options.token)), "token", "must be printable ASCII, without spaces"]]),
    headerScheme("bearer", "Authorization", Redacted.make(`Bearer ${Redacted.value(options.token)}`))
  )

/**
 * An API key on every request, in a header (default `X-API-Key`) or in the query (default
 * parameter `api_key`). In the query, the key is redacted from the URL the client's span records.
 *
 * @since 0.1.0
 * @category constructors
 */
export const apiKey = (options: ApiKeyOptions): Effect.Effect<Service, InvalidCredentials> => {
  const inQuery = options.in === "query"
  const name = options.name ?? (inQuery ? defaults.apiKeyQueryParameter : defaults.apiKeyHeader)
  const key = Redacted.value(options.key)
  return Effect.as(
    validate([
      [key !== "", "key", "must not be empty"],
      [inQuery || printableAscii.test(key), "key", "must be printable ASCII in a header"],
      [inQuery ? name !== "" : headerName.test(name), "name", inQuery ? "must not be empty" : "is not a header name"]
    ]),
    inQuery
      ? Auth.of({
        scheme: "api-key",
        authenticate: (client) => internal.withSecretQueryParam(client, name, options.key),
        middleware: internal.secretQueryMiddleware(name, options.key),
        headers: {}
      })
      : headerScheme("api-key", name, options.key)
  )
}

/**
 * `Authorization: Basic` (RFC 7617) with UTF-8 credentials. A user name containing `:` (it
 * could not be told from the password) or control characters fails with
 * {@link InvalidCredentials}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const basic = (options: BasicOptions): Effect.Effect<Service, InvalidCredentials> => {
  const password = Redacted.value(options.password)
  return Effect.as(
    validate([
      [!options.username.includes(":"), "username", "must not contain ':' (RFC 7617)"],
      [!controlCharacters.test(options.username), "username", "must not contain control characters"],
      [!controlCharacters.test(password), "password", "must not contain control characters"]
    ]),
    headerScheme("basic", "Authorization", Redacted.make(internal.basicCredentials(options.username, password)))
  )
}

// ---------------------------------------------------------------------------
// token store
// ---------------------------------------------------------------------------

/**
 * Where OAuth2 tokens are shared between instances. The default keeps nothing beyond each
 * client's own cached token; {@link layerTokenStoreRedis} shares one token between every
 * instance that uses the same client, so N instances ask the identity provider once.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenStoreService {
  /** A token another instance stored that is still fresh, or the one `fetch` gets (then stored). */
  readonly getOrFetch: <E>(key: TokenKey, fetch: Effect.Effect<Token, E>) => Effect.Effect<Token, E>
  /** Forgets the token under `key` if it is still `token` (the API rejected it). */
  readonly invalidate: (key: TokenKey, token: Token) => Effect.Effect<void>
}

/**
 * An access token and when (epoch milliseconds, by the Effect `Clock`) it is due for refresh.
 *
 * @since 0.1.0
 * @category models
 */
export interface Token {
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshAt: number
}

/**
 * A token's name in a store, and the secret a store may encrypt it with.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenKey {
  readonly id: string
  readonly secret: Redacted.Redacted<string>
}

/**
 * Each client keeps its own token; nothing is shared.
 *
 * @since 0.1.0
 * @category constants
 */
export const tokenStoreMemory: TokenStoreService = {
  getOrFetch: (_key, fetch) => fetch,
  invalidate: () => Effect.void
}

/**
 * The token store OAuth2 clients use; {@link tokenStoreMemory} unless one is provided.
 *
 * @since 0.1.0
 * @category models
 */
export class TokenStore extends Context.Reference<TokenStore>()("@liaison/core/Auth/TokenStore", {
  defaultValue: (): TokenStoreService => tokenStoreMemory
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenStoreRedisOptions {
  /** How long one instance may take to fetch a token while the others wait. Default 10 seconds. */
  readonly lockTtl?: Duration.DurationInput | undefined
  /** How often the others look for the token meanwhile. Default 50 ms. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** The first part of every key: `<prefix>:{auth:<hash>}:token`. Default `liaison`. */
  readonly prefix?: string | undefined
}

/**
 * The token store on the shared Redis. One token per client (same token URL, client id, scope
 * and audience), stored under `liaison:{auth:<hash>}:token` encrypted (AES-256-GCM, key derived
 * from the client secret), expiring when it is due for refresh; a short lock
 * (`liaison:{auth:<hash>}:lock`) makes one instance ask while the others wait for its token.
 * Fails open: when Redis fails, each instance fetches its own token.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTokenStoreRedis = (
  options: TokenStoreRedisOptions = {}
): Effect.Effect<TokenStoreService, never, Redis.Redis> =>
  Effect.map(Redis.Redis, (redis) =>
    store.makeRedisTokenStore(redis, {
      lockTtl: Duration.decode(options.lockTtl ?? defaults.lockTtl),
      pollInterval: Duration.decode(options.pollInterval ?? defaults.pollInterval),
      prefix: options.prefix ?? "liaison"
    }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerTokenStoreMemory: Layer.Layer<TokenStore> = Layer.succeed(TokenStore, tokenStoreMemory)

/**
 * The token store on the shared {@link Redis.Redis} connection ({@link makeTokenStoreRedis}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTokenStoreRedis = (
  options: TokenStoreRedisOptions = {}
): Layer.Layer<TokenStore, never, Redis.Redis> => Layer.effect(TokenStore, makeTokenStoreRedis(options))

// ---------------------------------------------------------------------------
// OAuth2
// ---------------------------------------------------------------------------

const validateOAuth2 = (options: OAuth2Options): Effect.Effect<void, InvalidCredentials> => {
  const url = URL.canParse(options.tokenUrl) ? new URL(options.tokenUrl) : undefined
  const scopes = typeof options.scope === "string" ? [options.scope] : options.scope ?? []
  return validate([
    [
      url !== undefined && (url.protocol === "https:" || url.protocol === "http:") && url.hash === "",
      "tokenUrl",
      "must be an http(s) URL without a fragment"
    ],
    [options.clientId !== "" && !controlCharacters.test(options.clientId), "clientId", "must be a non-empty string"],
    [Redacted.value(options.clientSecret) !== "", "clientSecret", "must not be empty"],
    [scopes.every((scope) => visibleAscii.test(scope)), "scope", "each scope must be printable ASCII, without spaces"],
    [options.audience === undefined || options.audience !== "", "audience", "must not be empty when set"]
  ])
}

const storeKeyOf = (options: OAuth2Options, scope: string | undefined): string =>
  options.storeKey ??
    createHash("sha256")
      .update(JSON.stringify([options.tokenUrl, options.clientId, scope ?? null, options.audience ?? null]))
      .digest("hex")
      .slice(0, 32)

/**
 * OAuth2 client credentials (RFC 6749 §4.4): `Authorization: Bearer <access token>` on every
 * request, the token fetched from `tokenUrl` on the token endpoint's own client (scoped: it is
 * closed with the scope) and kept until `expires_in` minus `expirySkew`.
 *
 * - Single flight: any number of concurrent requests without a fresh token cause one token request.
 * - A 401 from the API invalidates the token, fetches a fresh one and replays the request once
 *   (requests whose body is a stream cannot be replayed: their 401 is answered as it is); a
 *   second 401 fails with `AuthError` (`rejected`).
 * - The token endpoint's RFC 6749 §5.2 errors are `AuthError` (`token_endpoint`, with `error`
 *   and `error_description`); a 2xx answer that is not a Bearer token is `AuthError`
 *   (`token_response`); an unreachable or slow endpoint is its `TransportError` / `TimeoutError`.
 * - Tokens are shared through the {@link TokenStore} in context (default: not shared).
 *
 * @since 0.1.0
 * @category constructors
 */
export const oauth2 = (options: OAuth2Options): Effect.Effect<Service, InvalidCredentials, Scope.Scope> =>
  Effect.gen(function*() {
    yield* validateOAuth2(options)
    const scope = typeof options.scope === "string"
      ? options.scope
      : options.scope === undefined || options.scope.length === 0
      ? undefined
      : options.scope.join(" ")
    const settings: internal.TokenRequestSettings = {
      tokenUrl: options.tokenUrl,
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      clientAuthentication: options.clientAuthentication ?? defaults.clientAuthentication,
      scope,
      audience: options.audience,
      audienceParameter: options.audienceParameter ?? defaults.audienceParameter,
      expirySkew: Duration.decode(options.expirySkew ?? defaults.expirySkew),
      defaultExpiresIn: Duration.decode(options.defaultExpiresIn ?? defaults.defaultExpiresIn)
    }
    const tokenHttp = yield* Http.make({ maxBodyBytes: defaults.tokenMaxBodyBytes, ...options.http })
    const tokenStore = yield* TokenStore
    const key: TokenKey = { id: storeKeyOf(options, scope), secret: options.clientSecret }
    const cell = yield* internal.makeTokenCell(tokenStore.getOrFetch(key, internal.fetchToken(tokenHttp, settings)))
    const source: internal.TokenCell = {
      get: cell.get,
      invalidate: (token) => Effect.zipRight(cell.invalidate(token), tokenStore.invalidate(key, token))
    }
    return Auth.of({
      scheme: "oauth2",
      authenticate: (client) => internal.withBearerFrom(client, source),
      middleware: internal.bearerMiddleware(source),
      headers: {}
    })
  })

// ---------------------------------------------------------------------------
// constructors and layers
// ---------------------------------------------------------------------------

/**
 * Builds the scheme the options name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, InvalidCredentials, Scope.Scope> => {
  switch (options.scheme) {
    case "bearer":
      return bearer(options)
    case "api-key":
      return apiKey(options)
    case "basic":
      return basic(options)
    case "oauth2":
      return oauth2(options)
  }
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Auth, InvalidCredentials> => Layer.scoped(Auth, make(options))

/**
 * Adds the credentials to every request of a client; data-first or data-last.
 *
 * @since 0.1.0
 * @category combinators
 */
export const authenticate: {
  (auth: Service): (client: HttpClient.HttpClient) => HttpClient.HttpClient
  (client: HttpClient.HttpClient, auth: Service): HttpClient.HttpClient
} = dual(2, (client: HttpClient.HttpClient, auth: Service) => auth.authenticate(client))

/**
 * The {@link Auth} in context as an `Http` middleware: `Http.decorate(Auth.middleware)` adds the
 * credentials to every call of the `Http` in context. Provide it before (under) `Retry` or
 * `Policy`, so each attempt carries the token that is current then.
 *
 * @since 0.1.0
 * @category accessors
 */
export const middleware: Effect.Effect<Http.Middleware, never, Auth> = Effect.map(Auth, (auth) => auth.middleware)

/**
 * The `Http` client authenticated by the {@link Auth} in context. Authentication is applied to
 * the client first and `options.transformClient` wraps the authenticated client, so a retry
 * there (as `Retry.layer` around this layer) replays a request with the token current then. A
 * static scheme's headers are also the client's secret default headers, so `Http`'s span
 * names them (values redacted).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (options: Http.Options = {}): Layer.Layer<Http.Http, never, Auth> =>
  Layer.unwrapEffect(
    Effect.map(Auth, (auth) => {
      const outer = options.transformClient ?? identity
      return Http.layer({
        ...options,
        headers: { ...options.headers, ...auth.headers },
        transformClient: (client) => outer(auth.authenticate(client))
      })
    })
  )

// ---------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------

/**
 * `AUTH_BEARER_TOKEN`.
 *
 * @since 0.1.0
 * @category config
 */
export const bearerConfig: Config.Config<BearerOptions> = Config.all({ token: Config.redacted("AUTH_BEARER_TOKEN") })

/**
 * `AUTH_API_KEY`, `AUTH_API_KEY_IN` (`header` or `query`, default `header`), `AUTH_API_KEY_NAME`
 * (default `X-API-Key` in a header, `api_key` in the query).
 *
 * @since 0.1.0
 * @category config
 */
export const apiKeyConfig: Config.Config<ApiKeyOptions> = Config.all({
  key: Config.redacted("AUTH_API_KEY"),
  in: Config.literal("header", "query")("AUTH_API_KEY_IN").pipe(Config.withDefault("header" as const)),
  name: Config.option(Config.string("AUTH_API_KEY_NAME"))
}).pipe(Config.map(({ in: where, key, name }) => ({ key, in: where, name: Option.getOrUndefined(name) })))

/**
 * `AUTH_BASIC_USERNAME`, `AUTH_BASIC_PASSWORD`.
 *
 * @since 0.1.0
 * @category config
 */
export const basicConfig: Config.Config<BasicOptions> = Config.all({
  username: Config.string("AUTH_BASIC_USERNAME"),
  password: Config.redacted("AUTH_BASIC_PASSWORD")
})

/**
 * `OAUTH2_TOKEN_URL`, `OAUTH2_CLIENT_ID`, `OAUTH2_CLIENT_SECRET`; optional `OAUTH2_SCOPE`
 * (space-separated), `OAUTH2_AUDIENCE`, `OAUTH2_CLIENT_AUTH` (`client_secret_basic` or
 * `client_secret_post`), `OAUTH2_EXPIRY_SKEW` and `OAUTH2_DEFAULT_EXPIRES_IN` (durations).
 *
 * @since 0.1.0
 * @category config
 */
export const oauth2Config: Config.Config<OAuth2Options> = Config.all({
  tokenUrl: Config.string("OAUTH2_TOKEN_URL"),
  clientId: Config.string("OAUTH2_CLIENT_ID"),
  clientSecret: Config.redacted("OAUTH2_CLIENT_SECRET"),
  scope: Config.option(Config.string("OAUTH2_SCOPE")),
  audience: Config.option(Config.string("OAUTH2_AUDIENCE")),
  clientAuthentication: Config.option(
    Config.literal("client_secret_basic", "client_secret_post")("OAUTH2_CLIENT_AUTH")
  ),
  expirySkew: Config.option(Config.duration("OAUTH2_EXPIRY_SKEW")),
  defaultExpiresIn: Config.option(Config.duration("OAUTH2_DEFAULT_EXPIRES_IN"))
}).pipe(
  Config.map((config): OAuth2Options => ({
    tokenUrl: config.tokenUrl,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    // Unset variables are left out: `oauth2` fills in the defaults.
    scope: Option.getOrUndefined(Option.map(config.scope, (scope) => scope.split(/\s+/).filter((s) => s !== ""))),
    audience: Option.getOrUndefined(config.audience),
    clientAuthentication: Option.getOrUndefined(config.clientAuthentication),
    expirySkew: Option.getOrUndefined(config.expirySkew),
    defaultExpiresIn: Option.getOrUndefined(config.defaultExpiresIn)
  }))
)

/**
 * `AUTH_SCHEME`: `bearer`, `api-key`, `basic` or `oauth2`.
 *
 * @since 0.1.0
 * @category config
 */
export const schemeConfig: Config.Config<Scheme> = Config.literal("bearer", "api-key", "basic", "oauth2")("AUTH_SCHEME")

/**
 * The settings of one scheme from its variables ({@link bearerConfig}, {@link apiKeyConfig},
 * {@link basicConfig}, {@link oauth2Config}).
 *
 * @since 0.1.0
 * @category config
 */
export const configFor = (scheme: Scheme): Config.Config<Options> => {
  switch (scheme) {
    case "bearer":
      return Config.map(bearerConfig, (options) => ({ scheme, ...options }))
    case "api-key":
      return Config.map(apiKeyConfig, (options) => ({ scheme, ...options }))
    case "basic":
      return Config.map(basicConfig, (options) => ({ scheme, ...options }))
    case "oauth2":
      return Config.map(oauth2Config, (options) => ({ scheme, ...options }))
  }
}

/**
 * The scheme named by `AUTH_SCHEME`, with that scheme's variables only ({@link configFor}): the
 * second read depends on the first, so this is an effect reading the configuration rather than
 * one `Config`. Give {@link layerConfig} your own `Config` (e.g.
 * `Config.map(Config.redacted("MY_TOKEN"), (token) => ({ scheme: "bearer", token }))`) to read
 * other names.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Effect.Effect<Options, ConfigError.ConfigError> = Effect.flatMap(schemeConfig, configFor)

/**
 * The scheme configured by `options`: a `Config` (any effect that reads one fits), {@link config}
 * by default.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Effect.Effect<Options, ConfigError.ConfigError> = config
): Layer.Layer<Auth, ConfigError.ConfigError | InvalidCredentials> => Layer.unwrapEffect(Effect.map(options, layer))
