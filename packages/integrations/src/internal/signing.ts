import { LiaisonError } from "@liaison/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

const encoder = new TextEncoder()

/**
 * The UTF-8 bytes of a text.
 *
 * @internal
 */
export const utf8 = (text: string): Uint8Array => encoder.encode(text)

/**
 * The parts one after the other, as one byte array.
 *
 * @internal
 */
export const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(parts)

/**
 * One secret or several (rotation), as a list.
 *
 * @internal
 */
export const secretList = (
  secret: Redacted.Redacted<string> | ReadonlyArray<Redacted.Redacted<string>>
): ReadonlyArray<Redacted.Redacted<string>> => (Redacted.isRedacted(secret) ? [secret] : secret)

/**
 * A duration in (fractional) seconds.
 *
 * @internal
 */
export const seconds = (duration: Duration.DurationInput): number => Duration.toSeconds(Duration.decode(duration))

/**
 * The value once every check of the table passes, else `InvalidOptions` naming the first that
 * failed: a source's options are checked when it is made, never at verification time.
 *
 * @internal
 */
export const validated = <A>(
  checks: ReadonlyArray<readonly [ok: boolean, option: string, reason: string]>,
  value: () => A
): Effect.Effect<A, LiaisonError.InvalidOptions> => {
  const failed = checks.find(([ok]) => !ok)
  return failed === undefined
    ? Effect.sync(value)
    : Effect.fail(new LiaisonError.InvalidOptions({ option: failed[1], reason: failed[2] }))
}
