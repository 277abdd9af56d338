/**
 * A server bound beyond loopback refuses the published sandbox secrets (and missing ones), with
 * one message listing every problem; on loopback, or with LIAISON_SANDBOX=true, it starts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Safety, SandboxSecrets } from "@liaison/server"
import { ConfigError, ConfigProvider, Effect } from "effect"
import { startServer } from "../fixtures/serverProcess.js"

const ownSecrets = {
  STRIPE_WEBHOOK_SECRET: "whsec_operator_own_stripe",
  STANDARD_WEBHOOK_SECRET: "whsec_b3BlcmF0b3Itb3duLXN0YW5kYXJkLXNlY3JldA==",
  GITHUB_WEBHOOK_SECRET: "operator-own-github",
  SENDGRID_WEBHOOK_PUBLIC_KEY: "operator-own-public-key",
  WEBHOOK_SECRET: "operator-own-generic",
  ADMIN_API_KEY: "operator-own-admin-key",
  API_KEYS: "operator-own-api-key"
}

const checkWith = (env: Record<string, string>) =>
  Safety.check.pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
    Effect.catchIf(ConfigError.isConfigError, Effect.die),
    Effect.either
  )

describe("Safety.check", () => {
  it.effect("on 0.0.0.0 with nothing set: refused, every missing secret named once", () =>
    Effect.gen(function*() {
      const result = yield* checkWith({ HOST: "0.0.0.0" })
      expect(result._tag).toBe("Left")
      if (result._tag !== "Left") return
      expect(result.left._tag).toBe("UnsafeConfiguration")
      expect(result.left.problems).toHaveLength(7)
      for (const name of Object.keys(ownSecrets)) expect(result.left.message).toContain(name)
      expect(result.left.message).toContain("LIAISON_SANDBOX=true")
    }))

  it.effect("a secret set to its published sandbox value is refused too; the values are not printed", () =>
    Effect.gen(function*() {
      const published = SandboxSecrets.sandboxSecrets.STRIPE_WEBHOOK_SECRET
      const result = yield* checkWith({ ...ownSecrets, HOST: "::", STRIPE_WEBHOOK_SECRET: published })
      expect(result._tag).toBe("Left")
      if (result._tag !== "Left") return
      expect(result.left.problems).toEqual(["STRIPE_WEBHOOK_SECRET is set to its published sandbox value"])
      expect(result.left.message).not.toContain(published)
    }))

  it.effect("starts on loopback whatever the secrets, beyond it with secrets of its own, or with LIAISON_SANDBOX", () =>
    Effect.gen(function*() {
      expect((yield* checkWith({}))._tag).toBe("Right")
      expect((yield* checkWith({ HOST: "127.0.0.1" }))._tag).toBe("Right")
      expect((yield* checkWith({ HOST: "::1" }))._tag).toBe("Right")
      expect((yield* checkWith({ HOST: "localhost" }))._tag).toBe("Right")
      expect((yield* checkWith({ ...ownSecrets, HOST: "0.0.0.0" }))._tag).toBe("Right")
      expect((yield* checkWith({ HOST: "0.0.0.0", LIAISON_SANDBOX: "true" }))._tag).toBe("Right")
      expect((yield* checkWith({ HOST: "10.0.0.5" }))._tag).toBe("Left")
    }))

  it("the real entry point on 0.0.0.0 with the sandbox secrets exits at once, saying what is missing", async () => {
    const server = startServer({ HOST: "0.0.0.0" })
    try {
      const code = await server.exited
      expect(code).not.toBe(0)
      const output = server.output()
      expect(output).toContain("refusing to listen on 0.0.0.0")
      for (const name of Object.keys(ownSecrets)) expect(output).toContain(name)
      expect(output).not.toContain("listening on http")
    } finally {
      if (server.child.exitCode === null) server.child.kill("SIGKILL")
    }
  }, 30_000)
})
