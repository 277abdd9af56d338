/**
 * A real Prometheus (Debian's `prometheus` binary) scrapes the real demo server process every
 * second; the `liaison_*` series are read back through Prometheus's HTTP query API: the server's
 * duration histogram, the emails counter and the breaker's transitions after a trip.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as NodeHttp from "node:http"
import type * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { freePort } from "../fixtures/ports.js"
import { listeningUrl, startServer, watchOutput } from "../fixtures/serverProcess.js"
import { demoKey } from "./support.js"

/** Fails loudly when the binary is missing: `.ci/run` installs it (`apt-get install prometheus`). */
const prometheusBinary = (): string => {
  const found = spawnSync("sh", ["-c", "command -v prometheus"], { encoding: "utf8" }).stdout.trim()
  if (found === "") throw new Error("the prometheus binary is missing: apt-get install -y prometheus (see .ci/run)")
  return found
}

/** Prometheus on a free port, scraping `target` (host:port) every second, its storage in a temp dir. */
const startPrometheus = async (target: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "liaison-prometheus-"))
  fs.writeFileSync(
    path.join(dir, "prometheus.yml"),
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: liaison",
      "    metrics_path: /metrics",
      "    static_configs:",
      `      - targets: ["${target}"]`
    ].join("\n")
  )
  const port = await freePort()
  const child = spawn(prometheusBinary(), [
    `--config.file=${path.join(dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${path.join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`
  ], { stdio: ["ignore", "pipe", "pipe"] })
  const output = watchOutput(child)
  await output.waitFor(/Server is ready to receive web requests/)
  return {
    url: `http://127.0.0.1:${port}`,
    output: output.output,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM")
        await output.exited
      }
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

interface Series {
  readonly metric: Record<string, string>
  readonly value: readonly [number, string]
}

const query = async (prometheus: string, promql: string): Promise<ReadonlyArray<Series>> => {
  const response = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(promql)}`)
  const body = await response.json() as { status: string; data: { result: ReadonlyArray<Series> } }
  if (body.status !== "success") throw new Error(`query ${promql}: ${JSON.stringify(body)}`)
  return body.data.result
}

/** Polls the query until `ready` holds for its result (a scrape happens every second). */
const eventually = async (prometheus: string, promql: string, ready: (result: ReadonlyArray<Series>) => boolean) => {
  let last: ReadonlyArray<Series> = []
  for (let i = 0; i < 60; i++) {
    last = await query(prometheus, promql)
    if (ready(last)) return last
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  throw new Error(`${promql} never satisfied; last: ${JSON.stringify(last)}`)
}

/** An upstream that answers 500 to everything: the server's breaker trips on it. */
const failingUpstream = () =>
  new Promise<NodeHttp.Server>((resolve) => {
    const server = NodeHttp.createServer((_request, response) => {
      response.writeHead(500, { "content-type": "application/json" })
      response.end(JSON.stringify({ error: "down" }))
    })
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const valueOf = (series: Series | undefined): number => Number(series?.value[1])

describe("Prometheus scrapes the demo server", () => {
  it("reads liaison_* series back through the query API: server durations, emails, breaker transitions", async () => {
    const binary = prometheusBinary()
    expect(binary).not.toBe("")
    const upstream = await failingUpstream()
    const server = startServer({
      UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`,
      RETRY_MAX_ATTEMPTS: "1",
      BREAKER_FAILURE_THRESHOLD: "2",
      BREAKER_OPEN_DURATION: "60 seconds",
      EMAIL_RETRY_DELAY: "50 millis"
    })
    let prometheus: Awaited<ReturnType<typeof startPrometheus>> | undefined
    try {
      const url = await listeningUrl(server)
      // Two failures trip the breaker; the third call is refused without reaching the upstream.
      const statuses: Array<number> = []
      for (let i = 0; i < 3; i++) statuses.push((await fetch(`${url}/users/${i + 1}`)).status)
      expect(statuses).toEqual([502, 502, 503])
      const queued = await fetch(`${url}/emails`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${demoKey}` },
        body: JSON.stringify({
          from: { email: "shop@example.com" },
          to: [{ email: "ann@example.com" }],
          subject: "Hello",
          text: "Hi"
        })
      })
      expect(queued.status).toBe(202)

      prometheus = await startPrometheus(new URL(url).host)
      const up = await eventually(prometheus.url, "up{job=\"liaison\"}", (result) => valueOf(result[0]) === 1)
      expect(up).toHaveLength(1)

      const users = await eventually(
        prometheus.url,
        "sum by (method, route, status_class) (liaison_http_server_duration_seconds_count{route=\"/users/:id\"})",
        (result) => result.length > 0
      )
      expect(users.map((series) => series.metric)).toEqual([{
        method: "GET",
        route: "/users/:id",
        status_class: "5xx"
      }])
      expect(valueOf(users[0])).toBe(3)
      const buckets = await query(
        prometheus.url,
        "liaison_http_server_duration_seconds_bucket{route=\"/users/:id\",le=\"+Inf\"}"
      )
      expect(valueOf(buckets[0])).toBe(3)

      const emails = await eventually(
        prometheus.url,
        "liaison_emails_total",
        (result) => result.some((series) => series.metric.outcome === "sent")
      )
      expect(emails.map((series) => [series.metric.outcome, valueOf(series)])).toEqual([["sent", 1]])

      const transitions = await eventually(
        prometheus.url,
        "liaison_circuit_breaker_transitions_total",
        (result) => result.length > 0
      )
      expect(transitions).toHaveLength(1)
      expect(transitions[0]!.metric.to).toBe("open")
      expect(transitions[0]!.metric.key).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(valueOf(transitions[0])).toBe(1)
    } finally {
      await prometheus?.stop()
      if (server.child.exitCode === null) {
        server.child.kill("SIGTERM")
        await server.exited
      }
      upstream.closeAllConnections()
      upstream.close()
    }
  }, 120_000)
})
