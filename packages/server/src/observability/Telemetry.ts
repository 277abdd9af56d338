/**
 * Telemetry at the edge: the library only produces spans and `effect/Metric`s; this module sends
 * them out, for the demo server (`main`) and for any application built on Liaison.
 *
 * - Logs: JSON lines (`LOG_FORMAT=json`: `timestamp`, `level`, `message`, the annotations, and
 *   `trace_id`/`span_id` when a span is current) or Effect's pretty lines (`LOG_FORMAT=pretty`,
 *   the default, a TTY or not: JSON is a deliberate choice of a deployment), at `LOG_LEVEL` and above.
 * - OTLP over HTTP (through `@effect/opentelemetry`'s exporters) when `OTEL_EXPORTER_OTLP_ENDPOINT`
 *   is set: traces to `<endpoint>/v1/traces`, metrics to `/v1/metrics`, logs to `/v1/logs`.
 *   Nothing is exported when it is unset. Prometheus scrapes `GET /metrics` (see `MetricsApi`).
 *
 * | variable | default | |
 * |---|---|---|
 * | `LOG_FORMAT` | `pretty` | `json` or `pretty` |
 * | `LOG_LEVEL` | `info` | `all`, `trace`, `debug`, `info`, `warning` (or `warn`), `error`, `fatal` or `none` (or `off`), any case |
 * | `OTEL_EXPORTER_OTLP_ENDPOINT` | unset | the collector's base URL, e.g. `http://localhost:4318` |
 * | `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` | or `http/json` |
 * | `OTEL_EXPORTER_OTLP_HEADERS` | none | redacted; `name=value,name2=value2` sent with every export |
 * | `OTEL_SERVICE_NAME` | `liaison-server` | the `service.name` resource attribute |
 * | `OTEL_BSP_SCHEDULE_DELAY` | `5000` | milliseconds between span exports |
 * | `OTEL_METRIC_EXPORT_INTERVAL` | `60000` | milliseconds between metric exports |
 *
 * @since 0.1.0
 */
import * as Otlp from "@effect/opentelemetry/Otlp"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Tracer from "effect/Tracer"
import { bufferedConsole } from "../internal/logSink.js"

/**
 * @since 0.1.0
 * @category models
 */
export type LogFormat = "json" | "pretty"

/**
 * @since 0.1.0
 * @category models
 */
export interface LogOptions {
  readonly format?: LogFormat | undefined
  /** Default `Info`. */
  readonly level?: LogLevel.LogLevel | undefined
}

/**
 * One JSON object per line: `timestamp`, `level`, `message`, the log's annotations as members,
 * `trace_id` and `span_id` of the current span, `cause` when there is one.
 *
 * @since 0.1.0
 * @category loggers
 */
export const jsonLogger: Logger.Logger<unknown, void> = Logger.withConsoleLog(Logger.make((options) => {
  const structured = Logger.structuredLogger.log(options)
  const span = Context.getOption(FiberRefs.getOrDefault(options.context, FiberRef.currentContext), Tracer.ParentSpan)
  // These members are the logger's own: an annotation cannot pass for them.
  const { cause: _cause, level: _level, message: _message, timestamp: _time, ...annotations } = structured.annotations
  return JSON.stringify({
    timestamp: structured.timestamp,
    level: options.logLevel.label,
    message: structured.message,
    ...annotations,
    ...(Option.isSome(span) ? { trace_id: span.value.traceId, span_id: span.value.spanId } : {}),
    ...(structured.cause === undefined ? {} : { cause: structured.cause })
  })
}))

/**
 * Replaces every logger in the layers built after it with the chosen format's, at `level` and above.
 * They write through a console that batches its lines into one write per turn of the event loop
 * (see `internal/logSink`): the access log costs a fraction of a request, not more than it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLogger = (options: LogOptions = {}): Layer.Layer<never> =>
  Layer.merge(
    Layer.locallyScoped(
      FiberRef.currentLoggers,
      HashSet.make(options.format === "json" ? jsonLogger : Logger.prettyLoggerDefault)
    ),
    Layer.merge(Console.setConsole(bufferedConsole()), Logger.minimumLogLevel(options.level ?? LogLevel.Info))
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface OtlpOptions {
  /** The collector's base URL; `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended. */
  readonly endpoint: string
  /** Default `http/protobuf` (OpenTelemetry's default). */
  readonly protocol?: "http/json" | "http/protobuf" | undefined
  /** Default `liaison-server`. */
  readonly serviceName?: string | undefined
  readonly headers?: Redacted.Redacted<Record<string, string>> | undefined
  /** Default 5 seconds. */
  readonly tracesInterval?: Duration.DurationInput | undefined
  /** Default 60 seconds. */
  readonly metricsInterval?: Duration.DurationInput | undefined
}

/**
 * Exports every span, metric and log over OTLP/HTTP (its own requests untraced) while the layer
 * is in scope; what is buffered is flushed when the scope closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerOtlp = (options: OtlpOptions): Layer.Layer<never> => {
  const settings = {
    baseUrl: options.endpoint,
    resource: { serviceName: options.serviceName ?? "liaison-server" },
    headers: options.headers === undefined ? undefined : Redacted.value(options.headers),
    tracerExportInterval: options.tracesInterval ?? Duration.seconds(5),
    metricsExportInterval: options.metricsInterval ?? Duration.seconds(60)
  }
  const exporter = options.protocol === "http/json" ? Otlp.layerJson(settings) : Otlp.layerProtobuf(settings)
  return Layer.merge(
    Layer.provide(exporter, FetchHttpClient.layer),
    Layer.effectDiscard(Effect.logInfo(
      `telemetry: OTLP (${options.protocol ?? "http/protobuf"}) to ${new URL(options.endpoint).origin}`
    ))
  )
}

/** `name=value,name2=value2`, values percent-decoded, as OpenTelemetry specifies. */
const parseHeaders = (text: string): Record<string, string> =>
  Object.fromEntries(
    text.split(",").flatMap((pair) => {
      const at = pair.indexOf("=")
      if (at <= 0) return []
      return [[pair.slice(0, at).trim(), decodeURIComponent(pair.slice(at + 1).trim())]]
    })
  )

const millis = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "Expected a positive number of milliseconds", validation: (n) => n >= 1 }),
    Config.withDefault(fallback),
    Config.map(Duration.millis)
  )

/**
 * `OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME`, `OTEL_BSP_SCHEDULE_DELAY`,
 * `OTEL_METRIC_EXPORT_INTERVAL`: the exporter's options, `None` when no endpoint is set.
 *
 * @since 0.1.0
 * @category config
 */
export const otlpConfig: Config.Config<Option.Option<OtlpOptions>> = Config.all({
  endpoint: Config.option(Config.url("OTEL_EXPORTER_OTLP_ENDPOINT")),
  protocol: Config.literal("http/protobuf", "http/json")("OTEL_EXPORTER_OTLP_PROTOCOL").pipe(
    Config.withDefault("http/protobuf" as const)
  ),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("liaison-server")),
  headers: Config.option(Config.redacted("OTEL_EXPORTER_OTLP_HEADERS")),
  tracesInterval: millis("OTEL_BSP_SCHEDULE_DELAY", 5000),
  metricsInterval: millis("OTEL_METRIC_EXPORT_INTERVAL", 60000)
}).pipe(Config.map(({ endpoint, headers, ...rest }) =>
  Option.map(endpoint, (url): OtlpOptions => ({
    ...rest,
    endpoint: url.toString().replace(/\/$/, ""),
    headers: Option.getOrUndefined(Option.map(headers, (text) => Redacted.make(parseHeaders(Redacted.value(text)))))
  }))
))

/** `LOG_LEVEL`'s names, case-insensitive (Effect's labels `warn` and `off` too). */
const levels: Record<string, LogLevel.LogLevel> = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  warn: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None,
  off: LogLevel.None
}

/**
 * `LOG_FORMAT` and `LOG_LEVEL`.
 *
 * @since 0.1.0
 * @category config
 */
export const logConfig: Config.Config<LogOptions> = Config.all({
  format: Config.literal("json", "pretty")("LOG_FORMAT").pipe(Config.withDefault("pretty" as const)),
  level: Config.string("LOG_LEVEL").pipe(
    Config.withDefault("info"),
    Config.mapOrFail((text) => {
      const level = levels[text.trim().toLowerCase()]
      return level === undefined
        ? Either.left(ConfigError.InvalidData([], `Expected one of ${Object.keys(levels).join(", ")}, got "${text}"`))
        : Either.right(level)
    })
  )
})

/**
 * The logger from {@link logConfig}, and the OTLP exporter from {@link otlpConfig} when an
 * endpoint is set: provide it to the application's layer, e.g.
 * `Layer.launch(Server.layerConfig.pipe(Layer.provide(Telemetry.layerConfig)))`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(Effect.all([logConfig, otlpConfig]), ([log, otlp]) =>
    Option.match(otlp, {
      onNone: () => layerLogger(log),
      // The logger first: the exporter adds its own logger to the set it replaces.
      onSome: (options) => Layer.provideMerge(layerOtlp(options), layerLogger(log))
    }))
)
