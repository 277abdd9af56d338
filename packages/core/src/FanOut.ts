/**
 * Many calls at once, with bounded concurrency.
 *
 * - {@link all}: every result in input order, or the first failure (the rest are interrupted).
 * - {@link settle}: every outcome in input order; one failure loses nothing else.
 * - {@link asCompleted}: outcomes as a `Stream`, in completion order, each with its index.
 * - {@link FanOut}: a concurrency limit by `Semaphore` that several callers share (a service:
 *   `make`, `layer`).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How many effects run at once. */
  readonly concurrency: number
}

/**
 * Runs every effect, at most `concurrency` at once; succeeds with the results in input
 * order, or fails with the first failure and interrupts the effects still running.
 *
 * @since 0.1.0
 * @category combinators
 */
export const all = <A, E, R>(
  effects: Iterable<Effect.Effect<A, E, R>>,
  options: Options
): Effect.Effect<Array<A>, E, R> => Effect.all(effects, { concurrency: options.concurrency })

/**
 * The outcome of one effect of a {@link settle}: its index in the input and its result.
 *
 * @since 0.1.0
 * @category models
 */
export interface Outcome<A, E> {
  readonly index: number
  readonly result: Either.Either<A, E>
}

/**
 * Runs every effect, at most `concurrency` at once, and collects each outcome in input
 * order: one failure does not stop or lose the others. (A defect, a bug rather than a
 * failure, still fails the whole and interrupts the rest.)
 *
 * @since 0.1.0
 * @category combinators
 */
export const settle = <A, E, R>(
  effects: Iterable<Effect.Effect<A, E, R>>,
  options: Options
): Effect.Effect<Array<Either.Either<A, E>>, never, R> =>
  Effect.forEach(effects, Effect.either, { concurrency: options.concurrency })

/**
 * Partitions settled outcomes into the successes and the failures, each with its index.
 *
 * @since 0.1.0
 * @category combinators
 */
export const partition = <A, E>(outcomes: ReadonlyArray<Either.Either<A, E>>): {
  readonly successes: Array<{ readonly index: number; readonly value: A }>
  readonly failures: Array<{ readonly index: number; readonly error: E }>
} => {
  const successes: Array<{ readonly index: number; readonly value: A }> = []
  const failures: Array<{ readonly index: number; readonly error: E }> = []
  outcomes.forEach((outcome, index) =>
    Either.isRight(outcome)
      ? successes.push({ index, value: outcome.right })
      : failures.push({ index, error: outcome.left })
  )
  return { successes, failures }
}

/**
 * Runs every effect, at most `concurrency` at once, emitting each outcome as soon as it
 * completes (completion order), tagged with its input index.
 *
 * @since 0.1.0
 * @category combinators
 */
export const asCompleted = <A, E, R>(
  effects: Iterable<Effect.Effect<A, E, R>>,
  options: Options
): Stream.Stream<Outcome<A, E>, never, R> =>
  Stream.fromIterable(effects).pipe(
    Stream.zipWithIndex,
    Stream.mapEffect(
      ([effect, index]) => Effect.map(Effect.either(effect), (result): Outcome<A, E> => ({ index, result })),
      { concurrency: options.concurrency, unordered: true }
    )
  )

/**
 * A concurrency limit shared by every caller that holds it: at most `permits` effects
 * run under {@link limit} at once, the others wait in line.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly permits: number
  readonly withPermit: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * The shared concurrency limit as a service.
 *
 * @since 0.1.0
 * @category tags
 */
export class FanOut extends Context.Tag("@liaison/core/FanOut")<FanOut, Service>() {}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (permits: number): Effect.Effect<Service> =>
  Effect.map(Effect.makeSemaphore(permits), (semaphore) => FanOut.of({ permits, withPermit: semaphore.withPermits(1) }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (permits: number): Layer.Layer<FanOut> => Layer.effect(FanOut, make(permits))

/**
 * Runs an effect under a shared limit ({@link FanOut}'s service).
 *
 * @since 0.1.0
 * @category combinators
 */
export const limit: {
  (limiter: Service): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, limiter: Service): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(effect: Effect.Effect<A, E, R>, limiter: Service) => limiter.withPermit(effect))
