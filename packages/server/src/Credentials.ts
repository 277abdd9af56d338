/**
 * Credentials for every route that changes state (and for `/resilience`, which shows the
 * topology): an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`, compared in
 * constant time with each configured key, never logged. Inbound webhooks are not here: their
 * signature is their credential. Their JSON bodies come only as `application/json` ({@link JsonOnly}):
 * a form a web page could post across origins is a 415, never decoded.
 *
 * | variable | default | |
 * |---|---|---|
 * | `API_KEYS` | the published demo key `liaison-demo-api-key` | redacted; comma-separated keys the clients may use. The demo key works on loopback only: `Safety` refuses it on any other address |
 *
 * @since 0.1.0
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { timingSafeEqual } from "node:crypto"
import * as ApiError from "./ApiError.js"
import { demoApiKey } from "./sandbox/secrets.js"

/**
 * No valid API key (401).
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends ApiError.make<Unauthorized>()(
  "Unauthorized",
  401,
  "A valid API key is needed: Authorization: Bearer <key> or X-API-Key: <key>"
) {}

/**
 * The middleware of the routes that need a key.
 *
 * @since 0.1.0
 * @category models
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@liaison/server/Authorization", {
  failure: Unauthorized,
  security: {
    bearer: HttpApiSecurity.bearer,
    apiKey: HttpApiSecurity.apiKey({ key: "X-API-Key", in: "header" })
  }
}) {}

/**
 * `API_KEYS`: the keys clients may use (comma-separated, redacted); the published demo key when
 * unset.
 *
 * @since 0.1.0
 * @category config
 */
export const apiKeys: Config.Config<ReadonlyArray<Redacted.Redacted<string>>> = Config.map(
  Config.option(Config.redacted("API_KEYS")),
  Option.match({
    onNone: () => [Redacted.make(demoApiKey)],
    onSome: (keys) =>
      Redacted.value(keys).split(",").map((key) => key.trim()).filter((key) => key !== "").map((key) =>
        Redacted.make(key)
      )
  })
)

/** Constant time in the key's length: a wrong key of the same length costs as much as the right one. */
const matches = (given: string, expected: string): boolean => {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

const unauthorized = new Unauthorized({
  error: "unauthorized",
  message: "A valid API key is needed: Authorization: Bearer <key> or X-API-Key: <key>"
})

/**
 * Checks a presented key against `keys`: every key is compared (no early exit on a match).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (keys: ReadonlyArray<Redacted.Redacted<string>>): Authorization["Type"] => {
  const check = (presented: Redacted.Redacted<string>) =>
    Effect.suspend(() => {
      const given = Redacted.value(presented)
      let ok = false
      for (const key of keys) ok = matches(given, Redacted.value(key)) || ok
      return ok && given !== "" ? Effect.void : Effect.fail(unauthorized)
    })
  return { bearer: check, apiKey: check }
}

/**
 * The middleware with the keys from {@link apiKeys}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Authorization, ConfigError.ConfigError> = Layer.effect(
  Authorization,
  Effect.gen(function*() {
    const keys = yield* apiKeys
    if (keys.length === 1 && Redacted.value(keys[0]!) === demoApiKey) {
      yield* Effect.logInfo(
        `API_KEYS unset: the state-changing routes accept the published demo key ${demoApiKey} ` +
          "(as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'; loopback only)"
      )
    }
    return make(keys)
  })
)

/**
 * A body that is not `application/json` (415).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedMediaType extends ApiError.make<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  415,
  "The body must be application/json"
) {}

/**
 * A JSON body over `SERVER_JSON_BODY_LIMIT` (413), refused as its bytes arrive.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends ApiError.make<PayloadTooLarge>()(
  "PayloadTooLarge",
  413,
  "The body is larger than the server accepts"
) {}

/**
 * A JSON body nested deeper than 64 levels (400): no model here nests like that.
 *
 * @since 0.1.0
 * @category errors
 */
export class BodyTooDeep extends ApiError.make<BodyTooDeep>()(
  "BodyTooDeep",
  400,
  "The JSON body is nested too deeply"
) {}

/**
 * The middleware of the routes whose body is JSON: any other content type is refused before the
 * body is read (a form or multipart body, which a browser sends cross-origin without asking); a
 * body over the limit is refused as it streams in, never buffered whole; one nested deeper than
 * 64 levels never reaches the decoder.
 *
 * @since 0.1.0
 * @category models
 */
export class JsonOnly extends HttpApiMiddleware.Tag<JsonOnly>()("@liaison/server/JsonOnly", {
  failure: Schema.Union(UnsupportedMediaType, PayloadTooLarge, BodyTooDeep)
}) {}

/**
 * `application/json` only: HttpApi decodes nothing else as JSON, and would read any other
 * type's body a second time (as bytes) after this middleware has read it (a request that hangs).
 */
const isJson = (contentType: string | undefined): boolean =>
  contentType !== undefined && contentType.split(";")[0]!.trim().toLowerCase() === "application/json"

const maxDepth = 64

/** How deep arrays and objects nest, strings skipped; stops counting past `maxDepth`. */
const depthOf = (text: string): number => {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length && deepest <= maxDepth; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 || c === 123) deepest = Math.max(deepest, ++depth)
    else if (c === 93 || c === 125) depth--
  }
  return deepest
}

/**
 * `SERVER_JSON_BODY_LIMIT`: the most bytes a JSON body may have (default 1 MiB).
 *
 * @since 0.1.0
 * @category config
 */
export const jsonBodyLimit: Config.Config<number> = Config.integer("SERVER_JSON_BODY_LIMIT").pipe(
  Config.validate({ message: "Expected a positive number of bytes", validation: (n) => n >= 1 }),
  Config.withDefault(1024 * 1024)
)

const tooLarge = (limit: number) =>
  new PayloadTooLarge({ error: "payload_too_large", message: `The body is larger than ${limit} bytes` })

const checkBody = (
  request: HttpServerRequest.HttpServerRequest,
  limit: number
): Effect.Effect<void, UnsupportedMediaType | PayloadTooLarge | BodyTooDeep> => {
  const contentType = request.headers["content-type"]
  const length = request.headers["content-length"]
  const hasBody = contentType !== undefined || (length !== undefined && length !== "0") ||
    request.headers["transfer-encoding"] !== undefined
  if (!hasBody) return Effect.void
  if (!isJson(contentType)) {
    return Effect.fail(
      new UnsupportedMediaType({
        error: "unsupported_media_type",
        message: `The body must be application/json, not ${contentType ?? "(no content type)"}`.slice(0, 200)
      })
    )
  }
  if (length !== undefined && Number(length) > limit) return Effect.fail(tooLarge(limit))
  // The body is read once here, bounded as it streams in; the decoder reuses the same text.
  return request.text.pipe(
    HttpIncomingMessage.withMaxBodySize(Option.some(limit)),
    Effect.mapError(() => tooLarge(limit)),
    Effect.flatMap((text) =>
      depthOf(text) > maxDepth
        ? Effect.fail(
          new BodyTooDeep({ error: "body_too_deep", message: `The JSON body nests deeper than ${maxDepth} levels` })
        )
        : Effect.void
    )
  )
}

/**
 * {@link JsonOnly} with the limit from {@link jsonBodyLimit}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerJsonOnly: Layer.Layer<JsonOnly, ConfigError.ConfigError> = Layer.effect(
  JsonOnly,
  Effect.map(
    jsonBodyLimit,
    (limit) => Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => checkBody(request, limit))
  )
)
