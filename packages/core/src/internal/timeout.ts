/**
 * `Effect.timeoutFail` with a cheaper timer when the clock is the live one. Effect's own races
 * the effect against a sleeping fiber (two forks and an interruption per call); here the effect
 * is forked once and a plain `setTimeout` interrupts it. Under any other `Clock` (a `TestClock`)
 * it is exactly `Effect.timeoutFail`, so tests drive it as before.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"

/**
 * The default services' clock: the only one whose time is the wall clock's.
 *
 * @internal
 */
export const liveClock: Clock.Clock = Effect.runSync(Effect.clock)

/**
 * Fails with `onTimeout()` when `effect` takes longer than `millis`, interrupting it.
 *
 * @internal
 */
export const timeoutFail = <A, E, R, E2>(
  effect: Effect.Effect<A, E, R>,
  millis: number,
  onTimeout: () => E2
): Effect.Effect<A, E | E2, R> =>
  Effect.clockWith((clock) =>
    clock !== liveClock
      ? Effect.timeoutFail(effect, { duration: Duration.millis(millis), onTimeout })
      : Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Effect.fork(restore(effect)), (fiber) =>
          Effect.async<A, E | E2>((resume) => {
            let settled = false
            const timer = setTimeout(() => {
              if (settled) return
              settled = true
              fiber.unsafeInterruptAsFork(FiberId.none)
              resume(Effect.fail(onTimeout()))
            }, millis)
            fiber.addObserver((exit) => {
              if (settled) return
              settled = true
              clearTimeout(timer)
              resume(exit)
            })
            // The caller was interrupted: so is the effect.
            return Effect.suspend(() => {
              settled = true
              clearTimeout(timer)
              return Fiber.interrupt(fiber)
            })
          }))
      )
  )
