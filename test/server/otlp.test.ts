/**
 * OTLP: the real demo server process exports its spans over OTLP/HTTP (JSON) to a receiver the
 * test runs; the received spans decode and form the expected tree — the caller's trace continued
 * by the server span, the upstream call under it (the policy's `liaison.attempt`, or `http.client GET`
 * outside a policy) — and no attribute holds the query string the caller sent.
 */
import { describe, expect, it } from "@effect/vitest"
import { randomBytes } from "node:crypto"
import * as NodeHttp from "node:http"
import type * as net from "node:net"
import { listeningUrl, startServer } from "../fixtures/serverProcess.js"

interface Attribute {
  readonly key: string
  readonly value: Record<string, unknown>
}

interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly kind: number
  readonly attributes: ReadonlyArray<Attribute>
}

interface TracesRequest {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<Attribute> }
    readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<OtlpSpan> }>
  }>
}

/** A plain OTLP/HTTP receiver: every `/v1/traces` body decoded as OTLP JSON; other signals accepted. */
const startReceiver = () =>
  new Promise<{
    url: string
    spans: Array<OtlpSpan>
    services: Set<string>
    contentTypes: Set<string>
    server: NodeHttp.Server
  }>((resolve) => {
    const spans: Array<OtlpSpan> = []
    const contentTypes = new Set<string>()
    const services = new Set<string>()
    const server = NodeHttp.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        if (request.url === "/v1/traces") {
          contentTypes.add(String(request.headers["content-type"]))
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as TracesRequest
          for (const resource of body.resourceSpans) {
            for (const attribute of resource.resource.attributes) {
              if (attribute.key === "service.name") services.add(String(attribute.value.stringValue))
            }
            for (const scope of resource.scopeSpans) spans.push(...scope.spans)
          }
        }
        response.writeHead(200, { "content-type": "application/json" })
        response.end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        spans,
        services,
        contentTypes,
        server
      }))
  })

const attribute = (span: OtlpSpan, key: string): unknown => {
  const value = span.attributes.find((a) => a.key === key)?.value
  return value === undefined ? undefined : value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue
}

/** The span tree of one trace as indented lines, for the report and for the assertion on shape. */
const tree = (spans: ReadonlyArray<OtlpSpan>, root: string, depth = 0): Array<string> =>
  spans.filter((span) => span.parentSpanId === root).flatMap((span) => [
    `${"  ".repeat(depth)}${span.name}`,
    ...tree(spans, span.spanId, depth + 1)
  ])

const ancestors = (spans: ReadonlyArray<OtlpSpan>, span: OtlpSpan): Array<string> => {
  const parent = spans.find((candidate) => candidate.spanId === span.parentSpanId)
  return parent === undefined ? [] : [parent.name, ...ancestors(spans, parent)]
}

describe("OTLP export", () => {
  it(
    "the server's spans arrive at an OTLP/HTTP receiver and form the call's tree under the caller's trace",
    async () => {
      const receiver = await startReceiver()
      const server = startServer({
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_SERVICE_NAME: "liaison-otlp-test",
        OTEL_BSP_SCHEDULE_DELAY: "200"
      })
      try {
        const url = await listeningUrl(server)
        const traceId = randomBytes(16).toString("hex")
        const callerSpan = randomBytes(8).toString("hex")
        const reply = await fetch(`${url}/users/1?token=caller-secret-query`, {
          headers: { traceparent: `00-${traceId}-${callerSpan}-01` }
        })
        expect(reply.status).toBe(200)
        const mine = () => receiver.spans.filter((span) => span.traceId === traceId)
        // The upstream request's span: the transport's \`http.client GET\`, or within a policy the
        // attempt that stands for it; either carries OpenTelemetry's HTTP client attributes.
        const isRequest = (span: OtlpSpan) => span.attributes.some((a) => a.key === "url.full")
        for (let i = 0; i < 100 && !mine().some(isRequest); i++) {
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        const spans = mine()
        const lines = tree(spans, callerSpan)
        console.log(`span tree under the caller's span ${callerSpan}:\n${lines.join("\n")}`)

        const roots = spans.filter((span) => span.parentSpanId === callerSpan)
        expect(roots.map((span) => span.name)).toEqual(["http.server GET"])
        const root = roots[0]!
        expect(root.kind).toBe(2) // SPAN_KIND_SERVER
        expect(attribute(root, "http.route")).toBe("/users/:id")
        expect(attribute(root, "http.request.method")).toBe("GET")
        expect(Number(attribute(root, "http.response.status_code"))).toBe(200)

        const client = spans.filter(isRequest)
        expect(client.length).toBeGreaterThanOrEqual(1)
        for (const span of client) {
          expect(ancestors(spans, span)).toContain("http.server GET")
          expect(span.kind).toBe(3) // SPAN_KIND_CLIENT
          expect(attribute(span, "http.request.method")).toBe("GET")
        }
        // When the policy's spans exist, the request's span is an attempt of a call.
        const call = spans.find((span) => span.name === "liaison.call")
        if (call !== undefined) {
          expect(client.map((span) => span.name)).toEqual(client.map(() => "liaison.attempt"))
          expect(ancestors(spans, client[0]!)).toContain("liaison.call")
        }

        expect(receiver.services).toEqual(new Set(["liaison-otlp-test"]))
        expect([...receiver.contentTypes].every((type) => type.startsWith("application/json"))).toBe(true)
        // Nothing the caller put in the query string reached any span, and no span carries a URL query.
        for (const span of receiver.spans) {
          expect(JSON.stringify(span.attributes)).not.toContain("caller-secret-query")
          expect(span.attributes.map((a) => a.key)).not.toContain("url.query")
        }
      } finally {
        if (server.child.exitCode === null) {
          server.child.kill("SIGTERM")
          await server.exited
        }
        receiver.server.closeAllConnections()
        receiver.server.close()
      }
    },
    60_000
  )
})
