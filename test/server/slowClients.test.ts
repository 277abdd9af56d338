/**
 * Slow clients against the real entry point (`main.ts` in a child process): connections that
 * send their request headers a byte at a time are closed at the headers timeout, the server
 * answers others meanwhile, and open connections are capped.
 */
import { describe, expect, it } from "@effect/vitest"
import { Server } from "@liaison/server"
import { Effect, Exit, Layer } from "effect"
import * as net from "node:net"
import { listeningUrl, startServer } from "../fixtures/serverProcess.js"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A connection that sends a request line and headers one byte every 500 ms, never finishing them. */
const slowloris = (port: number) => {
  const socket = net.connect(port, "127.0.0.1")
  const opened = performance.now()
  let data = ""
  let timer: NodeJS.Timeout | undefined
  const closed = new Promise<{ readonly after: number; readonly data: string }>((resolve) => {
    socket.on("data", (chunk: Buffer) => (data += chunk.toString()))
    socket.on("error", () => undefined)
    socket.on("close", () => {
      clearInterval(timer)
      resolve({ after: performance.now() - opened, data })
    })
  })
  socket.once("connect", () => {
    const request = "GET /livez HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + "a".repeat(1000)
    let sent = 0
    timer = setInterval(() => {
      if (!socket.destroyed) socket.write(request[sent++ % request.length]!)
    }, 500)
  })
  return { socket, closed }
}

/** GET `/livez` on a new connection: its status and how long it took. */
const livez = async (url: string) => {
  const started = performance.now()
  const response = await fetch(`${url}/livez`, { headers: { connection: "close" }, signal: AbortSignal.timeout(5000) })
  await response.text()
  return { status: response.status, took: performance.now() - started }
}

describe("slow clients", () => {
  it("200 slow-header connections are closed at SERVER_HEADERS_TIMEOUT; /livez answers throughout", async () => {
    const server = startServer({ SERVER_HEADERS_TIMEOUT: "2 seconds" })
    try {
      const url = await listeningUrl(server)
      const port = Number(new URL(url).port)
      const clients = Array.from({ length: 200 }, () => slowloris(port))
      const all = Promise.all(clients.map((client) => client.closed))
      let done = false
      void all.then(() => (done = true))
      const probes: Array<{ readonly status: number; readonly took: number }> = []
      while (!done) {
        probes.push(await livez(url))
        await sleep(200)
      }
      const results = await all
      const longest = Math.max(...results.map((result) => result.after))
      const slowestProbe = Math.max(...probes.map((probe) => probe.took))
      console.log(
        `slowloris: 200 connections closed after at most ${(longest / 1000).toFixed(2)} s ` +
          `(headers timeout 2 s); ${probes.length} /livez probes meanwhile, slowest ${slowestProbe.toFixed(1)} ms`
      )
      expect(longest).toBeLessThan(6000)
      // Not closed before the timeout: they were closed for being slow, not refused.
      expect(Math.min(...results.map((result) => result.after))).toBeGreaterThan(1900)
      // Node answers 408 before closing.
      expect(results.filter((result) => !/^HTTP\/1\.1 408 /.test(result.data))).toEqual([])
      expect(probes.length).toBeGreaterThan(5)
      expect(probes.filter((probe) => probe.status !== 200)).toEqual([])
      expect(slowestProbe).toBeLessThan(1000)
    } finally {
      server.child.kill("SIGKILL")
      await server.exited
    }
  })

  it("a body sent slowly is cut off at SERVER_REQUEST_TIMEOUT", async () => {
    const server = startServer({ SERVER_HEADERS_TIMEOUT: "2 seconds", SERVER_REQUEST_TIMEOUT: "3 seconds" })
    try {
      const port = Number(new URL(await listeningUrl(server)).port)
      const socket = net.connect(port, "127.0.0.1")
      const opened = performance.now()
      let data = ""
      socket.write(
        "POST /webhooks/stripe HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
          "Content-Length: 1000\r\n\r\n"
      )
      const timer = setInterval(() => socket.destroyed || socket.write("{"), 500)
      const closed = new Promise<number>((resolve) => {
        socket.on("data", (chunk: Buffer) => (data += chunk.toString()))
        socket.on("error", () => undefined)
        socket.on("close", () => {
          clearInterval(timer)
          resolve(performance.now() - opened)
        })
      })
      const after = await closed
      console.log(`slow body: closed after ${(after / 1000).toFixed(2)} s (request timeout 3 s)`)
      expect(after).toBeGreaterThan(2900)
      expect(after).toBeLessThan(6000)
      expect(data).toMatch(/^HTTP\/1\.1 408 /)
    } finally {
      server.child.kill("SIGKILL")
      await server.exited
    }
  })

  it("connections over SERVER_MAX_CONNECTIONS are closed at once", async () => {
    const server = startServer({ SERVER_MAX_CONNECTIONS: "5", SERVER_HEADERS_TIMEOUT: "20 seconds" })
    try {
      const url = await listeningUrl(server)
      const port = Number(new URL(url).port)
      const held = Array.from({ length: 5 }, () => slowloris(port))
      await sleep(500)
      const extra = slowloris(port)
      const { after, data } = await extra.closed
      expect(after).toBeLessThan(1000)
      expect(data).toBe("")
      for (const client of held) expect(client.socket.destroyed).toBe(false)
      for (const client of held) client.socket.destroy()
      await Promise.all(held.map((client) => client.closed))
      await sleep(200)
      expect((await livez(url)).status).toBe(200)
    } finally {
      server.child.kill("SIGKILL")
      await server.exited
    }
  })

  it.effect("Server.layer refuses contradictory or invalid connection options", () =>
    Effect.gen(function*() {
      for (
        const [connections, option] of [
          [{ headersTimeout: "20 seconds", requestTimeout: "5 seconds" }, "connections.requestTimeout"],
          [{ maxConnections: 0 }, "connections.maxConnections"],
          [{ keepAliveTimeout: "0 millis" }, "connections.keepAliveTimeout"]
        ] as const
      ) {
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(Server.layer({ port: 0, connections }))))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(JSON.stringify(exit)).toContain(option)
      }
    }))

  it("refuses to start when SERVER_REQUEST_TIMEOUT is below SERVER_HEADERS_TIMEOUT, naming them", async () => {
    const server = startServer({ SERVER_HEADERS_TIMEOUT: "20 seconds", SERVER_REQUEST_TIMEOUT: "5 seconds" })
    expect(await server.exited).toBe(1)
    expect(server.output()).toContain("SERVER_REQUEST_TIMEOUT to be at least SERVER_HEADERS_TIMEOUT")
  })
})
