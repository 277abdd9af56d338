import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, FastCheck as fc, Fiber, Ref, Scope, TestClock } from "effect"
import { makePoolSlots } from "../../packages/core/src/internal/poolSlots.js"

/**
 * Callers arrive, hold a slot for a while (or are interrupted while waiting, or time out),
 * and leave. Whatever the schedule: never more holders than slots, and every slot comes back.
 */
const Caller = fc.record({
  arriveAt: fc.integer({ min: 0, max: 50 }),
  holdFor: fc.integer({ min: 1, max: 30 }),
  interruptAt: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined })
})

describe("pool slots", () => {
  it.effect.prop(
    "never over capacity, nothing leaks",
    [fc.integer({ min: 1, max: 4 }), fc.array(Caller, { minLength: 1, maxLength: 12 })],
    ([size, callers]) =>
      Effect.gen(function*() {
        const slots = makePoolSlots(size)
        const holders = yield* Ref.make(0)
        const peak = yield* Ref.make(0)
        const grants = yield* Ref.make<Array<number>>([])
        const timeout = Duration.millis(40)
        const run = (index: number, holdFor: number) =>
          Effect.scoped(
            Effect.gen(function*() {
              const giveBack = yield* slots.acquire(timeout, () => "timeout" as const, () => Effect.void)
              yield* Ref.update(grants, (list) => [...list, index])
              const now = yield* Ref.updateAndGet(holders, (n) => n + 1)
              yield* Ref.update(peak, (max) => Math.max(max, now))
              yield* Effect.sleep(Duration.millis(holdFor)).pipe(
                Effect.ensuring(Ref.update(holders, (n) => n - 1))
              )
              // half the callers give their slot back early (as a read body does); the scope gives it again
              if (index % 2 === 0) yield* giveBack
            })
          )
        const order = callers.map((caller, index) => ({ ...caller, index })).sort((a, b) => a.arriveAt - b.arriveAt)
        const fibers = yield* Effect.forEach(order, (caller) =>
          Effect.gen(function*() {
            const fiber = yield* Effect.fork(
              Effect.delay(run(caller.index, caller.holdFor), Duration.millis(caller.arriveAt))
            )
            if (caller.interruptAt !== undefined) {
              yield* Effect.fork(Effect.delay(Fiber.interrupt(fiber), Duration.millis(caller.interruptAt)))
            }
            return fiber
          }))
        yield* TestClock.adjust(Duration.millis(200))
        yield* Effect.forEach(fibers, Fiber.await)
        expect(yield* Ref.get(peak)).toBeLessThanOrEqual(size)
        expect(yield* Ref.get(holders)).toBe(0)
        // Every slot came back: `size` callers can hold one at once, without waiting.
        const scope = yield* Scope.make()
        for (let i = 0; i < size; i++) {
          const exit = yield* Effect.exit(
            Scope.extend(slots.acquire(Duration.zero, () => "timeout" as const, () => Effect.void), scope)
          )
          expect(Exit.isSuccess(exit)).toBe(true)
        }
        yield* Scope.close(scope, Exit.void)
      }),
    { fastCheck: { numRuns: 40 } }
  )
})

describe("pool slots order", () => {
  it.effect("waiters are served first come, first served; an interrupted waiter gives its place back", () =>
    Effect.gen(function*() {
      const slots = makePoolSlots(1)
      const served = yield* Ref.make<Array<string>>([])
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(Effect.scoped(
        Effect.zipRight(slots.acquire(Duration.seconds(1), () => "timeout", () => Effect.void), Deferred.await(release))
      ))
      yield* Effect.yieldNow()
      const waiter = (name: string) =>
        Effect.fork(Effect.scoped(
          Effect.zipRight(
            slots.acquire(Duration.seconds(1), () => "timeout", () => Effect.void),
            Ref.update(served, (list) => [...list, name])
          )
        ))
      const a = yield* waiter("a")
      yield* Effect.yieldNow()
      const b = yield* waiter("b")
      yield* Effect.yieldNow()
      const c = yield* waiter("c")
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(b)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      yield* Fiber.join(a)
      yield* Fiber.join(c)
      expect(yield* Ref.get(served)).toEqual(["a", "c"])
    }))

  it.effect("a waiter past the pool timeout fails with the caller's error", () =>
    Effect.gen(function*() {
      const slots = makePoolSlots(1)
      const scope = yield* Scope.make()
      yield* Scope.extend(slots.acquire(Duration.seconds(1), () => "timeout" as const, () => Effect.void), scope)
      const waiter = yield* Effect.fork(
        Effect.scoped(slots.acquire(Duration.seconds(1), () => "timeout" as const, () => Effect.void))
      )
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* Fiber.join(waiter).pipe(Effect.flip)).toBe("timeout")
      yield* Scope.close(scope, Exit.void)
    }))
})
