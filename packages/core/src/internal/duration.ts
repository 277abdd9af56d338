import * as Duration from "effect/Duration"

/**
 * Milliseconds of a duration input (`"5 seconds"`, a number of millis, a `Duration`).
 *
 * @internal
 */
export const millis = (duration: Duration.DurationInput): number => Duration.toMillis(Duration.decode(duration))

/**
 * The delay before retry `attempt` (1-based: the wait after the first failed attempt is
 * `delays[0]`) from a table of delays, or `undefined` past its end (no more retries).
 *
 * @internal
 */
export const delayAt = (
  delays: ReadonlyArray<Duration.DurationInput>,
  attempt: number
): Duration.Duration | undefined => {
  const delay = attempt >= 1 ? delays[attempt - 1] : undefined
  return delay === undefined ? undefined : Duration.decode(delay)
}
