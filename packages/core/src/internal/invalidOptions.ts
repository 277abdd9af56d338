import * as Data from "effect/Data"

/**
 * Options that cannot work together or are out of range, found when a breaker, limiter, retry
 * or policy is built, never later at call time.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Data.TaggedError("InvalidOptions")<{
  /** The option at fault, e.g. `retry.maxAttempts`. */
  readonly option: string
  /** What is wrong with it. */
  readonly reason: string
}> {
  override get message(): string {
    return `Invalid option ${this.option}: ${this.reason}`
  }
}

/** Collects the checks that fail into one `InvalidOptions` (the first). */
export const check = (
  checks: ReadonlyArray<readonly [ok: boolean, option: string, reason: string]>
): InvalidOptions | undefined => {
  const failed = checks.find(([ok]) => !ok)
  return failed === undefined ? undefined : new InvalidOptions({ option: failed[1], reason: failed[2] })
}
