/**
 * HTTP caching semantics for `HttpCache`: what a response's headers allow (RFC 9111, the parts a
 * client cache needs) and the conditional GET that revalidates an entry.
 *
 * @internal
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Cache from "../Cache.js"
import * as Http from "../Http.js"
import type * as HttpCache from "../HttpCache.js"
import type { HttpError } from "../HttpError.js"

const directives = (header: string): Map<string, string | undefined> => {
  const found = new Map<string, string | undefined>()
  // Commas inside quoted values (`private="set-cookie, x-id"`) do not split.
  for (const part of header.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
    const [rawName = "", ...rest] = part.split("=")
    const name = rawName.trim().toLowerCase()
    if (name === "" || found.has(name)) continue
    const value = rest.length === 0 ? undefined : rest.join("=").trim().replace(/^"(.*)"$/, "$1")
    found.set(name, value)
  }
  return found
}

/** Seconds as a delta: digits only; anything else (a malformed max-age) counts as 0, i.e. stale. */
const deltaSeconds = (value: string | undefined): number =>
  value !== undefined && /^\d+$/.test(value) ? Number(value) : 0

/** @internal */
export const policy = (headers: Readonly<Record<string, string>>): HttpCache.Policy => {
  const control = directives(headers["cache-control"] ?? "")
  const etag = headers["etag"]
  const storage = control.has("no-store") || (headers["vary"] ?? "").trim() === "*"
    ? "none"
    : control.has("private")
    ? "local"
    : "shared"
  const age = deltaSeconds(headers["age"])
  const lifetime = control.has("no-cache")
    ? 0
    : storage === "shared" && control.has("s-maxage")
    ? deltaSeconds(control.get("s-maxage"))
    : control.has("max-age")
    ? deltaSeconds(control.get("max-age"))
    : undefined
  return {
    storage,
    ttlMillis: lifetime === undefined ? undefined : Math.max(0, lifetime - age) * 1000,
    etag: etag === undefined || etag === "" ? undefined : etag
  }
}

/**
 * One load of a cached GET: with the held entry's `ETag` as `If-None-Match`, a 304 keeps the held
 * value (revalidated); any other answer is read as a fresh one.
 *
 * @internal
 */
export const revalidate = <A, I>(
  request: HttpClientRequest.HttpClientRequest,
  schema: Schema.Schema<A, I>,
  previous: Option.Option<Cache.Entry<A>>
): Effect.Effect<Cache.Loaded<A>, HttpError, Http.Http> =>
  Effect.flatMap(Http.Http, (http) => {
    const etag = Option.getOrUndefined(Option.flatMapNullable(previous, (entry) => entry.etag))
    const sent = etag === undefined ? request : HttpClientRequest.setHeader(request, "if-none-match", etag)
    return http.execute(sent).pipe(
      Effect.flatMap((response): Effect.Effect<Cache.Loaded<A>, HttpError> => {
        const found = policy(response.headers)
        const keep = { ttlMillis: found.ttlMillis, storage: found.storage }
        if (response.status === 304 && Option.isSome(previous) && etag !== undefined) {
          return Effect.succeed({ ...keep, value: previous.value.value, etag: found.etag ?? etag, revalidated: true })
        }
        return Http.ensureOk(response, http.options).pipe(
          Effect.flatMap(Http.decodeJson(schema)),
          Effect.map((value) => ({ ...keep, value, etag: found.etag }))
        )
      }),
      Effect.scoped,
      Http.withTotalTimeout(request, http.options.timeouts.total)
    )
  })
