import { describe, expect, it } from "@effect/vitest"
import { FanOut } from "@liaison/core"
import { Chunk, Deferred, Duration, Effect, Either, Fiber, Ref, Stream, TestClock } from "effect"

/** An effect that records how many run at once, sleeps, then succeeds or fails. */
const tracked = (
  running: Ref.Ref<{ now: number; max: number }>,
  millis: number,
  outcome: Either.Either<number, string>
) =>
  Effect.acquireUseRelease(
    Ref.update(running, ({ max, now }) => ({ now: now + 1, max: Math.max(max, now + 1) })),
    () => Effect.sleep(Duration.millis(millis)).pipe(Effect.zipRight(outcome)),
    () => Ref.update(running, (state) => ({ ...state, now: state.now - 1 }))
  )

describe("FanOut", () => {
  it.effect("all: results in input order, concurrency never exceeded", () =>
    Effect.gen(function*() {
      const running = yield* Ref.make({ now: 0, max: 0 })
      const effects = Array.from({ length: 20 }, (_, i) => tracked(running, (20 - i) * 10, Either.right(i)))
      const fiber = yield* Effect.fork(FanOut.all(effects, { concurrency: 5 }))
      yield* TestClock.adjust("10 seconds")
      const results = yield* Fiber.join(fiber)
      expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i))
      expect((yield* Ref.get(running)).max).toBe(5)
    }))

  it.effect("all: the first failure fails the whole and interrupts the others", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(0)
      const slow = Effect.sleep("1 minute").pipe(
        Effect.as(1),
        Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1))
      )
      const failing = Effect.sleep("1 second").pipe(Effect.zipRight(Effect.fail("boom")))
      const fiber = yield* Effect.fork(FanOut.all([slow, failing, slow], { concurrency: 3 }))
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(exit._tag).toBe("Failure")
      expect(yield* Effect.flip(Fiber.join(fiber))).toBe("boom")
      expect(yield* Ref.get(interrupted)).toBe(2)
    }))

  it.effect("settle: one failure loses nothing else", () =>
    Effect.gen(function*() {
      const running = yield* Ref.make({ now: 0, max: 0 })
      const effects = Array.from({ length: 10 }, (_, i) =>
        tracked(running, 100, i % 3 === 0 ? Either.left(`failed ${i}`) : Either.right(i)))
      const fiber = yield* Effect.fork(FanOut.settle(effects, { concurrency: 4 }))
      yield* TestClock.adjust("1 second")
      const outcomes = yield* Fiber.join(fiber)
      const { failures, successes } = FanOut.partition(outcomes)
      expect(failures).toEqual([0, 3, 6, 9].map((index) => ({ index, error: `failed ${index}` })))
      expect(successes.map(({ value }) =>
        value
      )).toEqual([1, 2, 4, 5, 7, 8])
      expect((yield* Ref.get(running)).max).toBe(4)
    }))

  it.effect("asCompleted: outcomes stream in completion order with their index", () =>
    Effect.gen(function*() {
      const delays = [300, 100, 200]
      const effects = delays.map((millis, i) =>
        Effect.sleep(Duration.millis(millis)).pipe(
          Effect.zipRight(i === 2 ? Effect.fail("late failure") : Effect.succeed(millis))
        )
      )
      const fiber = yield* Effect.fork(Stream.runCollect(FanOut.asCompleted(effects, { concurrency: 3 })))
      yield* TestClock.adjust("1 second")
      const outcomes = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      expect(outcomes.map(({ index }) => index)).toEqual([1, 2, 0])
      expect(outcomes[1]!.result).toEqual(Either.left("late failure"))
      expect(outcomes[2]!.result).toEqual(Either.right(300))
    }))

  it.effect("Limiter: callers sharing a limiter never run more than its permits together", () =>
    Effect.gen(function*() {
      const limiter = yield* FanOut.make(3)
      const running = yield* Ref.make({ now: 0, max: 0 })
      const caller = (n: number) =>
        FanOut.all(
          Array.from({ length: n }, (_, i) => FanOut.limit(tracked(running, 50, Either.right(i)), limiter)),
          { concurrency: n }
        )
      const fiber = yield* Effect.fork(Effect.all([caller(10), caller(10)], { concurrency: 2 }))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      expect((yield* Ref.get(running)).max).toBe(3)
    }))

  it.effect("Limiter: an interrupted waiter gives its place back", () =>
    Effect.gen(function*() {
      const limiter = yield* FanOut.make(1)
      const release = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(limiter.withPermit(Deferred.await(release)))
      yield* Effect.yieldNow()
      const waiter = yield* Effect.fork(limiter.withPermit(Effect.void))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiter)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(holder)
      expect(yield* limiter.withPermit(Effect.succeed("free"))).toBe("free")
    }))
})
