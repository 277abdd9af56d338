/**
 * A generated fuzz test over every operation the server documents in `/openapi.json`: garbage
 * path parameters, query strings, headers, content types and bodies (deep nesting, invalid
 * UTF-8, a multipart body without a boundary, truncated and mistyped JSON). Whatever arrives,
 * the answer is never a 5xx, every 4xx is `application/problem+json`, and the process lives.
 * The real entry point in a child process, on its built-in sandboxes.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { SandboxSecrets } from "@liaison/server"
import * as fc from "fast-check"
import * as NodeHttp from "node:http"
import { listeningUrl, startServer } from "../fixtures/serverProcess.js"

interface Operation {
  readonly method: string
  readonly path: string
  readonly query: ReadonlyArray<string>
}

/** Every operation of the OpenAPI document, with the names of its query parameters. */
interface OpenApiDocument {
  readonly paths: Record<string, Record<string, { readonly parameters?: ReadonlyArray<{ name: string; in: string }> }>>
}

const operationsOf = (document: OpenApiDocument): ReadonlyArray<Operation> =>
  Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path,
      query: (operation.parameters ?? []).filter((parameter) => parameter.in === "query").map((p) => p.name)
    }))
  )

/** Path parameter values: empty-ish, encoded control and traversal characters, huge, not UTF-8. */
const segment = fc.oneof(
  // Values a route accepts, so that most requests get past routing to the handlers.
  {
    arbitrary: fc.constantFrom("1", "2", "stripe", "github", "standard", "sendgrid", "generic", "bearer", "oauth2"),
    weight: 4
  },
  fc.constantFrom("0", "-1", "1e309", "NaN", "%00", "%2e%2e%2f%2e%2e", "%E0%A4%A", "%FF%FE", "null", "%20"),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.nat({ max: 3000 }).map((n) => "a".repeat(n)),
  fc.uuid()
)

const queryValue = fc.oneof(
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.constantFrom("%FF", "-5", "1e400", "true", "[]", "%00", "9".repeat(400))
)

const contentType = fc.constantFrom(
  undefined,
  "application/json",
  "application/json; charset=utf-16",
  "application/merge-patch+json",
  "text/plain",
  "multipart/form-data",
  "multipart/form-data; boundary=",
  "application/x-www-form-urlencoded",
  "application/xml",
  "application/octet-stream",
  "*/*",
  "application/json; charset=\u00ff"
)

/** Bodies: JSON of every shape, JSON of the wrong shape, and bytes that are not JSON at all. */
const body: fc.Arbitrary<Buffer | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 4 }).map((value) => Buffer.from(JSON.stringify(value))),
  fc.dictionary(
    fc.constantFrom(
      "name",
      "email",
      "password",
      "url",
      "events",
      "amount",
      "currency",
      "to",
      "from",
      "id",
      "__proto__"
    ),
    fc.jsonValue({ maxDepth: 2 })
  ).map((value) => Buffer.from(JSON.stringify(value))),
  fc.integer({ min: 100, max: 5000 }).map((depth) => Buffer.from("[".repeat(depth) + "]".repeat(depth))),
  fc.integer({ min: 100, max: 5000 }).map((depth) => Buffer.from("{\"a\":".repeat(depth) + "1" + "}".repeat(depth))),
  fc.constant(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x22, 0x7d])),
  fc.constant(Buffer.from("--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n")),
  fc.constant(Buffer.from("{\"email\": \"a@b.c\", ")),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.constant(Buffer.from("name=a&email=b%40c.d"))
)

const credential = fc.constantFrom<Record<string, string>>(
  { authorization: `Bearer ${SandboxSecrets.demoApiKey}` },
  { authorization: `Bearer ${SandboxSecrets.demoApiKey}` },
  { "x-api-key": SandboxSecrets.demoApiKey },
  {},
  { authorization: "Bearer " + "x".repeat(500) },
  { authorization: "Basic %%%" }
)

const extraHeaders = fc.dictionary(
  fc.constantFrom("idempotency-key", "accept", "if-none-match", "x-request-id", "traceparent", "stripe-signature"),
  fc.string({ maxLength: 60 }).map((value) => value.replace(/[^\x20-\x7e]/g, "?")),
  { maxKeys: 3 }
)

interface Answer {
  readonly status: number
  readonly contentType: string | undefined
  readonly text: string
}

const send = (
  base: URL,
  request: { method: string; path: string; headers: Record<string, string>; body: Buffer | undefined }
) =>
  new Promise<Answer>((resolve, reject) => {
    const headers: Record<string, string | number> = { ...request.headers, connection: "close" }
    if (request.body !== undefined) headers["content-length"] = request.body.length
    const outgoing = NodeHttp.request(
      { host: base.hostname, port: base.port, method: request.method, path: request.path, headers },
      (response) => {
        const chunks: Array<Buffer> = []
        response.on("data", (chunk: Buffer) => chunks.push(chunk))
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            contentType: response.headers["content-type"],
            text: Buffer.concat(chunks).toString()
          }))
        response.on("error", reject)
      }
    )
    outgoing.setTimeout(
      10_000,
      () => outgoing.destroy(new Error(`no answer in 10 s: ${request.method} ${request.path}`))
    )
    outgoing.on("error", reject)
    outgoing.end(request.body)
  })

describe("fuzz: every operation in /openapi.json", () => {
  let server: ReturnType<typeof startServer>
  let base: URL
  let operations: ReadonlyArray<Operation>
  beforeAll(async () => {
    server = startServer({})
    base = new URL(await listeningUrl(server))
    operations = operationsOf(await (await fetch(new URL("/openapi.json", base))).json() as OpenApiDocument)
  }, 60_000)
  afterAll(async () => {
    server.child.kill("SIGKILL")
    await server.exited
  })

  it("0 × 5xx; every 4xx is problem+json; the process lives", async () => {
    expect(operations.length).toBeGreaterThan(20)
    const statuses = new Map<number, number>()
    let requests = 0
    for (const operation of operations) {
      const request = fc.record({
        segments: fc.array(segment, { minLength: 4, maxLength: 4 }),
        query: fc.array(fc.tuple(fc.constantFrom(...operation.query, "x", "__proto__"), queryValue), { maxLength: 3 }),
        contentType,
        body,
        credential,
        extraHeaders,
        method: fc.constantFrom(operation.method, operation.method, operation.method, "OPTIONS", "PUT")
      })
      await fc.assert(
        fc.asyncProperty(request, async (input) => {
          let slot = 0
          const path = operation.path.replace(/\{[^}]+\}/g, () => input.segments[slot++ % 4]!)
          const query = input.query.map(([name, value]) => `${encodeURIComponent(name)}=${value}`).join("&")
          const headers: Record<string, string> = { ...input.credential, ...input.extraHeaders }
          if (input.contentType !== undefined) headers["content-type"] = input.contentType
          const answer = await send(base, {
            method: input.method,
            path: query === "" ? path : `${path}?${query}`,
            headers,
            body: input.body
          })
          requests++
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
          const where = `${input.method} ${path} → ${answer.status} ${answer.text.slice(0, 300)}`
          expect(answer.status, where).toBeLessThan(500)
          if (answer.status >= 400) {
            expect(answer.contentType, where).toBe("application/problem+json")
            const problem = JSON.parse(answer.text) as Record<string, unknown>
            expect(problem.status, where).toBe(answer.status)
            expect(typeof problem.title, where).toBe("string")
            expect(typeof problem.detail, where).toBe("string")
            expect(typeof problem.type, where).toBe("string")
          }
        }),
        { numRuns: 60 }
      )
    }
    console.log(
      `fuzz: ${requests} requests over ${operations.length} operations; statuses ${
        JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))
      }`
    )
    expect(server.child.exitCode).toBe(null)
    expect((await fetch(new URL("/livez", base))).status).toBe(200)
  }, 600_000)
})
