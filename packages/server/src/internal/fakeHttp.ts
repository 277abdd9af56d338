/**
 * What the fake Stripe and SendGrid servers share: a `node:http` listener, a log of every request,
 * and faults to inject (an error answer, a dropped connection, an answer lost after the request
 * was processed), once or until recovery.
 */
import { randomBytes } from "node:crypto"
import * as http from "node:http"
import type * as net from "node:net"

/** A request as the fake received it. */
export interface RecordedRequest {
  readonly method: string
  /** The path, without the query string. */
  readonly path: string
  /** The raw query string, without `?`. */
  readonly query: string
  /** Lowercase names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>
  /** The body as UTF-8 text. */
  readonly body: string
}

/**
 * A misbehaviour, consumed by one request (or every request during an outage):
 *
 * - `Respond`: answer this instead of processing the request;
 * - `Drop`: close the connection without an answer, the request not processed;
 * - `DropAfterProcessing`: process the request (its effects happen), then close the connection
 *   without an answer: the client cannot tell whether it happened.
 */
export type Fault =
  | {
    readonly _tag: "Respond"
    readonly status: number
    readonly body?: unknown
    readonly headers?: Readonly<Record<string, string>> | undefined
  }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "DropAfterProcessing" }

/** An answer a route computed. */
export interface Answer {
  readonly status: number
  /** Serialized as JSON; `undefined` for an empty body. */
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** Controls shared by both fakes. */
export interface FakeControls {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string
  /** Every request received so far, oldest first (faulted ones included). */
  readonly requests: () => ReadonlyArray<RecordedRequest>
  /** Queues faults: each is consumed by one request, in order. */
  readonly inject: (...faults: ReadonlyArray<Fault>) => void
  /** Every request meets this fault until {@link recover}. */
  readonly outage: (fault: Fault) => void
  /** Ends an outage and drops the faults still queued. */
  readonly recover: () => void
  readonly close: () => Promise<void>
}

/** A random id of `length` letters and digits. */
export const randomId = (length: number): string => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  const bytes = randomBytes(length)
  let id = ""
  for (const byte of bytes) id += alphabet[byte % alphabet.length]
  return id
}

const headerRecord = (headers: http.IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(", ") : value ?? ""])
  )

/** Reads the body up to `limit` bytes; `undefined` when it is larger. */
const readBody = async (req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> => {
  const chunks: Array<Buffer> = []
  let size = 0
  for await (const chunk of req) {
    const buffer = chunk instanceof Buffer ? chunk : Buffer.from(String(chunk))
    size += buffer.length
    if (size > limit) {
      req.resume()
      return undefined
    }
    chunks.push(buffer)
  }
  return Buffer.concat(chunks)
}

const write = (res: http.ServerResponse, answer: Answer, extra: Readonly<Record<string, string>>): void => {
  const headers: Record<string, string> = { ...extra, ...answer.headers }
  if (answer.body === undefined) {
    res.writeHead(answer.status, { ...headers, "content-length": "0" })
    res.end()
    return
  }
  const text = JSON.stringify(answer.body)
  res.writeHead(answer.status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    ...headers
  })
  res.end(text)
}

/** Settings of {@link serveFake}. */
export interface ServeOptions {
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** Largest body read; a larger one gets `tooLarge`. */
  readonly maxBodyBytes: number
  readonly tooLarge: Answer
  /** Headers on every answer, e.g. a fresh `Request-Id`. */
  readonly commonHeaders: () => Readonly<Record<string, string>>
  /** Answers a request (its effects happen here). */
  readonly handle: (request: RecordedRequest) => Answer
}

/**
 * Listens on a free port (default) of `127.0.0.1`, logging each request and serving faults
 * before `handle`. Closing destroys every open connection.
 */
export const serveFake = async (options: ServeOptions): Promise<FakeControls> => {
  const log: Array<RecordedRequest> = []
  const queue: Array<Fault> = []
  let outage: Fault | undefined
  const sockets = new Set<net.Socket>()

  const server = http.createServer((req, res) => {
    void (async () => {
      const headers = headerRecord(req.headers)
      const [path = "/", query = ""] = (req.url ?? "/").split(/\?(.*)/s, 2)
      const body = await readBody(req, options.maxBodyBytes)
      const recorded: RecordedRequest = {
        method: req.method ?? "GET",
        path,
        query,
        headers,
        body: body === undefined ? "" : body.toString("utf8")
      }
      log.push(recorded)
      const common = options.commonHeaders()
      if (body === undefined) return write(res, options.tooLarge, common)
      const fault = outage ?? queue.shift()
      if (fault?._tag === "Drop") return req.socket.destroy()
      if (fault?._tag === "Respond") return write(res, fault, common)
      const answer = options.handle(recorded)
      if (fault?._tag === "DropAfterProcessing") return req.socket.destroy()
      write(res, answer, common)
    })().catch(() => res.destroy())
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve())
  })
  const address = server.address() as net.AddressInfo
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address
  return {
    url: `http://${host}:${address.port}`,
    requests: () => [...log],
    inject: (...faults) => {
      queue.push(...faults)
    },
    outage: (fault) => {
      outage = fault
    },
    recover: () => {
      outage = undefined
      queue.length = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}
