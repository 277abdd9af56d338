/**
 * What a policy shows of its calls: a `liaison.call` span per logical call with one
 * `liaison.attempt` child per attempt (only when a tracer that records is installed: with
 * Effect's built-in tracer nothing is allocated), and the `liaison_http_client_*` metrics,
 * updated synchronously on label arrays cached per host and method (the metric registry's own
 * cache is keyed by the array's identity).
 *
 * The attributes set here hold the method, host, port, status, counts and delays: never a URL, a
 * query string or a header. (`Http` adds its redacted request attributes to an attempt's span.)
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as MetricLabel from "effect/MetricLabel"
import * as MetricLabelModule from "effect/MetricLabel"
import type * as Tracer from "effect/Tracer"
import type * as Http from "../Http.js"
import type * as HttpError from "../HttpError.js"
import type { AttemptInfo } from "./retry.js"
import * as Tracing from "./tracing.js"

/** @internal */
export type Outcome = "success" | "status_error" | "timeout" | "transport_error" | "rejected"

const outcomes: ReadonlyArray<Outcome> = ["success", "status_error", "timeout", "transport_error", "rejected"]
const statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"] as const
type StatusClass = typeof statusClasses[number]

const duration = Metric.histogram(
  "liaison_http_client_duration_seconds",
  // OpenTelemetry's advised buckets for HTTP client durations.
  MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]),
  "Outbound HTTP calls through a policy (retries and their delays included), by host, method and final status class"
)
const attempts = Metric.counter("liaison_http_client_attempts_total", {
  description: "Attempts of outbound HTTP calls through a policy, by host, method and outcome",
  incremental: true
})

/** The label arrays of one method to one host, built once. */
interface MethodLabels {
  readonly byOutcome: Readonly<Record<Outcome, ReadonlyArray<MetricLabel.MetricLabel>>>
  readonly byStatusClass: Readonly<Record<StatusClass, ReadonlyArray<MetricLabel.MetricLabel>>>
}

/**
 * A host's span attributes and metric labels.
 *
 * @internal
 */
export interface HostLabels {
  readonly host: string
  readonly address: string
  readonly port: number | undefined
  readonly methods: Map<string, MethodLabels>
}

/** @internal */
export const hostLabels = (host: string): HostLabels => {
  const portAt = host.lastIndexOf(":")
  const hasPort = portAt !== -1 && host.indexOf("]", portAt) === -1
  return {
    host,
    address: hasPort ? host.slice(0, portAt) : host,
    port: hasPort ? Number(host.slice(portAt + 1)) : undefined,
    methods: new Map()
  }
}

const methodLabels = (labels: HostLabels, method: string): MethodLabels => {
  let found = labels.methods.get(method)
  if (found === undefined) {
    const base = [MetricLabelModule.make("host", labels.host), MetricLabelModule.make("method", method)]
    const by = <K extends string>(keys: ReadonlyArray<K>, name: string) => {
      const record = {} as Record<K, ReadonlyArray<MetricLabel.MetricLabel>>
      for (const key of keys) record[key] = [...base, MetricLabelModule.make(name, key)]
      return record
    }
    found = { byOutcome: by(outcomes, "outcome"), byStatusClass: by(statusClasses, "status_class") }
    labels.methods.set(method, found)
  }
  return found
}

/** The fiber's own metric labels (`Effect.labelMetrics`) come first, as `Metric.update` has them. */
const withFiberLabels = (
  fiberLabels: ReadonlyArray<MetricLabel.MetricLabel>,
  labels: ReadonlyArray<MetricLabel.MetricLabel>
): ReadonlyArray<MetricLabel.MetricLabel> => fiberLabels.length === 0 ? labels : [...fiberLabels, ...labels]

/** The outcome of an attempt, as its span and counter name it. */
export const outcomeOf = (exit: Exit.Exit<Http.Response, HttpError.HttpError>): Outcome => {
  if (exit._tag === "Success") return exit.value.status >= 400 ? "status_error" : "success"
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  switch (error?._tag) {
    case "StatusError":
      return "status_error"
    case "TimeoutError":
      return "timeout"
    case "CircuitOpen":
    case "RateLimited":
      return "rejected"
    default:
      return "transport_error"
  }
}

const statusOf = (exit: Exit.Exit<Http.Response, HttpError.HttpError>): number | undefined => {
  if (exit._tag === "Success") return exit.value.status
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  return error?._tag === "StatusError" ? error.status : undefined
}

const statusClassOf = (status: number | undefined): StatusClass =>
  status === undefined || status < 100 || status > 599 ? "error" : statusClasses[Math.floor(status / 100) - 1]!

/**
 * The span of a call, and how many attempts it made so far.
 *
 * @internal
 */
export interface CallSpan {
  readonly span: Tracer.Span
  attempts: number
  readonly fiberLabels: ReadonlyArray<MetricLabel.MetricLabel>
}

type Execute = ReturnType<Http.Service["execute"]>

/**
 * Runs a call: its duration and final status class into the histogram, and, when a tracer
 * records, inside a `liaison.call` span that `body` receives for its attempts.
 *
 * @internal
 */
export const call = (
  labels: HostLabels,
  request: HttpClientRequest.HttpClientRequest,
  body: (span: CallSpan | undefined, fiberLabels: ReadonlyArray<MetricLabel.MetricLabel>) => Execute
): Execute =>
  Effect.withFiberRuntime((fiber) => {
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    const start = clock.unsafeCurrentTimeMillis()
    const fiberLabels = fiber.getFiberRef(FiberRef.currentMetricLabels)
    const record = (exit: Exit.Exit<Http.Response, HttpError.HttpError>) => {
      const status = statusOf(exit)
      duration.unsafeUpdate(
        (clock.unsafeCurrentTimeMillis() - start) / 1000,
        withFiberLabels(fiberLabels, methodLabels(labels, request.method).byStatusClass[statusClassOf(status)])
      )
      return status
    }
    const tracer = Tracing.recordingTracer(fiber)
    if (tracer === undefined) {
      return Effect.flatMap(Effect.exit(body(undefined, fiberLabels)), (exit) => {
        record(exit)
        return exit
      })
    }
    const span = Tracing.startSpan(fiber, tracer, "liaison.call", "client")
    const call: CallSpan = { span, attempts: 0, fiberLabels }
    span.attribute("http.request.method", request.method)
    span.attribute("server.address", labels.address)
    if (labels.port !== undefined) span.attribute("server.port", labels.port)
    // Not made the current span: every attempt names it as its parent, and nothing else of the
    // call (the retry's waits) makes spans; a context copy per call saved.
    return Effect.onExit(body(call, fiberLabels), (exit) =>
      Effect.sync(() => {
        const status = record(exit)
        if (status !== undefined) span.attribute("http.response.status_code", status)
        span.attribute("liaison.attempts", call.attempts)
        // OpenTelemetry's HTTP client convention: a status of 400 or more is an error too.
        if (exit._tag === "Failure" || (status !== undefined && status >= 400)) {
          span.attribute("error.type", errorType(exit, status))
        }
        Tracing.endSpan(fiber, span, exit)
      }))
  })

/** OpenTelemetry's `error.type`: the status code for a status error, else the error's tag. */
const errorType = (exit: Exit.Exit<Http.Response, HttpError.HttpError>, status: number | undefined): string => {
  if (status !== undefined) return String(status)
  const error = exit._tag === "Failure" && exit.cause._tag === "Fail" ? exit.cause.error : undefined
  return error?._tag ?? "_OTHER"
}

/**
 * Counts an attempt's end by its outcome (outside a span: the retry loop calls it with the
 * attempt's exit, so an untraced attempt costs no effect of its own).
 *
 * @internal
 */
export const countAttempt = (
  labels: HostLabels,
  method: string,
  fiberLabels: ReadonlyArray<MetricLabel.MetricLabel>,
  exit: Exit.Exit<Http.Response, HttpError.HttpError>
): Outcome => {
  const outcome = outcomeOf(exit)
  attempts.unsafeUpdate(1, withFiberLabels(fiberLabels, methodLabels(labels, method).byOutcome[outcome]))
  return outcome
}

/**
 * Runs an attempt of a traced call as a `liaison.attempt` span, its outcome counted. The span is
 * current within the attempt (the breaker's and the limiter's events go to it) and stands for
 * the attempt's HTTP request: the transport adds the request's attributes to it rather than
 * making an `http.client` child (OpenTelemetry's HTTP client span is one per attempt).
 *
 * @internal
 */
export const tracedAttempt = (
  labels: HostLabels,
  method: string,
  info: AttemptInfo,
  call: CallSpan,
  effect: Execute
): Execute =>
  Effect.withFiberRuntime((fiber) => {
    call.attempts = info.attempt
    const span = Tracing.startSpan(fiber, fiber.currentTracer, "liaison.attempt", "client", call.span)
    span.attribute("liaison.attempt", info.attempt)
    span.attribute("liaison.delay_ms", info.delayMillis)
    if (info.retryAfterMillis !== undefined) span.attribute("liaison.retry_after_ms", info.retryAfterMillis)
    Tracing.offerForRequest(span)
    return Tracing.inSpan(fiber, span, effect, (exit) => {
      span.attribute("liaison.outcome", countAttempt(labels, method, call.fiberLabels, exit))
      Tracing.endSpan(fiber, span, exit)
    })
  })
