/**
 * The server's log console (`internal/logSink`): lines are batched into one write per turn of the
 * event loop, in order, with the pretty logger's indentation, and nothing pending is lost when the
 * process exits in the same turn. Run in a child process, as the server's own stdout is what matters.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as path from "node:path"
import { promisify } from "node:util"

const root = path.join(import.meta.dirname, "..", "..")
const tsx = path.join(root, "node_modules", "tsx", "dist", "cli.mjs")
const telemetry = path.join(root, "packages", "server", "src", "observability", "Telemetry.ts")

/** Logs `count` lines through `Telemetry.layerLogger`, then exits at once (no turn of the loop left). */
const script = (format: "json" | "pretty", count: number) => `
import * as Effect from "effect/Effect"
import * as Telemetry from ${JSON.stringify(telemetry)}
const program = Effect.forEach(Array.from({ length: ${count} }, (_, i) => i), (i) =>
  Effect.logInfo("line " + i).pipe(Effect.annotateLogs("n", i)), { discard: true })
Effect.runSync(Effect.provide(program, Telemetry.layerLogger({ format: ${JSON.stringify(format)} })))
process.exit(0)
`

const run = async (format: "json" | "pretty", count: number): Promise<string> => {
  const { stdout } = await promisify(execFile)(process.execPath, [tsx, "--eval", script(format, count)], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024
  })
  return stdout
}

describe("the log console", () => {
  it("writes every JSON line, in order, though the process exits in the turn it logged them", async () => {
    // More than the 64 KiB that triggers an early flush, so both paths are taken.
    const lines = (await run("json", 2000)).trim().split("\n").map((line) => JSON.parse(line) as { message: string })
    expect(lines).toHaveLength(2000)
    expect(lines.map((line) => line.message)).toEqual(Array.from({ length: 2000 }, (_, i) => `line ${i}`))
  }, 30_000)

  it("keeps the pretty logger's layout: the annotations indented under their line", async () => {
    const lines = (await run("pretty", 2)).trimEnd().split("\n")
    expect(lines).toHaveLength(4)
    expect(lines[0]).toMatch(/INFO .*: line 0$/)
    expect(lines[1]).toBe("  n: 0")
    expect(lines[3]).toBe("  n: 1")
  }, 30_000)
})
