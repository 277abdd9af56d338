/**
 * Starts the demo server: `node packages/server/dist/main.js`, configured by the environment
 * (see `Config`). SIGTERM or SIGINT shut it down gracefully; the exit code is 0 then.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Server from "./Server.js"

/**
 * A refused configuration is reported as its message alone (it names every problem; a stack
 * trace would only bury it); any other failure as the runtime would report it.
 */
const report = (cause: Cause.Cause<Server.StartError>) => {
  if (Cause.isInterruptedOnly(cause)) return Effect.void
  const failure = Cause.failureOption(cause)
  return Option.isSome(failure) &&
      (failure.value._tag === "InvalidConfiguration" || failure.value._tag === "UnsafeConfiguration")
    ? Effect.logError(failure.value.message)
    : Effect.logError(cause)
}

Layer.launch(Server.layerConfig).pipe(
  Effect.tapErrorCause(report),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
