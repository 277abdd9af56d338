/**
 * Start-up and shutdown of the real entry point (`main.ts` in a child process): no request fired
 * at the port from the moment the process is spawned waits for its answer (a refused connection
 * is fine: the port opens only once the app can answer), and `/readyz` turns 503 at SIGTERM.
 */
import { describe, expect, it } from "@effect/vitest"
import * as NodeHttp from "node:http"
import * as net from "node:net"
import { connectionDefaults } from "../../packages/server/src/Config.js"
import { nodeServer } from "../../packages/server/src/internal/listener.js"
import { freePort } from "../fixtures/ports.js"
import { startServer } from "../fixtures/serverProcess.js"

/** One probe: refused, or answered with `status` after `waited` ms; `pending` while unanswered. */
interface Probe {
  readonly started: number
  outcome: "pending" | "refused" | "answered" | "error"
  status?: number
  waited?: number
}

const probe = (port: number, path: string): Probe => {
  const result: Probe = { started: performance.now(), outcome: "pending" }
  const request = NodeHttp.get({ host: "127.0.0.1", port, path, agent: false }, (response) => {
    response.resume()
    response.on("end", () => {
      result.outcome = "answered"
      result.status = response.statusCode ?? 0
      result.waited = performance.now() - result.started
    })
  })
  request.on("error", (error: NodeJS.ErrnoException) => {
    result.outcome = error.code === "ECONNREFUSED" ? "refused" : "error"
    result.waited = performance.now() - result.started
  })
  return result
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** How long `probe` has waited so far, or waited in all. */
const waitedOf = (probe: Probe, now: number) => probe.waited ?? now - probe.started

/** A raw exchange on `socket`: everything it receives until it closes. */
const received = (socket: net.Socket) =>
  new Promise<string>((resolve) => {
    let data = ""
    socket.on("data", (chunk: Buffer) => (data += chunk.toString()))
    socket.on("error", () => undefined)
    socket.on("close", () => resolve(data))
  })

describe("start-up", () => {
  it("no request waits: before the app is built the port is closed, then every request is answered", async () => {
    const port = await freePort()
    const server = startServer({ PORT: String(port) })
    const probes: Array<Probe> = []
    try {
      let firstOk: number | undefined
      // Every ~10 ms from the spawn until 1 s after the first 200.
      for (let i = 0; firstOk === undefined || performance.now() - firstOk < 1000; i++) {
        if (server.child.exitCode !== null) throw new Error(`the server exited:\n${server.output()}`)
        probes.push(probe(port, i % 2 === 0 ? "/livez" : "/health"))
        firstOk ??= probes.find((p) => p.outcome === "answered" && p.status === 200)?.started
        await sleep(10)
      }
      // Let the last probes finish (a hang would stay pending).
      await sleep(1500)
      const now = performance.now()
      const answered = probes.filter((p) => p.outcome === "answered")
      const longest = Math.max(...probes.map((p) => waitedOf(p, now)))
      console.log(
        `start-up probes: ${probes.length} (${probes.filter((p) => p.outcome === "refused").length} refused, ` +
          `${answered.length} answered); longest wait ${longest.toFixed(1)} ms`
      )
      expect(probes.filter((p) => p.outcome === "pending" || p.outcome === "error")).toEqual([])
      expect(longest).toBeLessThan(1000)
      // Once the port is open, every answer is a 200 (nothing is accepted before the app is ready).
      expect(answered.length).toBeGreaterThan(50)
      expect(answered.filter((p) => p.status !== 200)).toEqual([])

      const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      expect(ready.status).toBe(200)
      expect(await ready.json()).toEqual({ status: "ready", redis: "disabled" })
      const live = await fetch(`http://127.0.0.1:${port}/livez`)
      expect(live.status).toBe(200)
      expect(await live.json()).toEqual({ status: "ok" })
    } finally {
      server.child.kill("SIGKILL")
      await server.exited
    }
  })

  it("a request that finds no handler attached yet is answered 503 with Retry-After, not left waiting", async () => {
    const node = nodeServer(connectionDefaults)
    await new Promise<void>((resolve) => node.listen(0, "127.0.0.1", resolve))
    try {
      const { port } = node.address() as net.AddressInfo
      const early = await fetch(`http://127.0.0.1:${port}/users/1`, { signal: AbortSignal.timeout(1000) })
      expect(early.status).toBe(503)
      expect(early.headers.get("content-type")).toBe("application/problem+json")
      expect(early.headers.get("retry-after")).toBe("1")
      expect(await early.json()).toEqual({
        type: "about:blank",
        title: "Service Unavailable",
        status: 503,
        detail: "The server is not ready to serve requests; retry shortly."
      })
      // Once the app's handler is attached, it answers alone.
      node.on("request", (_request: NodeHttp.IncomingMessage, response: NodeHttp.ServerResponse) => {
        response.end("app")
      })
      const late = await fetch(`http://127.0.0.1:${port}/users/1`)
      expect(late.status).toBe(200)
      expect(await late.text()).toBe("app")
      expect(node.headersTimeout).toBe(10_000)
      expect(node.requestTimeout).toBe(30_000)
      expect(node.keepAliveTimeout).toBe(5_000)
      expect(node.maxConnections).toBe(1024)
    } finally {
      node.closeAllConnections()
      await new Promise((resolve) => node.close(resolve))
    }
  })

  it("/readyz is 503 while the configured Redis does not answer; /livez is 200", async () => {
    const port = await freePort()
    const redisPort = await freePort()
    const server = startServer({ PORT: String(port), REDIS_URL: `redis://127.0.0.1:${redisPort}` })
    try {
      await server.waitFor(/listening on/)
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      expect(ready.status).toBe(503)
      expect(ready.headers.get("content-type")).toBe("application/problem+json")
      expect(ready.headers.get("retry-after")).toBe("1")
      expect(await ready.json()).toMatchObject({ status: 503, checks: { redis: "down", draining: false } })
      expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200)
    } finally {
      server.child.kill("SIGKILL")
      await server.exited
    }
  })

  it("at SIGTERM /readyz turns 503 (problem+json, Retry-After) before the server drains and exits 0", async () => {
    const port = await freePort()
    const server = startServer({ PORT: String(port) })
    try {
      await server.waitFor(/listening on/)
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200)
      // A request begun before SIGTERM (its headers not finished yet) and completed after it.
      const socket = net.connect(port, "127.0.0.1")
      const answer = received(socket)
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()))
      socket.write("GET /readyz HTTP/1.1\r\nHost: localhost\r\n")
      await sleep(100)
      server.child.kill("SIGTERM")
      await server.waitFor(/shutting down/)
      // New connections are refused from now on.
      await expect(fetch(`http://127.0.0.1:${port}/readyz`)).rejects.toThrow()
      socket.write("\r\n")
      const reply = await answer
      expect(reply).toMatch(/^HTTP\/1\.1 503 /)
      expect(reply).toMatch(/\r\ncontent-type: application\/problem\+json\r\n/i)
      expect(reply).toMatch(/\r\nretry-after: 1\r\n/i)
      expect(reply).toMatch(/\r\nconnection: close\r\n/i)
      const body = JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4)) as Record<string, unknown>
      expect(body).toMatchObject({ type: "about:blank", title: "Service Unavailable", status: 503 })
      expect(body["checks"]).toEqual({ redis: "disabled", draining: true })
      expect(await server.exited).toBe(0)
    } finally {
      if (server.child.exitCode === null) server.child.kill("SIGKILL")
    }
  })
})
