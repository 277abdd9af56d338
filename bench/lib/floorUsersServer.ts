/**
 * The platform's floor for `bench/server.ts`: the same cache-aside `GET /users/{id}` as
 * `bareUsersServer.ts` (a `Map`, the upstream on a miss), but as a minimal `HttpApi` served by
 * `@effect/platform-node` — the same path and success schemas as the demo server, none of Liaison's
 * middleware, services or stores. What it costs over bare `node:http` is what the platform costs.
 *
 *   UPSTREAM_URL=… tsx bench/lib/floorUsersServer.ts
 *
 * Prints `{"url":…}` once listening.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import { User, UserIdFromString } from "@liaison/server/users/Users"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { launchFloor } from "./floorServer.js"

const upstream = process.env.UPSTREAM_URL ?? ""

class UsersApi extends HttpApiGroup.make("users").add(
  HttpApiEndpoint.get("get", "/users/:id")
    .setPath(Schema.Struct({ id: UserIdFromString }))
    .addSuccess(User)
    .addError(HttpApiError.NotFound)
) {}

class Api extends HttpApi.make("floor").add(UsersApi) {}

const decodeUser = Schema.decodeUnknown(User)
const users = new Map<number, User>()

const fetchUser = (id: number): Effect.Effect<User, HttpApiError.NotFound> =>
  Effect.tryPromise(async (): Promise<unknown> => {
    const response = await fetch(`${upstream}/users/${id}`)
    return response.status === 200 ? await response.json() : undefined
  }).pipe(
    Effect.flatMap(decodeUser),
    Effect.tap((user) => Effect.sync(() => users.set(id, user))),
    Effect.mapError(() => new HttpApiError.NotFound())
  )

const UsersLive = HttpApiBuilder.group(Api, "users", (handlers) =>
  handlers.handle("get", ({ path }) => {
    const hit = users.get(path.id)
    return hit === undefined ? fetchUser(path.id) : Effect.succeed(hit)
  }))

launchFloor(HttpApiBuilder.api(Api).pipe(Layer.provide(UsersLive)))
