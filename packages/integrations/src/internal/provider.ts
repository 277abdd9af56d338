import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { Http } from "@liaison/core"
import { HttpError } from "@liaison/core"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"

/**
 * A provider's request decoration, as an `Http` middleware: relative URLs get the API base (an
 * absolute one is sent as it is, so the client runs on any `Http`), and every request gets the
 * key as a bearer token plus the provider's fixed headers. `authorization` is among the header
 * names `@effect/platform` redacts in spans.
 *
 * @internal
 */
export const decorateRequests = (options: {
  readonly apiBase: string
  readonly apiKey: Redacted.Redacted<string>
  readonly headers?: Readonly<Record<string, string>> | undefined
}): Http.Middleware => {
  const headers = { ...options.headers, authorization: `Bearer ${Redacted.value(options.apiKey)}` }
  const prepend = HttpClientRequest.prependUrl(options.apiBase)
  return (execute) => (request) =>
    execute(HttpClientRequest.setHeaders(isAbsolute(request.url) ? request : prepend(request), headers))
}

const isAbsolute = (url: string): boolean => url.startsWith("https://") || url.startsWith("http://")

/** The attempt number of the call in flight on this fiber (reset by {@link countAttempts}). */
const currentAttempt = FiberRef.unsafeMake(0)

/**
 * Runs one call with its attempts counted from 1 (see {@link attemptSpans}).
 *
 * @internal
 */
export const countAttempts = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.locally(effect, currentAttempt, 0)

/**
 * An `Http` middleware (to sit under the retries) that puts each attempt in a client span named
 * `name`, with its method, its URL without the query (`HttpError.redactUrl`: a GET's parameters,
 * e.g. a `client_secret`, never reach a span) and its number within the call.
 *
 * @internal
 */
export const attemptSpans = (name: string, attribute: string): Http.Middleware => (execute) => (request) =>
  Effect.flatMap(
    FiberRef.modify(currentAttempt, (n) => [n + 1, n + 1]),
    (number) =>
      Effect.withSpan(execute(request), name, {
        kind: "client",
        attributes: {
          "http.request.method": request.method,
          "url.full": HttpError.redactUrl(request.url),
          [attribute]: number
        }
      })
  )

/**
 * A `Config` that is `undefined` when its variable is unset (then `make` fills in the default).
 *
 * @internal
 */
export const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * The environment of a provider's `layerConfig`: its key (redacted, required) and its base URL
 * (optional: unset leaves the default).
 *
 * @internal
 */
export const credentials = (names: { readonly apiKey: string; readonly apiBase: string }): Config.Config<{
  readonly apiKey: Redacted.Redacted<string>
  readonly apiBase: string | undefined
}> => Config.all({ apiKey: Config.redacted(names.apiKey), apiBase: optional(Config.string(names.apiBase)) })
