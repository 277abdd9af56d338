import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"

/**
 * A fixed number of slots for calls in flight, taken for the life of a scope.
 *
 * Taking a free slot is synchronous and starts no timer: on the hot path this costs almost
 * nothing, where a `Semaphore` raced against `Effect.timeoutFail` forks two fibers per call.
 * Only a caller that has to wait pays for a timer (on the Effect `Clock`, so `TestClock`
 * drives it). Waiters are served first-come, first-served; a freed slot is handed straight
 * to the next waiter. Each caller's finalizer is registered before it takes or waits, so a
 * slot granted to a caller interrupted at that very moment is still released with its scope.
 *
 * Internal to the package (not in its `exports` map); tested directly.
 */
export interface PoolSlots {
  /**
   * Takes a slot for the life of the scope; succeeds with an effect that gives it back
   * earlier (once the call's body is read). Giving it back twice is harmless. When the
   * scope closes, `beforeRelease` runs first (one finalizer per call, not two).
   */
  readonly acquire: <E>(
    timeout: Duration.Duration,
    onTimeout: () => E,
    beforeRelease: () => Effect.Effect<void>
  ) => Effect.Effect<Effect.Effect<void>, E, Scope.Scope>
  /**
   * Takes a slot without a scope, for a call that gives it back itself ({@link PoolSlots.release})
   * whatever happens: run it in an uninterruptible region, the wait restored to interruptible, and
   * release in the same region (a scope per call costs more than the call's own bookkeeping).
   */
  readonly take: <E>(timeout: Duration.Duration, onTimeout: () => E) => Effect.Effect<Slot, E>
  readonly release: (slot: Slot) => Effect.Effect<void>
}

/** A slot taken by {@link PoolSlots.take}. */
export interface Slot {
  held: boolean
  grant: (() => void) | undefined
}

type Ticket = Slot

/** Internal: the pool of `size` slots. */
export const makePoolSlots = (size: number): PoolSlots => {
  let free = size
  const waiters = new Set<Ticket>()

  const release = (ticket: Ticket) =>
    Effect.sync(() => {
      if (!ticket.held) return
      ticket.held = false
      const next = waiters.values().next()
      if (next.done === true) {
        free++
        return
      }
      waiters.delete(next.value)
      next.value.held = true
      next.value.grant?.()
    })

  const wait = (ticket: Ticket): Effect.Effect<void> =>
    Effect.async<void>((resume) => {
      if (ticket.held) return resume(Effect.void)
      ticket.grant = () => resume(Effect.void)
      return Effect.sync(() => {
        waiters.delete(ticket)
      })
    })

  const take = <E>(timeout: Duration.Duration, onTimeout: () => E): Effect.Effect<Slot, E> =>
    Effect.suspend(() => {
      const ticket: Ticket = { held: false, grant: undefined }
      if (free > 0 && waiters.size === 0) {
        free--
        ticket.held = true
        return Effect.succeed(ticket)
      }
      waiters.add(ticket)
      // Timed out or interrupted just as a slot was granted: the slot goes back.
      return Effect.as(
        Effect.onExit(
          Effect.timeoutFail(wait(ticket), { duration: timeout, onTimeout }),
          (exit) => exit._tag === "Failure" ? release(ticket) : Effect.void
        ),
        ticket
      )
    })

  return {
    take,
    release,
    acquire: (timeout, onTimeout, beforeRelease) =>
      Effect.scopeWith((scope) => {
        const ticket: Ticket = { held: false, grant: undefined }
        // The finalizer goes in first: whatever happens after, a held slot goes back with the scope.
        // (Scope.addFinalizer, not Effect.addFinalizer: no FiberRefs diff per call.)
        const giveBack = release(ticket)
        const finalizer = Effect.suspend(() => Effect.zipRight(beforeRelease(), giveBack))
        return Effect.flatMap(Scope.addFinalizer(scope, finalizer), () => {
          if (free > 0 && waiters.size === 0) {
            free--
            ticket.held = true
            return Effect.succeed(giveBack)
          }
          waiters.add(ticket)
          return Effect.as(Effect.timeoutFail(wait(ticket), { duration: timeout, onTimeout }), giveBack)
        })
      })
  }
}
