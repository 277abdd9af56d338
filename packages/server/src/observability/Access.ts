/**
 * What the server records of each request it answers:
 *
 * - a request id: the caller's `x-request-id` when it is 1–128 characters of `A–Z a–z 0–9 . _ : = + / -`,
 *   a new UUID otherwise; sent back in the `x-request-id` response header (and by `problem` in
 *   every problem+json body as `requestId`), and on every log line written while the request runs;
 * - a server span `http.server <METHOD>` (kind `server`) continuing the caller's W3C `traceparent`
 *   (or `b3`), with `http.request.method`, `http.route` (the route template, never the path),
 *   `url.scheme` and `http.response.status_code` — no URL, query string or header, which may carry
 *   ids or secrets. The platform's own server span (which records the full URL) is turned off;
 * - `liaison_http_server_duration_seconds` (method, route, status_class);
 * - one access-log line at `Info`: method, route, status, duration, request id, trace id.
 *
 * @since 0.1.0
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as HttpTraceContext from "@effect/platform/HttpTraceContext"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"

/**
 * The response header (and request header read) carrying the request id.
 *
 * @since 0.1.0
 * @category constants
 */
export const requestIdHeader = "x-request-id"

const validRequestId = /^[A-Za-z0-9._:=+/-]{1,128}$/

/**
 * The caller's request id when it is safe to log and echo (bounded, no spaces, quotes or control
 * characters), a new UUID otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const requestIdOf = (given: string | undefined): string =>
  given !== undefined && validRequestId.test(given) ? given : globalThis.crypto.randomUUID()

const serverDurationKey = MetricKey.histogram(
  "liaison_http_server_duration_seconds",
  MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  "Time the demo server took to answer a request, by method, route template and status class"
)

/**
 * `liaison_http_server_duration_seconds`: how long the server took to answer, by method, route
 * template and status class.
 *
 * @since 0.1.0
 * @category metrics
 */
export const serverDuration = Metric.fromMetricKey(serverDurationKey)

type Histogram = typeof serverDuration

/**
 * The histogram of one method, route and status class, built once per combination: `Metric.tagged`
 * derives and hashes a new key on every update. Bounded: known methods × route templates × 5 classes.
 */
const taggedDurations = new Map<string, Histogram>()

const durationOf = (method: string, route: string, status: number): Histogram => {
  const statusLabel = statusClass(status)
  const key = `${method} ${route} ${statusLabel}`
  let metric = taggedDurations.get(key)
  if (metric === undefined) {
    metric = Metric.fromMetricKey(MetricKey.taggedWithLabels(serverDurationKey, [
      MetricLabel.make("method", method),
      MetricLabel.make("route", route),
      MetricLabel.make("status_class", statusLabel)
    ]))
    taggedDurations.set(key, metric)
  }
  return metric
}

const knownMethods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

/** An unknown method is `_OTHER` (as OpenTelemetry names it): a label never takes a caller's free text. */
const methodLabel = (method: string): string => knownMethods.has(method) ? method : "_OTHER"

/**
 * `2xx` … `5xx`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const statusClass = (status: number): string => `${Math.floor(status / 100)}xx`

/** The route the router matched (it sets `http.route` on the current span); `unmatched` otherwise. */
const routeOf = (span: Tracer.Span): string => {
  const route = span.attributes.get("http.route")
  return typeof route === "string" ? route : "unmatched"
}

interface Answer {
  readonly route: string
  readonly status: number
  readonly traceId: string
}

/** The app in a server span continuing the caller's trace; the route and status it answered. */
const traced = <E, R>(
  app: HttpApp.Default<E, R>,
  request: HttpServerRequest.HttpServerRequest
) =>
  Effect.useSpan(
    `http.server ${request.method}`,
    {
      parent: Option.getOrUndefined(HttpTraceContext.fromHeaders(request.headers)),
      kind: "server",
      captureStackTrace: false
    },
    (span) => {
      span.attribute("http.request.method", request.method)
      span.attribute("url.scheme", "http")
      return Effect.map(Effect.exit(Effect.withParentSpan(app, span)), (exit) => {
        const status = HttpServerError.exitResponse(exit).status
        span.attribute("http.response.status_code", status)
        return [exit, { route: routeOf(span), status, traceId: span.traceId } satisfies Answer] as const
      })
    }
  )

const accessLog = (method: string, answer: Answer, millis: number, requestId: string) =>
  Effect.logInfo(`${method} ${answer.route} ${answer.status} ${millis.toFixed(1)}ms`).pipe(
    Effect.annotateLogs({
      access: true,
      method,
      route: answer.route,
      status: answer.status,
      duration_ms: Math.round(millis * 10) / 10,
      request_id: requestId,
      trace_id: answer.traceId
    })
  )

/**
 * The request id, server span, duration metric and access log around `app` (see the module's
 * description), with `finish` applied to every response after its `x-request-id` header is set:
 * one pre-response handler for all of the server's own touches (each one added costs a copy of
 * the fiber's locals). Outermost, so that the header is set before other pre-response handlers run.
 *
 * @since 0.1.0
 * @category middleware
 */
export const make = (
  finish: (response: HttpServerResponse.HttpServerResponse) => HttpServerResponse.HttpServerResponse = identity
) =>
  HttpMiddleware.make((app) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const requestId = requestIdOf(request.headers[requestIdHeader])
      const started = performance.now()
      const method = methodLabel(request.method)
      return HttpApp.appendPreResponseHandler((_request, response) =>
        Effect.succeed(finish(HttpServerResponse.setHeader(response, requestIdHeader, requestId)))
      ).pipe(
        Effect.zipRight(traced(app, request)),
        Effect.annotateLogs("request_id", requestId),
        Effect.flatMap(([exit, answer]) => {
          const millis = performance.now() - started
          return Metric.update(durationOf(method, answer.route, answer.status), millis / 1000).pipe(
            Effect.zipRight(accessLog(method, answer, millis, requestId)),
            Effect.zipRight(exit)
          )
        })
      )
    })
  )

/**
 * {@link make} with nothing more to do to a response.
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = make()
