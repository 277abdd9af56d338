import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { HttpError } from "@liaison/core"
import { Http } from "@liaison/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"

/** A provider's answer, its body read. */
export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * The provider's own {@link Http.Http} (closed with the scope): its base URL, the key as a
 * bearer token (a `Redacted` header: redacted in spans), and any other fixed headers.
 */
export const makeHttp = (options: {
  readonly apiBase: string
  readonly apiKey: Redacted.Redacted<string>
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly http?: Omit<Http.Options, "baseUrl" | "headers"> | undefined
}): Effect.Effect<Http.Service, never, Scope.Scope> =>
  Http.make({
    ...options.http,
    baseUrl: options.apiBase,
    headers: { ...options.headers, authorization: Redacted.make(`Bearer ${Redacted.value(options.apiKey)}`) }
  })

/** Sends with `execute` and reads the whole answer, whatever its status. */
export const answer = (
  execute: Http.Service["execute"],
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<Answer, HttpError.HttpError> =>
  Effect.scoped(
    Effect.flatMap(
      execute(request),
      (response) => Effect.map(response.text, (body) => ({ status: response.status, headers: response.headers, body }))
    )
  )

/** The options of a `layerConfig`: the key and base URL as `Config`s, the rest as they are. */
export type ConfigOptions<O> = Omit<O, "apiKey" | "apiBase"> & {
  readonly apiKey?: Config.Config<Redacted.Redacted<string>> | undefined
  readonly apiBase?: Config.Config<string> | undefined
}

/** The key and base URL of a `layerConfig`: the given `Config`s, else the environment variables named. */
export const credentials = <O>(
  options: ConfigOptions<O>,
  names: { readonly apiKey: string; readonly apiBase: string; readonly defaultApiBase: string }
): Effect.Effect<{ readonly apiKey: Redacted.Redacted<string>; readonly apiBase: string }, ConfigError.ConfigError> =>
  Effect.all({
    apiKey: options.apiKey ?? Config.redacted(names.apiKey),
    apiBase: options.apiBase ?? Config.string(names.apiBase).pipe(Config.withDefault(names.defaultApiBase))
  })
