import { describe, expect, it } from "@effect/vitest"
import { DurableQueue, Redis, WebhookDelivery, Webhooks } from "@liaison/core"
import { Context, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import { randomUUID } from "node:crypto"
import { drive } from "../fixtures/drive.js"
import { metricDelta, metricValues } from "../fixtures/metricValues.js"
import { freePort } from "../fixtures/ports.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"
import type { Received } from "../fixtures/webhookReceiver.js"
import { webhookReceiver } from "../fixtures/webhookReceiver.js"
import { redisUrl, testStorePrefix } from "../setup/redisUrl.js"

const redisLayer = () => Redis.layer({ url: Redacted.make(redisUrl()) })

/** Subscriptions and deliveries in memory: the backends `make` takes from context. */
const memoryStores = Layer.merge(DurableQueue.layerStoreMemory, WebhookDelivery.layerSubscriptionStoreMemory)

/** Short, exact delays; requests never cut short by the virtual clock. */
const testOptions = (overrides: WebhookDelivery.Options = {}): WebhookDelivery.Options => ({
  name: `deliveries-${randomUUID()}`,
  schedule: ["1 second", "2 seconds", "4 seconds"],
  jitter: { min: 1, max: 1 },
  requestTimeout: "1 hour",
  allow: { loopback: true },
  // Local enqueues and due retries wake the workers; polling is for other instances' deliveries.
  pollInterval: "1 minute",
  ...overrides
})

const stateOf = (service: WebhookDelivery.Service, id: string) =>
  Effect.map(service.delivery(id), (status) => Option.getOrUndefined(status)?.state)

const settled = (service: WebhookDelivery.Service, ids: ReadonlyArray<string>) =>
  Effect.map(
    Effect.forEach(ids, (id) => stateOf(service, id)),
    (states) => states.every((state) => state === "delivered" || state === "failed")
  )

/** Verifies a received request as a Standard Webhooks receiver would, and as the lecture's would. */
const verifyReceived = (request: Received, secret: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const standard = yield* Webhooks.standardWebhooks({ secret, tolerance: "10 minutes" })
    const events = yield* Webhooks.receive(standard, request)
    const generic = yield* Webhooks.generic({ secret })
    yield* generic.verify(request)
    return events
  })

describe("WebhookDelivery subscriptions and the SSRF guard", () => {
  it.scoped("refuses loopback, private, link-local and metadata targets unless allowed, after DNS", () =>
    Effect.gen(function*() {
      const strict = yield* WebhookDelivery.make({ name: `deliveries-${randomUUID()}` })
      const refused = [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "ftp://example.com/",
        "not a url",
        "http://user:pass@example.com/"
      ]
      for (const url of refused) {
        const error = yield* Effect.flip(strict.subscribe({ url, events: ["*"] }))
        expect([url, error._tag]).toEqual([url, "InvalidSubscription"])
      }
      const loopbackError = yield* Effect.flip(strict.subscribe({ url: "http://localhost/hook", events: ["*"] }))
      expect(loopbackError.message).toContain("loopback")
      const relaxed = yield* WebhookDelivery.make(testOptions())
      const subscription = yield* relaxed.subscribe({ url: "http://127.0.0.1:9/hook", events: ["order.paid"] })
      expect(Webhooks.isStandardSecret(Redacted.value(subscription.secret))).toBe(true)
      expect(String(subscription.secret)).not.toContain("whsec_")
      const badSecret = yield* Effect.flip(
        relaxed.subscribe({ url: "http://127.0.0.1:9/", events: ["*"], secret: Redacted.make("hunter2!") })
      )
      expect(badSecret.message).toContain("whsec_")
      expect(badSecret.message).not.toContain("hunter2")
      expect((yield* Effect.flip(relaxed.subscribe({ url: "http://127.0.0.1:9/", events: [] })))._tag).toBe(
        "InvalidSubscription"
      )
      expect((yield* relaxed.subscriptions).map((s) => s.id)).toEqual([subscription.id])
      expect(yield* relaxed.unsubscribe(subscription.id)).toBe(true)
      expect(yield* relaxed.subscription(subscription.id)).toEqual(Option.none())
    }).pipe(Effect.provide(memoryStores)))
})

describe("WebhookDelivery", () => {
  it.scoped("delivers a signed event to every subscription that wants it, and records the attempt", () =>
    Effect.gen(function*() {
      const receiver = yield* webhookReceiver()
      const service = yield* WebhookDelivery.make(testOptions())
      const paid = yield* service.subscribe({ url: `${receiver.url}/paid`, events: ["order.paid"] })
      const all = yield* service.subscribe({ url: `${receiver.url}/all`, events: ["*"] })
      yield* service.subscribe({ url: `${receiver.url}/other`, events: ["order.refunded"] })
      yield* service.run()
      const emitted = yield* service.emit("order.paid", { order: 42, total: "9.99" })
      expect(emitted.deliveries.map((d) => d.subscriptionId).sort()).toEqual([paid.id, all.id].sort())
      const ids = emitted.deliveries.map((d) => d.id)
      yield* drive(settled(service, ids), "500 millis")
      expect(receiver.received.map((r) => r.path).sort()).toEqual(["/all", "/paid"])
      for (const request of receiver.received) {
        const secret = request.path === "/paid" ? paid.secret : all.secret
        const events = yield* verifyReceived(request, secret)
        expect(events.map((event) => [event.id, event.type])).toEqual([[emitted.eventId, "order.paid"]])
        expect((events[0]!.payload as { data: unknown }).data).toEqual({ order: 42, total: "9.99" })
      }
      // The same event id on every delivery: the receiver's idempotency key.
      expect(new Set(receiver.received.map((r) => r.headers["webhook-id"]))).toEqual(new Set([emitted.eventId]))
      const status = Option.getOrThrow(yield* service.delivery(ids[0]!))
      expect([status.state, status.eventId, status.type]).toEqual(["delivered", emitted.eventId, "order.paid"])
      expect(status.attempts.map((a) => [a.attempt, a.outcome, a.status])).toEqual([[1, "delivered", 200]])
      expect(yield* service.delivery("dlv_nope")).toEqual(Option.none())
    }).pipe(Effect.provide(memoryStores)))

  it.scoped("5xx, 408 and 429 are retried on the schedule; Retry-After lengthens a delay", () =>
    Effect.gen(function*() {
      const before = yield* metricValues("liaison_webhook_deliveries_total")
      const answers = [{ status: 503 }, { status: 408 }, { status: 429, headers: { "retry-after": "120" } }, {
        status: 200
      }]
      const receiver = yield* webhookReceiver({ respond: (_request, index) => answers[index] ?? { status: 200 } })
      const service = yield* WebhookDelivery.make(testOptions({ schedule: ["1 second", "2 seconds", "4 seconds"] }))
      yield* service.subscribe({ url: receiver.url, events: ["*"] })
      yield* service.run()
      const [delivery] = (yield* service.emit("ping", {})).deliveries
      yield* drive(
        Effect.map(stateOf(service, delivery!.id), (state) => receiver.received.length === 3 && state === "pending")
      )
      // The third attempt got 429 with Retry-After: 120, longer than the 4 s scheduled.
      const waiting = Option.getOrThrow(yield* service.delivery(delivery!.id))
      const third = waiting.attempts[2]!
      expect(waiting.nextAttemptAt! - third.at).toBeGreaterThanOrEqual(120_000)
      yield* drive(Effect.map(stateOf(service, delivery!.id), (state) => state === "delivered"), "5 seconds")
      const status = Option.getOrThrow(yield* service.delivery(delivery!.id))
      expect(status.attempts.map((a) => [a.outcome, a.status])).toEqual([
        ["retry", 503],
        ["retry", 408],
        ["retry", 429],
        ["delivered", 200]
      ])
      expect(metricDelta(before, yield* metricValues("liaison_webhook_deliveries_total"))).toEqual({
        "outcome=retried": 3,
        "outcome=delivered": 1
      })
    }).pipe(Effect.provide(memoryStores)))

  it.scoped("other 4xx and 3xx fail at once; 410 also disables the subscription", () =>
    Effect.gen(function*() {
      const before = yield* metricValues("liaison_webhook_deliveries_total")
      const byPath: Record<string, number> = { "/bad": 400, "/moved": 301, "/gone": 410 }
      const receiver = yield* webhookReceiver({ respond: (request) => ({ status: byPath[request.path] ?? 200 }) })
      const service = yield* WebhookDelivery.make(testOptions())
      const subscriptions = yield* Effect.forEach(Object.keys(byPath), (path) =>
        service.subscribe({ url: `${receiver.url}${path}`, events: ["*"] }))
      yield* service.run()
      const { deliveries } = yield* service.emit("ping", {})
      yield* drive(settled(
        service,
        deliveries.map((d) =>
          d.id
        )
      ))
      for (const delivery of deliveries) {
        const status = Option.getOrThrow(yield* service.delivery(delivery.id))
        expect(status.state).toBe("failed")
        expect(status.attempts.length).toBe(1)
      }
      expect(receiver.received.length).toBe(3)
      expect(metricDelta(before, yield* metricValues("liaison_webhook_deliveries_total"))).toEqual({
        "outcome=failed": 3
      })
      const gone = subscriptions[2]!
      expect(Option.isSome(Option.getOrThrow(yield* service.subscription(gone.id)).disabled)).toBe(true)
      // Nothing more goes to a disabled subscription.
      const next = yield* service.emit("ping", {})
      expect(next.deliveries.map((d) => d.subscriptionId)).not.toContain(gone.id)
    }).pipe(Effect.provide(memoryStores)))

  it.scoped("receiver down, then up: every delivery arrives", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const service = yield* WebhookDelivery.make(
        testOptions({ schedule: ["1 second", "2 seconds", "4 seconds", "8 seconds", "16 seconds"] })
      )
      const subscription = yield* service.subscribe({ url: `http://127.0.0.1:${port}/hook`, events: ["*"] })
      yield* service.run({ concurrency: 4 })
      const ids = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) =>
        Effect.map(service.emit("tick", { i }), (emitted) => emitted.deliveries[0]!.id))
      // Down: every delivery fails its first attempts and waits for the next.
      yield* drive(Effect.map(
        Effect.forEach(ids, (id) =>
          service.delivery(id)),
        (all) => all.every((status) => Option.getOrThrow(status).attempts.length >= 2)
      ))
      const receiver = yield* webhookReceiver({ port })
      yield* drive(settled(service, ids), "1 second")
      const states = yield* Effect.forEach(ids, (id) => stateOf(service, id))
      expect(states.every((state) => state === "delivered")).toBe(true)
      const ticks = yield* Effect.forEach(receiver.received, (request) =>
        Effect.map(verifyReceived(request, subscription.secret), (events) =>
          (events[0]!.payload as { data: { i: number } }).data.i))
      expect([...new Set(ticks)].sort((a, b) =>
        a - b
      )).toEqual(Array.from({ length: 20 }, (_, i) =>
        i))
      const first = Option.getOrThrow(yield* service.delivery(ids[0]!))
      expect(first.attempts[0]!.error).toContain("ECONNREFUSED")
    }).pipe(Effect.provide(memoryStores)))

  it.scoped("an unsubscribed target's queued deliveries fail instead of being sent", () =>
    Effect.gen(function*() {
      const receiver = yield* webhookReceiver()
      const service = yield* WebhookDelivery.make(testOptions())
      const subscription = yield* service.subscribe({ url: receiver.url, events: ["*"] })
      const { deliveries } = yield* service.emit("ping", {})
      yield* service.unsubscribe(subscription.id)
      yield* service.run()
      yield* drive(settled(service, deliveries.map((d) => d.id)))
      const status = Option.getOrThrow(yield* service.delivery(deliveries[0]!.id))
      expect([status.state, status.attempts[0]!.error]).toEqual(["failed", "the subscription was removed"])
      expect(receiver.received.length).toBe(0)
    }).pipe(Effect.provide(memoryStores)))

  it.scoped("spans and recorded errors carry neither a URL's query nor the secret", () => {
    const { text, tracer } = recordingTracer()
    return Effect.gen(function*() {
      const token = "t0ken_5ecr3t"
      const receiver = yield* webhookReceiver({ respond: () => ({ status: 503 }) })
      const port = yield* Effect.promise(freePort)
      const service = yield* WebhookDelivery.make(testOptions())
      const answered = yield* service.subscribe({ url: `${receiver.url}/hook?token=${token}`, events: ["*"] })
      const down = yield* service.subscribe({ url: `http://127.0.0.1:${port}/hook?token=${token}`, events: ["*"] })
      yield* service.run()
      const { deliveries } = yield* service.emit("ping", {})
      yield* drive(Effect.map(
        Effect.forEach(deliveries, (d) => service.delivery(d.id)),
        (all) => all.every((status) => Option.getOrThrow(status).attempts.length >= 1)
      ))
      const errors = yield* Effect.forEach(
        deliveries,
        (d) => Effect.map(service.delivery(d.id), (status) => Option.getOrThrow(status).attempts[0]!.error ?? "")
      )
      expect(errors.join("\n")).toContain("503")
      expect(errors.join("\n")).toContain("ECONNREFUSED")
      const shown = `${text()}\n${errors.join("\n")}`
      expect(text()).toContain("span http.client POST")
      expect(text()).toContain("span liaison.webhook.deliver")
      expect(text()).toContain(`["liaison.webhook.outcome","retried"]`)
      for (const secret of [token, Redacted.value(answered.secret), Redacted.value(down.secret)]) {
        expect(shown).not.toContain(secret)
      }
    }).pipe(Effect.provide(memoryStores), Effect.withTracer(tracer))
  })
})

describe("WebhookDelivery on Redis", () => {
  /** One server instance: its own Redis connection, its own workers, built in `scope`. */
  const instance = (options: WebhookDelivery.Options, scope: Scope.Scope) =>
    Effect.map(
      Layer.buildWithScope(
        WebhookDelivery.layerRedis({ ...options, prefix: testStorePrefix() }).pipe(Layer.provide(redisLayer())),
        scope
      ),
      (context) => Context.get(context, WebhookDelivery.WebhookDelivery)
    )

  it.live("restart mid-queue: deliveries queued by an instance that went down are delivered by the next", () =>
    Effect.gen(function*() {
      const options = testOptions({
        schedule: ["100 millis", "200 millis", "400 millis"],
        pollInterval: "20 millis",
        requestTimeout: "5 seconds"
      })
      let slow = true
      const receiver = yield* webhookReceiver({ respond: () => ({ status: slow ? 503 : 200 }) })
      const first = yield* Scope.make()
      const before = yield* instance(options, first)
      const subscription = yield* before.subscribe({ url: receiver.url, events: ["*"] })
      yield* before.run({ concurrency: 4 }).pipe(Scope.extend(first))
      const ids = yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => Effect.map(before.emit("tick", { i }), (emitted) => emitted.deliveries[0]!.id)
      )
      while (receiver.received.length < 10) yield* Effect.sleep("10 millis")
      // The instance goes down with deliveries queued, waiting or in flight.
      yield* Scope.close(first, Exit.void)
      slow = false
      const after = yield* instance(options, yield* Effect.scope)
      yield* after.run({ concurrency: 4 })
      yield* Effect.gen(function*() {
        while (!(yield* settled(after, ids))) yield* Effect.sleep("20 millis")
      }).pipe(Effect.timeout("15 seconds"))
      const states = yield* Effect.forEach(ids, (id) => stateOf(after, id))
      expect(states.every((state) => state === "delivered")).toBe(true)
      const ticks = new Set<number>()
      for (const request of receiver.received.filter((r) => r.headers["webhook-id"] !== undefined)) {
        const events = yield* verifyReceived(request, subscription.secret)
        ticks.add((events[0]!.payload as { data: { i: number } }).data.i)
      }
      expect(ticks.size).toBe(30)
    }).pipe(Effect.scoped))

  it.scoped("the guard runs again at connect time: a name that now resolves to loopback is refused (DNS rebinding)", () =>
    Effect.gen(function*() {
      const receiver = yield* webhookReceiver()
      const scope = yield* Effect.scope
      const name = `deliveries-${randomUUID()}`
      // The subscription was accepted when the name pointed somewhere allowed (here: by a lax instance)…
      const lax = yield* instance(testOptions({ name }), scope)
      yield* lax.subscribe({ url: `http://localhost:${receiver.port}/hook`, events: ["*"] })
      yield* lax.subscribe({ url: `http://127.0.0.1:${receiver.port}/hook`, events: ["*"] })
      // …and is delivered by an instance whose guard refuses loopback.
      const strict = yield* instance(testOptions({ name, allow: {} }), scope)
      yield* strict.run()
      const { deliveries } = yield* strict.emit("ping", {})
      yield* drive(settled(strict, deliveries.map((d) => d.id)))
      for (const delivery of deliveries) {
        const status = Option.getOrThrow(yield* strict.delivery(delivery.id))
        expect(status.state).toBe("failed")
        expect(status.attempts[0]!.error).toContain("loopback")
      }
      expect(receiver.received.length).toBe(0)
    }))
})
