import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

/**
 * The log of one component's outage (a store that stopped answering): the first failure is
 * logged, later ones are counted and summed up once per `everyMillis`, and the recovery is
 * logged once. A Redis that is down for a minute is then three lines, not one per poll.
 *
 * @internal
 */
export interface OutageLog {
  /** A failure of the component: logged at once if it starts an outage, else counted. */
  readonly failed: (message: string) => Effect.Effect<void>
  /** The component answered: ends an outage (logged once), free when there is none. */
  readonly recovered: Effect.Effect<void>
}

interface Outage {
  since: number
  lastReport: number
  /** Failures since the last line. */
  unreported: number
  total: number
  lastMessage: string
}

/** @internal */
export const makeOutageLog = (component: string, everyMillis = 30_000): OutageLog => {
  let outage: Outage | undefined
  const failed = (message: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (outage === undefined) {
        outage = { since: now, lastReport: now, unreported: 0, total: 1, lastMessage: message }
        return Effect.logWarning(`${component}: ${message}`)
      }
      outage.total++
      outage.unreported++
      outage.lastMessage = message
      if (now - outage.lastReport < everyMillis) return Effect.void
      const line = `${component}: still failing, ${outage.unreported} more failures in the last ${
        Math.round((now - outage.lastReport) / 1000)
      } s (last: ${message})`
      outage.lastReport = now
      outage.unreported = 0
      return Effect.logWarning(line)
    })
  const recovered = Effect.suspend(() => {
    if (outage === undefined) return Effect.void
    const ended = outage
    outage = undefined
    return Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.logInfo(
        `${component}: recovered after ${ended.total} failures in ${Math.round((now - ended.since) / 1000)} s`
      ))
  })
  return { failed, recovered }
}
