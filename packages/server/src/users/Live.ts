/**
 * The handlers of `UsersApi.UsersApi`: every endpoint is one call to the users service
 * ({@link CachedUsers}, the cache over the upstream; the batch a bounded fan-out of them), its
 * `HttpError` mapped to an answer by {@link ApiError.mapUpstream}.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { FanOut } from "@liaison/core"
import type { HttpError } from "@liaison/core"
import * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import { Api } from "../Api.js"
import * as ApiError from "../ApiError.js"
import type { Authorization, JsonOnly } from "../Credentials.js"
import { CachedUsers, withCacheHeader } from "./CachedUsers.js"
import * as Users from "./Users.js"

/**
 * How many upstream calls one `GET /users/batch` makes at once.
 *
 * @since 0.1.0
 * @category constants
 */
export const batchConcurrency = 10

const isNotFound = (error: HttpError.HttpError) => error._tag === "StatusError" && error.status === 404

const userWithCacheHeader = withCacheHeader(Users.User)

type UsersGroup = HttpApiGroup.ApiGroup<"liaison", "users">

/**
 * The users endpoints, each proxied to the upstream through the cache ({@link CachedUsers}).
 *
 * @since 0.1.0
 * @category layers
 */
export const UsersLive: Layer.Layer<UsersGroup, never, CachedUsers | Authorization | JsonOnly> = HttpApiBuilder.group(
  Api,
  "users",
  (handlers) =>
    Effect.map(CachedUsers, (upstream) =>
      handlers
        .handle("batch", ({ urlParams: { ids } }) =>
          // A missing id is not an error of the batch; any other failure fails it (and stops the rest).
          FanOut.all(
            ids.map((id) =>
              upstream.get(id).pipe(
                Effect.map(Either.right),
                Effect.catchIf(isNotFound, () => Effect.succeed(Either.left(id)))
              )
            ),
            { concurrency: batchConcurrency }
          ).pipe(
            Effect.map((found) => {
              const [missing, users] = Arr.separate(found)
              return { users, count: users.length, missing }
            }),
            ApiError.mapUpstream
          ))
        .handle("list", ({ urlParams }) => ApiError.mapUpstream(upstream.list(urlParams)))
        .handle("get", ({ path }) => ApiError.mapUpstream(userWithCacheHeader(upstream.getCached(path.id))))
        .handle("create", ({ payload }) => ApiError.mapUpstream(upstream.create(payload)))
        .handle("replace", ({ path, payload }) => ApiError.mapUpstream(upstream.replace(path.id, payload)))
        .handle("update", ({ path, payload }) => ApiError.mapUpstream(upstream.update(path.id, payload)))
        .handle("remove", ({ path }) =>
          upstream.remove(path.id).pipe(
            Effect.as({ status: "deleted" as const, id: path.id }),
            ApiError.mapUpstream
          )))
)
