/**
 * Builds an error that is expected and frequent — an open breaker or a spent rate limit failing
 * a call fast — without capturing a stack trace (the bulk of an Error's cost, and it says nothing
 * here: the error's fields say what happened). Its fields are built by Liaison, so the Schema
 * class is constructed with validation off.
 *
 * @internal
 */
export const withoutStack = <A>(make: () => A): A => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return make()
  } finally {
    Error.stackTraceLimit = limit
  }
}
