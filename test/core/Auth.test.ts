import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Auth, Http, Redis } from "@liaison/core"
import {
  Cause,
  Config,
  ConfigProvider,
  Effect,
  Fiber,
  Layer,
  Logger,
  LogLevel,
  Redacted,
  Schedule,
  Schema,
  TestClock
} from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { ChaosUpstream } from "../fixtures/chaos.js"
import { startChaosUpstream } from "../fixtures/chaos.js"
import type { OAuth2Mock } from "../fixtures/oauth2.js"
import { startOAuth2Server } from "../fixtures/oauth2.js"
import { freePort } from "../fixtures/ports.js"
import type { ProtectedUpstream } from "../fixtures/protectedUpstream.js"
import { startProtectedUpstream } from "../fixtures/protectedUpstream.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import { redisUrl, testStorePrefix } from "../setup/redisUrl.js"

const clientId = "liaison-test-client"
const clientSecret = "cl1ent-s3cret-value"

let chaos: ChaosUpstream
let oauth: OAuth2Mock
let api: ProtectedUpstream
beforeAll(async () => {
  chaos = await startChaosUpstream()
  oauth = await startOAuth2Server({ clientId, clientSecret })
  api = await startProtectedUpstream({ issuer: oauth.issuer, jwksUrl: oauth.jwksUrl })
})
afterAll(async () => {
  await Promise.all([chaos?.close(), oauth?.stop(), api?.close()])
})

const Echo = Schema.Struct({
  rawQuery: Schema.String,
  query: Schema.Record({ key: Schema.String, value: Schema.Union(Schema.String, Schema.Array(Schema.String)) }),
  headers: Schema.Record({ key: Schema.String, value: Schema.String })
})

/** GET /echo on the chaos upstream, authenticated with `options`. */
const echo = (options: Auth.Options, path = "/echo") =>
  Http.json(HttpClientRequest.get(path), Echo).pipe(
    Effect.provide(Auth.layerHttp({ baseUrl: chaos.url }).pipe(Layer.provide(Auth.layer(options))))
  )

const Answer = Schema.Struct({
  method: Schema.String,
  path: Schema.String,
  jti: Schema.String,
  clientId: Schema.String,
  scope: Schema.optional(Schema.String),
  aud: Schema.optional(Schema.String),
  body: Schema.String
})

const oauth2 = (overrides: Partial<Auth.OAuth2Options> = {}): Auth.Options => ({
  scheme: "oauth2",
  tokenUrl: oauth.tokenUrl,
  clientId,
  clientSecret: Redacted.make(clientSecret),
  ...overrides
})

/** The protected API's client, authenticated by OAuth2 client credentials. */
const apiLayer = (overrides: Partial<Auth.OAuth2Options> = {}, http: Http.Options = {}) =>
  Auth.layerHttp({ baseUrl: api.url, ...http }).pipe(Layer.provide(Auth.layer(oauth2(overrides))))

const call = (path = "/orders") => Http.json(HttpClientRequest.get(path), Answer)

const tokenRequests = Effect.promise(() => oauth.stats()).pipe(Effect.map((stats) => stats.tokenRequests))

/** Before each OAuth2 test: fresh counters on both servers. */
const fresh = Effect.promise(async () => {
  await oauth.reset()
  api.reset()
})

/** Waits, in real time, until the API has seen `count` requests. */
const apiSeen = (count: number) =>
  Effect.promise(async () => {
    while (api.requestCount() < count) await new Promise((resolve) => setTimeout(resolve, 5))
  })

/** The same calls through `Http.decorate(Auth.middleware)` instead of `Auth.layerHttp`. */
const decorated = (options: Auth.Options, baseUrl: string) =>
  Http.decorate(Auth.middleware).pipe(
    Layer.provide(Layer.merge(Http.layer({ baseUrl }), Auth.layer(options)))
  )

describe("Auth.middleware", () => {
  it.effect("adds every static scheme's credentials to the calls of the Http in context", () =>
    Effect.gen(function*() {
      const bearer = yield* Http.json(HttpClientRequest.get("/echo"), Echo).pipe(
        Effect.provide(decorated({ scheme: "bearer", token: Redacted.make("t0k3n.mw") }, chaos.url))
      )
      expect(bearer.headers.authorization).toBe("Bearer t0k3n.mw")
      const query = yield* Http.json(HttpClientRequest.get("/echo?page=2"), Echo).pipe(
        Effect.provide(decorated({ scheme: "api-key", in: "query", key: Redacted.make("k &=1") }, chaos.url))
      )
      expect(query.query).toEqual({ page: "2", api_key: "k &=1" })
    }))

  it.effect("OAuth2: a 401 replays once with a fresh token; a second 401 is AuthError (rejected)", () =>
    Effect.gen(function*() {
      yield* fresh
      const layer = decorated(oauth2(), api.url)
      const first = yield* call().pipe(Effect.provide(layer))
      expect(first.clientId).toBe(clientId)
      api.rejectAll(true)
      const error = yield* Effect.flip(call().pipe(Effect.provide(layer)))
      api.rejectAll(false)
      expect(error).toMatchObject({ _tag: "AuthError", reason: "rejected", status: 401 })
    }))
})

describe("Auth static schemes, on the wire", () => {
  it.effect("bearer: Authorization: Bearer <token>", () =>
    Effect.gen(function*() {
      const seen = yield* echo({ scheme: "bearer", token: Redacted.make("t0k3n.abc") })
      expect(seen.headers.authorization).toBe("Bearer t0k3n.abc")
    }))

  it.effect("API key in a header: X-API-Key by default, or a header of your choice", () =>
    Effect.gen(function*() {
      const byDefault = yield* echo({ scheme: "api-key", key: Redacted.make("k-123") })
      expect(byDefault.headers["x-api-key"]).toBe("k-123")
      const named = yield* echo({ scheme: "api-key", key: Redacted.make("k-456"), name: "X-Goog-Api-Key" })
      expect(named.headers["x-goog-api-key"]).toBe("k-456")
      expect(named.headers["x-api-key"]).toBeUndefined()
    }))

  it.effect("API key in the query: api_key by default, next to the request's own parameters", () =>
    Effect.gen(function*() {
      const byDefault = yield* echo({ scheme: "api-key", in: "query", key: Redacted.make("k &=1") }, "/echo?page=2")
      expect(byDefault.query).toEqual({ page: "2", api_key: "k &=1" })
      const named = yield* echo({ scheme: "api-key", in: "query", key: Redacted.make("k2"), name: "key" })
      expect(named.query).toEqual({ key: "k2" })
      expect(named.headers["x-api-key"]).toBeUndefined()
    }))

  it.effect("basic: UTF-8 credentials (RFC 7617), a password may hold ':'", () =>
    Effect.gen(function*() {
      const seen = yield* echo({ scheme: "basic", username: "jürgen", password: Redacted.make("pä:ss wört") })
      const header = seen.headers.authorization ?? ""
      expect(header.startsWith("Basic ")).toBe(true)
      expect(Buffer.from(header.slice(6), "base64").toString("utf8")).toBe("jürgen:pä:ss wört")
    }))

  it.effect("basic: a user name with ':' is refused when the scheme is built, the password kept out", () =>
    Effect.gen(function*() {
      const error = yield* Auth.make({ scheme: "basic", username: "ann:x", password: Redacted.make("hunter22") }).pipe(
        Effect.scoped,
        Effect.flip
      )
      expect(error).toBeInstanceOf(Auth.InvalidCredentials)
      expect(error.field).toBe("username")
      expect(error.message).not.toContain("hunter22")
      const layerError = yield* Layer.build(
        Auth.layer({ scheme: "basic", username: "a:b", password: Redacted.make("p") })
      ).pipe(Effect.scoped, Effect.flip)
      expect(layerError._tag).toBe("InvalidCredentials")
    }))

  it.effect("credentials a header cannot carry are refused when built", () =>
    Effect.gen(function*() {
      const bearer = yield* Auth.make({ scheme: "bearer", token: Redacted.make("a b") }).pipe(
        Effect.scoped,
        Effect.flip
      )
      expect(bearer.field).toBe("token")
      const key = yield* Auth.make({ scheme: "api-key", key: Redacted.make("a\r\nX: y") }).pipe(
        Effect.scoped,
        Effect.flip
      )
      expect(key.field).toBe("key")
      const url = yield* Auth.make(oauth2({ tokenUrl: "ftp://id.example.com/token" })).pipe(Effect.scoped, Effect.flip)
      expect(url.field).toBe("tokenUrl")
    }))

  it.effect("layerConfig reads the scheme named by AUTH_SCHEME and its variables", () =>
    Effect.gen(function*() {
      const seen = yield* Http.json(HttpClientRequest.get("/echo"), Echo).pipe(
        Effect.provide(Auth.layerHttp({ baseUrl: chaos.url }).pipe(Layer.provide(Auth.layerConfig()))),
        Effect.withConfigProvider(
          ConfigProvider.fromMap(
            new Map([
              ["AUTH_SCHEME", "api-key"],
              ["AUTH_API_KEY", "from-env"],
              ["AUTH_API_KEY_IN", "query"],
              ["AUTH_API_KEY_NAME", "token"]
            ])
          )
        )
      )
      expect(seen.query).toEqual({ token: "from-env" })
    }))

  it.effect("layerConfig takes the caller's Config: variable names of their choosing", () =>
    Effect.gen(function*() {
      const mine = Config.map(Config.redacted("MY_TOKEN"), (token): Auth.Options => ({ scheme: "bearer", token }))
      const seen = yield* Http.json(HttpClientRequest.get("/echo"), Echo).pipe(
        Effect.provide(Auth.layerHttp({ baseUrl: chaos.url }).pipe(Layer.provide(Auth.layerConfig(mine)))),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["MY_TOKEN", "t0k3n.mine"]])))
      )
      expect(seen.headers.authorization).toBe("Bearer t0k3n.mine")
    }))
})

describe("Auth OAuth2 client credentials, against a real OAuth2 server", () => {
  it.effect("gets a token (client_secret_basic) that the API verifies against the server's keys", () =>
    Effect.gen(function*() {
      yield* fresh
      const answer = yield* call("/orders")
      expect(answer).toMatchObject({ method: "GET", path: "/orders", clientId })
      const stats = yield* Effect.promise(() => oauth.stats())
      expect(stats.tokenRequests).toBe(1)
      expect(stats.requests[0]).toMatchObject({
        authMethod: "client_secret_basic",
        grantType: "client_credentials",
        accept: "application/json",
        contentType: "application/x-www-form-urlencoded"
      })
    }).pipe(Effect.provide(apiLayer())))

  it.effect("client_secret_post, scope and audience go into the form", () =>
    Effect.gen(function*() {
      yield* fresh
      const answer = yield* call()
      expect(answer.scope).toBe("orders:read orders:write")
      expect(answer.aud).toBe("https://api.example.com")
      const [request] = (yield* Effect.promise(() => oauth.stats())).requests
      expect(request).toMatchObject({
        authMethod: "client_secret_post",
        scope: "orders:read orders:write",
        audience: "https://api.example.com"
      })
    }).pipe(Effect.provide(apiLayer({
      clientAuthentication: "client_secret_post",
      scope: ["orders:read", "orders:write"],
      // oauth2-mock-server reads the audience from `aud`.
      audience: "https://api.example.com",
      audienceParameter: "aud"
    }))))

  it.effect("the token is cached until expires_in (3600 s) minus 60 s", () =>
    Effect.gen(function*() {
      yield* fresh
      const first = yield* call()
      yield* call()
      yield* TestClock.adjust("3539 seconds")
      expect((yield* call()).jti).toBe(first.jti)
      expect(yield* tokenRequests).toBe(1)
      yield* TestClock.adjust("2 seconds")
      const renewed = yield* call()
      expect(renewed.jti).not.toBe(first.jti)
      expect(yield* tokenRequests).toBe(2)
    }).pipe(Effect.provide(apiLayer())))

  it.effect("a token without expires_in lives the configured default", () =>
    Effect.gen(function*() {
      yield* fresh
      yield* Effect.promise(() => oauth.configure({ expiresIn: null }))
      yield* call()
      yield* TestClock.adjust("539 seconds")
      yield* call()
      expect(yield* tokenRequests).toBe(1)
      yield* TestClock.adjust("2 seconds")
      yield* call()
      expect(yield* tokenRequests).toBe(2)
    }).pipe(Effect.provide(apiLayer({ defaultExpiresIn: "10 minutes" }))))

  it.effect("single flight: 1000 concurrent requests without a token make one token request", () =>
    Effect.gen(function*() {
      yield* fresh
      yield* Effect.promise(() => oauth.configure({ delayMs: 100 }))
      const answers = yield* Effect.all(Array.from({ length: 1000 }, (_, i) => call(`/orders/${i}`)), {
        concurrency: "unbounded"
      })
      expect(answers).toHaveLength(1000)
      expect(new Set(answers.map((answer) => answer.jti)).size).toBe(1)
      expect(yield* tokenRequests).toBe(1)
    }).pipe(Effect.provide(apiLayer())))

  it.effect("a 401 refreshes the token once and replays the request, body included", () =>
    Effect.gen(function*() {
      yield* fresh
      const before = yield* call()
      api.revokeSeen()
      const replayed = yield* HttpClientRequest.post("/orders").pipe(
        HttpClientRequest.bodyText("{\"item\":42}", "application/json"),
        Http.json(Answer)
      )
      expect(replayed.jti).not.toBe(before.jti)
      expect(replayed.body).toBe("{\"item\":42}")
      expect(api.rejectedCount()).toBe(1)
      expect(yield* tokenRequests).toBe(2)
      // The fresh token is the cached one now.
      expect((yield* call()).jti).toBe(replayed.jti)
      expect(yield* tokenRequests).toBe(2)
    }).pipe(Effect.provide(apiLayer())))

  it.effect("50 requests answered 401 together cause one refresh", () =>
    Effect.gen(function*() {
      yield* fresh
      yield* call()
      api.revokeSeen()
      const answers = yield* Effect.all(Array.from({ length: 50 }, () => call()), { concurrency: "unbounded" })
      expect(new Set(answers.map((answer) => answer.jti)).size).toBe(1)
      expect(yield* tokenRequests).toBe(2)
    }).pipe(Effect.provide(apiLayer())))

  it.effect("a second 401 is an AuthError: one replay, never a loop", () =>
    Effect.gen(function*() {
      yield* fresh
      api.rejectAll(true)
      const error = yield* Effect.flip(call())
      expect(error).toMatchObject({ _tag: "AuthError", reason: "rejected", status: 401, method: "GET" })
      expect(error.message).toContain("/orders")
      expect(api.requestCount()).toBe(2)
      expect(yield* tokenRequests).toBe(2)
    }).pipe(Effect.provide(apiLayer())))

  it.effect("auth sits inside a retry: the replayed attempt carries the token current then", () =>
    Effect.gen(function*() {
      yield* fresh
      api.failNext(1, 503)
      const fiber = yield* Effect.fork(call())
      yield* apiSeen(1)
      // The retry waits an hour; by then the first token is due for refresh.
      yield* TestClock.adjust("1 hour")
      const answer = yield* Fiber.join(fiber)
      expect(api.acceptedTokens()).toHaveLength(2)
      expect(answer.jti).toBe(api.acceptedTokens()[1])
      expect(yield* tokenRequests).toBe(2)
    }).pipe(Effect.provide(apiLayer({}, {
      transformClient: (client) =>
        client.pipe(HttpClient.filterStatusOk, HttpClient.retry({ schedule: Schedule.spaced("1 hour"), times: 1 }))
    }))))

  it.effect("token endpoint errors (RFC 6749 §5.2) are AuthErrors, never cached", () =>
    Effect.gen(function*() {
      yield* fresh
      const wrongSecret = yield* call().pipe(Effect.provide(apiLayer({ clientSecret: Redacted.make("wrong-s3cret") })))
        .pipe(Effect.flip)
      expect(wrongSecret).toMatchObject({
        _tag: "AuthError",
        reason: "token_endpoint",
        status: 401,
        error: "invalid_client",
        description: "Client authentication failed"
      })
      expect(wrongSecret.message).toContain("invalid_client")
      expect(wrongSecret.message).not.toContain("wrong-s3cret")

      yield* Effect.promise(() =>
        oauth.script(
          { kind: "json", status: 400, body: { error: "invalid_scope", error_description: "no such scope" } },
          { kind: "raw", status: 503, contentType: "text/html", body: "<h1>down</h1>" }
        )
      )
      const layer = apiLayer()
      const invalidScope = yield* Effect.flip(call().pipe(Effect.provide(layer)))
      expect(invalidScope).toMatchObject({ reason: "token_endpoint", status: 400, error: "invalid_scope" })
      const down = yield* Effect.flip(call().pipe(Effect.provide(layer)))
      expect(down).toMatchObject({ _tag: "AuthError", reason: "token_endpoint", status: 503 })
      expect(down).not.toHaveProperty("error")
      // Nothing was cached: the next call asks again, and gets a token.
      yield* call().pipe(Effect.provide(layer))
      expect(yield* tokenRequests).toBe(4)
    }))

  it.effect("malformed token responses are AuthErrors that never show the body", () =>
    Effect.gen(function*() {
      yield* fresh
      yield* Effect.promise(() =>
        oauth.script(
          { kind: "json", status: 200, body: { token_type: "Bearer", expires_in: 3600 } },
          { kind: "json", status: 200, body: { access_token: "abc.def", token_type: "mac" } },
          { kind: "json", status: 200, body: { access_token: "s3cr3t-t0ken", expires_in: -5 } },
          { kind: "raw", status: 200, contentType: "text/html", body: "<html>s3cr3t-t0ken</html>" },
          { kind: "json", status: 200, body: { access_token: "has space" } }
        )
      )
      const layer = apiLayer()
      const failures = yield* Effect.all(
        Array.from({ length: 5 }, () => Effect.flip(call().pipe(Effect.provide(layer))))
      )
      for (const failure of failures) {
        expect(failure).toMatchObject({ _tag: "AuthError", reason: "token_response", status: 200 })
        expect(failure.message).not.toContain("s3cr3t-t0ken")
      }
      const descriptions = failures.map((failure) => failure._tag === "AuthError" ? failure.description : "")
      expect(descriptions[0]).toContain("access_token")
      expect(descriptions[1]).toContain("not Bearer")
      expect(descriptions[2]).toContain("expires_in")
      expect(descriptions[3]).toContain("not JSON")
      expect(descriptions[4]).toContain("header cannot carry")
      yield* call().pipe(Effect.provide(layer))
    }))

  it.effect("an unreachable token endpoint is the endpoint's TransportError", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const error = yield* Effect.flip(
        call().pipe(Effect.provide(apiLayer({ tokenUrl: `http://127.0.0.1:${port}/token` })))
      )
      expect(error).toMatchObject({ _tag: "TransportError", reason: "refused", method: "POST" })
      expect(error.message).toContain(`127.0.0.1:${port}/token`)
    }))
})

describe("Auth OAuth2 token shared through Redis", () => {
  const redisLayer = () => Redis.layer({ url: Redacted.make(redisUrl()) })
  const sharedLayer = (storeKey: string) =>
    apiLayer({ storeKey }).pipe(
      Layer.provide(Auth.layerTokenStoreRedis({ pollInterval: "20 millis", prefix: testStorePrefix() })),
      Layer.provide(redisLayer())
    )
  const uniqueKey = () => `test-${Date.now()}-${Math.random().toString(36).slice(2)}`

  it.live("five instances asking at once make one token request; the stored token is encrypted and expires", () =>
    Effect.gen(function*() {
      yield* fresh
      yield* Effect.promise(() => oauth.configure({ delayMs: 200 }))
      const storeKey = uniqueKey()
      const instances = Array.from({ length: 5 }, () => sharedLayer(storeKey))
      const answers = yield* Effect.all(
        instances.map((instance) =>
          Effect.all(Array.from({ length: 20 }, () => call()), { concurrency: "unbounded" }).pipe(
            Effect.provide(instance)
          )
        ),
        { concurrency: "unbounded" }
      )
      expect(new Set(answers.flat().map((answer) => answer.jti)).size).toBe(1)
      expect(yield* tokenRequests).toBe(1)
      const stored = yield* Effect.all([
        Redis.use("GET", (client) => client.get(`${testStorePrefix()}:{auth:${storeKey}}:token`)),
        Redis.use("PTTL", (client) => client.pttl(`${testStorePrefix()}:{auth:${storeKey}}:token`)),
        Redis.use("EXISTS", (client) => client.exists(`${testStorePrefix()}:{auth:${storeKey}}:lock`))
      ]).pipe(Effect.provide(redisLayer()))
      const [value, ttl, locked] = stored
      expect(value).not.toBeNull()
      for (const token of api.rawTokens()) expect(value).not.toContain(token)
      expect(ttl).toBeGreaterThan(3500_000)
      expect(ttl).toBeLessThanOrEqual(3540_000)
      expect(locked).toBe(0)
    }))

  it.live("a token the API rejects is dropped from the store for every instance", () =>
    Effect.gen(function*() {
      yield* fresh
      const storeKey = uniqueKey()
      const first = yield* call().pipe(Effect.provide(sharedLayer(storeKey)))
      api.revokeSeen()
      // A second instance finds the revoked token in Redis, is refused, and replaces it.
      const second = yield* call().pipe(Effect.provide(sharedLayer(storeKey)))
      expect(second.jti).not.toBe(first.jti)
      // A third one gets the new token from Redis.
      const third = yield* call().pipe(Effect.provide(sharedLayer(storeKey)))
      expect(third.jti).toBe(second.jti)
      expect(yield* tokenRequests).toBe(2)
    }))

  it.live("Redis down: the store fails open and each instance fetches its own token", () =>
    Effect.gen(function*() {
      yield* fresh
      const port = yield* Effect.promise(freePort)
      const deadRedis = Redis.layer({
        url: Redacted.make(`redis://127.0.0.1:${port}`),
        connect: "background",
        redisOptions: { retryStrategy: () => null, maxRetriesPerRequest: 0 }
      })
      const answer = yield* call().pipe(
        Effect.provide(
          apiLayer({ storeKey: uniqueKey() }).pipe(
            Layer.provide(Auth.layerTokenStoreRedis()),
            Layer.provide(Layer.orDie(deadRedis))
          )
        ),
        Effect.provide(Logger.minimumLogLevel(LogLevel.None))
      )
      expect(answer.clientId).toBe(clientId)
      expect(yield* tokenRequests).toBe(1)
    }))
})

/** Every log line, with its annotations and cause, as text. */
const logRecorder = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, cause, logLevel, message }) => {
    lines.push(`${logLevel.label} ${JSON.stringify(message)} ${JSON.stringify([...annotations])}`)
    if (cause._tag !== "Empty") lines.push(Cause.pretty(cause, { renderErrorCause: true }))
  })
  return { lines, logger }
}

describe("Auth keeps secrets out of logs and spans", () => {
  it.effect("an authenticated run of every scheme, failures included, shows no secret", () =>
    Effect.gen(function*() {
      yield* fresh
      const { lines, logger } = logRecorder()
      const { text: traced, tracer } = recordingTracer()
      const secrets = {
        bearer: "b3arer-t0ken-value",
        headerKey: "h3ader-k3y-value",
        queryKey: "qu3ry-k3y-value",
        password: "pa55w0rd-value"
      }
      const logged = <A, E>(effect: Effect.Effect<A, E>) =>
        effect.pipe(
          Effect.tapErrorCause((cause) => Effect.logError("call failed", cause)),
          Effect.tap((value) => Effect.logInfo("answer", value)),
          Effect.either
        )
      const runs: ReadonlyArray<Effect.Effect<unknown, unknown>> = [
        echo({ scheme: "bearer", token: Redacted.make(secrets.bearer) }),
        echo({ scheme: "api-key", key: Redacted.make(secrets.headerKey), name: "X-Goog-Api-Key" }),
        echo({ scheme: "api-key", in: "query", key: Redacted.make(secrets.queryKey) }, "/echo?page=1"),
        echo({ scheme: "basic", username: "ann", password: Redacted.make(secrets.password) }),
        call().pipe(Effect.provide(apiLayer())),
        call().pipe(Effect.provide(apiLayer({ clientAuthentication: "client_secret_post" }))),
        call().pipe(Effect.provide(apiLayer({ clientSecret: Redacted.make("wr0ng-secret-value") }))),
        Effect.sync(() => api.rejectAll(true)).pipe(Effect.zipRight(call().pipe(Effect.provide(apiLayer()))))
      ]
      // The echoed answers hold the secrets by design: only errors are logged for those.
      yield* Effect.forEach(
        runs,
        (run, index) =>
          index < 4 ? Effect.either(Effect.tapErrorCause(run, (cause) => Effect.logError(cause))) : logged(run)
      ).pipe(
        Effect.withTracer(tracer),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      api.rejectAll(false)
      const text = `${traced()}\n${lines.join("\n")}`
      const everySecret = [
        ...Object.values(secrets),
        clientSecret,
        "wr0ng-secret-value",
        Buffer.from(`ann:${secrets.password}`).toString("base64"),
        Buffer.from(`${clientId}:${clientSecret}`).toString("base64"),
        ...api.rawTokens()
      ]
      expect(api.rawTokens().length).toBeGreaterThanOrEqual(2)
      for (const secret of everySecret) expect(text).not.toContain(secret)
      // The spans were there, with the secrets' places redacted.
      expect(text).toContain("span http.client GET")
      expect(text).toContain("span liaison.auth.token")
      expect(text).toContain("api_key=<redacted>")
      expect(text).toContain("[\"http.request.header.x-goog-api-key\",\"<redacted>\"]")
      expect(text).toContain("[\"http.request.header.authorization\",\"<redacted>\"]")
      expect(text).toContain("AuthError")
    }))
})

/** A token endpoint that refuses every request, echoing its Authorization header and form into the error. */
const echoingTokenEndpoint = Effect.acquireRelease(
  Effect.promise(async () => {
    const server = http.createServer((request, response) => {
      let form = ""
      request.on("data", (chunk: Buffer) => (form += chunk.toString("utf8")))
      request.on("end", () => {
        const authorization = request.headers.authorization ?? "none"
        const basic = authorization.replace(/^Basic /, "")
        const description = `Client authentication failed. Authorization: ${authorization}; credentials ${basic} = ${
          Buffer.from(basic, "base64").toString("utf8")
        }; form: ${form}; decoded: ${new URLSearchParams(form).get("client_secret") ?? ""}`
        response.writeHead(401, { "content-type": "application/json" })
        response.end(JSON.stringify({ error: `invalid_client`, error_description: description }))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token?tenant=t1` }
  }),
  ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

describe("Auth keeps a token endpoint's echo of the credentials out of errors and logs", () => {
  it.scoped("the secret shows in no log line and no error, in no encoding; the status and error code do", () =>
    Effect.gen(function*() {
      const endpoint = yield* echoingTokenEndpoint
      const { lines, logger } = logRecorder()
      const secret = "S3cr3t/+ =echo-value"
      const failures = yield* Effect.forEach(
        ["client_secret_basic", "client_secret_post"] as const,
        (clientAuthentication) =>
          call().pipe(
            Effect.provide(
              apiLayer({ tokenUrl: endpoint.url, clientSecret: Redacted.make(secret), clientAuthentication })
            ),
            Effect.tapError((error) => Effect.logWarning("upstream call failed", error.message)),
            Effect.tapErrorCause((cause) => Effect.logError("call failed", cause)),
            Effect.flip
          )
      ).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.All)
      )
      const formEncoded = (value: string) => new URLSearchParams([["", value]]).toString().slice(1)
      const forms = [
        secret,
        formEncoded(secret),
        encodeURIComponent(secret),
        Buffer.from(`${clientId}:${formEncoded(secret)}`).toString("base64"),
        Buffer.from(`${clientId}:${secret}`).toString("base64"),
        `${clientId}:${formEncoded(secret)}`
      ]
      for (const failure of failures) {
        expect(failure).toMatchObject({
          _tag: "AuthError",
          reason: "token_endpoint",
          status: 401,
          error: "invalid_client"
        })
        const description = failure._tag === "AuthError" ? failure.description ?? "" : ""
        expect(description).toContain("Client authentication failed")
        expect(description).toContain("[redacted]")
        expect(failure.message).not.toContain("tenant=t1")
      }
      const text = `${lines.join("\n")}\n${
        failures.map((failure) => `${failure.message} ${JSON.stringify(failure)}`).join("\n")
      }`
      // The library's own line (debug) and the caller's: each names the status and the error code.
      expect(lines.filter((line) => line.includes("auth: the token endpoint")).length).toBe(2)
      expect(lines.filter((line) => line.includes("401") && line.includes("invalid_client")).length)
        .toBeGreaterThanOrEqual(4)
      for (const form of forms) expect([form, text.includes(form)]).toEqual([form, false])
    }))
})

describe("Auth scrubs what a token endpoint says", () => {
  it.effect("URLs lose query (to the next space) and user info; credentials in any shape are redacted; prose stays", () =>
    Effect.gen(function*() {
      yield* fresh
      const other = Buffer.from("someone:else's-pa55").toString("base64")
      yield* Effect.promise(() =>
        oauth.script({
          kind: "json",
          status: 400,
          body: {
            error: "invalid_request",
            error_description:
              `see https://admin:pw@idp.example/help?key=k3y; Bearer eyJhbGciOi.J9x; Basic authentication failed; ${other}; password=hunter2`
          }
        })
      )
      const error = yield* Effect.flip(call().pipe(Effect.provide(apiLayer())))
      expect(error).toMatchObject({
        _tag: "AuthError",
        status: 400,
        error: "invalid_request",
        description:
          "see https://idp.example/help Bearer [redacted]; Basic authentication failed; [redacted]; password=[redacted]"
      })
    }))
})
