/**
 * The public API of the demo server as an `HttpApi`: the endpoints, their inputs, answers and
 * errors. The implementation is in `ApiLive`; the OpenAPI document (`/openapi.json`, Swagger UI
 * at `/docs`) is derived from this definition.
 *
 * Input that does not decode is a 400 `HttpApiDecodeError` whose `issues` name the offending
 * field (`path`) and whose `message` says what is wrong with it; upstream failures are the
 * {@link ApiError.UpstreamError} answers.
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Arr from "effect/Array"
import { identity } from "effect/Function"
import * as Schema from "effect/Schema"
import * as ApiError from "./ApiError.js"
import { CacheApi } from "./CacheApi.js"
import { EmailsApi } from "./EmailsApi.js"
import { RedisStatus } from "./Health.js"
import { PaymentsApi } from "./PaymentsApi.js"
import { ProtectedApi } from "./ProtectedApi.js"
import { ResilienceApi } from "./ResilienceApi.js"
import { NewUser, User, UserFilter, UserId, UserIdFromString, UserPage, UserPatch, UserReplace } from "./Users.js"
import { WebhooksApi, WebhookSubscriptionsApi } from "./WebhooksApi.js"

/**
 * The most ids one `GET /users/batch` may ask for.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxBatchSize = 100

/**
 * @since 0.1.0
 * @category schemas
 */
export const HealthStatus = Schema.Struct({
  status: Schema.Literal("ok"),
  redis: RedisStatus
}).annotations({ identifier: "HealthStatus" })

/**
 * `ids=1,2,3`: comma-separated positive integers, duplicates dropped (first occurrence kept),
 * 1 to {@link maxBatchSize} distinct ids.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserIds = Schema.transform(
  Schema.String.annotations({
    description: `comma-separated user ids, 1 to ${maxBatchSize} distinct`,
    examples: ["1,2,3"]
  }),
  Schema.Array(Schema.String),
  { strict: true, decode: (ids) => ids.split(","), encode: (ids) => ids.join(",") }
).pipe(
  Schema.compose(Schema.Array(UserIdFromString)),
  Schema.compose(
    Schema.transform(Schema.Array(Schema.Number), Schema.Array(Schema.Number), {
      strict: true,
      decode: Arr.dedupe,
      encode: identity
    })
  ),
  Schema.maxItems(maxBatchSize, { message: () => `must list at most ${maxBatchSize} distinct ids` })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const UserBatch = Schema.Struct({
  users: Schema.Array(User),
  count: Schema.Int,
  /** Ids the upstream has no user for. */
  missing: Schema.Array(UserId)
}).annotations({ identifier: "UserBatch" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Deleted = Schema.Struct({
  status: Schema.Literal("deleted"),
  id: UserId
}).annotations({ identifier: "Deleted" })

/**
 * A file name: letters, digits, `.`, `_` and `-`, not starting with a dot (no path tricks).
 *
 * @since 0.1.0
 * @category schemas
 */
export const FileName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
    message: () => "must be 1 to 128 of A-Z, a-z, 0-9, '.', '_', '-', not starting with '.'"
  })
)

const UserPath = Schema.Struct({ id: UserIdFromString })

/**
 * @since 0.1.0
 * @category groups
 */
export class HealthApi extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("health", "/health")
    .addSuccess(HealthStatus)
    .annotate(OpenApi.Summary, "Liveness, and whether Redis answers")
) {}

/**
 * @since 0.1.0
 * @category groups
 */
export class UsersApi extends HttpApiGroup.make("users")
  // Before `/users/:id`, so that "batch" is never read as an id.
  .add(
    HttpApiEndpoint.get("batch", "/users/batch")
      .setUrlParams(Schema.Struct({ ids: UserIds }))
      .addSuccess(UserBatch)
      .annotate(OpenApi.Summary, "Fetch up to 100 users by id, with bounded concurrency")
  )
  .add(
    HttpApiEndpoint.get("list", "/users")
      .setUrlParams(UserFilter)
      .addSuccess(UserPage)
      .annotate(OpenApi.Summary, "List users, filtered and paginated")
  )
  .add(
    HttpApiEndpoint.get("get", "/users/:id")
      .setPath(UserPath)
      .addSuccess(User)
      .annotate(OpenApi.Summary, "Get a user")
  )
  .add(
    HttpApiEndpoint.post("create", "/users")
      .setPayload(NewUser)
      .addSuccess(User, { status: 201 })
      .annotate(OpenApi.Summary, "Create a user")
  )
  .add(
    HttpApiEndpoint.put("replace", "/users/:id")
      .setPath(UserPath)
      .setPayload(UserReplace)
      .addSuccess(User)
      .annotate(OpenApi.Summary, "Replace a user's email, full name and active flag")
  )
  .add(
    HttpApiEndpoint.patch("update", "/users/:id")
      .setPath(UserPath)
      .setPayload(UserPatch)
      .addSuccess(User)
      .annotate(OpenApi.Summary, "Change some of a user's fields; full_name: null clears it")
  )
  .add(
    HttpApiEndpoint.del("remove", "/users/:id")
      .setPath(UserPath)
      .addSuccess(Deleted)
      .annotate(OpenApi.Summary, "Delete a user")
  )
  .addError(ApiError.UpstreamError)
  .annotate(OpenApi.Description, "The users of the upstream users API")
{}

/**
 * @since 0.1.0
 * @category groups
 */
export class FilesApi extends HttpApiGroup.make("files")
  .add(
    HttpApiEndpoint.get("download", "/download/:name")
      .setPath(Schema.Struct({ name: FileName }))
      .addSuccess(HttpApiSchema.Uint8Array({ contentType: "application/octet-stream" }))
      .annotate(OpenApi.Summary, "Stream an upstream file, without buffering it")
  )
  .addError(ApiError.UpstreamError)
{}

/**
 * @since 0.1.0
 * @category api
 */
export class Api extends HttpApi.make("liaison")
  .add(HealthApi)
  .add(UsersApi)
  .add(FilesApi)
  .add(ResilienceApi)
  .add(CacheApi)
  .add(ProtectedApi)
  .add(WebhooksApi)
  .add(WebhookSubscriptionsApi)
  .add(PaymentsApi)
  .add(EmailsApi)
  .annotate(OpenApi.Title, "Liaison demo server")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(
    OpenApi.Description,
    "The Liaison library over HTTP: a users API proxied to one configured upstream, with timeouts, " +
      "bounded fan-out and streaming."
  )
{}
