/**
 * An open-loop load generator for the cluster tests: requests start at a fixed rate whatever
 * the answers take (a closed loop would slow down with the system under test and hide a stall),
 * and every request's start, end and outcome is kept.
 */
import { setTimeout as sleep } from "node:timers/promises"

export interface Outcome {
  readonly path: string
  readonly start: number
  readonly end: number
  /** The HTTP status, or 0 when no answer came (connection error, timeout). */
  readonly status: number
  readonly error?: string
  readonly body: string
}

export const request = async (
  base: string,
  path: string,
  init: RequestInit = {},
  timeoutMs = 20_000
): Promise<Outcome> => {
  const start = Date.now()
  try {
    const response = await fetch(base + path, { ...init, signal: AbortSignal.timeout(timeoutMs) })
    const body = await response.text()
    return { path, start, end: Date.now(), status: response.status, body }
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : ""
    return { path, start, end: Date.now(), status: 0, error: `${String(error)}${cause}`, body: "" }
  }
}

/**
 * `rate` requests per second to `base + path(i)` for `durationMs`, or, without it, until `during`
 * (which runs alongside: a kill, a restart) has finished and `tailMs` more have passed; resolves
 * when every answer is in.
 */
export const load = async (options: {
  readonly base: string
  readonly rate: number
  readonly durationMs?: number
  readonly tailMs?: number
  readonly path: (i: number) => string
  readonly init?: RequestInit
  readonly during?: () => Promise<void>
}): Promise<ReadonlyArray<Outcome>> => {
  const pending: Array<Promise<Outcome>> = []
  let sideDoneAt = Number.POSITIVE_INFINITY
  const side = (options.during?.() ?? Promise.resolve()).finally(() => {
    sideDoneAt = Date.now()
  })
  const interval = 1000 / options.rate
  const t0 = Date.now()
  const going = () =>
    options.durationMs !== undefined
      ? Date.now() - t0 < options.durationMs
      : Date.now() < sideDoneAt + (options.tailMs ?? 0)
  for (let i = 0; going(); i++) {
    const wait = t0 + i * interval - Date.now()
    if (wait > 0) await sleep(wait)
    pending.push(request(options.base, options.path(i), options.init))
  }
  const [outcomes] = await Promise.all([Promise.all(pending), side])
  return outcomes
}

export const duration = (outcome: Outcome) => outcome.end - outcome.start

/** The `q` quantile (0..1) of `values`, nearest rank. */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

/** How many outcomes per status (`0`: no answer). */
export const byStatus = (outcomes: ReadonlyArray<Outcome>): Record<number, number> => {
  const counts: Record<number, number> = {}
  for (const outcome of outcomes) counts[outcome.status] = (counts[outcome.status] ?? 0) + 1
  return counts
}
