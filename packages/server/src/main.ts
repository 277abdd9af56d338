/**
 * Starts the demo server: `node packages/server/dist/main.js`, configured by the environment
 * (see `Config`), its telemetry by `Telemetry.layerConfig` (`LOG_FORMAT`, `LOG_LEVEL`,
 * `OTEL_EXPORTER_OTLP_ENDPOINT`). SIGTERM or SIGINT shut it down gracefully; the exit code is 0 then.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Telemetry from "./observability/Telemetry.js"
import * as Safety from "./Safety.js"
import * as Server from "./Server.js"
import * as Settings from "./Settings.js"

/**
 * A refused configuration is reported as its message alone (it names every problem; a stack
 * trace would only bury it); any other failure as the runtime would report it.
 */
const report = (cause: Cause.Cause<unknown>) => {
  if (Cause.isInterruptedOnly(cause)) return Effect.void
  const failure = Option.getOrUndefined(Cause.failureOption(cause))
  return failure instanceof Settings.InvalidConfiguration || failure instanceof Safety.UnsafeConfiguration
    ? Effect.logError(failure.message)
    : Effect.logError(cause)
}

// Every setting, the telemetry's included, is checked before the telemetry or anything else starts.
Effect.zipRight(Settings.validate, Layer.launch(Server.layerConfig.pipe(Layer.provide(Telemetry.layerConfig)))).pipe(
  Effect.tapErrorCause(report),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
