/**
 * How long a server asks the client to wait, from `Retry-After` (RFC 9110 §10.2.3: delay seconds
 * or an HTTP-date), `RateLimit-Reset` (IETF draft: delta seconds) or `X-RateLimit-Reset` (delta
 * seconds or, as GitHub and others send it, a Unix time in seconds).
 *
 * Not marked `@internal`: `test/core/Retry.test.ts` type-checks against the emitted declarations
 * (`./internal/*` is not exported by the package).
 */

/** Values above this are Unix times, not deltas (about 2001-09-09 in seconds). */
const epochSecondsFloor = 1_000_000_000

const nonNegativeNumber = /^\s*\d+(\.\d+)?\s*$/

const seconds = (value: string): number | undefined => nonNegativeNumber.test(value) ? Number(value) : undefined

/**
 * The three HTTP-date forms (RFC 9110 §5.6.7: IMF-fixdate, RFC 850, asctime). `Date.parse` alone
 * reads junk such as `-5` or `abc 5` as some date in the past, which would mean "retry now".
 */
const imfOrRfc850 = /^\s*[A-Za-z]{3,9}, \d{2}[ -][A-Za-z]{3}[ -]\d{2,4} \d{2}:\d{2}:\d{2} GMT\s*$/
const asctime = /^\s*[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}\s*$/

const httpDate = (value: string): number =>
  imfOrRfc850.test(value) ? Date.parse(value) : asctime.test(value) ? Date.parse(`${value.trim()} GMT`) : NaN

/** Milliseconds to wait, or `undefined` when no header says (or none parses). Never negative. */
export const retryAfterMillis = (
  headers: Readonly<Record<string, string | undefined>>,
  nowMillis: number
): number | undefined => {
  const retryAfter = headers["retry-after"]
  if (retryAfter !== undefined) {
    const delta = seconds(retryAfter)
    if (delta !== undefined) return delta * 1000
    const date = httpDate(retryAfter)
    if (!Number.isNaN(date)) return Math.max(0, date - nowMillis)
  }
  const reset = headers["ratelimit-reset"]
  if (reset !== undefined) {
    const delta = seconds(reset)
    if (delta !== undefined) return delta * 1000
  }
  const xReset = headers["x-ratelimit-reset"]
  if (xReset !== undefined) {
    const value = seconds(xReset)
    if (value !== undefined) return value >= epochSecondsFloor ? Math.max(0, value * 1000 - nowMillis) : value * 1000
  }
  return undefined
}
