/**
 * Vitest global setup: a private `redis-server` on a free port for the whole run
 * (or the server named by `REDIS_URL`). Tests read the URL with `inject("redisUrl")`;
 * when no Redis can be had, `redisError` says why and Redis tests fail with it — never skip.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { TestProject } from "vitest/node"
import { freePort } from "../fixtures/ports.js"

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string
    redisError: string
  }
}

const waitForPing = async (port: number, deadline: number): Promise<void> => {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1")
      socket.once("error", () => resolve(false))
      socket.once("connect", () => socket.write("PING\r\n"))
      socket.once("data", (data) => {
        socket.destroy()
        resolve(data.toString().startsWith("+PONG"))
      })
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`redis-server on port ${port} did not answer PING in time`)
}

let child: ChildProcess | undefined
let dir: string | undefined

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.REDIS_URL
  if (external !== undefined && external !== "") {
    project.provide("redisUrl", external)
    project.provide("redisError", "")
    return teardown
  }
  try {
    const port = await freePort()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "liaison-redis-"))
    const proc = spawn("redis-server", [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir
    ], { stdio: "ignore" })
    child = proc
    const spawned = new Promise<never>((_, reject) => proc.once("error", reject))
    await Promise.race([waitForPing(port, Date.now() + 10_000), spawned])
    project.provide("redisUrl", `redis://127.0.0.1:${port}`)
    project.provide("redisError", "")
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    project.provide("redisUrl", "")
    project.provide(
      "redisError",
      `No Redis for the tests: could not start redis-server (${reason}). Install it (apt-get install redis-server) or set REDIS_URL.`
    )
  }
  return teardown
}

const teardown = async (): Promise<void> => {
  const proc = child
  if (proc !== undefined && proc.exitCode === null) {
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()))
    proc.kill("SIGTERM")
    await exited
  }
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true })
}
