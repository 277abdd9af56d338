/**
 * The shared breaker: a registry of local breakers (the fast path, unchanged) that tells the
 * cluster's store of its trips and probe verdicts, asks it for the probe lease, and applies the
 * decisions other instances publish. The store failing (Redis down) never fails or holds up a
 * call: the local breaker decides alone, and the outage is logged once.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as CircuitBreaker from "../../CircuitBreaker.js"
import type { InvalidOptions } from "../../LiaisonError.js"
import type * as State from "../breakerState.js"
import * as Engine from "../circuitBreaker.js"
import { millis } from "../duration.js"
import * as Invalid from "../invalidOptions.js"
import { makeOutageLog } from "../outageLog.js"

/** @internal */
export interface Settings {
  readonly instance: string
  readonly quorum: number
  readonly windowMillis: number
  readonly leaseMillis: number
  readonly timeoutMillis: number
}

/** @internal */
export const resolveShared = (
  options: CircuitBreaker.SharedOptions,
  defaults: typeof CircuitBreaker.sharedDefaults
): Effect.Effect<Settings, InvalidOptions> => {
  const settings: Settings = {
    instance: options.instance ?? crypto.randomUUID(),
    quorum: options.quorum ?? defaults.quorum,
    windowMillis: millis(options.quorumWindow ?? defaults.quorumWindow),
    leaseMillis: millis(options.probeLease ?? defaults.probeLease),
    timeoutMillis: millis(options.storeTimeout ?? defaults.storeTimeout)
  }
  const invalid = Invalid.check([
    [settings.instance.length > 0, "instance", "must not be empty"],
    [Number.isInteger(settings.quorum) && settings.quorum >= 1, "quorum", "must be an integer ≥ 1"],
    [settings.windowMillis > 0, "quorumWindow", "must be positive"],
    [settings.leaseMillis > 0, "probeLease", "must be positive"],
    [settings.timeoutMillis > 0, "storeTimeout", "must be positive"]
  ])
  return invalid === undefined ? Effect.succeed(settings) : Effect.fail(invalid)
}

const tripped = (before: State.State, after: State.State) =>
  before._tag === "Closed" && after._tag === "Open" && Number.isFinite(after.until)

/** What this instance's own changes of state tell the cluster, and how it asks for the probe. */
const coordinator = (store: CircuitBreaker.StoreService, settings: Settings): Engine.Coordinator => {
  const outage = makeOutageLog("circuit breaker store")
  const { instance } = settings
  return {
    changed: ({ after, before, key, now, openedBy }) => {
      const openMillis = after._tag === "Open" ? after.until - now : 0
      const sent = tripped(before, after)
        ? store.reportTrip(key, {
          instance,
          millis: openMillis,
          quorum: settings.quorum,
          windowMillis: settings.windowMillis,
          openedBy
        })
        : before._tag !== "HalfOpen"
        ? Effect.void
        : after._tag === "Closed"
        ? store.settle(key, { _tag: "Closed", instance })
        : after._tag === "Open" && Number.isFinite(after.until)
        ? store.settle(key, { _tag: "Open", instance, millis: openMillis, openedBy })
        : Effect.void
      return Effect.catchAllCause(sent, () => Effect.void)
    },
    // No answer in time, or none at all: the local breaker decides (this instance probes).
    probeLease: (key) =>
      store.acquireProbe(key, instance, settings.leaseMillis).pipe(
        Effect.timeoutFail({
          duration: settings.timeoutMillis,
          onTimeout: () => `no answer in ${settings.timeoutMillis} ms`
        }),
        Effect.tap(() => outage.recovered),
        Effect.catchAll((error) =>
          Effect.as(outage.failed(`the probe lease: ${typeof error === "string" ? error : error.message}`), undefined)
        )
      )
  }
}

/** Applies a cluster decision to the local breaker of its key, if this instance has one. */
const receive = (registry: Engine.Registry, instance: string) => (event: CircuitBreaker.SharedEvent) => {
  if (event.origin === instance) return Effect.void
  const cell = registry.cell(event.key)
  if (cell === undefined) return Effect.void
  return Engine.applyShared(
    cell,
    event._tag === "Open" ? { _tag: "Open", millis: event.millis, openedBy: event.openedBy } : event
  )
}

/** A breaker created late catches up with the cluster: open here if it is open there. */
const catchUp = (store: CircuitBreaker.StoreService, timeoutMillis: number) => (cell: Engine.Cell) =>
  store.current(cell.key).pipe(
    Effect.timeout(timeoutMillis),
    Effect.flatMap((current) =>
      current === undefined
        ? Effect.void
        : Engine.applyShared(cell, { _tag: "Open", millis: current.millis, openedBy: current.openedBy })
    ),
    Effect.catchAllCause(() => Effect.void)
  )

/** @internal */
export const makeRegistry = (
  options: CircuitBreaker.SharedOptions,
  perKey: (key: string) => CircuitBreaker.Options | undefined,
  resolveOptions: (options: CircuitBreaker.Options) => Effect.Effect<Engine.Resolved, InvalidOptions>,
  settings: Settings,
  store: CircuitBreaker.StoreService
): Effect.Effect<CircuitBreaker.Service, InvalidOptions, Scope.Scope> =>
  Effect.gen(function*() {
    const registry = yield* Engine.makeRegistry(options, perKey, resolveOptions, {
      coordinator: coordinator(store, settings),
      // In the background: the first call for a key does not wait for the store.
      created: (cell) => Effect.asVoid(Effect.forkDaemon(catchUp(store, settings.timeoutMillis)(cell)))
    })
    yield* store.subscribe(receive(registry, settings.instance))
    return registry.service
  })
