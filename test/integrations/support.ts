/**
 * Shared by the integration tests: running an effect that sleeps on the `TestClock` (retry
 * backoff, `Retry-After`, rate-limit waits) while its HTTP calls go over real loopback sockets.
 */
import { Chunk, Clock, Effect, Fiber, Option, TestClock } from "effect"
import type { Exit } from "effect"

/** Timeouts of the HTTP client that the clock jumps of {@link drive} never reach. */
export const farTimeouts = { write: "1 hour", pool: "1 hour" } as const

/** How far ahead a pending sleep may be to be one of the effect's waits (not a timeout). */
const horizonMillis = 10 * 60 * 1000

/**
 * Runs `effect` in a fiber; whenever it waits on the `TestClock` (and nothing else is due), the
 * clock jumps to the next wake-up. `arrivals[i]` is the `TestClock` time at which `seen()` first
 * reached `i + 1` (e.g. the fake server's request count). For one call at a time the clock only
 * moves while it sleeps, so these are exact; with calls in flight while others sleep, an arrival
 * may be seen late, never early.
 */
export const drive = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  seen: () => number = () => 0
): Effect.Effect<{ readonly exit: Exit.Exit<A, E>; readonly arrivals: ReadonlyArray<number> }, never, R> =>
  Effect.gen(function*() {
    const start = seen()
    const arrivals: Array<number> = []
    const fiber = yield* Effect.fork(effect)
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      while (seen() - start > arrivals.length) arrivals.push(now)
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return { exit: done.value, arrivals }
      const due = Chunk.toReadonlyArray(yield* TestClock.sleeps()).filter((at) => at > now && at <= now + horizonMillis)
      if (due.length > 0) yield* TestClock.setTime(Math.min(...due))
      else yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
    }
  })

/** {@link drive}, then the effect's own result. */
export const driven = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(drive(effect), ({ exit }) => exit)

/** The error of an effect expected to fail (a success is a defect with a short message). */
export const failure = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<E, never, R> =>
  Effect.flatMap(
    Effect.either(effect),
    (result) => result._tag === "Left" ? Effect.succeed(result.left) : Effect.dieMessage("expected a failure")
  )

/** From now on, the requests a fake server receives: call the result to read them. */
export const requestsSince = <A>(fake: { readonly requests: () => ReadonlyArray<A> }) => {
  const start = fake.requests().length
  return () => fake.requests().slice(start)
}
