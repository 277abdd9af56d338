import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Http, HttpError } from "@liaison/core"
import {
  Chunk,
  ConfigProvider,
  Duration,
  Effect,
  Fiber,
  Layer,
  Option,
  Redacted,
  Ref,
  Schema,
  Stream,
  TestClock
} from "effect"
import type { ChaosUpstream } from "../fixtures/chaos.js"
import { startChaosUpstream, tlsCa } from "../fixtures/chaos.js"
import { freePort } from "../fixtures/ports.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"

let chaos: ChaosUpstream
beforeAll(async () => {
  chaos = await startChaosUpstream()
})
afterAll(() => chaos.close())

const Echo = Schema.Struct({
  method: Schema.String,
  path: Schema.String,
  rawQuery: Schema.String,
  headers: Schema.Record({ key: Schema.String, value: Schema.String }),
  body: Schema.String,
  httpVersion: Schema.String
})

const client = (options: Http.Options = {}) => Http.layer({ baseUrl: chaos.url, ...options })
const run = <A, E>(effect: Effect.Effect<A, E, Http.Http>, options: Http.Options = {}) =>
  Effect.provide(effect, client(options))

/** Waits, in real time, until the upstream has seen `count` requests on a route. */
const seen = (route: string, count = 1) =>
  Effect.promise(async () => {
    while (chaos.requestCount(route) < count) await new Promise((resolve) => setTimeout(resolve, 5))
  })

/** Waits, in real time, until a counter stops moving: the wire is stalled. */
const settled = (counter: Ref.Ref<number>) =>
  Effect.gen(function*() {
    let last = -1
    for (;;) {
      const now = yield* Ref.get(counter)
      if (now === last && now > 0) return
      last = now
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 150)))
    }
  })

describe("Http requests", () => {
  it.effect("GET decodes a JSON body with a Schema", () =>
    Effect.gen(function*() {
      const users = yield* Http.json(
        HttpClientRequest.get("/json?size=3"),
        Schema.Array(Schema.Struct({ id: Schema.Number, name: Schema.String }))
      )
      expect(users).toEqual([1, 2, 3].map((id) => ({ id, name: `user-${id}` })))
    }).pipe(run))

  it.effect("GET sends a Schema-typed filter as the query", () =>
    Effect.gen(function*() {
      const Filter = Schema.Struct({
        name: Schema.optional(Schema.String),
        email: Schema.optional(Schema.String),
        active: Schema.optional(Schema.Boolean),
        ids: Schema.optional(Schema.Array(Schema.Number)),
        page: Schema.Number
      })
      const echo = yield* HttpClientRequest.get("/echo").pipe(
        Http.withQuery(Filter, { name: "Ann Lee", active: true, ids: [1, 2], page: 1 }),
        Effect.flatMap(Http.json(Echo))
      )
      expect(echo.method).toBe("GET")
      expect(echo.rawQuery).toBe("name=Ann+Lee&active=true&ids=1&ids=2&page=1")
    }).pipe(run))

  it.effect("POST and PUT send JSON encoded with the Schema", () =>
    Effect.gen(function*() {
      const User = Schema.Struct({ username: Schema.String, born: Schema.DateFromString })
      const value = { username: "ann", born: new Date("2000-01-01T00:00:00.000Z") }
      for (const request of [HttpClientRequest.post("/echo"), HttpClientRequest.put("/echo/1")]) {
        const echo = yield* request.pipe(Http.withJson(User, value), Effect.flatMap(Http.json(Echo)))
        expect(echo.method).toBe(request.method)
        expect(echo.headers["content-type"]).toBe("application/json")
        expect(JSON.parse(echo.body)).toEqual({ username: "ann", born: "2000-01-01T00:00:00.000Z" })
      }
    }).pipe(run))

  it.effect("PATCH sends only the fields that are set; null clears a field", () =>
    Effect.gen(function*() {
      const Update = Schema.Struct({
        email: Schema.optional(Schema.String),
        full_name: Schema.optional(Schema.NullOr(Schema.String)),
        active: Schema.optional(Schema.Boolean)
      })
      const echo = yield* HttpClientRequest.patch("/echo/1").pipe(
        Http.withJson(Update, { email: undefined, full_name: null, active: false }),
        Effect.flatMap(Http.json(Echo))
      )
      expect(echo.body).toBe(`{"full_name":null,"active":false}`)
    }).pipe(run))

  it.effect("DELETE: 204 is None, a 200 JSON body is Some", () =>
    Effect.gen(function*() {
      const none = yield* Http.jsonOrEmpty(HttpClientRequest.del("/status/204"), Echo)
      expect(none).toEqual(Option.none())
      const some = yield* Http.jsonOrEmpty(HttpClientRequest.del("/echo/7"), Echo)
      expect(Option.map(some, (echo) => [echo.method, echo.path])).toEqual(Option.some(["DELETE", "/echo/7"]))
    }).pipe(run))

  it.effect("form-urlencoded bodies", () =>
    Effect.gen(function*() {
      const Form = Schema.Struct({ grant_type: Schema.String, scope: Schema.Array(Schema.String) })
      const echo = yield* HttpClientRequest.post("/echo").pipe(
        Http.withForm(Form, { grant_type: "client_credentials", scope: ["read", "write all"] }),
        Effect.flatMap(Http.json(Echo))
      )
      expect(echo.headers["content-type"]).toBe("application/x-www-form-urlencoded")
      expect(echo.body).toBe("grant_type=client_credentials&scope=read&scope=write+all")
    }).pipe(run))

  it.effect("text, bytes and an empty body", () =>
    Effect.gen(function*() {
      expect(yield* Http.text(HttpClientRequest.get("/text"))).toBe("hello")
      const bytes = yield* Http.bytes(HttpClientRequest.get("/huge?bytes=100000"))
      expect(bytes.length).toBe(100000)
      expect(bytes.every((byte, i) => byte === i % 251)).toBe(true)
      yield* Http.empty(HttpClientRequest.get("/status/204"))
    }).pipe(run))

  it.effect("XML decoded with a Schema; malformed XML is a DecodeError", () =>
    Effect.gen(function*() {
      const Users = Schema.Struct({
        users: Schema.Struct({
          user: Schema.Array(Schema.Struct({ "@_id": Schema.NumberFromString, name: Schema.String }))
        })
      })
      const doc = yield* Http.xml(HttpClientRequest.get("/xml"), Users)
      expect(doc.users.user).toEqual([{ "@_id": 1, name: "Ann" }, { "@_id": 2, name: "Bob" }])
      const error = yield* Http.xml(HttpClientRequest.get("/status/200?body=%3Cusers%3E%3Cuser%3E"), Users).pipe(
        Effect.flip
      )
      expect(error._tag).toBe("DecodeError")
      expect(error.message).toContain("invalid XML")
    }).pipe(run))
})

describe("Http errors", () => {
  it.effect("a body of the wrong shape, or not JSON, is a DecodeError", () =>
    Effect.gen(function*() {
      const wrong = yield* Http.json(HttpClientRequest.get("/json"), Schema.Struct({ total: Schema.Number })).pipe(
        Effect.flip
      )
      expect(wrong._tag).toBe("DecodeError")
      const notJson = yield* Http.json(HttpClientRequest.get("/text"), Schema.Unknown).pipe(Effect.flip)
      expect(notJson).toMatchObject({ _tag: "DecodeError", status: 200 })
      expect(notJson.message).toContain("invalid JSON")
      expect(HttpError.toHttpStatus(notJson)).toBe(502)
    }).pipe(run))

  it.effect("a non-2xx status is a StatusError with headers and a bounded body", () =>
    Effect.gen(function*() {
      const long = "x".repeat(10_000)
      const error = yield* Http.text(
        HttpClientRequest.get(`/status/503?body=${long}&header=x-request-id:abc&header=set-cookie:s=1`)
      ).pipe(Effect.flip)
      expect(error._tag).toBe("StatusError")
      if (error._tag !== "StatusError") return
      expect(error.status).toBe(503)
      expect(error.body).toBe("x".repeat(100))
      expect(error.headers["x-request-id"]).toBe("abc")
      expect(error.headers["set-cookie"]).toBeUndefined()
      expect(HttpError.toHttpStatus(error)).toBe(502)
      const notFound = yield* Http.text(HttpClientRequest.get("/status/404")).pipe(Effect.flip)
      expect(HttpError.toHttpStatus(notFound)).toBe(404)
    }).pipe(Effect.provide(client({ maxErrorBodyBytes: 100 }))))

  it.effect("errors never carry the query string", () =>
    Effect.gen(function*() {
      const error = yield* Http.text(HttpClientRequest.get("/status/500?api_key=sup3rs3cret")).pipe(Effect.flip)
      expect(error.message).not.toContain("sup3rs3cret")
      expect(JSON.stringify(error)).not.toContain("sup3rs3cret")
    }).pipe(run))

  it.effect("a refused connection is a TransportError (503 at a server)", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const error = yield* Http.text(HttpClientRequest.get(`http://127.0.0.1:${port}/`)).pipe(
        Effect.flip,
        Effect.provide(Http.layer())
      )
      expect(error).toMatchObject({ _tag: "TransportError", reason: "refused", code: "ECONNREFUSED" })
      expect(HttpError.toHttpStatus(error)).toBe(503)
    }))

  it.effect("a reset before or during the response is a TransportError reset (502 at a server)", () =>
    Effect.gen(function*() {
      const before = yield* Http.text(HttpClientRequest.get("/reset")).pipe(Effect.flip)
      expect(before).toMatchObject({ _tag: "TransportError", reason: "reset" })
      expect(HttpError.toHttpStatus(before)).toBe(502)
      const during = yield* Http.bytes(HttpClientRequest.get("/reset?after=headers")).pipe(Effect.flip)
      expect(during).toMatchObject({ _tag: "TransportError", reason: "reset" })
    }).pipe(run))

  it.effect("an unresolvable host is a TransportError dns", () =>
    Effect.gen(function*() {
      const error = yield* Http.text(HttpClientRequest.get("http://no-such-host.invalid/")).pipe(
        Effect.flip,
        Effect.provide(Http.layer())
      )
      expect(error).toMatchObject({ _tag: "TransportError", reason: "dns" })
    }))

  it.effect("a body over maxBodyBytes is a DecodeError, not an out-of-memory", () =>
    Effect.gen(function*() {
      const error = yield* Http.bytes(HttpClientRequest.get("/huge?bytes=5000")).pipe(Effect.flip)
      expect(error._tag).toBe("DecodeError")
      expect(error.message).toContain("exceeds 1000 bytes")
    }).pipe(Effect.provide(client({ maxBodyBytes: 1000 }))))

  it("every error maps to a server status", () => {
    const common = { method: "GET", url: "http://u/x" }
    const cases: Array<[HttpError.HttpError, number]> = [
      [new HttpError.TimeoutError({ ...common, phase: "read", timeoutMillis: 1 }), 504],
      [new HttpError.TransportError({ ...common, reason: "refused" }), 503],
      [new HttpError.TransportError({ ...common, reason: "dns" }), 503],
      [new HttpError.TransportError({ ...common, reason: "reset" }), 502],
      [new HttpError.TransportError({ ...common, reason: "tls" }), 502],
      [new HttpError.StatusError({ ...common, status: 409, headers: {}, body: "" }), 409],
      [new HttpError.StatusError({ ...common, status: 500, headers: {}, body: "" }), 502],
      [new HttpError.DecodeError({ ...common, status: 200, reason: "x" }), 502],
      [new HttpError.InvalidRequest({ reason: "x" }), 400]
    ]
    for (const [error, status] of cases) {
      expect(HttpError.toHttpStatus(error)).toBe(status)
      expect(HttpError.isHttpError(error)).toBe(true)
      expect(HttpError.toErrorCode(error)).toMatch(/^[a-z_]+$/)
    }
  })
})

describe("Http errors carry no secrets", () => {
  it.effect("a URL's credentials never reach the error", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const error = yield* Http.text(HttpClientRequest.get(`http://ann:s3cret@127.0.0.1:${port}/x`)).pipe(
        Effect.flip,
        Effect.provide(Http.layer())
      )
      expect(error._tag).toBe("TransportError")
      expect(JSON.stringify(error) + error.message).not.toContain("s3cret")
    }))

  it.effect("a DecodeError names the path and the expectation, not the value", () =>
    Effect.gen(function*() {
      const error = yield* Http.json(
        HttpClientRequest.get("/json"),
        Schema.Array(Schema.Struct({ name: Schema.Number }))
      )
        .pipe(Effect.flip)
      expect(error._tag).toBe("DecodeError")
      expect(error.message).toContain("name")
      expect(error.message).not.toContain("user-1")
    }).pipe(run))

  it.effect("an InvalidRequest does not echo the value that failed", () =>
    Effect.gen(function*() {
      const Form = Schema.Struct({ password: Schema.String.pipe(Schema.maxLength(3)) })
      const error = yield* Http.withForm(HttpClientRequest.post("/x"), Form, { password: "hunter2" }).pipe(Effect.flip)
      expect(error.message).toContain("password")
      expect(error.message).not.toContain("hunter2")
    }))

  it.effect("a header undici refuses is an InvalidRequest, not a transport failure", () =>
    Effect.gen(function*() {
      const error = yield* Http.text(
        HttpClientRequest.get("/echo").pipe(HttpClientRequest.setHeader("x-bad", "a\r\nb"))
      )
        .pipe(Effect.flip)
      expect(error._tag).toBe("InvalidRequest")
      expect(HttpError.toHttpStatus(error)).toBe(400)
    }).pipe(run))

  it("isHttpError does not mistake a look-alike for one of Liaison's errors", () => {
    expect(HttpError.isHttpError({ _tag: "DecodeError", message: "mine" })).toBe(false)
    expect(HttpError.isHttpError(new HttpError.InvalidRequest({ reason: "x" }))).toBe(true)
  })
})

describe("Http spans", () => {
  it.effect("every call runs in a client span with method, host and status", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      yield* Http.text(HttpClientRequest.get("/text")).pipe(Effect.withTracer(tracer))
      const span = spans.find((span) => span.attributes.has("http.request.method"))
      expect(span?.attributes.get("http.request.method")).toBe("GET")
      expect(String(span?.attributes.get("server.address"))).toContain("127.0.0.1")
      expect(span?.attributes.get("http.response.status_code")).toBe(200)
    }).pipe(run))

  it.effect("a Redacted default header is sent, and redacted in spans", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const echo = yield* Http.json(HttpClientRequest.get("/echo"), Echo).pipe(Effect.withTracer(tracer))
      expect(echo.headers["x-goog-api-key"]).toBe("k3y-s3cret")
      const recorded = spans.flatMap((span) => [...span.attributes.values()].map(String))
      expect(recorded).toContain("<redacted>")
      expect(recorded.join(" ")).not.toContain("k3y-s3cret")
    }).pipe(Effect.provide(client({ headers: { "X-Goog-Api-Key": Redacted.make("k3y-s3cret") } }))))
})

describe("Http timeouts: each phase raises its own error", () => {
  it.live("connect: a TLS handshake that never completes", () =>
    Effect.gen(function*() {
      const error = yield* Http.text(HttpClientRequest.get(`${chaos.tarpitUrl}/`)).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "connect", timeoutMillis: 100 })
      expect(HttpError.toHttpStatus(error)).toBe(504)
    }).pipe(Effect.provide(Http.layer({ timeouts: { connect: "100 millis" } }))))

  // The read phase is timed by undici itself (real timers), so these run on the live clock.
  it.live("read: headers that never come", () =>
    Effect.gen(function*() {
      const error = yield* Http.text(HttpClientRequest.get("/stall/headers")).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "TimeoutError", phase: "read", timeoutMillis: 150 })
    }).pipe(Effect.provide(client({ timeouts: { read: "150 millis" } }))))

  it.live("read: a body that goes idle mid-way, buffered or streamed", () =>
    Effect.gen(function*() {
      const buffered = yield* Http.bytes(HttpClientRequest.get("/stall/body?bytes=16")).pipe(Effect.flip)
      expect(buffered).toMatchObject({ _tag: "TimeoutError", phase: "read" })
      const streamed = yield* Http.stream(HttpClientRequest.get("/stall/body?bytes=16")).pipe(
        Stream.runDrain,
        Effect.flip
      )
      expect(streamed).toMatchObject({ _tag: "TimeoutError", phase: "read" })
    }).pipe(Effect.provide(client({ timeouts: { read: "150 millis" } }))))

  it.effect("write: an upload the upstream never reads", () =>
    Effect.gen(function*() {
      const pulled = yield* Ref.make(0)
      const chunk = new Uint8Array(64 * 1024)
      const body = Stream.repeatEffect(Effect.as(Ref.update(pulled, (n) => n + 1), chunk)).pipe(Stream.take(1024))
      const fiber = yield* Effect.fork(
        Http.empty(HttpClientRequest.post("/stall/read", { body: HttpBody.stream(body, "application/octet-stream") }))
      )
      yield* settled(pulled)
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(fiber).pipe(Effect.flip)).toMatchObject({ _tag: "TimeoutError", phase: "write" })
      expect(yield* Ref.get(pulled)).toBeLessThan(1024)
    }).pipe(run))

  it.effect("write: a streamed body that never yields its first chunk", () =>
    Effect.gen(function*() {
      const pulled = yield* Ref.make(0)
      // undici pulls the body once connected; this body then never yields anything
      const body = Stream.fromEffect(Ref.update(pulled, (n) => n + 1)).pipe(Stream.drain, Stream.concat(Stream.never))
      const fiber = yield* Effect.fork(
        Http.empty(HttpClientRequest.post("/stall/read", { body: HttpBody.stream(body, "text/plain") }))
      )
      yield* settled(pulled)
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(fiber).pipe(Effect.flip)).toMatchObject({ _tag: "TimeoutError", phase: "write" })
    }).pipe(run))

  it.effect("pool: no free connection slot", () =>
    Effect.gen(function*() {
      chaos.reset()
      const holder = yield* Effect.fork(Http.text(HttpClientRequest.get("/stall/headers")))
      yield* seen("stall")
      const waiter = yield* Effect.fork(Http.text(HttpClientRequest.get("/text")))
      yield* TestClock.adjust("5 seconds")
      expect(yield* Fiber.join(waiter).pipe(Effect.flip)).toMatchObject({
        _tag: "TimeoutError",
        phase: "pool",
        timeoutMillis: 5000
      })
      yield* Fiber.interrupt(holder)
    }).pipe(Effect.provide(client({ pool: { maxConnections: 1 } }))))

  it.effect("total: the deadline of the whole call, body included", () =>
    Effect.gen(function*() {
      chaos.reset()
      const fiber = yield* Effect.fork(Http.bytes(HttpClientRequest.get("/slow?bytes=100000&chunk=10&interval=50")))
      yield* seen("slow")
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(fiber).pipe(Effect.flip)).toMatchObject({
        _tag: "TimeoutError",
        phase: "total",
        timeoutMillis: 2000
      })
    }).pipe(Effect.provide(client({ timeouts: { total: "2 seconds" } }))))
})

describe("Http connections", () => {
  it.effect("HTTP/2 to an upstream that offers it (ALPN), HTTP/1.1 when disabled", () =>
    Effect.gen(function*() {
      const request = HttpClientRequest.get(`${chaos.h2Url}/echo`)
      const h2 = yield* Http.json(request, Echo).pipe(Effect.provide(Http.layer({ ca: tlsCa })))
      expect(h2.httpVersion).toBe("2.0")
      const h1 = yield* Http.json(request, Echo).pipe(
        Effect.provide(Http.layer({ ca: tlsCa, pool: { allowH2: false } }))
      )
      expect(h1.httpVersion).toBe("1.1")
    }))

  it.effect("an untrusted certificate is a TransportError tls", () =>
    Effect.gen(function*() {
      const error = yield* Http.text(HttpClientRequest.get(`${chaos.h2Url}/text`)).pipe(
        Effect.flip,
        Effect.provide(Http.layer())
      )
      expect(error).toMatchObject({ _tag: "TransportError", reason: "tls" })
    }))

  it.effect("default headers and the base URL apply to every request", () =>
    Effect.gen(function*() {
      const echo = yield* Http.json(HttpClientRequest.get("/echo/a"), Echo)
      expect(echo.path).toBe("/echo/a")
      expect(echo.headers["x-client"]).toBe("liaison-test")
    }).pipe(Effect.provide(client({ headers: { "x-client": "liaison-test" } }))))

  // Had the unread body kept the only connection busy, the next call would wait for undici's
  // body timeout (30 s): the 2 s bound tells the two apart.
  it.live("a response whose body nobody reads is cancelled when its scope closes", () =>
    Effect.gen(function*() {
      const status = yield* Effect.scoped(
        Effect.map(Http.execute(HttpClientRequest.get("/huge?bytes=100000000")), (response) => response.status)
      )
      expect(status).toBe(200)
      expect(yield* Http.text(HttpClientRequest.get("/text")).pipe(Effect.timeout("2 seconds"))).toBe("hello")
    }).pipe(Effect.provide(client({ pool: { maxConnections: 1 }, timeouts: { read: "30 seconds" } }))))

  it.live("a body stream looked at but never run is cancelled too", () =>
    Effect.gen(function*() {
      const size = yield* Effect.scoped(
        Effect.map(Http.executeOk(HttpClientRequest.get("/huge?bytes=100000000")), (response) => {
          void response.stream
          return response.headers["content-length"]
        })
      )
      expect(size).toBe("100000000")
      expect(yield* Http.text(HttpClientRequest.get("/text")).pipe(Effect.timeout("2 seconds"))).toBe("hello")
    }).pipe(Effect.provide(client({ pool: { maxConnections: 1 }, timeouts: { read: "30 seconds" } }))))

  it.effect("a pool slot goes back once the body is read, not when the scope closes", () =>
    Effect.gen(function*() {
      const texts = yield* Effect.scoped(
        Effect.forEach([1, 2, 3], () => Effect.flatMap(Http.execute(HttpClientRequest.get("/text")), (r) => r.text))
      )
      expect(texts).toEqual(["hello", "hello", "hello"])
    }).pipe(Effect.provide(client({ pool: { maxConnections: 1 } }))))

  it.live("a failed or interrupted call gives its pool slot back at once, not when the scope closes", () =>
    Effect.gen(function*() {
      // A retry runs in the caller's scope: a slot held until it closes would starve the next attempt.
      const outcome = yield* Effect.scoped(
        Effect.gen(function*() {
          const reset = yield* Effect.flip(Http.execute(HttpClientRequest.get("/reset")))
          const stalled = yield* Http.execute(HttpClientRequest.get("/stall/headers")).pipe(
            Effect.timeout("100 millis"),
            Effect.flip
          )
          const text = yield* Effect.flatMap(Http.execute(HttpClientRequest.get("/text")), (r) => r.text)
          return [reset._tag, stalled._tag, text]
        })
      )
      expect(outcome).toEqual(["TransportError", "TimeoutException", "hello"])
    }).pipe(Effect.provide(client({ pool: { maxConnections: 1 }, timeouts: { pool: "1 second" } }))))

  it.effect("pool slots are per origin: a stalled upstream does not starve another", () =>
    Effect.gen(function*() {
      chaos.reset()
      const stalled = yield* Effect.fork(Http.text(HttpClientRequest.get(`${chaos.url}/stall/headers`)))
      yield* seen("stall")
      expect(yield* Http.text(HttpClientRequest.get(`${chaos.h2Url}/text`))).toBe("hello")
      yield* Fiber.interrupt(stalled)
    }).pipe(Effect.provide(Http.layer({ ca: tlsCa, pool: { maxConnections: 1 } }))))

  it.effect("closing the layer's scope closes the pool after in-flight calls finish", () =>
    Effect.gen(function*() {
      const result = yield* Effect.scoped(
        Effect.gen(function*() {
          const http = yield* Layer.build(client())
          return yield* Http.text(HttpClientRequest.get("/text?latency=20")).pipe(Effect.provide(http))
        })
      )
      expect(result).toBe("hello")
    }))
})

describe("Http streaming", () => {
  it.effect("a body streams chunk by chunk, byte-exact", () =>
    Effect.gen(function*() {
      const size = 20 * 1024 * 1024
      const { count, ok } = yield* Http.stream(HttpClientRequest.get(`/huge?bytes=${size}`)).pipe(
        Stream.runFold({ count: 0, ok: true }, (acc, chunk) => {
          for (let i = 0; i < chunk.length && acc.ok; i++) acc.ok = chunk[i] === (acc.count + i) % 251
          acc.count += chunk.length
          return acc
        })
      )
      expect(count).toBe(size)
      expect(ok).toBe(true)
    }).pipe(run))

  it.effect("a non-2xx answer fails the stream before any chunk", () =>
    Effect.gen(function*() {
      const error = yield* Http.stream(HttpClientRequest.get("/status/404")).pipe(Stream.runCollect, Effect.flip)
      expect(error).toMatchObject({ _tag: "StatusError", status: 404 })
    }).pipe(run))

  it.scoped("executeOk: status and headers before the body; a non-2xx is a StatusError at once", () =>
    Effect.gen(function*() {
      const response = yield* Http.executeOk(HttpClientRequest.get("/huge?bytes=300000"))
      expect(response.status).toBe(200)
      expect(response.headers["content-length"]).toBe("300000")
      expect(yield* Stream.runFold(response.stream, 0, (n, chunk) => n + chunk.length)).toBe(300000)
      const error = yield* Http.executeOk(HttpClientRequest.get("/status/409?body=taken")).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "StatusError", status: 409, body: "taken" })
    }).pipe(Effect.provide(client())))

  it.effect("taking a prefix of a stream releases the connection", () =>
    Effect.gen(function*() {
      const first = yield* Http.stream(HttpClientRequest.get("/huge?bytes=100000000")).pipe(
        Stream.take(1),
        Stream.runCollect
      )
      expect(Chunk.size(first)).toBe(1)
      // one connection only: a leaked one would make this wait for the pool
      expect(yield* Http.text(HttpClientRequest.get("/text"))).toBe("hello")
    }).pipe(Effect.provide(client({ pool: { maxConnections: 1 }, timeouts: { pool: "1 second" } }))))
})

describe("Http configuration", () => {
  it.effect("layerConfig reads HTTP_* variables; unset ones keep the lecture's defaults", () =>
    Effect.gen(function*() {
      const http = yield* Http.Http
      expect(http.options.baseUrl).toBe("http://upstream.test")
      expect(http.options.timeouts.read).toEqual(Duration.millis(2500))
      expect(http.options.timeouts.connect).toEqual(Duration.seconds(5))
      expect(http.options.timeouts.write).toEqual(Duration.seconds(10))
      expect(http.options.timeouts.pool).toEqual(Duration.seconds(5))
      expect(http.options.pool.maxConnections).toBe(7)
    }).pipe(
      Effect.provide(
        Http.layerConfig().pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
            new Map([
              ["HTTP_BASE_URL", "http://upstream.test"],
              ["HTTP_READ_TIMEOUT", "2500 millis"],
              ["HTTP_MAX_CONNECTIONS", "7"]
            ])
          )))
        )
      )
    ))

  it.effect("a malformed variable is a ConfigError naming it", () =>
    Effect.gen(function*() {
      const error = yield* Layer.build(Http.layerConfig()).pipe(
        Effect.scoped,
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["HTTP_READ_TIMEOUT", "soon"]]))),
        Effect.flip
      )
      expect(String(error)).toContain("HTTP_READ_TIMEOUT")
    }))
})

describe("Http address guard", () => {
  it.effect("refuses a loopback upstream, by literal address and by name, before anything is sent", () =>
    Effect.gen(function*() {
      const before = chaos.requestCount("echo")
      const byAddress = yield* Effect.flip(Http.text(HttpClientRequest.get("/echo")))
      expect(byAddress).toMatchObject({ _tag: "TransportError", reason: "blocked", code: "ESSRFREFUSED" })
      expect(HttpError.transience(byAddress)).toBe("permanent")
      const byName = yield* Effect.flip(
        Http.text(HttpClientRequest.get(`http://localhost:${new URL(chaos.url).port}/echo`))
      )
      expect(byName).toMatchObject({ _tag: "TransportError", reason: "blocked" })
      expect(chaos.requestCount("echo")).toBe(before)
    }).pipe(Effect.provide(client({ addressGuard: {} }))))

  it.effect("lets through what it is told to allow", () =>
    Effect.gen(function*() {
      const body = yield* Http.text(HttpClientRequest.get("/text"))
      expect(body.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(client({ addressGuard: { loopback: true } }))))
})

describe("Http absolute URLs", () => {
  it.effect("an absolute URL is sent as it is, not under the base URL", () =>
    Effect.gen(function*() {
      const echo = yield* Http.json(HttpClientRequest.get(`${chaos.url}/echo/abs`), Echo)
      expect(echo.path).toBe("/echo/abs")
    }).pipe(Effect.provide(Http.layer({ baseUrl: "http://127.0.0.1:9/never" }))))
})

describe("invalid URLs", () => {
  it.scoped("an InvalidRequest that names the URL, redacted (no user info, no query string)", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Http.text(HttpClientRequest.get("http://user:pw@exa mple.com/x?api_key=s3cret")).pipe(
          Effect.provide(Http.layer())
        )
      )
      expect(error._tag).toBe("InvalidRequest")
      expect(error.message).toBe(`invalid request: invalid URL "http://exa mple.com/x" (GET)`)
      expect(error.message).not.toMatch(/s3cret|pw/)
    }))

  it.scoped("a path without a base URL says which path", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Http.text(HttpClientRequest.del("/users/1")).pipe(Effect.provide(Http.layer()))
      )
      expect(error).toMatchObject({ _tag: "InvalidRequest", reason: `invalid URL "/users/1" (DELETE)` })
    }))
})
