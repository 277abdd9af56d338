/**
 * The breaker's metrics and span events. Everything here is synchronous and runs inside the
 * breaker's own `withFiberRuntime` step: a counter update is a cached hook's add, and a span
 * event is skipped outright when no tracer is installed (Effect's built-in tracer records
 * nothing anyone reads), so a call pays no extra Effect steps for its telemetry.
 */
import type * as Clock from "effect/Clock"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import type * as MetricKeyType from "effect/MetricKeyType"
import * as MetricLabel from "effect/MetricLabel"
import type { StateName } from "../breakerState.js"
import { activeSpan } from "../tracing.js"

// Keys, not metrics: a breaker's metrics carry their tags in the key itself (see `make`).
const transitions = MetricKey.counter("liaison_circuit_breaker_transitions_total", {
  description: "Circuit breaker state changes, by key and target state"
})

const calls = MetricKey.counter("liaison_circuit_breaker_calls_total", {
  description: "Circuit breaker decisions, by key: admitted (Closed), probe (HalfOpen) or rejected"
})

const states = MetricKey.gauge("liaison_circuit_breaker_state", {
  description: "1 for the breaker's current state, 0 for the others, by key and state"
})

/**
 * A metric with its tags in its key: its registry hook is looked up once. (`Metric.tagged`
 * adds its tags on every update, and each update then looks the hook up again: most of an
 * open breaker's cost per rejection.)
 */
const tagged = <Type extends MetricKeyType.MetricKeyType<number, unknown>>(
  key: MetricKey.MetricKey<Type>,
  tags: Record<string, string>
) =>
  Metric.fromMetricKey(
    MetricKey.taggedWithLabels(key, Object.entries(tags).map(([name, value]) => MetricLabel.make(name, value)))
  )

/** @internal */
export type Decision = "admitted" | "rejected" | "probe"

/** The `state` label and span attribute of a state. */
const stateLabel: Record<StateName, string> = { Closed: "closed", Open: "open", HalfOpen: "half_open" }

const stateNames: ReadonlyArray<StateName> = ["Closed", "Open", "HalfOpen"]

type Labels = ReadonlyArray<MetricLabel.MetricLabel>

interface Updatable {
  readonly unsafeUpdate: (value: number, extraTags: Labels) => void
}

/**
 * One breaker's metrics, tagged once with its key (a tagged metric looks its hook up once).
 *
 * @internal
 */
export interface Telemetry {
  readonly key: string
  readonly calls: Readonly<Record<Decision, Updatable>>
  readonly transitions: Readonly<Record<StateName, Updatable>>
  readonly states: Readonly<Record<StateName, Updatable>>
}

/** @internal */
export const make = (key: string): Telemetry => {
  const decision = (name: Decision) => tagged(calls, { key, decision: name })
  const byState = <M>(f: (name: StateName) => M) =>
    Object.fromEntries(stateNames.map((name) => [name, f(name)])) as Record<StateName, M>
  const telemetry: Telemetry = {
    key,
    calls: { admitted: decision("admitted"), rejected: decision("rejected"), probe: decision("probe") },
    transitions: byState((name) => tagged(transitions, { key, to: stateLabel[name] })),
    states: byState((name) => tagged(states, { key, state: stateLabel[name] }))
  }
  setState(telemetry, "Closed", [])
  return telemetry
}

const labelsOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>) => fiber.getFiberRef(FiberRef.currentMetricLabels)

/** @internal */
export const count = (telemetry: Telemetry, decision: Decision, fiber: Fiber.RuntimeFiber<unknown, unknown>): void =>
  telemetry.calls[decision].unsafeUpdate(1, labelsOf(fiber))

const setState = (
  telemetry: Telemetry,
  current: StateName,
  labels: Labels
): void => {
  for (const name of stateNames) telemetry.states[name].unsafeUpdate(name === current ? 1 : 0, labels)
}

/**
 * A `liaison.circuit_breaker` event on the current span: a rejection, a probe, or (without a
 * decision) a change of state.
 *
 * @internal
 */
export const event = (
  telemetry: Telemetry,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  clock: Clock.Clock,
  state: StateName,
  decision: Decision | undefined,
  previous?: StateName
): void => {
  const span = activeSpan(fiber)
  if (span === undefined) return
  const attributes: Record<string, unknown> = {
    "liaison.circuit_breaker.key": telemetry.key,
    "liaison.circuit_breaker.state": stateLabel[state]
  }
  if (decision !== undefined) attributes["liaison.circuit_breaker.decision"] = decision
  if (previous !== undefined) attributes["liaison.circuit_breaker.previous_state"] = stateLabel[previous]
  span.event("liaison.circuit_breaker", clock.unsafeCurrentTimeNanos(), attributes)
}

/**
 * A change of state: the transition counted, the gauge moved, an event on the current span
 * (when there is a fiber: a change applied from another instance has none).
 *
 * @internal
 */
export const transitioned = (
  telemetry: Telemetry,
  from: StateName,
  to: StateName,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  clock: Clock.Clock
): void => {
  const labels = labelsOf(fiber)
  telemetry.transitions[to].unsafeUpdate(1, labels)
  setState(telemetry, to, [])
  event(telemetry, fiber, clock, to, undefined, from)
}
