/**
 * The implementation of `GET /protected/{mode}`: one upstream client per authentication mode,
 * each an `Http` client authenticated by `@liaison/core`'s `Auth` (the resilience policy, when
 * the server has one, wraps the authenticated client: a retried call carries a fresh token).
 *
 * Credentials come from the environment ({@link config}):
 *
 * | variable | default | |
 * |---|---|---|
 * | `AUTH_BEARER_TOKEN` | sandbox demo token | `bearer` mode's token |
 * | `AUTH_API_KEY` | sandbox demo key | `api-key` mode's key |
 * | `AUTH_API_KEY_IN` | `header` | `header` or `query` |
 * | `AUTH_API_KEY_NAME` | `X-API-Key` / `api_key` | the header or query parameter |
 * | `AUTH_BASIC_USERNAME`, `AUTH_BASIC_PASSWORD` | sandbox demo user | `basic` mode's credentials |
 * | `OAUTH2_TOKEN_URL`, `OAUTH2_CLIENT_ID`, `OAUTH2_CLIENT_SECRET` | the sandbox's token endpoint | a real identity provider, all three together (only some of them: refused at start-up) |
 * | `OAUTH2_SCOPE`, `OAUTH2_AUDIENCE`, `OAUTH2_CLIENT_AUTH`, `OAUTH2_EXPIRY_SKEW`, `OAUTH2_DEFAULT_EXPIRES_IN` | none, none, `client_secret_basic`, `60 seconds`, `3600 seconds` | |
 *
 * With the built-in sandbox (no `UPSTREAM_URL`), every mode works offline: unset credentials are
 * the sandbox's demo ones, which the sandbox is started with. With `UPSTREAM_URL`, a mode whose
 * credentials are not set answers 501.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Auth, Http, HttpError } from "@liaison/core"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Api } from "../Api.js"
import * as ApiError from "../ApiError.js"
import type { SandboxCredentials } from "../sandbox/Auth.js"
import type { HttpFactory } from "../Server.js"
import { Mode, NotConfigured } from "./Api.js"

/**
 * The credentials of each mode; a mode left out has none (the sandbox's demo ones in sandbox mode).
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly bearer?: Auth.BearerOptions | undefined
  readonly apiKey?: Auth.ApiKeyOptions | undefined
  readonly basic?: Auth.BasicOptions | undefined
  /** A real token endpoint; without it (in sandbox mode) the sandbox's built-in one. */
  readonly oauth2?: Auth.OAuth2Options | undefined
}

/**
 * A scheme's settings: none when none of its `required` variables is set; refused when only some
 * are (a half-configured scheme silently left out would hide the typo that caused it).
 */
const scheme = <A>(config: Config.Config<A>, required: ReadonlyArray<string>): Config.Config<A | undefined> =>
  Config.all({
    value: Config.option(config),
    set: Config.all(required.map((name) => Config.option(Config.string(name))))
  }).pipe(Config.mapOrFail(({ set, value }) => {
    if (Option.isSome(value)) return Either.right(value.value)
    const missing = required.filter((_, i) => Option.isNone(set[i]!))
    return missing.length === required.length
      ? Either.right(undefined)
      : Either.left(ConfigError.InvalidData(
        [],
        `${missing.join(" and ")} must be set together with ${
          required.filter((name) => !missing.includes(name)).join(" and ")
        }`
      ))
  }))

/**
 * The settings from the environment: `AUTH_*` and `OAUTH2_*` (see the module's table); a scheme
 * with none of its required variables is left out, one with only some of them is refused.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Settings> = Config.all({
  bearer: scheme(Auth.bearerConfig, ["AUTH_BEARER_TOKEN"]),
  apiKey: scheme(Auth.apiKeyConfig, ["AUTH_API_KEY"]),
  basic: scheme(Auth.basicConfig, ["AUTH_BASIC_USERNAME", "AUTH_BASIC_PASSWORD"]),
  oauth2: scheme(Auth.oauth2Config, ["OAUTH2_TOKEN_URL", "OAUTH2_CLIENT_ID", "OAUTH2_CLIENT_SECRET"])
})

/** Each mode's `Auth` options; `undefined` when the mode has no credentials. */
const authOptions = (settings: Settings, sandbox: Sandbox | undefined): Record<Mode, Auth.Options | undefined> => {
  if (sandbox === undefined) {
    return {
      bearer: settings.bearer && { scheme: "bearer", ...settings.bearer },
      "api-key": settings.apiKey && { scheme: "api-key", ...settings.apiKey },
      basic: settings.basic && { scheme: "basic", ...settings.basic },
      oauth2: settings.oauth2 && { scheme: "oauth2", ...settings.oauth2 }
    }
  }
  const { credentials } = sandbox
  return {
    bearer: { scheme: "bearer", token: credentials.bearerToken },
    "api-key": { scheme: "api-key", ...credentials.apiKey },
    basic: { scheme: "basic", ...credentials.basic },
    oauth2: settings.oauth2 !== undefined
      ? { scheme: "oauth2", ...settings.oauth2 }
      : {
        scheme: "oauth2",
        tokenUrl: `${sandbox.baseUrl}/oauth2/token`,
        clientId: credentials.oauth2Client.clientId,
        clientSecret: credentials.oauth2Client.clientSecret
      }
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** `GET /protected/{mode}` on the upstream with that mode's credentials; its JSON answer. */
  readonly call: (mode: Mode) => Effect.Effect<unknown, HttpError.HttpError | NotConfigured>
}

/**
 * @since 0.1.0
 * @category models
 */
export class Protected extends Context.Tag("@liaison/server/Protected")<Protected, Service>() {}

/**
 * The built-in sandbox upstream and the credentials it was started with.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sandbox {
  readonly baseUrl: string
  readonly credentials: SandboxCredentials
}

/**
 * One authenticated client per mode that has credentials. `sandbox`: the upstream is the built-in
 * sandbox (every mode has credentials, OAuth2 its token endpoint unless a real one is configured).
 * OAuth2 tokens are shared through the `Auth.TokenStore` in context (Redis when the server has it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R>(options: {
  readonly baseUrl: string
  readonly sandbox?: Sandbox | undefined
  readonly settings: Settings
  readonly http: HttpFactory<E, R>
}): Layer.Layer<Protected, E | Auth.InvalidCredentials, R> =>
  Layer.scoped(
    Protected,
    Effect.gen(function*() {
      const modes = authOptions(options.settings, options.sandbox)
      const clients = new Map<Mode, Http.Service>()
      for (const mode of Mode.literals) {
        const auth = modes[mode]
        if (auth === undefined) continue
        const { authenticate } = yield* Auth.make(auth)
        const context = yield* Layer.build(options.http(options.baseUrl, authenticate))
        clients.set(mode, Context.get(context, Http.Http))
      }
      yield* Effect.logInfo(`GET /protected/{mode}: ${[...clients.keys()].join(", ") || "no credentials configured"}`)
      return Protected.of({
        call: (mode) => {
          const http = clients.get(mode)
          return http === undefined
            ? Effect.fail(
              new NotConfigured({
                error: "not_configured",
                message: `no credentials for ${mode}: see AUTH_* and OAUTH2_* in the README`
              })
            )
            : Http.json(HttpClientRequest.get(`/protected/${mode}`), Schema.Unknown).pipe(
              Effect.provideService(Http.Http, http)
            )
        }
      })
    })
  )

/**
 * `GET /protected/{mode}`.
 *
 * @since 0.1.0
 * @category layers
 */
export const ProtectedLive: Layer.Layer<HttpApiGroup.ApiGroup<"liaison", "protected">, never, Protected> =
  HttpApiBuilder.group(
    Api,
    "protected",
    (handlers) =>
      Effect.map(Protected, (service) =>
        handlers.handle("call", ({ path }) =>
          service.call(path.mode).pipe(
            Effect.catchIf(HttpError.isHttpError, (error) => ApiError.mapUpstream(Effect.fail(error)))
          )))
  )
