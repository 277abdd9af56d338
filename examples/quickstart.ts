/**
 * Shown in docs/Http.md, kept compiling by `npm run check`: list active users from an upstream
 * (the demo server by default), then fetch each at most 5 at a time.
 */
import { NodeRuntime } from "@effect/platform-node"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { FanOut, Http, HttpError } from "@liaison/core"
import { Console, Effect, Schema } from "effect"

const User = Schema.Struct({ id: Schema.Number, username: Schema.String, email: Schema.String, active: Schema.Boolean })
const UserFilter = Schema.Struct({
  name: Schema.optional(Schema.String),
  active: Schema.optional(Schema.Boolean),
  page: Schema.Int,
  page_size: Schema.Int
})
const UserPage = Schema.Struct({ users: Schema.Array(User), total: Schema.Number })

const program = Effect.gen(function*() {
  // GET /users?active=true&page=1&page_size=10, decoded with a Schema
  const page = yield* HttpClientRequest.get("/users").pipe(
    Http.withQuery(UserFilter, { active: true, page: 1, page_size: 10 }),
    Effect.flatMap(Http.json(UserPage))
  )
  // bounded fan-out: every outcome kept, one failure loses nothing else
  const outcomes = yield* FanOut.settle(
    page.users.map((user) => Http.json(HttpClientRequest.get(`/users/${user.id}`), User)),
    { concurrency: 5 }
  )
  const { failures, successes } = FanOut.partition(outcomes)
  yield* Console.log(`fetched ${successes.length}, failed ${failures.length}`)
}).pipe(
  // TimeoutError | TransportError | StatusError | DecodeError | InvalidRequest
  Effect.catchIf(HttpError.isHttpError, (error) => Console.error(`upstream failed: ${error.message}`)),
  Effect.provide(Http.layer({ baseUrl: "http://localhost:3000", timeouts: { read: "5 seconds" } }))
)

NodeRuntime.runMain(program)
