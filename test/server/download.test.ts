import { expect, layer } from "@effect/vitest"
import { Server } from "@liaison/server"
import { Effect } from "effect"
import { serverLayer } from "./support.js"

layer(serverLayer(), { excludeTestServices: true })("GET /download/{name}", (it) => {
  it.effect("passes 1 GiB from the sandbox to the client in constant memory", () =>
    Effect.gen(function*() {
      const url = yield* Server.url
      const result = yield* Effect.promise(async () => {
        const before = process.memoryUsage().arrayBuffers
        let peak = before
        let size = 0
        let chunks = 0
        const response = await fetch(`${url}/download/1GiB.bin`)
        for await (const chunk of response.body ?? []) {
          size += chunk.length
          if (++chunks % 64 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers)
        }
        return { status: response.status, length: response.headers.get("content-length"), size, growth: peak - before }
      })
      expect(result).toMatchObject({ status: 200, length: String(2 ** 30), size: 2 ** 30 })
      // Sandbox, server and client share this process: buffering anywhere would show as ≥ 1 GiB.
      expect(result.growth).toBeLessThan(256 * 2 ** 20)
    }), { timeout: 120_000 })
})
