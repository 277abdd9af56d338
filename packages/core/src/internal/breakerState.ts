/**
 * The circuit breaker's state machine as pure functions of (state, event, now): no effects, no
 * clock, so the `Ref` that holds it can apply each event atomically with `Ref.modify`.
 *
 * A call is admitted with the state's `generation`; its outcome only counts while that generation
 * is current. Every transition starts a new generation, so a slow call admitted while Closed cannot
 * close (or re-open) a breaker that has since opened, and probes are exactly the calls admitted
 * in the HalfOpen generation.
 */

/**
 * A failure-rate trip rule, resolved.
 *
 * @internal
 */
export interface FailureRate {
  /** Trip when failures / calls in the window reach this share (0 < threshold ≤ 1). */
  readonly threshold: number
  /** No verdict before the window holds this many calls. */
  readonly minimumCalls: number
  /** The last `size` calls, or the calls of the last `millis` milliseconds. */
  readonly window:
    | { readonly _tag: "Count"; readonly size: number }
    | { readonly _tag: "Time"; readonly millis: number }
}

/** @internal */
export interface Settings {
  readonly failureThreshold: number
  readonly failureRate: FailureRate | undefined
  readonly openMillis: number
  readonly maxOpenMillis: number
  readonly halfOpenProbes: number
}

interface Call {
  readonly at: number
  readonly failed: boolean
}

/** @internal */
export type State =
  | {
    readonly _tag: "Closed"
    readonly generation: number
    readonly consecutiveFailures: number
    /** Recent calls, oldest first; kept only when a failure rate is configured. */
    readonly calls: ReadonlyArray<Call>
  }
  | {
    readonly _tag: "Open"
    readonly generation: number
    readonly openedAt: number
    /** `Infinity` when isolated by hand. */
    readonly until: number
  }
  | {
    readonly _tag: "HalfOpen"
    readonly generation: number
    readonly admitted: number
    readonly successes: number
  }

/** @internal */
export type StateName = State["_tag"]

/** @internal */
export const initial: State = { _tag: "Closed", generation: 0, consecutiveFailures: 0, calls: [] }

const closed = (generation: number): State => ({ _tag: "Closed", generation, consecutiveFailures: 0, calls: [] })

const open = (generation: number, now: number, millis: number): State => ({
  _tag: "Open",
  generation,
  openedAt: now,
  until: now + millis
})

/** @internal */
export type Admission =
  | { readonly _tag: "Admitted"; readonly generation: number; readonly probe: boolean }
  | { readonly _tag: "Rejected"; readonly remainingMillis: number }

/**
 * Admits a call or rejects it; an Open breaker whose time is up becomes HalfOpen first.
 *
 * @internal
 */
export const admit = (state: State, now: number, settings: Settings): readonly [Admission, State] => {
  switch (state._tag) {
    case "Closed":
      return [{ _tag: "Admitted", generation: state.generation, probe: false }, state]
    case "Open": {
      if (now < state.until) return [{ _tag: "Rejected", remainingMillis: state.until - now }, state]
      const generation = state.generation + 1
      return [
        { _tag: "Admitted", generation, probe: true },
        { _tag: "HalfOpen", generation, admitted: 1, successes: 0 }
      ]
    }
    case "HalfOpen":
      return state.admitted < settings.halfOpenProbes
        ? [
          { _tag: "Admitted", generation: state.generation, probe: true },
          { ...state, admitted: state.admitted + 1 }
        ]
        : [{ _tag: "Rejected", remainingMillis: 0 }, state]
  }
}

/** @internal */
export type Outcome =
  | { readonly _tag: "Success" }
  | { readonly _tag: "Failure"; readonly retryAfterMillis: number | undefined }
  /** The call was interrupted: it says nothing about the upstream, but a probe gives its place back. */
  | { readonly _tag: "Abandoned" }

const recentCalls = (calls: ReadonlyArray<Call>, call: Call, rate: FailureRate): ReadonlyArray<Call> => {
  const all = [...calls, call]
  const { window } = rate
  return window._tag === "Count" ? all.slice(-window.size) : all.filter((c) => c.at > call.at - window.millis)
}

const rateTripped = (calls: ReadonlyArray<Call>, rate: FailureRate): boolean => {
  if (calls.length < rate.minimumCalls) return false
  const failures = calls.reduce((n, c) => c.failed ? n + 1 : n, 0)
  return failures / calls.length >= rate.threshold
}

const openMillisFor = (outcome: Outcome, settings: Settings): number =>
  outcome._tag === "Failure" && outcome.retryAfterMillis !== undefined
    ? Math.min(outcome.retryAfterMillis, settings.maxOpenMillis)
    : settings.openMillis

/**
 * Records the outcome of a call admitted in `generation`.
 *
 * @internal
 */
export const record = (
  state: State,
  admission: { readonly generation: number; readonly probe: boolean },
  outcome: Outcome,
  now: number,
  settings: Settings
): State => {
  if (admission.generation !== state.generation) return state
  switch (state._tag) {
    case "Closed": {
      if (outcome._tag === "Abandoned") return state
      // The hot path: a success that changes nothing allocates nothing.
      if (outcome._tag === "Success" && state.consecutiveFailures === 0 && settings.failureRate === undefined) {
        return state
      }
      const failed = outcome._tag === "Failure"
      const consecutiveFailures = failed ? state.consecutiveFailures + 1 : 0
      const calls = settings.failureRate === undefined
        ? state.calls
        : recentCalls(state.calls, { at: now, failed }, settings.failureRate)
      const tripped = consecutiveFailures >= settings.failureThreshold ||
        (failed && settings.failureRate !== undefined && rateTripped(calls, settings.failureRate))
      return tripped
        ? open(state.generation + 1, now, openMillisFor(outcome, settings))
        : { ...state, consecutiveFailures, calls }
    }
    case "Open":
      return state
    case "HalfOpen": {
      if (!admission.probe) return state
      switch (outcome._tag) {
        case "Abandoned":
          return { ...state, admitted: state.admitted - 1 }
        case "Failure":
          return open(state.generation + 1, now, openMillisFor(outcome, settings))
        case "Success":
          return state.successes + 1 >= settings.halfOpenProbes
            ? closed(state.generation + 1)
            : { ...state, successes: state.successes + 1 }
      }
    }
  }
}

/**
 * Opens the breaker until `reset`, whatever its state.
 *
 * @internal
 */
export const isolate = (state: State, now: number): State => open(state.generation + 1, now, Infinity)

/**
 * Closes the breaker and forgets its failures.
 *
 * @internal
 */
export const reset = (state: State): State => closed(state.generation + 1)

/**
 * The state as seen at `now`: an Open breaker whose time is up reads as HalfOpen.
 *
 * @internal
 */
export const nameAt = (state: State, now: number): StateName =>
  state._tag === "Open" && now >= state.until ? "HalfOpen" : state._tag

// ---------------------------------------------------------------------------------------------
// The shared breaker: what another instance's decisions do to this one's state.

/**
 * Another instance opened the breaker cluster-wide for `millis` from `now`: open (a new
 * generation, so calls in flight no longer count) unless already open at least that long.
 *
 * @internal
 */
export const openShared = (state: State, now: number, millis: number): State =>
  state._tag === "Open" && state.until >= now + millis ? state : open(state.generation + 1, now, millis)

/**
 * Another instance's probe closed the breaker: close it, unless it is already closed or was
 * isolated here by hand (an isolation is this instance's own decision, lifted only by `reset`).
 *
 * @internal
 */
export const closeShared = (state: State): State =>
  state._tag === "Closed" || (state._tag === "Open" && state.until === Infinity) ? state : closed(state.generation + 1)

/**
 * The cluster's probe is another instance's: an Open breaker whose time is up stays Open (the
 * same generation: nothing changed but when to ask again) for `millis` more.
 *
 * @internal
 */
export const holdOpen = (state: State, now: number, millis: number): State =>
  state._tag === "Open" && now >= state.until ? { ...state, until: now + millis } : state

/**
 * Whether the next call would be a probe that opens a HalfOpen generation: Open, time up.
 *
 * @internal
 */
export const probeDue = (state: State, now: number): boolean => state._tag === "Open" && now >= state.until
