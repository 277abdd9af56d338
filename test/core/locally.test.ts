/**
 * The per-call `locally` behaves as `Effect.locally`: the value holds inside, the previous one is
 * back after success, failure and interruption, and the effect inside stays interruptible.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, FiberRef } from "effect"
import { locally } from "../../packages/core/src/internal/locally.js"

const ref = FiberRef.unsafeMake("outer")

describe("locally", () => {
  it.effect("sets the value inside and puts the previous one back after success and failure", () =>
    Effect.gen(function*() {
      expect(yield* locally(FiberRef.get(ref), ref, "inner")).toBe("inner")
      expect(yield* FiberRef.get(ref)).toBe("outer")
      const failed = yield* Effect.exit(locally(Effect.flatMap(FiberRef.get(ref), Effect.fail), ref, "inner"))
      expect(failed).toStrictEqual(Exit.fail("inner"))
      expect(yield* FiberRef.get(ref)).toBe("outer")
      // Nested: each level restores its own previous value.
      const nested = locally(Effect.zip(locally(FiberRef.get(ref), ref, "deepest"), FiberRef.get(ref)), ref, "inner")
      expect(yield* nested).toStrictEqual(["deepest", "inner"])
      expect(yield* FiberRef.get(ref)).toBe("outer")
    }))

  it.effect("the effect inside can be interrupted, and the previous value is back after it", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const seen = yield* Deferred.make<string>()
      const fiber = yield* Effect.fork(
        Effect.ensuring(
          locally(Effect.zipRight(Deferred.succeed(started, undefined), Effect.never), ref, "inner"),
          Effect.flatMap(FiberRef.get(ref), (value) => Deferred.succeed(seen, value))
        )
      )
      yield* Deferred.await(started)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(yield* Deferred.await(seen)).toBe("outer")
    }))
})
