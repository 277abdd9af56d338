import { describe, expect, it } from "@effect/vitest"
import { DurableQueue, Redis } from "@liaison/core"
import {
  Clock,
  Deferred,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  pipe,
  Redacted,
  Ref,
  Schema,
  Scope,
  TestClock
} from "effect"
import { randomUUID } from "node:crypto"
import { drive } from "../fixtures/drive.js"
import { redisUrl, testStorePrefix } from "../setup/redisUrl.js"

const Job = Schema.Struct({ n: Schema.Number })

const redisLayer = () => Redis.layer({ url: Redacted.make(redisUrl()) })
const backends = [
  ["memory", () => DurableQueue.layerStoreMemory],
  ["redis", () => DurableQueue.layerStoreRedis({ prefix: testStorePrefix() }).pipe(Layer.provide(redisLayer()))]
] as const

const fresh = () => `test-${randomUUID()}`

/** Takes the next due item, failing the test when there is none. */
const takeSome = <A>(queue: DurableQueue.Queue<A>, lease?: Duration.DurationInput) =>
  Effect.flatMap(queue.take({ lease }), (item) =>
    Option.match(item, {
      onNone: () => Effect.dieMessage("expected a due item"),
      onSome: Effect.succeed
    }))

const stateOf = <A>(queue: DurableQueue.Queue<A>, id: string) =>
  Effect.map(queue.status(id), Option.map((status) => status.state))

/** A handler that records, once, the virtual time its first item ran at. */
const recordRunTime = (ranAt: Deferred.Deferred<number>) => () =>
  Effect.as(Effect.flatMap(Clock.currentTimeMillis, (now) => Deferred.succeed(ranAt, now)), DurableQueue.done())

/** Real time for the workers to start and go idle. */
const letWorkersIdle = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))

describe.each(backends)("DurableQueue (%s)", (_name, backend) => {
  const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Store | Scope.Scope>) =>
    effect.pipe(Effect.scoped, Effect.provide(backend()))

  it.effect("enqueue, take, ack: the item is done after one attempt, its history recorded", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      const { duplicate, id } = yield* queue.enqueue({ n: 1 })
      expect(duplicate).toBe(false)
      expect(yield* stateOf(queue, id)).toEqual(Option.some("queued"))
      const item = yield* takeSome(queue)
      expect([item.id, item.value, item.attempt]).toEqual([id, { n: 1 }, 1])
      expect(yield* stateOf(queue, id)).toEqual(Option.some("processing"))
      expect(yield* queue.take()).toEqual(Option.none())
      yield* queue.ack(item, { detail: { status: 200 } })
      const status = Option.getOrThrow(yield* queue.status(id))
      expect(status.state).toBe("done")
      expect(status.attempts).toBe(1)
      expect(status.value).toEqual({ n: 1 })
      expect(status.history.map((attempt) => [attempt.attempt, attempt.outcome, attempt.detail])).toEqual([
        [1, "done", { status: 200 }]
      ])
      expect(yield* queue.take()).toEqual(Option.none())
    })))

  it.effect("an id enqueued twice is a duplicate and runs once, even after it is done", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      expect(yield* queue.enqueue({ n: 1 }, { id: "evt_1" })).toEqual({ id: "evt_1", duplicate: false })
      expect(yield* queue.enqueue({ n: 2 }, { id: "evt_1" })).toEqual({ id: "evt_1", duplicate: true })
      const item = yield* takeSome(queue)
      expect(item.value).toEqual({ n: 1 })
      yield* queue.ack(item)
      expect(yield* queue.enqueue({ n: 3 }, { id: "evt_1" })).toEqual({ id: "evt_1", duplicate: true })
      expect(yield* queue.take()).toEqual(Option.none())
    })))

  it.effect("retryLater: not due before its delay, due after it, attempt 2", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      const { id } = yield* queue.enqueue({ n: 1 })
      yield* queue.retryLater(yield* takeSome(queue), "5 minutes", { error: "503 from upstream" })
      const waiting = Option.getOrThrow(yield* queue.status(id))
      expect([waiting.state, waiting.lastError, waiting.availableAt]).toEqual(["queued", "503 from upstream", 300_000])
      yield* TestClock.adjust("299 seconds")
      expect(yield* queue.take()).toEqual(Option.none())
      yield* TestClock.adjust("1 second")
      const again = yield* takeSome(queue)
      expect(again.attempt).toBe(2)
      expect(again.history.map((attempt) => attempt.outcome)).toEqual(["retry"])
    })))

  it.effect("a delayed enqueue is due only after its delay", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      yield* queue.enqueue({ n: 1 }, { delay: "10 seconds" })
      expect(yield* queue.take()).toEqual(Option.none())
      yield* TestClock.adjust("10 seconds")
      expect((yield* takeSome(queue)).value).toEqual({ n: 1 })
    })))

  it.effect("idle workers run a delayed item when it is due, with no enqueue to wake them", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job, { pollInterval: "1 second" })
      const ranAt = yield* Deferred.make<number>()
      yield* queue.worker(recordRunTime(ranAt), { concurrency: 3 })
      yield* letWorkersIdle
      yield* queue.enqueue({ n: 1 }, { delay: "5500 millis" })
      yield* drive(Deferred.isDone(ranAt), "20 millis")
      // When it is due, not at the next poll after it.
      const at = yield* Deferred.await(ranAt)
      expect(at).toBeGreaterThanOrEqual(5500)
      expect(at).toBeLessThan(6000)
    })))

  it.effect("a lease that runs out: the item is taken again once, the stale lease cannot settle it", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job, { lease: "30 seconds" })
      const { id } = yield* queue.enqueue({ n: 1 })
      const first = yield* takeSome(queue)
      yield* TestClock.adjust("29 seconds")
      expect(yield* queue.take()).toEqual(Option.none())
      yield* TestClock.adjust("1 second")
      const second = yield* takeSome(queue)
      expect(second.attempt).toBe(2)
      expect(second.history.map((attempt) => [attempt.attempt, attempt.outcome])).toEqual([[1, "lost"]])
      expect(yield* queue.take()).toEqual(Option.none())
      const stale = yield* Effect.flip(queue.ack(first))
      expect(stale._tag).toBe("LeaseLost")
      yield* queue.ack(second)
      expect(yield* stateOf(queue, id)).toEqual(Option.some("done"))
    })))

  it.effect("extend keeps the lease", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job, { lease: "30 seconds" })
      yield* queue.enqueue({ n: 1 })
      const item = yield* takeSome(queue)
      yield* TestClock.adjust("20 seconds")
      const extended = yield* queue.extend(item)
      expect(extended.leaseUntil).toBe(50_000)
      yield* TestClock.adjust("20 seconds")
      expect(yield* queue.take()).toEqual(Option.none())
      yield* queue.ack(extended)
    })))

  it.effect("fail, then retry: queued again with its attempts reset", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      const { id } = yield* queue.enqueue({ n: 1 })
      yield* queue.fail(yield* takeSome(queue), { error: "410 Gone" })
      const failedStatus = Option.getOrThrow(yield* queue.status(id))
      expect([failedStatus.state, failedStatus.lastError]).toEqual(["failed", "410 Gone"])
      expect(yield* queue.take()).toEqual(Option.none())
      expect(yield* queue.retry(id)).toBe(true)
      expect(yield* queue.retry(id)).toBe(false)
      const item = yield* takeSome(queue)
      expect(item.attempt).toBe(1)
      expect(item.history.map((attempt) => attempt.outcome)).toEqual(["failed", "requeued"])
      expect(yield* queue.retry("nope")).toBe(false)
    })))

  it.effect("release puts the item back at once without counting the attempt", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      yield* queue.enqueue({ n: 1 })
      yield* queue.release(yield* takeSome(queue))
      expect((yield* takeSome(queue)).attempt).toBe(1)
    })))

  it.effect("records expire after the retention", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job, { retention: "3 days" })
      const { id } = yield* queue.enqueue({ n: 1 })
      yield* queue.ack(yield* takeSome(queue))
      yield* TestClock.adjust(Duration.toMillis("3 days") - 1)
      expect(yield* stateOf(queue, id)).toEqual(Option.some("done"))
      yield* TestClock.adjust("1 millis")
      expect(yield* queue.status(id)).toEqual(Option.none())
      // Gone, so the same id is new again.
      expect((yield* queue.enqueue({ n: 2 }, { id })).duplicate).toBe(false)
    })))

  it.effect("a value that no longer decodes fails its item instead of looping", () =>
    run(Effect.gen(function*() {
      const name = fresh()
      const loose = yield* DurableQueue.make(name, Schema.Struct({ n: Schema.Unknown }))
      const { id } = yield* loose.enqueue({ n: "not a number" })
      const strict = yield* DurableQueue.make(name, Job)
      expect(yield* strict.take()).toEqual(Option.none())
      const status = Option.getOrThrow(yield* loose.status(id))
      expect(status.state).toBe("failed")
      expect(status.lastError).toContain("does not decode")
    })))

  it.effect("invalid options are refused when the queue is made", () =>
    run(Effect.gen(function*() {
      const badName = yield* Effect.flip(DurableQueue.make("a}b", Job))
      expect(badName.option).toBe("name")
      const badRetention = yield* Effect.flip(
        DurableQueue.make(fresh(), Job, { lease: "1 hour", retention: "1 minute" })
      )
      expect(badRetention.option).toBe("retention")
    })))

  it.effect("worker: every item handled once, outcomes applied, retrying() backs off then succeeds", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      const seen = yield* Ref.make<Array<string>>([])
      const allDone = yield* Deferred.make<void>()
      const finished = yield* Ref.make(0)
      yield* queue.worker(
        DurableQueue.retrying((item) =>
          Effect.gen(function*() {
            yield* Ref.update(seen, (ids) => [...ids, `${item.value.n}#${item.attempt}`])
            if (item.value.n === 0 && item.attempt < 3) return yield* Effect.fail("flaky")
            if ((yield* Ref.updateAndGet(finished, (k) => k + 1)) === 5) yield* Deferred.succeed(allDone, undefined)
          }), { delays: ["1 second", "2 seconds"], jitter: { min: 1, max: 1 } }),
        { concurrency: 3 }
      )
      const ids = yield* Effect.forEach([0, 1, 2, 3, 4], (n) => Effect.map(queue.enqueue({ n }), (e) => e.id))
      // Real time for the workers to run, virtual time for the back-off.
      yield* drive(Deferred.isDone(allDone))
      const flaky = Option.getOrThrow(yield* queue.status(ids[0]!))
      expect(flaky.state).toBe("done")
      expect(flaky.history.map((attempt) => [attempt.outcome, attempt.error])).toEqual([
        ["retry", "flaky"],
        ["retry", "flaky"],
        ["done", undefined]
      ])
      expect([...(yield* Ref.get(seen))].sort()).toEqual(["0#1", "0#2", "0#3", "1#1", "2#1", "3#1", "4#1"])
    })))

  it.effect("retrying() fails an item once its delays are used up", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      const handler = DurableQueue.retrying((_item: DurableQueue.Item<typeof Job.Type>) => Effect.fail("nope"), {
        delays: ["1 second"]
      })
      yield* queue.enqueue({ n: 1 })
      const item = yield* takeSome(queue)
      const first = yield* handler(item)
      expect(first._tag === "RetryLater" && Duration.toMillis(first.delay)).toBeGreaterThanOrEqual(800)
      expect(yield* handler({ ...item, attempt: 2 })).toEqual(DurableQueue.failed({ error: "nope" }))
    })))

  it.effect("a worker interrupted mid-handler releases its item: the next worker runs it, same attempt", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      const { id } = yield* queue.enqueue({ n: 1 })
      const started = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      yield* queue.worker(() => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)).pipe(
        Scope.extend(scope)
      )
      yield* Deferred.await(started)
      yield* Scope.close(scope, Exit.void)
      expect(yield* stateOf(queue, id)).toEqual(Option.some("queued"))
      expect((yield* takeSome(queue)).attempt).toBe(1)
    })))

  it.effect("a worker running longer than its lease keeps it: nobody else takes the item meanwhile", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job, { lease: "3 seconds", pollInterval: "1 minute" })
      const { id } = yield* queue.enqueue({ n: 1 })
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      yield* queue.worker(() =>
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.as(Deferred.await(release), DurableQueue.done()))
      )
      yield* Deferred.await(started)
      let steps = 0
      yield* drive(Effect.sync(() => ++steps > 10))
      expect(yield* queue.take()).toEqual(Option.none())
      yield* Deferred.succeed(release, undefined)
      yield* drive(Effect.map(stateOf(queue, id), (state) => Option.getOrUndefined(state) === "done"))
      expect(Option.getOrThrow(yield* queue.status(id)).attempts).toBe(1)
    })))

  it.effect("a worker that died mid-processing: its item is processed once more, after its lease runs out", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job, { lease: "30 seconds", pollInterval: "1 minute" })
      const { id } = yield* queue.enqueue({ n: 1 })
      // A worker that took the item and died: nothing settles it, nothing extends its lease.
      yield* takeSome(queue)
      const completions = yield* Ref.make(0)
      const finished = yield* Deferred.make<void>()
      yield* queue.worker(() =>
        Effect.zipRight(
          Ref.update(completions, (n) => n + 1),
          Effect.as(Deferred.succeed(finished, undefined), DurableQueue.done())
        ), { concurrency: 2 })
      yield* drive(Effect.map(stateOf(queue, id), (state) => Option.getOrUndefined(state) === "done"))
      yield* Deferred.await(finished)
      const status = Option.getOrThrow(yield* queue.status(id))
      expect([status.state, status.attempts]).toEqual(["done", 2])
      expect(status.history.map((attempt) => attempt.outcome)).toEqual(["lost", "done"])
      yield* TestClock.adjust("10 minutes")
      expect(yield* Ref.get(completions)).toBe(1)
    })))

  it.effect("an item taken more than maxAttempts times is failed without running", () =>
    run(Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job, { lease: "1 second", maxAttempts: 2 })
      const { id } = yield* queue.enqueue({ n: 1 })
      yield* takeSome(queue)
      yield* TestClock.adjust("1 second")
      yield* takeSome(queue)
      yield* TestClock.adjust("1 second")
      const ran = yield* Ref.make(false)
      yield* queue.worker(() => Effect.as(Ref.set(ran, true), DurableQueue.done()))
      yield* drive(Effect.map(stateOf(queue, id), (state) => Option.getOrUndefined(state) === "failed"))
      const status = Option.getOrThrow(yield* queue.status(id))
      expect(status.state).toBe("failed")
      expect(status.lastError).toContain("maxAttempts")
      expect(yield* Ref.get(ran)).toBe(false)
    })))
})

describe("DurableQueue.retrying", () => {
  const item = (attempt: number): DurableQueue.Item<typeof Job.Type> => ({
    id: "job_1",
    value: { n: 1 },
    attempt,
    enqueuedAt: 0,
    startedAt: 0,
    leaseUntil: 30_000,
    lastError: undefined,
    history: [],
    token: "t"
  })
  const noJitter = { min: 1, max: 1 }

  class Answered {
    constructor(readonly status: number, readonly retryAfterMillis?: number) {}
    get message() {
      return `answered ${this.status}`
    }
  }
  const classify = (error: Answered): DurableQueue.Verdict =>
    error.status === 0
      ? "unknown"
      : error.status === 429 && error.retryAfterMillis !== undefined
      ? { retryAfterMillis: error.retryAfterMillis }
      : error.status >= 500 || error.status === 429
      ? "retry"
      : "fail"

  it.effect("classify: retry on the table, fail at once, a Retry-After floor, the detail recorded", () =>
    Effect.gen(function*() {
      const handler = DurableQueue.retrying((_: DurableQueue.Item<typeof Job.Type>) => Effect.fail(new Answered(503)), {
        delays: ["1 second", "1 minute"],
        jitter: noJitter,
        classify,
        detail: (error) => ({ status: error.status })
      })
      expect(yield* handler(item(1))).toEqual(
        DurableQueue.retryAfter("1 second", { error: "answered 503", detail: { status: 503 } })
      )
      expect(yield* handler(item(2))).toEqual(
        DurableQueue.retryAfter("1 minute", { error: "answered 503", detail: { status: 503 } })
      )
      expect(yield* handler(item(3))).toEqual(DurableQueue.failed({ error: "answered 503", detail: { status: 503 } }))
      const permanent = DurableQueue.retrying(
        (_: DurableQueue.Item<typeof Job.Type>) => Effect.fail(new Answered(400)),
        {
          delays: ["1 second"],
          classify
        }
      )
      expect(yield* permanent(item(1))).toEqual(DurableQueue.failed({ error: "answered 400" }))
      const limited = DurableQueue.retrying(
        (_: DurableQueue.Item<typeof Job.Type>) => Effect.fail(new Answered(429, 90_000)),
        { delays: ["1 second"], jitter: noJitter, classify }
      )
      expect(yield* limited(item(1))).toEqual(DurableQueue.retryAfter("90 seconds", { error: "answered 429" }))
      expect(yield* limited(item(2))).toEqual(DurableQueue.failed({ error: "answered 429" }))
    }))

  it.effect("unknown: retried with a note by default, failed with onUnknown: fail", () =>
    Effect.gen(function*() {
      const lost = (_: DurableQueue.Item<typeof Job.Type>) => Effect.fail(new Answered(0))
      const retried = yield* DurableQueue.retrying(lost, { delays: ["1 second"], jitter: noJitter, classify })(item(1))
      expect(retried._tag).toBe("RetryLater")
      expect(retried._tag === "RetryLater" && retried.error).toContain("the outcome is unknown")
      const failed = yield* DurableQueue.retrying(lost, { delays: ["1 second"], classify, onUnknown: "fail" })(item(1))
      expect(failed._tag).toBe("Failed")
      expect(failed._tag === "Failed" && failed.error).toContain("the outcome is unknown")
    }))

  it.effect("an Outcome returned by the handler settles the item as it says; data-last form; jitter in range", () =>
    Effect.gen(function*() {
      const handler = pipe(
        (_: DurableQueue.Item<typeof Job.Type>) => Effect.succeed(DurableQueue.done({ detail: { messageId: "m_1" } })),
        DurableQueue.retrying({ delays: ["1 second"] })
      )
      expect(yield* handler(item(1))).toEqual(DurableQueue.done({ detail: { messageId: "m_1" } }))
      const jittered = DurableQueue.retrying((_: DurableQueue.Item<typeof Job.Type>) => Effect.fail("down"), {
        delays: ["10 seconds"],
        jitter: { min: 0.5, max: 1.5 }
      })
      for (let i = 0; i < 20; i++) {
        const outcome = yield* jittered(item(1))
        const delay = outcome._tag === "RetryLater" ? Duration.toMillis(outcome.delay) : -1
        expect(delay).toBeGreaterThanOrEqual(5_000)
        expect(delay).toBeLessThanOrEqual(15_000)
      }
    }))
})

describe("DurableQueue on Redis", () => {
  it.effect("every key it creates expires", () =>
    Effect.gen(function*() {
      const name = fresh()
      const queue = yield* DurableQueue.make(name, Job, { retention: "1 day" })
      const { id } = yield* queue.enqueue({ n: 1 })
      const item = yield* takeSome(queue)
      yield* queue.retryLater(item, "1 hour", { error: "later" })
      const keys = ["due", "exp", "val", "st", "log"].map((part) => `${testStorePrefix()}:{dq:${name}}:${part}`)
      const ttls = yield* Redis.use("PTTL", (client) => Promise.all(keys.map((key) => client.pttl(key))))
      for (const ttl of ttls) {
        expect(ttl).toBeGreaterThan(Duration.toMillis("1 day"))
        expect(ttl).toBeLessThanOrEqual(Duration.toMillis("25 hours"))
      }
      expect(Option.getOrThrow(yield* queue.status(id)).state).toBe("queued")
    }).pipe(
      Effect.provide(DurableQueue.layerStoreRedis({ prefix: testStorePrefix() }).pipe(Layer.provideMerge(redisLayer())))
    ))

  it.live("restart mid-queue: closing one worker layer and opening another on the same Redis loses nothing", () =>
    Effect.gen(function*() {
      const name = fresh()
      const total = 200
      const completed = new Map<number, number>()
      const instance = () =>
        DurableQueue.layerStoreRedis({ prefix: testStorePrefix() }).pipe(Layer.provide(redisLayer()))
      const handler = (item: DurableQueue.Item<typeof Job.Type>) =>
        Effect.sleep("2 millis").pipe(
          Effect.zipRight(Effect.sync(() => completed.set(item.value.n, (completed.get(item.value.n) ?? 0) + 1))),
          Effect.as(DurableQueue.done())
        )
      const ids = yield* Effect.gen(function*() {
        const queue = yield* DurableQueue.make(name, Job, { pollInterval: "20 millis" })
        return yield* Effect.forEach(
          Array.from({ length: total }, (_, n) => n),
          (n) => Effect.map(queue.enqueue({ n }), (enqueued) => enqueued.id),
          { concurrency: 20 }
        )
      }).pipe(Effect.provide(instance()))
      // The first instance works for a while, then goes down with items in flight.
      const first = yield* Scope.make()
      const firstLayer = yield* Layer.buildWithScope(instance(), first)
      yield* Effect.gen(function*() {
        const queue = yield* DurableQueue.make(name, Job, { pollInterval: "20 millis" })
        yield* queue.worker(handler, { concurrency: 4 })
      }).pipe(Effect.provide(firstLayer), Scope.extend(first))
      while (completed.size < total / 4) yield* Effect.sleep("5 millis")
      yield* Scope.close(first, Exit.void)
      expect(completed.size).toBeLessThan(total)
      // The second instance picks up the rest.
      yield* Effect.gen(function*() {
        const queue = yield* DurableQueue.make(name, Job, { pollInterval: "20 millis" })
        yield* queue.worker(handler, { concurrency: 4 })
        while (completed.size < total) yield* Effect.sleep("10 millis")
        const states = yield* Effect.forEach(ids, (id) => stateOf(queue, id), { concurrency: 20 })
        expect(states.every((state) => Option.getOrUndefined(state) === "done")).toBe(true)
      }).pipe(Effect.scoped, Effect.provide(instance()), Effect.timeout("15 seconds"))
      expect([...completed.values()].every((count) => count === 1)).toBe(true)
      expect(completed.size).toBe(total)
    }))

  it.effect("idle workers find an item another instance queued within one poll interval", () =>
    Effect.gen(function*() {
      const name = fresh()
      const instance = () =>
        DurableQueue.layerStoreRedis({ prefix: testStorePrefix() }).pipe(Layer.provide(redisLayer()))
      const ranAt = yield* Deferred.make<number>()
      const workersStore = yield* Layer.build(instance())
      yield* Effect.gen(function*() {
        const queue = yield* DurableQueue.make(name, Job, { pollInterval: "1 second" })
        yield* queue.worker(recordRunTime(ranAt), { concurrency: 2 })
      }).pipe(Effect.provide(workersStore))
      yield* letWorkersIdle
      yield* TestClock.adjust("300 millis")
      // Queued through another store: its wake-up reaches none of the workers.
      yield* Effect.flatMap(DurableQueue.make(name, Job), (queue) => queue.enqueue({ n: 1 })).pipe(
        Effect.provide(instance())
      )
      yield* drive(Deferred.isDone(ranAt), "20 millis")
      const at = yield* Deferred.await(ranAt)
      expect(at).toBeGreaterThanOrEqual(300)
      expect(at).toBeLessThanOrEqual(1300)
    }).pipe(Effect.scoped))

  it.effect("Redis down: enqueue fails with a StorageError, not a defect", () =>
    Effect.gen(function*() {
      const queue = yield* DurableQueue.make(fresh(), Job)
      const { client } = yield* Redis.Redis
      yield* Effect.promise(() => client.quit())
      const error = yield* Effect.flip(queue.enqueue({ n: 1 }))
      expect(error._tag).toBe("StorageError")
      expect(error._tag === "StorageError" && error.store).toBe("durable-queue")
      expect(error.message).toContain("enqueue")
    }).pipe(
      Effect.provide(DurableQueue.layerStoreRedis({ prefix: testStorePrefix() }).pipe(Layer.provideMerge(redisLayer())))
    ))
})
