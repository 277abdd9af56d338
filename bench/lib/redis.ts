/**
 * A private `redis-server` for a benchmark, on a free port, without persistence: its own process, so
 * that the numbers do not depend on what else a shared Redis is doing.
 */
import { Redis as IORedis } from "ioredis"
import { spawn } from "node:child_process"
import { once } from "node:events"
import * as net from "node:net"

export interface BenchRedis {
  readonly url: string
  readonly stop: () => Promise<void>
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error()))
    })
  })

/** Starts redis-server and resolves once it answers PING. */
export const spawnRedis = async (): Promise<BenchRedis> => {
  const port = await freePort()
  const child = spawn("redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no"
  ], {
    stdio: "ignore"
  })
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, "exit")
    child.kill("SIGTERM")
    await exited
  }
  process.once("exit", () => child.kill("SIGKILL"))
  const url = `redis://127.0.0.1:${port}`
  const deadline = Date.now() + 10_000
  for (;;) {
    const probe = new IORedis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    probe.on("error", () => {})
    const ok = await probe.connect().then(() => probe.ping()).then(() => true, () => false)
    probe.disconnect()
    if (ok) return { url, stop }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`redis-server on ${port} did not answer`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
