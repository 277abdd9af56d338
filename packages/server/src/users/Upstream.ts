/**
 * The client of the one upstream the server talks to (the users API and its files), built on
 * `@liaison/core`'s {@link Http.Http}: every call has its timeouts and fails with a typed
 * `HttpError`. Requests only ever carry paths built here from validated input, never a URL
 * that a client of the server supplied.
 *
 * @since 0.1.0
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { HttpError } from "@liaison/core"
import { Http } from "@liaison/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { NewUser, UserFilter, UserPatch, UserReplace } from "./Users.js"
import * as Users from "./Users.js"

/**
 * A file being downloaded: its headers are in, its body flows as it is pulled.
 *
 * @since 0.1.0
 * @category models
 */
export interface Download {
  readonly contentType: string
  readonly contentLength: Option.Option<number>
  /** The body; read it within the scope the download was started in. */
  readonly stream: Stream.Stream<Uint8Array, HttpError.HttpError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly list: (filter: UserFilter) => Effect.Effect<Users.UserPage, HttpError.HttpError>
  readonly get: (id: number) => Effect.Effect<Users.User, HttpError.HttpError>
  readonly create: (input: NewUser) => Effect.Effect<Users.User, HttpError.HttpError>
  readonly replace: (id: number, input: UserReplace) => Effect.Effect<Users.User, HttpError.HttpError>
  readonly update: (id: number, input: UserPatch) => Effect.Effect<Users.User, HttpError.HttpError>
  readonly remove: (id: number) => Effect.Effect<void, HttpError.HttpError>
  /**
   * Starts downloading `/files/{name}`: succeeds once a 2xx answer's headers arrive; the
   * connection is held until the scope closes.
   */
  readonly download: (name: string) => Effect.Effect<Download, HttpError.HttpError, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category models
 */
export class Upstream extends Context.Tag("@liaison/server/Upstream")<Upstream, Service>() {}

const userPath = (id: number) => `/users/${id}`

/**
 * Builds the client over the {@link Http.Http} service, whose base URL is the upstream's.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<Service, never, Http.Http> = Effect.map(Http.Http, (http) => {
  const run = <A>(effect: Effect.Effect<A, HttpError.HttpError, Http.Http>) =>
    Effect.provideService(effect, Http.Http, http)

  return Upstream.of({
    list: (filter) =>
      HttpClientRequest.get("/users").pipe(
        Http.withQuery(Users.UserFilter, filter),
        Effect.flatMap(Http.json(Users.UserPage)),
        run
      ),
    get: (id) => run(Http.json(HttpClientRequest.get(userPath(id)), Users.User)),
    create: (input) =>
      HttpClientRequest.post("/users").pipe(
        Http.withJson(Users.NewUser, input),
        Effect.flatMap(Http.json(Users.User)),
        run
      ),
    replace: (id, input) =>
      HttpClientRequest.put(userPath(id)).pipe(
        Http.withJson(Users.UserReplace, input),
        Effect.flatMap(Http.json(Users.User)),
        run
      ),
    update: (id, input) =>
      HttpClientRequest.patch(userPath(id)).pipe(
        Http.withJson(Users.UserPatch, input),
        Effect.flatMap(Http.json(Users.User)),
        run
      ),
    remove: (id) => run(Http.empty(HttpClientRequest.del(userPath(id)))),
    download: (name) =>
      Http.executeOk(HttpClientRequest.get(`/files/${encodeURIComponent(name)}`)).pipe(
        Effect.map((response): Download => {
          const length = Number(response.headers["content-length"])
          return {
            contentType: response.headers["content-type"] ?? "application/octet-stream",
            contentLength: Number.isSafeInteger(length) && length >= 0 ? Option.some(length) : Option.none(),
            stream: response.stream
          }
        }),
        Effect.provideService(Http.Http, http)
      )
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Upstream, never, Http.Http> = Layer.effect(Upstream, make)
