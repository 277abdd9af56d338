/**
 * Every setting is read before anything starts: bad values stop the start-up with one message
 * naming each problem exactly once (no stack trace, nothing listening), whichever layer would
 * have read it first.
 */
import { describe, expect, it } from "@effect/vitest"
import { Settings } from "@liaison/server"
import { ConfigProvider, Effect } from "effect"
import * as fc from "fast-check"
import { startServer } from "../fixtures/serverProcess.js"

/** A bad value for settings read by different layers of the server and of the library. */
const badValues: ReadonlyArray<readonly [name: string, value: string]> = [
  ["PORT", "http"],
  ["SHUTDOWN_TIMEOUT", "soon"],
  ["SERVER_HEADERS_TIMEOUT", "nope"],
  ["SERVER_MAX_CONNECTIONS", "0"],
  ["SERVER_JSON_BODY_LIMIT", "lots"],
  ["RETRY_MAX_ATTEMPTS", "x"],
  ["BREAKER_OPEN_DURATION", "a while"],
  ["UPSTREAM_URL", "ftp://example.com/"],
  ["EMAIL_LEASE", "zz"],
  ["EMAIL_WORKERS", "-1"],
  ["EMAIL_AT_LEAST_ONCE", "maybe"],
  ["WEBHOOK_WORKERS", "none"],
  ["WEBHOOK_RETENTION", "forever-ish"],
  ["CACHE_TTL", "q"],
  ["CACHE_USERS_TTL", "long"],
  ["CACHE_TIER", "three-tier"],
  ["RATE_LIMIT_ON_STORE_FAILURE", "explode"],
  ["LIAISON_SANDBOX", "perhaps"],
  ["SERVER_KEEP_ALIVE_TIMEOUT", "idle"]
]

const problemsWith = (env: ReadonlyArray<readonly [string, string]>) =>
  Settings.validate.pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(env))),
    Effect.flip,
    Effect.map((error) => error.problems)
  )

/** The settings a problem line names (`NAME: reason`). */
const named = (problems: ReadonlyArray<string>) => problems.map((line) => line.slice(0, line.indexOf(":")))

describe("Settings.validate", () => {
  it.effect("every bad setting is named exactly once, whichever layer reads it", () =>
    Effect.gen(function*() {
      const problems = yield* problemsWith(badValues)
      expect(named(problems).sort()).toEqual(badValues.map(([name]) => name).sort())
    }))

  it.effect("a half-configured scheme (one of OAuth2's three) is refused, not silently left out", () =>
    Effect.gen(function*() {
      const problems = yield* problemsWith([["OAUTH2_TOKEN_URL", "https://auth.example.com/token"]])
      expect(problems).toEqual(["OAUTH2_CLIENT_ID and OAUTH2_CLIENT_SECRET must be set together with OAUTH2_TOKEN_URL"])
    }))

  it.effect("with nothing set, the defaults pass", () =>
    Effect.gen(function*() {
      const result = yield* Settings.validate.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
        Effect.either
      )
      expect(result._tag).toBe("Right")
    }))

  it.effect("property: any subset of bad settings yields exactly that subset, each once", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.subarray([...badValues], { minLength: 1 }), async (subset) => {
          const problems = await Effect.runPromise(problemsWith(subset))
          expect(named(problems).sort()).toEqual(subset.map(([name]) => name).sort())
        }),
        { numRuns: 60 }
      )
    ))

  it("the real process refuses to start: one message, each problem once, no stack, nothing listening", async () => {
    const server = startServer(Object.fromEntries(badValues))
    const code = await server.exited
    const output = server.output()
    expect(code).toBe(1)
    expect(output).toContain(`invalid configuration (${badValues.length} settings); nothing was started`)
    for (const [name] of badValues) {
      expect(output.split(`- ${name}:`).length - 1, name).toBe(1)
    }
    expect(output).not.toMatch(/\n\s+at /)
    expect(output).not.toContain("listening on")
  })
})
