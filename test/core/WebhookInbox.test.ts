import { describe, expect, it } from "@effect/vitest"
import { DurableQueue, Redis, WebhookInbox } from "@liaison/core"
import {
  Config,
  ConfigProvider,
  Context,
  Deferred,
  Duration,
  Effect,
  Layer,
  Option,
  Redacted,
  Ref,
  Schema,
  TestClock
} from "effect"
import { randomUUID } from "node:crypto"
import { drive } from "../fixtures/drive.js"
import { redisUrl, testStorePrefix } from "../setup/redisUrl.js"

const redisLayer = () => Redis.layer({ url: Redacted.make(redisUrl()) })
const fresh = () => `inbox-${randomUUID()}`

const Payment = Schema.Struct({ id: Schema.String, amount: Schema.Number })
const event = (id: string, type = "payment.succeeded", payload: unknown = { id, amount: 100 }) => ({
  id,
  type,
  payload
})

const stateIs = (inbox: WebhookInbox.Service, source: string, id: string, state: WebhookInbox.State) =>
  Effect.map(inbox.status(source, id), (status) => Option.getOrUndefined(status)?.state === state)

const backends = [
  ["memory", (name: string) => WebhookInbox.layerMemory({ name, retryDelays: ["1 second", "2 seconds"] })],
  [
    "redis",
    (name: string) =>
      WebhookInbox.layer({ name, retryDelays: ["1 second", "2 seconds"] }).pipe(
        Layer.provide(DurableQueue.layerStoreRedis({ prefix: testStorePrefix() })),
        Layer.provide(redisLayer())
      )
  ]
] as const

describe.each(backends)("WebhookInbox (%s)", (backend, inboxLayer) => {
  it.scoped("records once, acknowledges duplicates, processes each event once with its decoded payload", () =>
    Effect.gen(function*() {
      const inbox = yield* WebhookInbox.WebhookInbox
      const first = yield* inbox.record("stripe", [event("evt_1"), event("evt_2")])
      expect(first).toEqual([{ id: "evt_1", duplicate: false }, { id: "evt_2", duplicate: false }])
      expect(yield* inbox.record("stripe", [event("evt_1")])).toEqual([{ id: "evt_1", duplicate: true }])
      // Another source's evt_1 is another event.
      expect(yield* inbox.record("github", [event("evt_1")])).toEqual([{ id: "evt_1", duplicate: false }])
      const received = Option.getOrThrow(yield* inbox.status("stripe", "evt_1"))
      expect([received.state, received.type, received.attempts]).toEqual(["received", "payment.succeeded", 0])
      const seen = yield* Ref.make<Array<string>>([])
      yield* inbox.run([
        WebhookInbox.on(
          "payment.succeeded",
          Payment,
          (payment, stored) => Ref.update(seen, (ids) => [...ids, `${stored.source}:${payment.id}:${payment.amount}`])
        )
      ])
      yield* drive(Effect.map(Ref.get(seen), (ids) => ids.length === 3))
      yield* drive(stateIs(inbox, "github", "evt_1", "processed"))
      expect([...(yield* Ref.get(seen))].sort()).toEqual(["github:evt_1:100", "stripe:evt_1:100", "stripe:evt_2:100"])
      const done = Option.getOrThrow(yield* inbox.status("stripe", "evt_2"))
      expect([done.state, done.attempts]).toEqual(["processed", 1])
      expect(yield* inbox.record("stripe", [event("evt_2")])).toEqual([{ id: "evt_2", duplicate: true }])
      expect(yield* inbox.status("stripe", "nope")).toEqual(Option.none())
    }).pipe(Effect.provide(inboxLayer(fresh()))))

  it.scoped("a failing handler is retried on its schedule, then succeeds", () =>
    Effect.gen(function*() {
      const inbox = yield* WebhookInbox.WebhookInbox
      const calls = yield* Ref.make(0)
      yield* inbox.run([
        WebhookInbox.on("payment.succeeded", Payment, () =>
          Effect.flatMap(
            Ref.updateAndGet(calls, (n) => n + 1),
            (n) => n < 3 ? Effect.fail("database down") : Effect.void
          ))
      ])
      yield* inbox.record("stripe", [event("evt_1")])
      yield* drive(stateIs(inbox, "stripe", "evt_1", "processed"))
      const status = Option.getOrThrow(yield* inbox.status("stripe", "evt_1"))
      expect([status.attempts, status.lastError]).toEqual([3, "database down"])
      expect(yield* Ref.get(calls)).toBe(3)
    }).pipe(Effect.provide(inboxLayer(fresh()))))

  it.scoped("a handler failing every time fails the event after its retries; retry queues it again", () =>
    Effect.gen(function*() {
      const inbox = yield* WebhookInbox.WebhookInbox
      const healthy = yield* Ref.make(false)
      yield* inbox.run([
        WebhookInbox.on(
          "payment.succeeded",
          Payment,
          () => Effect.flatMap(Ref.get(healthy), (ok) => ok ? Effect.void : Effect.fail(new Error("still down")))
        )
      ])
      yield* inbox.record("stripe", [event("evt_1")])
      yield* drive(stateIs(inbox, "stripe", "evt_1", "failed"))
      const failed = Option.getOrThrow(yield* inbox.status("stripe", "evt_1"))
      expect([failed.attempts, failed.lastError]).toEqual([3, "still down"])
      yield* Ref.set(healthy, true)
      expect(yield* inbox.retry("stripe", "evt_1")).toBe(true)
      yield* drive(stateIs(inbox, "stripe", "evt_1", "processed"))
      expect(yield* inbox.retry("stripe", "evt_1")).toBe(false)
    }).pipe(Effect.provide(inboxLayer(fresh()))))

  it.scoped("a payload that does not decode fails at once, not retried; an event with no handler is processed", () =>
    Effect.gen(function*() {
      const inbox = yield* WebhookInbox.WebhookInbox
      const calls = yield* Ref.make(0)
      yield* inbox.run([WebhookInbox.on("payment.succeeded", Payment, () => Ref.update(calls, (n) => n + 1))])
      yield* inbox.record("stripe", [
        event("evt_bad", "payment.succeeded", { id: 7 }),
        event("evt_other", "customer.created")
      ])
      yield* drive(stateIs(inbox, "stripe", "evt_bad", "failed"))
      yield* drive(stateIs(inbox, "stripe", "evt_other", "processed"))
      const bad = Option.getOrThrow(yield* inbox.status("stripe", "evt_bad"))
      expect(bad.attempts).toBe(1)
      expect(bad.lastError).toContain("schema")
      expect(yield* Ref.get(calls)).toBe(0)
    }).pipe(Effect.provide(inboxLayer(fresh()))))

  it.scoped("handlers for a source win over handlers for any source", () =>
    Effect.gen(function*() {
      const inbox = yield* WebhookInbox.WebhookInbox
      const seen = yield* Ref.make<Array<string>>([])
      const note = (who: string) => (_: unknown, stored: WebhookInbox.StoredEvent) =>
        Ref.update(seen, (all) => [...all, `${who}:${stored.source}`])
      yield* inbox.run([
        WebhookInbox.on("push", Schema.Unknown, note("any")),
        WebhookInbox.on("push", Schema.Unknown, note("github"), { source: "github" })
      ])
      yield* inbox.record("github", [event("d1", "push")])
      yield* inbox.record("generic", [event("d1", "push")])
      yield* drive(Effect.map(Ref.get(seen), (all) => all.length === 2))
      expect([...(yield* Ref.get(seen))].sort()).toEqual(["any:generic", "github:github"])
    }).pipe(Effect.provide(inboxLayer(fresh()))))

  it.scoped("a worker that died mid-event: the event is processed once, after its lease runs out", () => {
    const name = fresh()
    return Effect.gen(function*() {
      const inbox = yield* WebhookInbox.make({ name, pollInterval: "1 minute" })
      yield* inbox.record("stripe", [event("evt_1")])
      // The dead worker: it took the event (through the inbox's own queue) and never came back.
      const queue = yield* DurableQueue.make(name, WebhookInbox.StoredEvent)
      expect(Option.isSome(yield* queue.take({ lease: "30 seconds" }))).toBe(true)
      expect(Option.getOrThrow(yield* inbox.status("stripe", "evt_1")).state).toBe("processing")
      const completions = yield* Ref.make(0)
      const finished = yield* Deferred.make<void>()
      yield* inbox.run([
        WebhookInbox.on(
          "payment.succeeded",
          Payment,
          () => Effect.zipRight(Ref.update(completions, (n) => n + 1), Deferred.succeed(finished, undefined))
        )
      ], { concurrency: 3 })
      yield* TestClock.adjust("29 seconds")
      expect(yield* Ref.get(completions)).toBe(0)
      yield* drive(Deferred.isDone(finished))
      yield* drive(stateIs(inbox, "stripe", "evt_1", "processed"))
      yield* TestClock.adjust("5 minutes")
      expect(yield* Ref.get(completions)).toBe(1)
      expect(Option.getOrThrow(yield* inbox.status("stripe", "evt_1")).attempts).toBe(2)
    }).pipe(Effect.provide(
      backend === "memory"
        ? DurableQueue.layerStoreMemory
        : DurableQueue.layerStoreRedis({ prefix: testStorePrefix() }).pipe(Layer.provide(redisLayer()))
    ))
  })
})

describe("WebhookInbox config", () => {
  it.effect("config reads WEBHOOK_INBOX_*; unset variables are undefined, so make uses the defaults", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(
        new Map([["WEBHOOK_INBOX_QUEUE", "inbox-a"], ["WEBHOOK_INBOX_RETRY_DELAYS", "1 second,1 minute"]])
      )
      const options = yield* Effect.withConfigProvider(WebhookInbox.config, provider)
      expect(options.name).toBe("inbox-a")
      expect(options.retryDelays?.map(Duration.toMillis)).toEqual([1_000, 60_000])
      expect([options.retention, options.lease, options.pollInterval]).toEqual([undefined, undefined, undefined])
      expect(WebhookInbox.defaults.retryDelays.map(Duration.toMillis)).toEqual([
        5_000,
        30_000,
        120_000,
        600_000,
        1_800_000,
        3_600_000,
        10_800_000
      ])
    }))

  it.scoped("layerConfig with the caller's own variables, on the store in context", () =>
    Effect.gen(function*() {
      const inbox = yield* WebhookInbox.WebhookInbox
      expect(yield* inbox.record("stripe", [event("evt_1")])).toEqual([{ id: "evt_1", duplicate: false }])
      expect(Option.getOrThrow(yield* inbox.status("stripe", "evt_1")).state).toBe("received")
    }).pipe(Effect.provide(
      WebhookInbox.layerConfig({ name: Config.string("MY_INBOX") }).pipe(
        Layer.provide(DurableQueue.layerStoreMemory),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["MY_INBOX", fresh()]]))))
      )
    )))
})

describe("WebhookInbox on Redis, several instances", () => {
  it.live(
    "10,000 events with 30% duplicates through 4 workers sharing Redis: each id processed exactly once",
    () =>
      Effect.gen(function*() {
        const name = fresh()
        const unique = 7_000
        const ids = Array.from({ length: unique }, (_, i) => `evt_${i}`)
        // 3,000 redeliveries of random events, shuffled in among the originals.
        const deliveries = [...ids, ...Array.from({ length: 3_000 }, () => ids[Math.floor(Math.random() * unique)]!)]
        for (let i = deliveries.length - 1; i > 0; i--) {
          const j = Math.floor(Math.random() * (i + 1))
          ;[deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!]
        }
        const processed = new Map<string, number>()
        const handlers = [
          WebhookInbox.on("payment.succeeded", Payment, (payment) =>
            Effect.sync(() =>
              processed.set(payment.id, (processed.get(payment.id) ?? 0) + 1)
            ))
        ]
        // Four instances, each with its own Redis connection and its own workers.
        const instances = yield* Effect.forEach(Array.from({ length: 4 }), () =>
          Effect.gen(function*() {
            const context = yield* Layer.build(
              WebhookInbox.layer({ name, pollInterval: "10 millis" }).pipe(
                Layer.provide(DurableQueue.layerStoreRedis({ prefix: testStorePrefix() })),
                Layer.provide(redisLayer())
              )
            )
            const inbox = Context.get(context, WebhookInbox.WebhookInbox)
            yield* inbox.run(handlers, { concurrency: 2 })
            return inbox
          }))
        // Deliveries arrive at the instances in turn, 50 requests in flight.
        const recorded = yield* Effect.forEach(
          deliveries,
          (id, i) => Effect.map(instances[i % 4]!.record("stripe", [event(id)]), ([result]) => result!),
          { concurrency: 50 }
        )
        expect(recorded.filter((result) => result.duplicate).length).toBe(3_000)
        while (processed.size < unique) yield* Effect.sleep("20 millis")
        // Nothing more arrives once every event is done.
        yield* Effect.sleep("200 millis")
        expect(processed.size).toBe(unique)
        expect([...processed.values()].every((count) => count === 1)).toBe(true)
        const sample = yield* Effect.forEach(ids.slice(0, 50), (id) => instances[0]!.status("stripe", id))
        expect(sample.every((status) => Option.getOrUndefined(status)?.state === "processed")).toBe(true)
      }).pipe(Effect.scoped, Effect.timeout("25 seconds")),
    30_000
  )
})
