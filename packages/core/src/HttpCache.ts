/**
 * Upstream GETs cached with HTTP semantics, on a {@link Cache.Cache}: `Cache-Control` decides
 * whether and where a response is kept and for how long, and an expired entry with an `ETag` is
 * revalidated with `If-None-Match` (a 304 refreshes it without a body). The HTTP part of caching
 * lives here so that `Cache` itself knows nothing of HTTP.
 *
 * @example
 * ```ts
 * import { HttpClientRequest } from "@effect/platform"
 * import { Cache, Http, HttpCache } from "@liaison/core"
 * import { Effect, Schema } from "effect"
 *
 * const Doc = Schema.Struct({ id: Schema.Number, body: Schema.String })
 *
 * const getDoc = (id: number) =>
 *   HttpCache.json(HttpClientRequest.get(`/docs/${id}`), Doc, { key: `docs:${id}`, ttl: "1 hour" }).pipe(
 *     Effect.provide(Cache.layerMemory()),
 *     Effect.provide(Http.layer({ baseUrl: "https://api.example.com" }))
 *   )
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import * as Cache from "./Cache.js"
import type * as Http from "./Http.js"
import type { HttpError } from "./HttpError.js"
import * as internal from "./internal/cacheHttp.js"

/**
 * How an upstream response may be cached, from its headers:
 *
 * - `storage`: `none` for `Cache-Control: no-store` (or `Vary: *`); `local` for `private` (never
 *   the shared Redis tier); `shared` otherwise;
 * - `ttlMillis`: the freshness lifetime, `s-maxage` (shared) or `max-age`, less the `Age` header;
 *   0 for `no-cache` (stored, but revalidated on every use); `undefined` when none is given;
 * - `etag`: the validator to revalidate with (`If-None-Match`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Policy {
  readonly storage: "shared" | "local" | "none"
  readonly ttlMillis: number | undefined
  readonly etag: string | undefined
}

/**
 * Reads an upstream response's caching headers (names in lower case, as `Http` gives them).
 *
 * @since 0.1.0
 * @category constructors
 */
export const policy: (headers: Readonly<Record<string, string>>) => Policy = internal.policy

/**
 * @since 0.1.0
 * @category models
 */
export interface JsonOptions extends Cache.EntryOptions {
  /** The cache key (a URL may carry an API key: it is never used as a key by default). */
  readonly key: string
  /** A hit this close to expiry starts one background refresh. Default: off. */
  readonly refreshAhead?: Duration.DurationInput | undefined
  /** Which failures may be answered with a stale entry. Default: every failure. */
  readonly staleIf?: ((error: HttpError) => boolean) | undefined
}

/**
 * A cached upstream GET of JSON, with HTTP semantics: `Cache-Control: no-store` is not stored,
 * `private` stays out of the shared Redis tier, `max-age` / `s-maxage` bound the time to live
 * (never beyond `ttl`), and an expired entry with an `ETag` is revalidated with `If-None-Match`:
 * a 304 refreshes it without a body (its status is then `hit`). Failures are
 * `HttpError`s, answered from a stale entry when there is one (stale-if-error).
 *
 * @since 0.1.0
 * @category combinators
 */
export const json = <A, I>(
  request: HttpClientRequest.HttpClientRequest,
  schema: Schema.Schema<A, I>,
  options: JsonOptions
): Effect.Effect<Cache.Cached<A>, HttpError, Cache.Cache | Http.Http> =>
  Effect.flatMap(
    Cache.Cache,
    (cache) =>
      cache.load(options.key, (previous) => internal.revalidate(request, schema, previous), { ...options, schema })
  )
