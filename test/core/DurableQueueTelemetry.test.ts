import { describe, expect, it } from "@effect/vitest"
import { DurableQueue, Redis } from "@liaison/core"
import { Effect, Layer, Option, Redacted, Schema, TestClock } from "effect"
import { randomUUID } from "node:crypto"
import { drive } from "../fixtures/drive.js"
import { metricValue } from "../fixtures/metricValues.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import { redisUrl, testStorePrefix } from "../setup/redisUrl.js"

// Every test has a queue of its own: its name is the metrics' label.
const fresh = () => `telemetry-${randomUUID()}`

const items = (queue: string) =>
  Effect.all({
    done: metricValue("liaison_queue_items_total", { queue, outcome: "done" }),
    retried: metricValue("liaison_queue_items_total", { queue, outcome: "retried" }),
    failed: metricValue("liaison_queue_items_total", { queue, outcome: "failed" }),
    unknown: metricValue("liaison_queue_items_total", { queue, outcome: "unknown" })
  })

const gauges = (queue: string) =>
  Effect.all({
    depth: metricValue("liaison_queue_depth", { queue }),
    oldestAgeSeconds: metricValue("liaison_queue_oldest_age_seconds", { queue })
  })

const take = <A>(queue: DurableQueue.Queue<A>) => Effect.map(queue.take(), Option.getOrThrow)

const redisStore = () =>
  DurableQueue.layerStoreRedis({ prefix: testStorePrefix() }).pipe(
    Layer.provide(Redis.layer({ url: Redacted.make(redisUrl()) }))
  )

describe("DurableQueue telemetry", () => {
  it.effect("items by outcome (done, retried, failed, unknown) and the gauges, read at most once a second", () =>
    Effect.gen(function*() {
      const name = fresh()
      const queue = yield* DurableQueue.make(name, Schema.String)
      for (const value of ["a", "b", "c", "d"]) yield* queue.enqueue(value)
      // Read on the first enqueue only: the next reading is due a second later.
      expect(yield* gauges(name)).toEqual({ depth: 1, oldestAgeSeconds: 0 })
      yield* TestClock.adjust("1 second")
      const a = yield* take(queue)
      expect(yield* gauges(name)).toEqual({ depth: 4, oldestAgeSeconds: 1 })
      yield* queue.ack(a)
      yield* queue.retryLater(yield* take(queue), "1 minute")
      yield* queue.fail(yield* take(queue), { error: "permanent" })
      const d = yield* take(queue)
      yield* TestClock.adjust("31 seconds")
      // The last one's lease ran out: taken again, the first holder's ack cannot settle it.
      const again = yield* take(queue)
      expect([again.value, again.attempt]).toEqual([d.value, 2])
      expect(yield* Effect.flip(queue.ack(d))).toBeInstanceOf(DurableQueue.LeaseLost)
      expect(yield* items(name)).toEqual({ done: 1, retried: 1, failed: 1, unknown: 1 })
      // One waits for its retry, one is leased again: two items, none overdue.
      expect(yield* gauges(name)).toEqual({ depth: 2, oldestAgeSeconds: 0 })
      yield* queue.ack(again)
      expect((yield* items(name)).done).toBe(2)
    }).pipe(Effect.provide(DurableQueue.layerStoreMemory)))

  it.effect("the gauges on Redis", () =>
    Effect.gen(function*() {
      const name = fresh()
      const queue = yield* DurableQueue.make(name, Schema.String)
      yield* queue.enqueue("a")
      yield* queue.enqueue("b")
      yield* queue.enqueue("c", { delay: "1 hour" })
      expect(yield* gauges(name)).toEqual({ depth: 1, oldestAgeSeconds: 0 })
      yield* TestClock.adjust("3 seconds")
      yield* queue.ack(yield* take(queue))
      // The reading follows the take: b queued 3 s ago, a leased, c delayed.
      expect(yield* gauges(name)).toEqual({ depth: 3, oldestAgeSeconds: 3 })
      expect(yield* items(name)).toEqual({ done: 1, retried: 0, failed: 0, unknown: 0 })
    }).pipe(Effect.provide(redisStore())))

  it.scoped("enqueue and attempt spans: name, attempt, outcome and age; the value never in an attribute", () => {
    const { spans, text, tracer } = recordingTracer()
    return Effect.gen(function*() {
      const name = fresh()
      const queue = yield* DurableQueue.make(name, Schema.String)
      yield* queue.enqueue("secret-value", { delay: "2 seconds" })
      yield* queue.enqueue("secret-value", { id: "twice" })
      yield* queue.enqueue("secret-value", { id: "twice" })
      let calls = 0
      yield* queue.worker(() =>
        Effect.succeed(++calls === 1 ? DurableQueue.retryAfter("1 second") : DurableQueue.done())
      )
      const attempts = () => spans.filter((span) => span.name === "liaison.queue.attempt")
      yield* drive(
        Effect.sync(() => attempts().filter((span) => span.attributes.has("liaison.queue.outcome")).length === 3)
      )
      const enqueues = spans.filter((span) => span.name === "liaison.queue.enqueue")
      expect(enqueues.map((span) => span.attributes.get("liaison.queue.outcome"))).toEqual([
        "enqueued",
        "enqueued",
        "duplicate"
      ])
      expect(enqueues.every((span) => span.attributes.get("liaison.queue.name") === name)).toBe(true)
      const seen = attempts().map((
        span
      ) => [span.attributes.get("liaison.queue.attempt"), span.attributes.get("liaison.queue.outcome")])
      expect(seen).toEqual([[1, "retried"], [2, "done"], [1, "done"]])
      expect(attempts().every((span) => span.attributes.get("liaison.queue.name") === name)).toBe(true)
      expect(attempts().every((span) => typeof span.attributes.get("liaison.queue.age_ms") === "number")).toBe(true)
      expect(text()).not.toContain("secret-value")
    }).pipe(Effect.provide(DurableQueue.layerStoreMemory), Effect.withTracer(tracer))
  })
})
