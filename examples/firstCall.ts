/**
 * A first call: one GET, its JSON decoded with a Schema. In this repository, against the demo
 * server (`npm start`): `npx tsx --conditions=@liaison/source examples/firstCall.ts`.
 */
import { NodeRuntime } from "@effect/platform-node"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Http } from "@liaison/core"
import { Console, Effect, Schema } from "effect"

const User = Schema.Struct({ id: Schema.Number, username: Schema.String, email: Schema.String })

const program = Http.json(HttpClientRequest.get("/users/1"), User).pipe(
  Effect.flatMap((user) => Console.log(`${user.username} <${user.email}>`)),
  Effect.provide(Http.layer({ baseUrl: "http://localhost:3000" }))
)

NodeRuntime.runMain(program)
