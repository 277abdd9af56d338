/**
 * A store that stops answering is logged once, summed up every 30 seconds while it stays down,
 * and its recovery once: not a warning per poll or per call. The stores are the real memory
 * stores with their answers cut on demand (a fault injector, as the chaos upstream is for HTTP).
 */
import { describe, expect, it } from "@effect/vitest"
import { DurableQueue, LiaisonError, RateLimit } from "@liaison/core"
import { Effect, Layer, List, Logger, Schema, TestClock } from "effect"

/** Log lines at warning level and above, and info lines, as text. */
const recordLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    const text = List.isList(message)
      ? List.toArray(message).join(" ")
      : Array.isArray(message)
      ? message.join(" ")
      : String(message)
    lines.push(`${logLevel.label} ${text}`)
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

const storeDown = (operation: string) =>
  Effect.fail(new LiaisonError.StorageError({ store: "test", operation, cause: new Error("connection refused") }))

describe("outage logs", () => {
  it.scoped("a durable queue worker polling a dead store: one warning, a summary every 30 s, one recovery line", () => {
    const switchboard = { down: false }
    const logs = recordLogs()
    const failingStore = Layer.effect(
      DurableQueue.Store,
      Effect.map(DurableQueue.Store, (store) => ({
        ...store,
        take: (queue: string, input: Parameters<typeof store.take>[1]) =>
          switchboard.down ? storeDown("take") : store.take(queue, input)
      }))
    ).pipe(Layer.provide(DurableQueue.layerStoreMemory))
    return Effect.gen(function*() {
      const queue = yield* DurableQueue.make("outage", Schema.String, { pollInterval: "1 second" })
      yield* queue.worker(() => Effect.succeed(DurableQueue.done()))
      yield* TestClock.adjust("1 second")
      switchboard.down = true
      yield* TestClock.adjust("20 seconds")
      const warnings = () => logs.lines.filter((line) => line.startsWith("WARN"))
      expect(warnings()).toHaveLength(1)
      expect(warnings()[0]).toContain("durable queue outage: take failed")
      yield* TestClock.adjust("15 seconds")
      expect(warnings()).toHaveLength(2)
      expect(warnings()[1]).toMatch(/still failing, \d+ more failures in the last 3\d s/)
      switchboard.down = false
      yield* TestClock.adjust("2 seconds")
      const recovered = logs.lines.filter((line) => line.includes("recovered"))
      expect(recovered).toHaveLength(1)
      expect(recovered[0]).toMatch(/^INFO durable queue outage: recovered after \d+ failures in \d+ s/)
      expect(warnings()).toHaveLength(2)
    }).pipe(Effect.provide(Layer.merge(failingStore, logs.layer)))
  })

  it.effect("a rate limiter whose store is down: one warning for a thousand calls, one recovery line", () => {
    const switchboard = { down: true }
    const logs = recordLogs()
    const failingStore = Layer.effect(
      RateLimit.Store,
      Effect.map(RateLimit.Store, (store) => ({
        ...store,
        take: (key: string, rule: RateLimit.Rule) => switchboard.down ? storeDown("take") : store.take(key, rule),
        reserve: (key: string, rule: RateLimit.Rule) =>
          switchboard.down || store.reserve === undefined ? storeDown("reserve") : store.reserve(key, rule)
      }))
    ).pipe(Layer.provide(RateLimit.layerStoreMemory))
    return Effect.gen(function*() {
      const limiter = yield* RateLimit.RateLimit
      const rule = RateLimit.tokenBucket({ limit: 5000, interval: "1 second" })
      yield* Effect.forEach(Array.from({ length: 1000 }), () => limiter.acquire("api", rule), { discard: true })
      expect(logs.lines.filter((line) => line.startsWith("WARN"))).toHaveLength(1)
      expect(logs.lines[0]).toContain("rate limiter: store failed, limiting locally to 1/1 of each limit")
      switchboard.down = false
      yield* limiter.acquire("api", rule)
      yield* limiter.acquire("api", rule)
      expect(logs.lines.filter((line) => line.includes("recovered after 1000 failures"))).toHaveLength(1)
    }).pipe(Effect.provide(Layer.merge(RateLimit.layer().pipe(Layer.provide(failingStore)), logs.layer)))
  })
})
