/**
 * The users endpoints: `GET /users` (filtered, paginated), `GET /users/batch?ids=…` (a bounded
 * fan-out), `GET`, `PUT`, `PATCH`, `DELETE /users/{id}` and `POST /users`, each proxied to the
 * configured upstream. Upstream failures are the {@link ApiError.UpstreamError} answers.
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Arr from "effect/Array"
import { identity } from "effect/Function"
import * as Schema from "effect/Schema"
import * as ApiError from "../ApiError.js"
import { Authorization, JsonOnly } from "../Credentials.js"
import { NewUser, User, UserFilter, UserId, UserIdFromString, UserPage, UserPatch, UserReplace } from "./Users.js"

/**
 * The most ids one `GET /users/batch` may ask for.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxBatchSize = 100

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

const UserPath = Schema.Struct({ id: UserIdFromString })

/**
 * @since 0.1.0
 * @category schemas
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
      .middleware(Authorization)
      .middleware(JsonOnly)
      .setPayload(NewUser)
      .addSuccess(User, { status: 201 })
      .annotate(OpenApi.Summary, "Create a user")
  )
  .add(
    HttpApiEndpoint.put("replace", "/users/:id")
      .middleware(Authorization)
      .middleware(JsonOnly)
      .setPath(UserPath)
      .setPayload(UserReplace)
      .addSuccess(User)
      .annotate(OpenApi.Summary, "Replace a user's email, full name and active flag")
  )
  .add(
    HttpApiEndpoint.patch("update", "/users/:id")
      .middleware(Authorization)
      .middleware(JsonOnly)
      .setPath(UserPath)
      .setPayload(UserPatch)
      .addSuccess(User)
      .annotate(OpenApi.Summary, "Change some of a user's fields; full_name: null clears it")
  )
  .add(
    HttpApiEndpoint.del("remove", "/users/:id")
      .middleware(Authorization)
      .middleware(JsonOnly)
      .setPath(UserPath)
      .addSuccess(Deleted)
      .annotate(OpenApi.Summary, "Delete a user")
  )
  .addError(ApiError.UpstreamError)
  .annotate(OpenApi.Description, "The users of the upstream users API")
{}
