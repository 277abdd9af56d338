/**
 * `Effect.locally` for the per-call paths. Effect's own runs through `acquireUseRelease` (a dozen
 * steps and as many allocations each time); this one swaps the value in and back in one step
 * each, the effect interruptible in between, as it is under Effect's.
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"

/**
 * `effect` with `ref` set to `value`, the previous value back when it ends.
 *
 * Left in the declarations for the tests (`./internal/*` is not exported by the package).
 */
export const locally = <A, E, R, V>(
  effect: Effect.Effect<A, E, R>,
  ref: FiberRef.FiberRef<V>,
  value: V
): Effect.Effect<A, E, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(
      FiberRef.getAndSet(ref, value),
      (previous) => Effect.ensuring(restore(effect), FiberRef.set(ref, previous))
    )
  )
