/**
 * `GET /protected/{mode}`: the server calls a protected route of its upstream with one of
 * `@liaison/core`'s `Auth` schemes and answers what the upstream answered.
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Schema from "effect/Schema"
import * as ApiError from "../ApiError.js"

/**
 * The authentication scheme of a call.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Mode = Schema.Literal("bearer", "api-key", "basic", "oauth2").annotations({
  identifier: "AuthMode",
  description: "bearer: a static token; api-key: a key in a header or the query; basic: user name and password; " +
    "oauth2: OAuth2 client credentials"
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type Mode = typeof Mode.Type

/**
 * No credentials are configured for this mode (with a real upstream, each mode needs its own).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotConfigured
  extends ApiError.make<NotConfigured>()("NotConfigured", 501, "No credentials are configured for this mode")
{}

/**
 * What the upstream's protected route answered (the sandbox's: `{ mode, authenticated, principal }`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProtectedAnswer = Schema.Unknown.annotations({
  identifier: "ProtectedAnswer",
  description: "The upstream's JSON answer, as it is"
})

/**
 * @since 0.1.0
 * @category schemas
 */
export class ProtectedApi extends HttpApiGroup.make("protected")
  .add(
    HttpApiEndpoint.get("call", "/protected/:mode")
      .setPath(Schema.Struct({ mode: Mode }))
      .addSuccess(ProtectedAnswer)
      .addError(NotConfigured)
      .annotate(OpenApi.Summary, "Call the upstream's protected route with one authentication scheme")
  )
  .addError(ApiError.UpstreamError)
  .annotate(
    OpenApi.Description,
    "Authentication as Layers: Bearer, API key, Basic and OAuth2 client credentials (tokens cached, " +
      "fetched once for concurrent calls, refreshed and the call replayed once on a 401)"
  )
{}
