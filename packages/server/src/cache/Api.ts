/**
 * The cache endpoints: `POST /cache/invalidate` (by key, pattern or tag; guarded by the
 * `ADMIN_API_KEY` in an `X-API-Key` header, disabled when no key is configured) and
 * `GET /cache/stats`.
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import { Cache } from "@liaison/core"
import * as Schema from "effect/Schema"
import * as ApiError from "../ApiError.js"
import { JsonOnly } from "../Credentials.js"

/**
 * No `ADMIN_API_KEY` is configured, so the admin endpoints are disabled (403).
 *
 * @since 0.1.0
 * @category errors
 */
export class AdminDisabled
  extends ApiError.make<AdminDisabled>()("AdminDisabled", 403, "The admin endpoints are disabled: no ADMIN_API_KEY")
{}

/**
 * The `X-API-Key` header is missing or wrong (401).
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends ApiError.make<Unauthorized>()("Unauthorized", 401, "A valid X-API-Key is required") {}

/**
 * The invalidation could not reach Redis (503); the server's own memory copies were dropped.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheUnavailable
  extends ApiError.make<CacheUnavailable>()("CacheUnavailable", 503, "The shared cache could not be reached")
{}

const Text = (what: string) =>
  Schema.String.pipe(
    Schema.minLength(1, { message: () => `${what} must not be empty` }),
    Schema.maxLength(1024, { message: () => `${what} must be at most 1024 characters` })
  )

const none = Schema.optionalWith(Schema.Never, { exact: true })

/**
 * `{ key }`, `{ pattern }` (a Redis glob: `users:list:*`) or `{ tag }`: exactly one of them.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InvalidateRequest = Schema.Union(
  Schema.Struct({ key: Text("key"), pattern: none, tag: none }),
  Schema.Struct({ pattern: Text("pattern"), key: none, tag: none }),
  Schema.Struct({ tag: Text("tag"), key: none, pattern: none })
).annotations({ identifier: "InvalidateRequest" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Invalidated = Schema.Struct({
  /** Entries removed: in Redis when it is a tier, else in this server's memory. */
  removed: Schema.Int
}).annotations({ identifier: "Invalidated" })

/**
 * @since 0.1.0
 * @category schemas
 */
export class CacheApi extends HttpApiGroup.make("cache")
  .add(
    HttpApiEndpoint.post("invalidate", "/cache/invalidate")
      .setHeaders(Schema.Struct({ "x-api-key": Schema.optional(Schema.String) }))
      .setPayload(InvalidateRequest)
      .addSuccess(Invalidated)
      .addError(AdminDisabled)
      .addError(Unauthorized)
      .addError(CacheUnavailable)
      .middleware(JsonOnly)
      .annotate(OpenApi.Summary, "Invalidate cached entries by key, pattern or tag (needs X-API-Key)")
  )
  .add(
    HttpApiEndpoint.get("stats", "/cache/stats")
      .addSuccess(Cache.Stats)
      .annotate(OpenApi.Summary, "Cache hits, misses, stale answers and errors; the state of Redis")
  )
{}
