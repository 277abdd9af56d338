/**
 * The shared breaker: a registry of local breakers (the fast path, unchanged) that tells the
 * cluster's store of its trips and probe verdicts, asks it for the probe lease, and applies the
 * decisions other instances publish. The store failing (Redis down) never fails or holds up a
 * call: the local breaker decides alone, and the outage is logged once.
 */
import * as Clock from "effect/Clock"
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

/** Open decisions for keys this instance has no breaker for yet: at most this many are kept. */
const maxPendingKeys = 1024

/** An open decision received before this instance had a breaker for its key, and when. */
interface Pending {
  readonly millis: number
  readonly openedBy: Extract<CircuitBreaker.SharedEvent, { readonly _tag: "Open" }>["openedBy"]
  readonly receivedAt: number
}

/**
 * Applies a cluster decision to the local breaker of its key. Without one yet, an open decision
 * is kept (bounded) for the breaker this instance creates at its first call of the key: that
 * call is then refused, instead of reaching an upstream the cluster has already given up on.
 */
const receive = (registry: Engine.Registry, instance: string, pending: Map<string, Pending>) =>
(
  event: CircuitBreaker.SharedEvent
) => {
  if (event.origin === instance) return Effect.void
  const cell = registry.cell(event.key)
  if (cell === undefined) {
    return Effect.map(Clock.currentTimeMillis, (receivedAt) => {
      pending.delete(event.key)
      if (event._tag !== "Open") return
      if (pending.size >= maxPendingKeys) pending.delete(pending.keys().next().value!)
      pending.set(event.key, { millis: event.millis, openedBy: event.openedBy, receivedAt })
    })
  }
  return Engine.applyShared(
    cell,
    event._tag === "Open" ? { _tag: "Open", millis: event.millis, openedBy: event.openedBy } : event
  )
}

/** Applies a kept open decision to a breaker just created, with what is left of its time. */
const applyPending = (pending: Map<string, Pending>, cell: Engine.Cell): Effect.Effect<void> => {
  const kept = pending.get(cell.key)
  if (kept === undefined) return Effect.void
  pending.delete(cell.key)
  return Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const millis = kept.millis - (now - kept.receivedAt)
    return millis <= 0 ? Effect.void : Engine.applyShared(cell, { _tag: "Open", millis, openedBy: kept.openedBy })
  })
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
    const pending = new Map<string, Pending>()
    const registry = yield* Engine.makeRegistry(options, perKey, resolveOptions, {
      coordinator: coordinator(store, settings),
      // What this instance heard while it had no breaker for the key, at once; the store's own
      // state in the background: the first call for a key does not wait for the store.
      created: (cell) =>
        Effect.zipRight(
          applyPending(pending, cell),
          Effect.asVoid(Effect.forkDaemon(catchUp(store, settings.timeoutMillis)(cell)))
        )
    })
    yield* store.subscribe(receive(registry, settings.instance, pending))
    return registry.service
  })
