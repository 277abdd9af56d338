/**
 * Graceful shutdown of the real entry point: `main.ts` run by tsx in a child process,
 * configured by the environment, sent SIGTERM while a request is in flight.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as NodeHttp from "node:http"
import type * as net from "node:net"
import * as path from "node:path"
import { watchOutput } from "../fixtures/serverProcess.js"

const root = path.join(import.meta.dirname, "..", "..")
const tsx = path.join(root, "node_modules", "tsx", "dist", "cli.mjs")
const main = path.join(root, "packages", "server", "src", "main.ts")

/** A promise and the function that resolves it. */
const latch = <A = void>() => {
  let resolve!: (value: A) => void
  const promise = new Promise<A>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** GET with node:http (not fetch), to see the `connection` header. */
const get = (url: string) =>
  new Promise<{ readonly status: number; readonly connection: string | undefined; readonly body: string }>(
    (resolve, reject) => {
      NodeHttp.get(url, { agent: new NodeHttp.Agent({ keepAlive: true }) }, (res) => {
        let body = ""
        res.on("data", (chunk: Buffer) => (body += chunk.toString()))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }))
      }).on("error", reject)
    }
  )

describe("main", () => {
  it("on SIGTERM stops accepting connections, finishes the request in flight, then exits 0", async () => {
    const arrived = latch()
    const release = latch()
    const upstream = NodeHttp.createServer((req, res) => {
      if (req.url !== "/users/1") {
        res.writeHead(404).end()
        return
      }
      arrived.resolve()
      void release.promise.then(() => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({
          id: 1,
          username: "slow",
          email: "slow@example.com",
          full_name: null,
          active: true,
          created_at: "2024-01-01T00:00:00.000Z"
        }))
      })
    })
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve))
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`

    const { HTTP_BASE_URL: _base, NODE_OPTIONS: _options, REDIS_URL: _redis, ...env } = process.env
    const child = spawn(process.execPath, [tsx, "--conditions=@liaison/source", main], {
      cwd: root,
      env: { ...env, PORT: "0", HOST: "127.0.0.1", UPSTREAM_URL: upstreamUrl, SHUTDOWN_TIMEOUT: "20 seconds" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const child_ = watchOutput(child)
    try {
      const [, url] = await child_.waitFor(/listening on (http:\/\/[\d.]+:\d+)/)
      expect(child_.output()).toContain(`upstream: ${upstreamUrl}`)

      const inFlight = get(`${url}/users/1`)
      await arrived.promise
      child.kill("SIGTERM")
      await child_.waitFor(/shutting down/)

      // No new connections once shutdown has begun...
      await expect(fetch(`${url}/health`)).rejects.toThrow()
      // ...but the request in flight is answered, and its connection closed after it.
      release.resolve()
      const reply = await inFlight
      expect(reply.status).toBe(200)
      expect(JSON.parse(reply.body)).toMatchObject({ id: 1, username: "slow" })
      expect(reply.connection).toBe("close")

      expect(await child_.exited).toBe(0)
    } finally {
      release.resolve()
      if (child.exitCode === null) child.kill("SIGKILL")
      upstream.closeAllConnections()
      await new Promise((resolve) => upstream.close(resolve))
    }
  })

  it("logs where the built-in sandbox is when UPSTREAM_URL is not set", async () => {
    const { HTTP_BASE_URL: _base, NODE_OPTIONS: _options, REDIS_URL: _redis, UPSTREAM_URL: _up, ...env } = process.env
    const child = spawn(process.execPath, [tsx, "--conditions=@liaison/source", main], {
      cwd: root,
      env: { ...env, PORT: "0", HOST: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const child_ = watchOutput(child)
    try {
      const [, sandbox] = await child_.waitFor(
        /no UPSTREAM_URL: using the built-in sandbox users upstream at (http:\/\/[\d.]+:\d+)/
      )
      const [, url] = await child_.waitFor(/listening on (http:\/\/[\d.]+:\d+)/)
      const user = await fetch(`${url}/users/1`).then((response) => response.json())
      expect(user).toMatchObject({ id: 1, username: "user01" })
      // The sandbox is this process's own, on loopback.
      expect(sandbox).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      // Without REDIS_URL it says what a restart loses.
      expect(child_.output()).toContain("queued emails, webhook events and deliveries do not survive a restart")
      child.kill("SIGTERM")
      expect(await child_.exited).toBe(0)
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL")
    }
  })

  it("a bad setting fails at startup, naming it", async () => {
    const { NODE_OPTIONS: _options, REDIS_URL: _redis, ...env } = process.env
    const child = spawn(process.execPath, [tsx, "--conditions=@liaison/source", main], {
      cwd: root,
      env: { ...env, PORT: "70000" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const child_ = watchOutput(child)
    expect(await child_.exited).toBe(1)
    expect(child_.output()).toContain("PORT")
  })
})
