/**
 * HTTP calls to other people's APIs as Effect programs.
 *
 * `Http` is a long-lived client over `@effect/platform`'s `HttpClient` (undici through
 * `@effect/platform-node`): one connection pool per upstream origin, released when the
 * layer's scope closes; a timeout per phase (connect, write, read, pool) plus a total
 * deadline; every failure one of the typed {@link HttpError.HttpError} cases.
 *
 * Requests are built with `HttpClientRequest` and the `with*` helpers here; responses are
 * read with {@link json}, {@link text}, {@link bytes}, {@link xml}, {@link jsonOrEmpty},
 * {@link empty} or {@link stream}.
 *
 * @example
 * ```ts
 * import { HttpClientRequest } from "@effect/platform"
 * import { Http } from "@liaison/core"
 * import { Effect, Schema } from "effect"
 *
 * const User = Schema.Struct({ id: Schema.Number, name: Schema.String })
 * const Filter = Schema.Struct({ name: Schema.optional(Schema.String), active: Schema.optional(Schema.Boolean) })
 *
 * const program = HttpClientRequest.get("/users").pipe(
 *   Http.withQuery(Filter, { active: true }),
 *   Effect.flatMap(Http.json(Schema.Array(User))),
 *   Effect.provide(Http.layer({ baseUrl: "https://api.example.com" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Undici from "@effect/platform-node/Undici"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Record from "effect/Record"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { DecodeError } from "./HttpError.js"
import * as HttpError from "./HttpError.js"
import * as internal from "./internal/httpClient.js"
import { guardedConnector } from "./internal/ssrf.js"
import * as transport from "./internal/undiciTransport.js"
import { encodePairs } from "./internal/urlEncoding.js"
import { parseXml } from "./internal/xml.js"

/**
 * Timeouts of each phase of a call. Defaults: connect 5 s, read 10 s, write 10 s, pool 5 s
 * (short enough that a dead upstream is noticed in seconds, long enough for a slow API); no total deadline unless one is set.
 *
 * - `connect`: TCP connect plus TLS handshake.
 * - `write`: the request body making no progress (a streamed upload stalled by backpressure).
 * - `read`: waiting for the response headers once the request is sent, then the body
 *   going idle between two chunks.
 * - `pool`: waiting for a free connection slot when `maxConnections` calls are in flight.
 * - `total`: the whole buffered call, body included (optional: it costs an Effect timer
 *   per call, where the phases above are timed by undici). Streams ({@link stream}) are
 *   bounded by `read` (idle) instead, so a long download is not cut off while it makes progress.
 *
 * @since 0.1.0
 * @category models
 */
export interface Timeouts {
  readonly connect: Duration.DurationInput
  readonly write: Duration.DurationInput
  readonly read: Duration.DurationInput
  readonly pool: Duration.DurationInput
  readonly total: Duration.DurationInput | undefined
}

/**
 * Connection pool settings, per upstream origin.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolOptions {
  /** Connections per origin, and calls in flight (more wait up to the `pool` timeout). Default 100. */
  readonly maxConnections: number
  /** How long an idle keep-alive connection is kept. Default 10 s. */
  readonly keepAlive: Duration.DurationInput
  /** Negotiate HTTP/2 by ALPN with upstreams that offer it. Default true. */
  readonly allowH2: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prepended to every request URL, e.g. `https://api.example.com/v1`. */
  readonly baseUrl?: string | undefined
  /**
   * Headers sent with every request. A `Redacted` value is a secret: its header name is
   * redacted (`Headers.currentRedactedNames`) in the spans of every call.
   */
  readonly headers?: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
  readonly timeouts?: Partial<Timeouts> | undefined
  readonly pool?: Partial<PoolOptions> | undefined
  /** The most bytes a buffered response body may have; larger is a `DecodeError`. Default 32 MiB. */
  readonly maxBodyBytes?: number | undefined
  /** How much of an error response's body is kept in `StatusError.body`. Default 4 KiB. */
  readonly maxErrorBodyBytes?: number | undefined
  /** Extra certificate authorities (PEM) to trust, e.g. a private CA. */
  readonly ca?: string | ReadonlyArray<string> | undefined
  /** Transforms the underlying client, e.g. to add authentication. */
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
  /**
   * The SSRF guard: connect only to public addresses, checked on the very addresses each
   * socket is opened to (so DNS rebinding gains nothing). Each field allows one more kind of
   * address; reserved ranges (unspecified, multicast, documentation) are never allowed. A
   * refused connection fails with a `TransportError` whose reason is `blocked`. Off by default.
   */
  readonly addressGuard?: AddressGuard | undefined
  /**
   * What sends the requests, both over undici with the pool, timeouts and address guard above:
   * - `"undici"` (the default): Liaison's own lean `HttpClient` (no `AbortController` per call,
   *   headers converted only when read, bodies kept as undici hands them over);
   * - `"platform"`: `@effect/platform-node`'s `NodeHttpClient.makeUndici`.
   *
   * When unset, the environment variable `LIAISON_HTTP_TRANSPORT` (`undici` or `platform`)
   * decides, so a deployment can switch without a code change.
   */
  readonly transport?: Transport | undefined
}

/**
 * Which client sends the requests; see {@link Options.transport}.
 *
 * @since 0.1.0
 * @category models
 */
export type Transport = "undici" | "platform"

/**
 * Which non-public addresses the {@link Options.addressGuard} lets a connection reach.
 *
 * @since 0.1.0
 * @category models
 */
export interface AddressGuard {
  /** 127.0.0.0/8 and ::1. Default false. */
  readonly loopback?: boolean | undefined
  /** RFC 1918, carrier-grade NAT, benchmarking and unique-local ranges. Default false. */
  readonly private?: boolean | undefined
  /** 169.254.0.0/16 (cloud metadata services) and fe80::/10. Default false. */
  readonly linkLocal?: boolean | undefined
}

/**
 * The options with every default filled in.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedOptions {
  readonly baseUrl: string | undefined
  readonly timeouts: {
    readonly connect: Duration.Duration
    readonly write: Duration.Duration
    readonly read: Duration.Duration
    readonly pool: Duration.Duration
    readonly total: Duration.Duration | undefined
  }
  readonly pool: { readonly maxConnections: number; readonly keepAlive: Duration.Duration; readonly allowH2: boolean }
  readonly maxBodyBytes: number
  readonly maxErrorBodyBytes: number
  readonly transport: Transport
}

/**
 * A response whose body has not been read yet. Read it once, within the scope it came from
 * (closing the scope cancels a body nobody read); the body readers apply the `read` idle
 * timeout and map failures to {@link HttpError.HttpError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Response {
  /** The request this answers (for errors: its URL is redacted when one is built). */
  readonly request: HttpClientRequest.HttpClientRequest
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  /** The body as chunks, each within the `read` timeout of the last. */
  readonly stream: Stream.Stream<Uint8Array, HttpError.HttpError>
  /** The whole body, at most `maxBodyBytes`. */
  readonly bytes: Effect.Effect<Uint8Array, HttpError.HttpError>
  /** The whole body as UTF-8 text. */
  readonly text: Effect.Effect<string, HttpError.HttpError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly options: ResolvedOptions
  /**
   * The underlying client: base URL, default headers, `transformClient`, and undici's connect
   * and read timeouts; no pool, write or total timeout, errors not mapped.
   */
  readonly client: HttpClient.HttpClient
  /**
   * Sends a request and succeeds with any status once the headers arrive (pool, write and
   * read timeouts applied). The pool slot is freed, and an unread body cancelled, when the
   * scope closes.
   */
  readonly execute: (
    request: HttpClientRequest.HttpClientRequest
  ) => Effect.Effect<Response, HttpError.HttpError, Scope.Scope>
}

/**
 * The long-lived HTTP client service.
 *
 * @since 0.1.0
 * @category tags
 */
export class Http extends Context.Tag("@liaison/core/Http")<Http, Service>() {}

/**
 * What sends a request: {@link Service}'s `execute`.
 *
 * @since 0.1.0
 * @category models
 */
export type Execute = Service["execute"]

/**
 * A decorator of calls: given the `execute` underneath (and the service, for its options),
 * the `execute` to use instead. `Retry`, `Policy`, `Auth` and telemetry are middlewares;
 * {@link decorate} applies one to the `Http` in context.
 *
 * @since 0.1.0
 * @category models
 */
export type Middleware = (execute: Execute, http: Service) => Execute

/**
 * Replaces the {@link Http} service in context with one whose calls go through the middleware.
 * Layers compose outside-in: `Http.layer(o).pipe(Layer.provideMerge(...))` — the middleware
 * provided last wraps the others.
 *
 * @example
 * ```ts
 * const Client = Policy.layer({ attemptTimeout: "2 seconds" }).pipe(Layer.provide(Http.layer({ baseUrl })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const decorate = <E = never, R = never>(
  middleware: Middleware | Effect.Effect<Middleware, E, R>
): Layer.Layer<Http, E, Http | R> =>
  Layer.effect(
    Http,
    Effect.flatMap(Http, (http) =>
      Effect.map(
        Effect.isEffect(middleware) ? middleware : Effect.succeed(middleware),
        (m): Service => ({ ...http, execute: m(http.execute, http) })
      ))
  )

/**
 * Applies a middleware to a service directly (for a client that holds its own `Http`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withMiddleware: {
  (middleware: Middleware): (http: Service) => Service
  (http: Service, middleware: Middleware): Service
} = dual(2, (http: Service, middleware: Middleware): Service => ({ ...http, execute: middleware(http.execute, http) }))

/**
 * The defaults, from the lecture: connect 5 s, read 10 s, write 10 s, pool 5 s; no total;
 * 100 connections per origin kept alive 10 s; HTTP/2 when offered.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaults: ResolvedOptions = {
  baseUrl: undefined,
  timeouts: {
    connect: Duration.seconds(5),
    write: Duration.seconds(10),
    read: Duration.seconds(10),
    pool: Duration.seconds(5),
    total: undefined
  },
  pool: { maxConnections: 100, keepAlive: Duration.seconds(10), allowH2: true },
  maxBodyBytes: 32 * 1024 * 1024,
  maxErrorBodyBytes: 4096,
  transport: "undici"
}

const transportOf = (option: Transport | undefined): Transport => {
  if (option !== undefined) return option
  const fromEnv = globalThis.process?.env["LIAISON_HTTP_TRANSPORT"]
  return fromEnv === "platform" ? "platform" : defaults.transport
}

const resolve = (options: Options): ResolvedOptions => {
  const timeouts = options.timeouts ?? {}
  const pool = options.pool ?? {}
  const duration = (input: Duration.DurationInput | undefined, fallback: Duration.Duration) =>
    input === undefined ? fallback : Duration.decode(input)
  return {
    baseUrl: options.baseUrl,
    timeouts: {
      connect: duration(timeouts.connect, defaults.timeouts.connect),
      write: duration(timeouts.write, defaults.timeouts.write),
      read: duration(timeouts.read, defaults.timeouts.read),
      pool: duration(timeouts.pool, defaults.timeouts.pool),
      total: timeouts.total === undefined ? undefined : Duration.decode(timeouts.total)
    },
    pool: {
      maxConnections: pool.maxConnections ?? defaults.pool.maxConnections,
      keepAlive: duration(pool.keepAlive, defaults.pool.keepAlive),
      allowH2: pool.allowH2 ?? defaults.pool.allowH2
    },
    maxBodyBytes: options.maxBodyBytes ?? defaults.maxBodyBytes,
    maxErrorBodyBytes: options.maxErrorBodyBytes ?? defaults.maxErrorBodyBytes,
    transport: transportOf(options.transport)
  }
}

/**
 * Builds the client: an undici `Agent` (the connection pools) acquired now and closed
 * when the scope closes, letting in-flight calls finish first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = resolve(options)
    const ca = options.ca === undefined ? undefined : typeof options.ca === "string" ? [options.ca] : [...options.ca]
    const connectOptions = {
      timeout: Duration.toMillis(resolved.timeouts.connect),
      ...(ca === undefined ? {} : { ca })
    }
    const agentOptions: Undici.Agent.Options = {
      connections: resolved.pool.maxConnections,
      keepAliveTimeout: Duration.toMillis(resolved.pool.keepAlive),
      allowH2: resolved.pool.allowH2,
      connect: options.addressGuard === undefined
        ? connectOptions
        : guardedConnector({
          loopback: options.addressGuard.loopback ?? false,
          private: options.addressGuard.private ?? false,
          linkLocal: options.addressGuard.linkLocal ?? false
        }, { ...connectOptions, allowH2: resolved.pool.allowH2 })
    }
    const dispatcher = yield* Effect.acquireRelease(
      Effect.sync(() =>
        resolved.transport === "undici"
          ? new Undici.Agent(agentOptions)
          : new internal.TimedAgent({ ...agentOptions, read: resolved.timeouts.read })
      ),
      (agent) =>
        // A release runs uninterruptibly: without `interruptible` the timeout could not stop the wait.
        Effect.promise(() => agent.close()).pipe(
          Effect.interruptible,
          Effect.timeout("5 seconds"),
          Effect.orElse(() => Effect.promise(() => agent.destroy()))
        )
    )
    const readMillis = Duration.toMillis(resolved.timeouts.read)
    // The platform's own span records the full URL (query string included): `execute` opens
    // its own span instead, with the URL redacted. Liaison's transport opens none.
    let client = resolved.transport === "undici"
      ? transport.make(dispatcher, { headersMillis: readMillis, bodyMillis: readMillis })
      : internal.withPlatformDeadline(
        HttpClient.withTracerDisabledWhen(NodeHttpClient.makeUndici(dispatcher), () => true)
      )
    if (resolved.baseUrl !== undefined) {
      client = HttpClient.mapRequest(client, internal.prependBaseUrl(resolved.baseUrl))
    }
    const secretHeaders: Array<string> = []
    const defaultHeaders: Record<string, string> = {}
    if (options.headers !== undefined) {
      for (const [name, value] of Object.entries(options.headers)) {
        if (Redacted.isRedacted(value)) secretHeaders.push(name.toLowerCase())
        defaultHeaders[name.toLowerCase()] = Redacted.isRedacted(value) ? Redacted.value(value) : value
      }
      client = HttpClient.mapRequest(client, HttpClientRequest.setHeaders(defaultHeaders))
    }
    if (options.transformClient !== undefined) client = options.transformClient(client)
    return {
      options: resolved,
      client,
      execute: internal.makeExecute(
        client,
        internal.slotsPerOrigin(resolved.baseUrl, resolved.pool.maxConnections),
        resolved,
        { defaults: defaultHeaders, secret: secretHeaders, empty: Object.keys(defaultHeaders).length === 0 },
        resolved.transport === "undici"
      )
    }
  })

/**
 * The client as a scoped layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Http> => Layer.scoped(Http, make(options))

/**
 * The client configured from the environment: `HTTP_BASE_URL` (optional; a `baseUrl` option wins),
 * `HTTP_CONNECT_TIMEOUT`, `HTTP_READ_TIMEOUT`, `HTTP_WRITE_TIMEOUT`, `HTTP_POOL_TIMEOUT`,
 * `HTTP_TOTAL_TIMEOUT` (durations such as `5 seconds`), `HTTP_MAX_CONNECTIONS`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (options: Omit<Options, "timeouts" | "pool"> = {}): Layer.Layer<
  Http,
  ConfigError.ConfigError
> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const optional = (name: string) => Config.option(Config.duration(name))
      const baseUrl = yield* Config.option(Config.string("HTTP_BASE_URL"))
      // Unset variables are left out: `make` fills in the defaults.
      const timeouts = yield* Config.all({
        connect: optional("HTTP_CONNECT_TIMEOUT"),
        read: optional("HTTP_READ_TIMEOUT"),
        write: optional("HTTP_WRITE_TIMEOUT"),
        pool: optional("HTTP_POOL_TIMEOUT"),
        total: optional("HTTP_TOTAL_TIMEOUT")
      })
      const maxConnections = yield* Config.option(Config.integer("HTTP_MAX_CONNECTIONS"))
      return layer({
        ...options,
        baseUrl: options.baseUrl ?? Option.getOrUndefined(baseUrl),
        timeouts: Record.getSomes(timeouts),
        pool: Record.getSomes({ maxConnections })
      })
    })
  )

// ---------------------------------------------------------------------------
// building requests
// ---------------------------------------------------------------------------

/**
 * Encodes a value with a Schema into a request (its query or its body); data-first or data-last.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestEncoder {
  <A, I, R>(
    schema: Schema.Schema<A, I, R>,
    value: A
  ): (
    request: HttpClientRequest.HttpClientRequest
  ) => Effect.Effect<HttpClientRequest.HttpClientRequest, HttpError.InvalidRequest, R>
  <A, I, R>(
    request: HttpClientRequest.HttpClientRequest,
    schema: Schema.Schema<A, I, R>,
    value: A
  ): Effect.Effect<HttpClientRequest.HttpClientRequest, HttpError.InvalidRequest, R>
}

const encodeFields = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  value: A,
  what: string
): Effect.Effect<Array<[string, string]>, HttpError.InvalidRequest, R> =>
  Schema.encode(schema)(value).pipe(
    Effect.mapError((error) =>
      new HttpError.InvalidRequest({ reason: `${what}: ${internal.describeParseError(error)}` })
    ),
    Effect.flatMap((encoded) => {
      const pairs = encodePairs(encoded)
      return pairs._tag === "Right"
        ? Effect.succeed(pairs.right)
        : Effect.fail(new HttpError.InvalidRequest({ reason: `${what}: ${pairs.left}` }))
    })
  )

/**
 * Appends query parameters from a Schema-typed filter object: the value is encoded with
 * the Schema, then `undefined` / `null` fields are dropped, booleans sent as `true` /
 * `false`, arrays as a repeated key (`tag=a&tag=b`). Nested objects are an `InvalidRequest`.
 *
 * @since 0.1.0
 * @category requests
 */
export const withQuery: RequestEncoder = dual(3, <A, I, R>(
  request: HttpClientRequest.HttpClientRequest,
  schema: Schema.Schema<A, I, R>,
  value: A
) =>
  Effect.map(
    encodeFields(schema, value, "query"),
    (pairs) => HttpClientRequest.appendUrlParams(request, pairs)
  ))

/**
 * Sets an `application/x-www-form-urlencoded` body, encoded as {@link withQuery} encodes.
 *
 * @since 0.1.0
 * @category requests
 */
export const withForm: RequestEncoder = dual(3, <A, I, R>(
  request: HttpClientRequest.HttpClientRequest,
  schema: Schema.Schema<A, I, R>,
  value: A
) =>
  Effect.map(
    encodeFields(schema, value, "form body"),
    (pairs) => HttpClientRequest.bodyUrlParams(request, pairs)
  ))

/**
 * Sets a JSON body encoded with the Schema. Fields that are `undefined` (or absent) are
 * not sent, so a PATCH with a partial value sends only the fields that are set; `null`
 * is sent as `null` (it clears a field).
 *
 * @since 0.1.0
 * @category requests
 */
export const withJson: RequestEncoder = dual(3, <A, I, R>(
  request: HttpClientRequest.HttpClientRequest,
  schema: Schema.Schema<A, I, R>,
  value: A
) =>
  Effect.mapError(
    HttpClientRequest.schemaBodyJson(schema)(request, value),
    (error) => new HttpError.InvalidRequest({ reason: `JSON body: ${describeBodyError(error.reason)}` })
  ))

const describeBodyError = (reason: { readonly _tag: string; readonly error?: unknown }): string =>
  ParseResult.isParseError(reason.error) ? internal.describeParseError(reason.error) : "not serializable as JSON"

// ---------------------------------------------------------------------------
// reading responses
// ---------------------------------------------------------------------------

/**
 * Sends a request and succeeds with any status once the headers arrive; see {@link Service}.
 *
 * @since 0.1.0
 * @category responses
 */
export const execute = (
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<Response, HttpError.HttpError, Http | Scope.Scope> =>
  Effect.flatMap(Http, (http) => http.execute(request))

const executeOkWith = (http: Service, request: HttpClientRequest.HttpClientRequest) =>
  Effect.flatMap(
    http.execute(request),
    (response) => ensureOk(response, { maxErrorBodyBytes: http.options.maxErrorBodyBytes })
  )

// ---------------------------------------------------------------------------
// response readers: the only place a response becomes a value or an HttpError
// ---------------------------------------------------------------------------

/**
 * Passes a 2xx response on; any other status is a `StatusError` carrying at most
 * `maxErrorBodyBytes` (default {@link defaults}' 4 KiB) of the body and the headers without
 * `set-cookie`. The URL in the error is redacted.
 *
 * @since 0.1.0
 * @category responses
 */
export const ensureOk = (
  response: Response,
  options?: { readonly maxErrorBodyBytes?: number | undefined }
): Effect.Effect<Response, HttpError.HttpError> =>
  response.status >= 200 && response.status < 300
    ? Effect.succeed(response)
    : internal.statusError(response.request, response, options?.maxErrorBodyBytes ?? defaults.maxErrorBodyBytes)

const decodeWith =
  <A, I, R>(response: Response, schema: Schema.Schema<A, I, R>) => (input: unknown): Effect.Effect<A, DecodeError, R> =>
    Schema.decodeUnknown(schema)(input).pipe(
      Effect.mapError((error) =>
        HttpError.decodeError(response.request, response.status, internal.describeParseError(error))
      )
    )

const parseJson = (response: Response, text: string) =>
  Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (cause) =>
      HttpError.decodeError(response.request, response.status, `invalid JSON: ${(cause as Error).message}`)
  })

/**
 * Reads a response's JSON body and decodes it with the Schema (any status: check it first with
 * {@link ensureOk}). Invalid JSON or a body that does not match is a `DecodeError` whose
 * reason names the paths and expectations, never the values (a body may hold tokens).
 *
 * @since 0.1.0
 * @category responses
 */
export const decodeJson: {
  <A, I, R>(schema: Schema.Schema<A, I, R>): (response: Response) => Effect.Effect<A, HttpError.HttpError, R>
  <A, I, R>(response: Response, schema: Schema.Schema<A, I, R>): Effect.Effect<A, HttpError.HttpError, R>
} = dual(
  2,
  <A, I, R>(response: Response, schema: Schema.Schema<A, I, R>): Effect.Effect<A, HttpError.HttpError, R> =>
    response.text.pipe(
      Effect.flatMap((text) => parseJson(response, text)),
      Effect.flatMap(decodeWith(response, schema))
    )
)

/**
 * Like {@link decodeJson} for answers that may have no body: a 204 or an empty (blank) body
 * is `None`.
 *
 * @since 0.1.0
 * @category responses
 */
export const decodeJsonOrEmpty: {
  <A, I, R>(
    schema: Schema.Schema<A, I, R>
  ): (response: Response) => Effect.Effect<Option.Option<A>, HttpError.HttpError, R>
  <A, I, R>(response: Response, schema: Schema.Schema<A, I, R>): Effect.Effect<Option.Option<A>, HttpError.HttpError, R>
} = dual(
  2,
  <A, I, R>(
    response: Response,
    schema: Schema.Schema<A, I, R>
  ): Effect.Effect<Option.Option<A>, HttpError.HttpError, R> =>
    response.status === 204
      ? Effect.succeedNone
      : Effect.flatMap(response.text, (text) =>
        text.trim() === ""
          ? Effect.succeedNone
          : parseJson(response, text).pipe(Effect.flatMap(decodeWith(response, schema)), Effect.map(Option.some)))
)

/**
 * Reads a response's XML body (fast-xml-parser: attributes as `@_name`, text next to
 * attributes as `#text`) and decodes the document with the Schema. A body that is not
 * well-formed XML is a `DecodeError`.
 *
 * @since 0.1.0
 * @category responses
 */
export const decodeXml: {
  <A, I, R>(schema: Schema.Schema<A, I, R>): (response: Response) => Effect.Effect<A, HttpError.HttpError, R>
  <A, I, R>(response: Response, schema: Schema.Schema<A, I, R>): Effect.Effect<A, HttpError.HttpError, R>
} = dual(
  2,
  <A, I, R>(response: Response, schema: Schema.Schema<A, I, R>): Effect.Effect<A, HttpError.HttpError, R> =>
    response.text.pipe(
      Effect.flatMap((text) => {
        const parsed = parseXml(text)
        return parsed._tag === "Right"
          ? Effect.succeed(parsed.right)
          : Effect.fail(HttpError.decodeError(response.request, response.status, `invalid XML: ${parsed.left}`))
      }),
      Effect.flatMap(decodeWith(response, schema))
    )
)

/**
 * Sends the request and succeeds once a 2xx answer's headers arrive, with the response to
 * read or stream within the scope; any other status is a `StatusError`. For a server that
 * passes a streamed body on, this is the moment to choose its own status and headers.
 *
 * @since 0.1.0
 * @category responses
 */
export const executeOk = (
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<Response, HttpError.HttpError, Http | Scope.Scope> =>
  Effect.flatMap(Http, (http) => executeOkWith(http, request))

const buffered = <A, R>(
  request: HttpClientRequest.HttpClientRequest,
  read: (response: Response) => Effect.Effect<A, HttpError.HttpError, R>
): Effect.Effect<A, HttpError.HttpError, Http | R> =>
  Effect.flatMap(Http, (http) => {
    // No middleware: the call and the read in one step, without a scope per call.
    const direct = internal.directCallOf(http.execute)
    const call = direct === undefined
      ? Effect.scoped(Effect.flatMap(executeOkWith(http, request), read))
      : direct(request, (response) => Effect.flatMap(okOf(http, response), read))
    return withTotalTimeout(request, http.options.timeouts.total)(call)
  })

const okOf = (http: Service, response: Response) =>
  ensureOk(response, { maxErrorBodyBytes: http.options.maxErrorBodyBytes })

/**
 * Bounds a whole call (body included) by a total deadline; past it the call fails with a
 * `TimeoutError` in phase `total` for this request (URL redacted). `undefined`: no deadline.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withTotalTimeout: (
  target: HttpError.Target,
  total: Duration.DurationInput | undefined
) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | HttpError.HttpError, R> = (target, total) =>
  internal.withTotalTimeout(target, total === undefined ? undefined : Duration.decode(total))

/**
 * Sends the request, expects a 2xx JSON body and decodes it with the Schema.
 *
 * @since 0.1.0
 * @category responses
 */
export const json: {
  <A, I, R>(
    schema: Schema.Schema<A, I, R>
  ): (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<A, HttpError.HttpError, Http | R>
  <A, I, R>(
    request: HttpClientRequest.HttpClientRequest,
    schema: Schema.Schema<A, I, R>
  ): Effect.Effect<A, HttpError.HttpError, Http | R>
} = dual(
  2,
  <A, I, R>(request: HttpClientRequest.HttpClientRequest, schema: Schema.Schema<A, I, R>) =>
    buffered(request, decodeJson(schema))
)

/**
 * For DELETE and other calls that may answer without a body: a 204 or an empty 2xx body is
 * `None`, a JSON body is decoded with the Schema into `Some`.
 *
 * @since 0.1.0
 * @category responses
 */
export const jsonOrEmpty: {
  <A, I, R>(
    schema: Schema.Schema<A, I, R>
  ): (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<Option.Option<A>, HttpError.HttpError, Http | R>
  <A, I, R>(
    request: HttpClientRequest.HttpClientRequest,
    schema: Schema.Schema<A, I, R>
  ): Effect.Effect<Option.Option<A>, HttpError.HttpError, Http | R>
} = dual(
  2,
  <A, I, R>(request: HttpClientRequest.HttpClientRequest, schema: Schema.Schema<A, I, R>) =>
    buffered(request, decodeJsonOrEmpty(schema))
)

/**
 * Sends the request, expects 2xx and returns the body as text.
 *
 * @since 0.1.0
 * @category responses
 */
export const text = (request: HttpClientRequest.HttpClientRequest): Effect.Effect<string, HttpError.HttpError, Http> =>
  buffered(request, (response) => response.text)

/**
 * Sends the request, expects 2xx and returns the body's bytes.
 *
 * @since 0.1.0
 * @category responses
 */
export const bytes = (
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<Uint8Array, HttpError.HttpError, Http> => buffered(request, (response) => response.bytes)

/**
 * Sends the request, expects 2xx and discards the body (for 204 and "accepted" answers);
 * the body is still read (so the connection is kept alive), at most `maxBodyBytes` of it.
 *
 * @since 0.1.0
 * @category responses
 */
export const empty = (request: HttpClientRequest.HttpClientRequest): Effect.Effect<void, HttpError.HttpError, Http> =>
  buffered(request, (response) => Effect.asVoid(response.bytes))

/**
 * Sends the request, expects a 2xx XML body, parses it (fast-xml-parser: attributes as
 * `@_name`, text next to attributes as `#text`) and decodes the document with the Schema.
 * A body that is not well-formed XML is a `DecodeError`.
 *
 * @since 0.1.0
 * @category responses
 */
export const xml: {
  <A, I, R>(
    schema: Schema.Schema<A, I, R>
  ): (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<A, HttpError.HttpError, Http | R>
  <A, I, R>(
    request: HttpClientRequest.HttpClientRequest,
    schema: Schema.Schema<A, I, R>
  ): Effect.Effect<A, HttpError.HttpError, Http | R>
} = dual(
  2,
  <A, I, R>(request: HttpClientRequest.HttpClientRequest, schema: Schema.Schema<A, I, R>) =>
    buffered(request, decodeXml(schema))
)

/**
 * Streams a 2xx response body in constant memory: chunks flow as the consumer pulls them,
 * each within the `read` timeout of the last. A non-2xx answer fails the stream with a
 * `StatusError` before any chunk. The connection is released when the stream ends.
 *
 * @since 0.1.0
 * @category responses
 */
export const stream = (
  request: HttpClientRequest.HttpClientRequest
): Stream.Stream<Uint8Array, HttpError.HttpError, Http> =>
  Stream.unwrapScoped(
    Effect.map(executeOk(request), (response) => response.stream)
  )
