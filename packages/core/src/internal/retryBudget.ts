/**
 * A retry budget per host, after Finagle's `RetryBudget`: over a sliding window (ten buckets),
 * retries may be at most `minRetries + ratio × requests`. During an outage every first attempt
 * still goes out, but retries stop multiplying the load.
 */

/** @internal */
export interface BudgetSettings {
  readonly ratio: number
  /** Retries always allowed per window, so a quiet host can still retry. */
  readonly minRetries: number
  readonly windowMillis: number
}

const buckets = 10

interface Counts {
  /** The start of each bucket's period, and its counts. */
  readonly starts: Array<number>
  readonly requests: Array<number>
  readonly retries: Array<number>
}

/**
 * Counts per host; every call is synchronous (no effect, no allocation once a host is known).
 *
 * @internal
 */
export interface RetryBudget {
  /** Counts a first attempt. */
  readonly request: (host: string, now: number) => void
  /** Takes one retry from the budget, if there is one left. */
  readonly tryRetry: (host: string, now: number) => boolean
}

/** @internal */
export const make = (settings: BudgetSettings): RetryBudget => {
  const hosts = new Map<string, Counts>()
  const bucketMillis = settings.windowMillis / buckets
  const countsAt = (host: string, now: number): { readonly counts: Counts; readonly index: number } => {
    let counts = hosts.get(host)
    if (counts === undefined) {
      counts = {
        starts: new Array(buckets).fill(-Infinity),
        requests: new Array(buckets).fill(0),
        retries: new Array(buckets).fill(0)
      }
      hosts.set(host, counts)
    }
    const period = Math.floor(now / bucketMillis)
    const index = period % buckets
    const start = period * bucketMillis
    if (counts.starts[index] !== start) {
      counts.starts[index] = start
      counts.requests[index] = 0
      counts.retries[index] = 0
    }
    return { counts, index }
  }
  const sumInWindow = (values: Array<number>, counts: Counts, now: number) => {
    let sum = 0
    for (let i = 0; i < buckets; i++) {
      if ((counts.starts[i] ?? -Infinity) > now - settings.windowMillis) sum += values[i] ?? 0
    }
    return sum
  }
  return {
    request: (host, now) => {
      const { counts, index } = countsAt(host, now)
      counts.requests[index] = (counts.requests[index] ?? 0) + 1
    },
    tryRetry: (host, now) => {
      const { counts, index } = countsAt(host, now)
      const allowed = settings.minRetries + settings.ratio * sumInWindow(counts.requests, counts, now)
      if (sumInWindow(counts.retries, counts, now) + 1 > allowed) return false
      counts.retries[index] = (counts.retries[index] ?? 0) + 1
      return true
    }
  }
}
