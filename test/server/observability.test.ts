/**
 * The server's own telemetry: `GET /metrics` in Prometheus text (open on loopback, an API key
 * beyond it), the request id (taken from `x-request-id` when valid, returned in the header and in
 * problem+json bodies), JSON access-log lines carrying method, route template, status, duration,
 * request id and the caller's trace id, and `LOG_LEVEL`.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Prometheus, Telemetry } from "@liaison/server"
import { ConfigProvider, Effect, Either, LogLevel, Metric, MetricBoundaries } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import { freePort } from "../fixtures/ports.js"
import { listeningUrl, startServer } from "../fixtures/serverProcess.js"
import { call, serverLayer } from "./support.js"

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

describe("Prometheus.render", () => {
  it.effect("HELP and TYPE once per family; counters, gauges, histograms; label values escaped", () =>
    Effect.gen(function*() {
      const run = randomUUID().replace(/-/g, "_")
      const counter = Metric.counter(`test_${run}_total`, { description: "a counter\nover two lines" })
      yield* Metric.incrementBy(Metric.tagged(counter, "path", "a\"b\\c\nd"), 2)
      yield* Metric.increment(Metric.tagged(counter, "path", "plain"))
      yield* Metric.set(Metric.tagged(Metric.gauge(`test_${run}_gauge`), "state", "open"), 1)
      const histogram = Metric.histogram(`test_${run}_seconds`, MetricBoundaries.fromIterable([0.1, 1]))
      for (const value of [0.05, 0.5, 0.7, 3]) yield* Metric.update(histogram, value)
      yield* Metric.increment(Metric.counter(`test.${run}-dotted`))

      const lines = Prometheus.render().split("\n").filter((line) => line.includes(run))
      // Families sorted by name; within one, its label sets in any order.
      expect(lines.slice(0, 13)).toEqual([
        `# HELP test_${run}_dotted test_${run}_dotted`,
        `# TYPE test_${run}_dotted counter`,
        `test_${run}_dotted 1`,
        `# HELP test_${run}_gauge test_${run}_gauge`,
        `# TYPE test_${run}_gauge gauge`,
        `test_${run}_gauge{state="open"} 1`,
        `# HELP test_${run}_seconds test_${run}_seconds`,
        `# TYPE test_${run}_seconds histogram`,
        `test_${run}_seconds_bucket{le="0.1"} 1`,
        `test_${run}_seconds_bucket{le="1"} 3`,
        `test_${run}_seconds_bucket{le="+Inf"} 4`,
        `test_${run}_seconds_sum 4.25`,
        `test_${run}_seconds_count 4`
      ])
      expect(lines.slice(13, 15)).toEqual([
        `# HELP test_${run}_total a counter\\nover two lines`,
        `# TYPE test_${run}_total counter`
      ])
      expect([...lines.slice(15)].sort()).toEqual([
        `test_${run}_total{path="a\\"b\\\\c\\nd"} 2`,
        `test_${run}_total{path="plain"} 1`
      ])
    }))

  it("formats special values as Prometheus spells them", () => {
    expect(Prometheus.formatValue(Number.POSITIVE_INFINITY)).toBe("+Inf")
    expect(Prometheus.formatValue(Number.NEGATIVE_INFINITY)).toBe("-Inf")
    expect(Prometheus.formatValue(Number.NaN)).toBe("NaN")
    expect(Prometheus.formatValue(12n)).toBe("12")
    expect(Prometheus.escapeLabelValue("a\\b\"c\nd")).toBe("a\\\\b\\\"c\\nd")
  })
})

describe("Telemetry.logConfig", () => {
  const read = (env: Record<string, string>) =>
    Effect.either(Effect.withConfigProvider(Telemetry.logConfig, ConfigProvider.fromMap(new Map(Object.entries(env)))))

  it.effect("pretty at info by default; level names in any case; anything else refused at start-up", () =>
    Effect.gen(function*() {
      expect(yield* read({})).toEqual(Either.right({ format: "pretty", level: LogLevel.Info }))
      expect(yield* read({ LOG_FORMAT: "json", LOG_LEVEL: "WARNING" })).toEqual(
        Either.right({ format: "json", level: LogLevel.Warning })
      )
      expect(yield* read({ LOG_LEVEL: "off" })).toEqual(Either.right({ format: "pretty", level: LogLevel.None }))
      expect(Either.isLeft(yield* read({ LOG_LEVEL: "loud" }))).toBe(true)
      expect(Either.isLeft(yield* read({ LOG_FORMAT: "xml" }))).toBe(true)
    }))
})

describe("the server's metrics and request ids (in process, loopback)", () => {
  layer(serverLayer(), { excludeTestServices: true })((it) => {
    it.effect("GET /metrics needs no key on loopback and shows the request just answered", () =>
      Effect.gen(function*() {
        expect((yield* call("/health", { anonymous: true })).status).toBe(200)
        const metrics = yield* call("/metrics", { anonymous: true })
        expect(metrics.status).toBe(200)
        expect(metrics.headers.get("content-type")).toBe(Prometheus.contentType)
        expect(metrics.text).toContain("# TYPE liaison_http_server_duration_seconds histogram")
        expect(metrics.text).toMatch(
          /^liaison_http_server_duration_seconds_count\{method="GET",route="\/health",status_class="2xx"\} [1-9]\d*$/m
        )
        expect(metrics.text).toMatch(
          /^liaison_http_server_duration_seconds_bucket\{method="GET",route="\/health",status_class="2xx",le="\+Inf"\} [1-9]/m
        )
        // An unknown path is never a label: it is "unmatched".
        expect((yield* call("/no/such/path/42", { anonymous: true })).status).toBe(404)
        const after = (yield* call("/metrics", { anonymous: true })).text
        expect(after).toContain("route=\"unmatched\",status_class=\"4xx\"")
        expect(after).not.toContain("/no/such/path/42")
      }))

    it.effect("a valid x-request-id comes back; an invalid one is replaced by a new id", () =>
      Effect.gen(function*() {
        const given = `req-${randomUUID()}`
        expect((yield* call("/health", { headers: { "x-request-id": given } })).headers.get("x-request-id")).toBe(
          given
        )
        for (const bad of ["has space", "x".repeat(129), "quote\"d", ""]) {
          const reply = yield* call("/health", { headers: { "x-request-id": bad } })
          expect(reply.headers.get("x-request-id")).toMatch(uuid)
        }
        expect((yield* call("/health")).headers.get("x-request-id")).toMatch(uuid)
      }))

    it.effect("a problem+json body carries the request id", () =>
      Effect.gen(function*() {
        const given = `problem-${randomUUID()}`
        const reply = yield* call("/no-such-route", { headers: { "x-request-id": given } })
        expect(reply.status).toBe(404)
        expect(reply.headers.get("content-type")).toBe("application/problem+json")
        expect(reply.headers.get("x-request-id")).toBe(given)
        expect((reply.json as { requestId: string }).requestId).toBe(given)
        const unauthorized = yield* call("/resilience", { anonymous: true, headers: { "x-request-id": given } })
        expect(unauthorized.status).toBe(401)
        expect((unauthorized.json as { requestId: string }).requestId).toBe(given)
      }))
  })
})

/** The operator's own key (sandbox secrets otherwise, allowed beyond loopback by LIAISON_SANDBOX). */
const operatorKey = "operator-own-api-key"

const stop = async (server: ReturnType<typeof startServer>) => {
  if (server.child.exitCode === null) {
    server.child.kill("SIGTERM")
    await server.exited
  }
}

interface AccessLine {
  readonly level: string
  readonly message: string
  readonly access: boolean
  readonly method: string
  readonly route: string
  readonly status: number
  readonly duration_ms: number
  readonly request_id: string
  readonly trace_id: string
}

describe("the real entry point", () => {
  it("LOG_FORMAT=json: every line is JSON; one access line per request with its fields", async () => {
    const server = startServer({ LOG_FORMAT: "json" })
    try {
      const url = await listeningUrl(server)
      const traceId = randomBytes(16).toString("hex")
      const requestId = `access-${randomUUID()}`
      const reply = await fetch(`${url}/users/1?page=secret-query`, {
        headers: { "x-request-id": requestId, traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` }
      })
      expect(reply.status).toBe(200)
      expect(reply.headers.get("x-request-id")).toBe(requestId)
      expect((await fetch(`${url}/no-such-route`)).status).toBe(404)
      await server.waitFor(/"route":"unmatched"/)

      const lines = server.output().trim().split("\n")
      const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
      for (const line of parsed) {
        expect(typeof line.timestamp).toBe("string")
        expect(typeof line.level).toBe("string")
        expect(typeof line.message).toBe("string")
      }
      const access = parsed.filter((line) => line.access === true) as unknown as Array<AccessLine>
      const user = access.find((line) => line.request_id === requestId)
      expect(user).toMatchObject({
        level: "INFO",
        method: "GET",
        route: "/users/:id",
        status: 200,
        trace_id: traceId
      })
      expect(user!.duration_ms).toBeGreaterThanOrEqual(0)
      expect(user!.message).toBe(`GET /users/:id 200 ${user!.duration_ms.toFixed(1)}ms`)
      const unmatched = access.filter((line) => line.route === "unmatched")
      expect(unmatched).toHaveLength(1)
      expect(unmatched[0]!.status).toBe(404)
      expect(unmatched[0]!.request_id).toMatch(uuid)
      expect(unmatched[0]!.trace_id).toMatch(/^[0-9a-f]{32}$/)
      expect(server.output()).not.toContain("secret-query")
    } finally {
      await stop(server)
    }
  }, 60_000)

  it(
    "beyond loopback /metrics answers 401 without the operator's key, 200 with it; LOG_LEVEL=warning drops access lines",
    async () => {
      const port = await freePort()
      const server = startServer({
        API_KEYS: operatorKey,
        HOST: "0.0.0.0",
        PORT: String(port),
        LIAISON_SANDBOX: "true",
        LOG_LEVEL: "warning"
      })
      try {
        const url = `http://127.0.0.1:${port}`
        // No "listening" line at this level: wait for the probe instead.
        for (let i = 0; i < 300 && !(await fetch(`${url}/livez`).then((r) => r.ok, () => false)); i++) {
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        const anonymous = await fetch(`${url}/metrics`)
        expect(anonymous.status).toBe(401)
        expect(anonymous.headers.get("content-type")).toBe("application/problem+json")
        expect((await fetch(`${url}/metrics`, { headers: { authorization: "Bearer liaison-demo-api-key" } })).status)
          .toBe(401)
        const keyed = await fetch(`${url}/metrics`, { headers: { "x-api-key": operatorKey } })
        expect(keyed.status).toBe(200)
        expect(await keyed.text()).toContain("# TYPE liaison_http_server_duration_seconds histogram")
        await stop(server)
        expect(server.output()).not.toMatch(/GET \/metrics (200|401)|listening on/)
      } finally {
        await stop(server)
      }
    },
    60_000
  )
})
