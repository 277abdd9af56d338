/**
 * What Node's own HTTP parser and timers reject never reaches the app; the server still answers
 * it as problem+json (RFC 9457), not with Node's empty 400/431/408. Real process, raw sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as net from "node:net"
import { listeningUrl, startServer } from "../fixtures/serverProcess.js"

/** Sends `request` (optionally without ending it) and collects everything until the server closes. */
const raw = (port: number, request: string, options: { readonly end?: boolean } = {}) =>
  new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    let data = ""
    socket.setTimeout(10_000, () => reject(new Error(`no close within 10 s; got ${JSON.stringify(data)}`)))
    socket.on("data", (chunk: Buffer) => (data += chunk.toString()))
    socket.on("error", () => undefined)
    socket.on("close", () => resolve(data))
    socket.write(request)
    if (options.end === true) socket.end()
  })

/** The status and the parsed problem of a raw HTTP/1.1 answer. */
const parse = (answer: string) => {
  const [head = "", body = ""] = answer.split("\r\n\r\n")
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1])
  const contentType = /\r\ncontent-type: ([^\r]+)/i.exec(head)?.[1]
  const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1])
  return { status, contentType, length, body, problem: JSON.parse(body) as Record<string, unknown> }
}

describe("Node-level client errors", () => {
  let server: ReturnType<typeof startServer>
  let port: number
  beforeAll(async () => {
    server = startServer({ SERVER_HEADERS_TIMEOUT: "1 second", SERVER_MAX_HEADER_SIZE: "8192" })
    port = Number(new URL(await listeningUrl(server)).port)
  })
  afterAll(async () => {
    server.child.kill("SIGKILL")
    await server.exited
  })

  const expectProblem = (answer: string, status: number) => {
    const parsed = parse(answer)
    expect(parsed.status).toBe(status)
    expect(parsed.contentType).toBe("application/problem+json")
    expect(parsed.length).toBe(Buffer.byteLength(parsed.body))
    expect(parsed.problem).toMatchObject({ type: "about:blank", status })
    expect(parsed.problem.title).toEqual(expect.any(String))
    expect(parsed.problem.detail).toEqual(expect.any(String))
  }

  it("a request that is not HTTP: 400 problem+json", async () => {
    expectProblem(await raw(port, "HELLO THERE\r\n\r\n"), 400)
  })

  it("an invalid header line: 400 problem+json", async () => {
    expectProblem(await raw(port, "GET /livez HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"), 400)
  })

  it("a chunked body with an invalid chunk size: 400 problem+json", async () => {
    const request = "POST /users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" +
      "Content-Type: application/json\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"
    expectProblem(await raw(port, request), 400)
  })

  it("headers over SERVER_MAX_HEADER_SIZE: 431 problem+json", async () => {
    const request = `GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(10_000)}\r\n\r\n`
    expectProblem(await raw(port, request), 431)
  })

  it("headers that never finish: 408 problem+json at SERVER_HEADERS_TIMEOUT", async () => {
    expectProblem(await raw(port, "GET /livez HTTP/1.1\r\nHost: x\r\n"), 408)
  })

  it("the server keeps answering after all of them", async () => {
    const answer = await raw(port, "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    expect(parse(answer).status).toBe(200)
  })
})
