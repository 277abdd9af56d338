/**
 * A built-in "users" upstream, run in-process on its own port, so that the demo server has
 * someone else's API to talk to when no `UPSTREAM_URL` is configured.
 *
 * Routes (answers are JSON; errors are `{ error, message }`):
 *
 * - `GET /users?name&email&active&page&page_size` → `{ users, page, page_size, total }`
 * - `GET /users/:id` → the user, or 404
 * - `POST /users` (`username`, `email`, `password`, `full_name?`) → 201 with the user (never the
 *   password); 422 when invalid, 409 when the username is taken
 * - `PUT /users/:id` (`email`, `full_name`, `active`) and `PATCH /users/:id` (any of them;
 *   `full_name: null` clears it) → the user, 404, or 422
 * - `DELETE /users/:id` → 204, or 404
 * - `GET /files/<n>(B|KiB|MiB|GiB).bin` → `application/octet-stream` of that size with a
 *   `content-length`, byte `k` being `k mod 251`; streamed in constant memory
 * - `GET /protected/{bearer,api-key,basic,oauth2}` → `{ mode, authenticated, principal }` with
 *   the right credentials (`credentials` option; demo ones by default), else 401
 * - `POST /oauth2/token` → an OAuth2 client credentials token endpoint (RFC 6749 §4.4)
 *
 * Every sandbox (this one, `StripeSandbox`, `SendGridSandbox`) has one shape: its state is
 * pure functions over an immutable value (`internal/`), held in one cell and changed atomically,
 * and its routes are thin Effect handlers served by `@effect/platform-node`'s `NodeHttpServer` for
 * the life of a scope.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as NodeHttp from "node:http"
import { NewUser, User, UserFilter, UserIdFromString, UserPage, UserPatch, UserReplace } from "../users/Users.js"
import type { SandboxCredentials } from "./Auth.js"
import { makeAuthRoutes } from "./Auth.js"
import { fileBody, parseFileName } from "./files.js"
import type { UsersStore, WriteError } from "./internal/users.js"
import { makeUsersStore, seedUsers } from "./internal/users.js"
import { demoCredentials } from "./secrets.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Where the sandbox listens, e.g. `http://127.0.0.1:43121`. */
  readonly baseUrl: string
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Sandbox extends Context.Tag("@liaison/server/Sandbox")<Sandbox, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export type { SandboxCredentials } from "./Auth.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default `127.0.0.1`: the sandbox is for this process, not the network. */
  readonly host?: string | undefined
  /** Default 0: a free port. */
  readonly port?: number | undefined
  /** How many users to seed. Default 50. */
  readonly users?: number | undefined
  /** What the `/protected/*` routes and the token endpoint accept. Default: public demo credentials. */
  readonly credentials?: SandboxCredentials | undefined
}

const jsonError = (status: number, error: string, message: string) =>
  HttpServerResponse.unsafeJson({ error, message }, { status })

const userJson = (user: User, status = 200) => HttpServerResponse.schemaJson(User)(user, { status })

const invalid = (error: ParseResult.ParseError) =>
  jsonError(422, "invalid", ParseResult.TreeFormatter.formatErrorSync(error))

const writeFailed = (error: WriteError) =>
  error._tag === "NotFound"
    ? jsonError(404, "not_found", `user ${error.id} not found`)
    : jsonError(409, "conflict", `username ${error.username} is taken`)

const decodeUserId = ParseResult.decodeUnknownEither(UserIdFromString)
const userId = Effect.map(HttpRouter.params, (params) => Either.getRight(decodeUserId(params.id ?? "")))

/** Decodes the JSON body: 400 when it is not JSON, 422 when it does not match. */
const body = <A, I>(schema: Schema.Schema<A, I>) =>
  HttpServerRequest.schemaBodyJson(schema).pipe(
    Effect.mapError((error) =>
      error._tag === "ParseError" ? invalid(error) : jsonError(400, "bad_request", "the body is not JSON")
    )
  )

/** Runs a handler that fails with a ready response, answering that response. */
const respond = <R>(
  handler: Effect.Effect<HttpServerResponse.HttpServerResponse, HttpServerResponse.HttpServerResponse, R>
) => Effect.merge(handler)

const withUser = <R>(
  f: (id: number) => Effect.Effect<HttpServerResponse.HttpServerResponse, HttpServerResponse.HttpServerResponse, R>
) =>
  respond(Effect.flatMap(userId, (id) =>
    Option.match(id, {
      onNone: () => Effect.succeed(jsonError(404, "not_found", "no such user")),
      onSome: f
    })))

const written = (result: Either.Either<User, WriteError>, status = 200) =>
  Either.match(result, {
    onLeft: (error) => Effect.succeed(writeFailed(error)),
    onRight: (user) => userJson(user, status)
  })

const list = (store: UsersStore) =>
  respond(
    HttpServerRequest.schemaSearchParams(UserFilter).pipe(
      Effect.mapError((error) => jsonError(400, "bad_request", ParseResult.TreeFormatter.formatErrorSync(error))),
      Effect.flatMap(store.list),
      Effect.flatMap((page) => HttpServerResponse.schemaJson(UserPage)(page)),
      Effect.orDie
    )
  )

const get = (store: UsersStore) =>
  withUser((id) =>
    Effect.flatMap(
      store.get(id),
      Option.match({
        onNone: () => Effect.succeed(jsonError(404, "not_found", `user ${id} not found`)),
        onSome: (user) => Effect.orDie(userJson(user))
      })
    )
  )

const create = (store: UsersStore) =>
  respond(
    body(NewUser).pipe(
      Effect.flatMap(store.create),
      Effect.flatMap((result) => Effect.orDie(written(result, 201)))
    )
  )

/** PUT and PATCH: decode the body, write, answer the user. */
const write = <A, I>(
  schema: Schema.Schema<A, I>,
  f: (id: number, input: A) => Effect.Effect<Either.Either<User, WriteError>>
) =>
  withUser((id) =>
    body(schema).pipe(
      Effect.flatMap((input) => f(id, input)),
      Effect.flatMap((result) => Effect.orDie(written(result)))
    )
  )

const remove = (store: UsersStore) =>
  withUser((id) =>
    Effect.map(
      store.remove(id),
      (removed) =>
        removed ? HttpServerResponse.empty({ status: 204 }) : jsonError(404, "not_found", `user ${id} not found`)
    )
  )

const file = Effect.map(HttpRouter.params, (params) =>
  Option.match(parseFileName(params.name ?? ""), {
    onNone: () => jsonError(404, "not_found", "no such file"),
    onSome: (size) =>
      size === 0
        // HttpServerResponse omits a zero content-length on a stream: answer empty instead.
        ? HttpServerResponse.uint8Array(new Uint8Array(0), { contentType: "application/octet-stream" })
        : HttpServerResponse.stream(fileBody(size), {
          contentType: "application/octet-stream",
          contentLength: size
        })
  }))

const makeRouter = (store: UsersStore) =>
  HttpRouter.empty.pipe(
    HttpRouter.get("/users", list(store)),
    HttpRouter.get("/users/:id", get(store)),
    HttpRouter.post("/users", create(store)),
    HttpRouter.put("/users/:id", write(UserReplace, store.replace)),
    HttpRouter.patch("/users/:id", write(UserPatch, store.update)),
    HttpRouter.del("/users/:id", remove(store)),
    HttpRouter.get("/files/:name", file)
  )

/**
 * Starts the sandbox on its own Node HTTP server; it stops when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, HttpServerError.ServeError, Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* makeUsersStore(seedUsers(options.users ?? 50))
    const server = yield* NodeHttpServer.make(() => NodeHttp.createServer(), {
      host: options.host ?? "127.0.0.1",
      port: options.port ?? 0
    })
    const authRoutes = yield* makeAuthRoutes(options.credentials ?? demoCredentials)
    yield* HttpServer.serveEffect(HttpRouter.concat(makeRouter(store), authRoutes)).pipe(
      Effect.provideService(HttpServer.HttpServer, server)
    )
    return Sandbox.of({ baseUrl: HttpServer.formatAddress(server.address) })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Sandbox, HttpServerError.ServeError> =>
  Layer.scoped(Sandbox, make(options))
