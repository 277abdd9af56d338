/**
 * Starts the demo server: `node packages/server/dist/main.js`, configured by the environment
 * (see `Config`; logs and telemetry export by `Telemetry`). SIGTERM or SIGINT shut it down
 * gracefully; the exit code is 0 then.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Layer from "effect/Layer"
import * as Telemetry from "./observability/Telemetry.js"
import * as Server from "./Server.js"

Layer.launch(Server.layerConfig.pipe(Layer.provide(Telemetry.layerConfig))).pipe(NodeRuntime.runMain)
