// The consumer test's program, type-checked with `skipLibCheck: false` against the packed
// packages and run with node: every public module loads, internals are not importable, a real
// call decodes a real answer, and Redis without ioredis is a clear typed error.
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Http, Redis } from "@liaison/core"
import * as Core from "@liaison/core"
import * as Integrations from "@liaison/integrations"
import * as Server from "@liaison/server"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { modules } from "./modules.js"

const check = (what: string, ok: boolean): void => {
  if (!ok) throw new Error(`consumer test failed: ${what}`)
  console.log(`ok - ${what}`)
}

const upstream = process.env["UPSTREAM_URL"]
if (upstream === undefined) throw new Error("consumer test: UPSTREAM_URL is not set")

for (
  const [name, module] of Object.entries({
    "@liaison/core": Core,
    "@liaison/integrations": Integrations,
    "@liaison/server": Server,
    ...modules
  })
) {
  check(`${name} loads and exports something`, Object.keys(module).length > 0)
}

const blocked = [
  "@liaison/core/internal/retry",
  "@liaison/integrations/internal/stripe",
  "@liaison/server/internal/listener",
  "@liaison/server/sandbox/internal/serve"
]
for (const specifier of blocked) {
  const failure: unknown = await import(specifier).then(() => undefined, (error: unknown) => error)
  const code = typeof failure === "object" && failure !== null && "code" in failure ? failure.code : undefined
  check(`${specifier} is not importable`, code === "ERR_PACKAGE_PATH_NOT_EXPORTED")
}

const User = Schema.Struct({ id: Schema.Number, name: Schema.String, roles: Schema.Array(Schema.String) })

const program = Effect.gen(function*() {
  const user = yield* Http.json(HttpClientRequest.get("/users/7"), User)
  check(
    "Http.json decodes the local server's answer",
    JSON.stringify(user) === JSON.stringify({ id: 7, name: "Ada Lovelace", roles: ["admin", "author"] })
  )
  const missing = yield* Effect.flip(Http.json(HttpClientRequest.get("/users/8"), User))
  check("a 404 is an HttpError.StatusError", missing._tag === "StatusError" && missing.status === 404)
  const noRedis = yield* Effect.flip(Effect.scoped(Redis.make({ url: Redacted.make("redis://127.0.0.1:6379") })))
  check(
    "without ioredis installed, Redis.make fails with a RedisError that says how to install it",
    noRedis._tag === "RedisError" && noRedis.message.includes("npm install ioredis")
  )
}).pipe(Effect.provide(Http.layer({ baseUrl: upstream })))

await Effect.runPromise(program)
console.log("consumer test: all checks passed")
