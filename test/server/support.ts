/**
 * Shared by the server tests: the server in-process on a free port, a stub upstream on
 * `node:http`, and a tiny fetch wrapper. Everything talks real HTTP over loopback.
 */
import { expect } from "@effect/vitest"
import { SandboxSecrets, Server } from "@liaison/server"
import { ConfigProvider, Effect, Layer, Logger, LogLevel } from "effect"
import type { Scope } from "effect"
import * as NodeHttp from "node:http"
import type * as net from "node:net"
import { freePort } from "../fixtures/ports.js"
import { testStorePrefix } from "../setup/redisUrl.js"

/**
 * The whole server on `127.0.0.1:0`, its logs silenced. Without a resilience policy unless the
 * test gives one: these tests look at single upstream calls (the policy has its own tests).
 */
export const serverLayer = (options: Server.Options = {}) =>
  Server.layer({ port: 0, host: "127.0.0.1", resilience: { policy: false }, ...options }).pipe(
    withRunPrefix,
    Layer.provide(Logger.minimumLogLevel(LogLevel.None))
  )

/**
 * Redis keys under this run's prefix (`REDIS_KEY_PREFIX`, removed when the run ends), whatever
 * configuration the test gives the server: its own provider is asked for everything else.
 */
const withRunPrefix = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  Layer.unwrapEffect(Effect.configProviderWith((current) =>
    Effect.succeed(Layer.locallyEffect(
      layer,
      Effect.withConfigProvider(
        ConfigProvider.orElse(
          ConfigProvider.fromMap(new Map([["REDIS_KEY_PREFIX", testStorePrefix()]])),
          () => current
        )
      )
    ))
  ))

/** A response, its body read as text and, when it is JSON, parsed. */
export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: unknown
}

/** The demo API key the server accepts on loopback when `API_KEYS` is unset. */
export const demoKey = SandboxSecrets.demoApiKey

/**
 * Sends a request to the server under test, with the demo API key as a bearer token unless the
 * request says otherwise (`anonymous` sends none).
 */
export const call = (path: string, init?: RequestInit & { readonly body?: string; readonly anonymous?: boolean }) =>
  Effect.flatMap(Server.url, (url) =>
    Effect.promise(async (): Promise<Reply> => {
      const headers = new Headers(init?.headers)
      if (init?.anonymous !== true && !headers.has("authorization")) headers.set("authorization", `Bearer ${demoKey}`)
      const response = await fetch(`${url}${path}`, { ...init, headers })
      const text = await response.text()
      const isJson = (response.headers.get("content-type") ?? "").includes("json")
      return { status: response.status, headers: response.headers, text, json: isJson ? JSON.parse(text) : undefined }
    }))

/** Sends a request to the server under test and reads the body as bytes. */
export const callBytes = (path: string) =>
  Effect.flatMap(Server.url, (url) =>
    Effect.promise(async () => {
      const response = await fetch(`${url}${path}`)
      return { status: response.status, headers: response.headers, bytes: new Uint8Array(await response.arrayBuffer()) }
    }))

/** A JSON request body. */
export const jsonBody = (method: string, body: unknown) => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body)
})

/** The field names a 400 `HttpApiDecodeError` blames. */
export const blamedFields = (reply: Reply): Array<string> => {
  const body = reply.json as {
    readonly _tag: string
    readonly issues: ReadonlyArray<{ readonly path: Array<unknown> }>
  }
  if (body._tag !== "HttpApiDecodeError") throw new Error(`not a decode error: ${reply.text}`)
  return [...new Set(body.issues.map((issue) => String(issue.path[0])))]
}

/** A `node:http` upstream answering with `handler`; every socket is destroyed when the scope closes. */
export const stubUpstream = (
  handler: NodeHttp.RequestListener
): Effect.Effect<{ readonly url: string; readonly server: NodeHttp.Server }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<NodeHttp.Server>((resume) => {
      const server = NodeHttp.createServer(handler)
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((server) => ({ server, url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}` })))

/** A port nothing listens on. */
export const closedPort = Effect.promise(freePort)

/** Byte `k` of every sandbox file. */
export const byteAt = (offset: number) => offset % 251

/**
 * The route's own members of a problem+json answer, after checking its RFC 9457 members:
 * `type` `about:blank`, `status` the response's, a `title`, and `detail` the route's `message`.
 */
export const routeMembers = (reply: Reply): Record<string, unknown> => {
  expect(reply.headers.get("content-type")).toBe("application/problem+json")
  const { detail, requestId, status, title, type, ...members } = reply.json as Record<string, unknown>
  expect(requestId).toBe(reply.headers.get("x-request-id"))
  expect(type).toBe("about:blank")
  expect(status).toBe(reply.status)
  expect(typeof title).toBe("string")
  expect(detail).toBe(members.message)
  return members
}
