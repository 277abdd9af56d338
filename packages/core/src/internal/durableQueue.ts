import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/**
 * Where a queued item is in its life: waiting (maybe for a later time), leased by a worker,
 * or settled.
 *
 * @internal
 */
export type State = "queued" | "processing" | "done" | "failed"

/**
 * The storage of a queue failed (Redis down or erroring): nothing was changed, or the change is
 * unknown and the lease rules recover from it.
 *
 * @internal
 */
export class DurableQueueError extends Data.TaggedError("DurableQueueError")<{
  readonly queue: string
  readonly operation: string
  readonly cause: unknown
}> {
  override get message(): string {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `durable queue ${this.queue}: ${this.operation} failed: ${reason}`
  }
}

/**
 * One stored item, as the store keeps it: the value and the log are JSON strings the store
 * never looks into.
 *
 * @internal
 */
export interface RawRecord {
  readonly id: string
  readonly state: State
  readonly attempts: number
  readonly token: string
  readonly enqueuedAt: number
  readonly updatedAt: number
  /** When a queued item is due, or when a leased one's lease ends; undefined once settled. */
  readonly due: number | undefined
  readonly value: string
  readonly log: string
}

/** @internal */
export interface EnqueueInput {
  readonly id: string
  readonly value: string
  readonly now: number
  readonly availableAt: number
  readonly expireAt: number
}

/** @internal */
export interface TakeInput {
  readonly now: number
  readonly leaseUntil: number
  readonly token: string
  readonly expireAt: number
}

/** @internal */
export interface SettleInput {
  readonly id: string
  readonly token: string
  readonly state: "queued" | "done" | "failed"
  /** For `queued`: when it is due again. */
  readonly due: number
  readonly now: number
  /** The new log; `undefined` keeps the old one. */
  readonly log: string | undefined
  /** `release`: the attempt did not happen, so it is not counted. */
  readonly uncount: boolean
  readonly expireAt: number
}

/** @internal */
export interface ExtendInput {
  readonly id: string
  readonly token: string
  readonly now: number
  readonly leaseUntil: number
  readonly expireAt: number
}

/** @internal */
export interface RequeueInput {
  readonly id: string
  readonly now: number
  readonly log: string
  readonly expireAt: number
}

/**
 * The storage under every queue: strings in, strings out; every operation atomic.
 *
 * @internal
 */
export interface Store {
  /** Adds the item unless one with its id exists (and has not expired): true when added. */
  readonly enqueue: (queue: string, input: EnqueueInput) => Effect.Effect<boolean, DurableQueueError>
  /** Leases the first due item (queued and due, or leased with its lease over), or says when the next is due. */
  readonly take: (
    queue: string,
    input: TakeInput
  ) => Effect.Effect<Either.Either<RawRecord, Option.Option<number>>, DurableQueueError>
  /** Settles a leased item if `token` still holds its lease: true when it did. */
  readonly settle: (queue: string, input: SettleInput) => Effect.Effect<boolean, DurableQueueError>
  /** Moves a lease's end if `token` still holds it. */
  readonly extend: (queue: string, input: ExtendInput) => Effect.Effect<boolean, DurableQueueError>
  readonly get: (queue: string, id: string, now: number) => Effect.Effect<Option.Option<RawRecord>, DurableQueueError>
  /** A failed item back to queued, due now, its attempts reset: true when it was failed. */
  readonly requeue: (queue: string, input: RequeueInput) => Effect.Effect<boolean, DurableQueueError>
  /** Wakes this process' idle workers of a queue. */
  readonly wake: (queue: string) => Effect.Effect<void>
  /** Resolves at the next {@link wake} of a queue. */
  readonly awaitWake: (queue: string) => Effect.Effect<void>
}

/**
 * In-process wake-ups, one idle worker per `wake`: a burst of enqueues wakes as many workers as
 * it has items, not every worker for every item. A `wake` with no worker waiting is kept (one), so
 * a worker about to wait does not sleep through an item enqueued just before.
 *
 * @internal
 */
export const makeWakeups = (): Pick<Store, "wake" | "awaitWake"> => {
  const waiting = new Map<string, { readonly waiters: Array<Deferred.Deferred<void>>; pending: boolean }>()
  const of = (queue: string) => {
    let entry = waiting.get(queue)
    if (entry === undefined) {
      entry = { waiters: [], pending: false }
      waiting.set(queue, entry)
    }
    return entry
  }
  return {
    wake: (queue) =>
      Effect.suspend(() => {
        const entry = of(queue)
        const waiter = entry.waiters.shift()
        if (waiter === undefined) {
          entry.pending = true
          return Effect.void
        }
        return Deferred.succeed(waiter, undefined)
      }),
    awaitWake: (queue) =>
      Effect.suspend(() => {
        const entry = of(queue)
        if (entry.pending) {
          entry.pending = false
          return Effect.void
        }
        return Effect.flatMap(Deferred.make<void>(), (deferred) => {
          entry.waiters.push(deferred)
          return Effect.onInterrupt(Deferred.await(deferred), () =>
            Effect.sync(() => {
              const at = entry.waiters.indexOf(deferred)
              if (at !== -1) entry.waiters.splice(at, 1)
            }))
        })
      })
  }
}

// ---------------------------------------------------------------------------------------------------------------
// In memory
// ---------------------------------------------------------------------------------------------------------------

interface MemoryRecord {
  state: State
  attempts: number
  token: string
  readonly enqueuedAt: number
  updatedAt: number
  due: number | undefined
  readonly value: string
  log: string
  expireAt: number
  /** Bumped on every change of `due`, so that stale heap entries are recognised. */
  version: number
}

interface HeapEntry {
  readonly due: number
  readonly id: string
  readonly version: number
}

/** A binary min-heap on `due`; entries whose version is stale are skipped when they surface. */
class DueHeap {
  private readonly entries: Array<HeapEntry> = []

  push(entry: HeapEntry): void {
    const entries = this.entries
    entries.push(entry)
    let i = entries.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (entries[parent]!.due <= entry.due) break
      entries[i] = entries[parent]!
      i = parent
    }
    entries[i] = entry
  }

  peek(): HeapEntry | undefined {
    return this.entries[0]
  }

  pop(): void {
    const entries = this.entries
    const last = entries.pop()
    if (last === undefined || entries.length === 0) return
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      if (left >= entries.length) break
      const right = left + 1
      const child = right < entries.length && entries[right]!.due < entries[left]!.due ? right : left
      if (entries[child]!.due >= last.due) break
      entries[i] = entries[child]!
      i = child
    }
    entries[i] = last
  }
}

interface MemoryQueue {
  readonly records: Map<string, MemoryRecord>
  readonly heap: DueHeap
  nextSweep: number
}

const sweepEveryMillis = 60_000

const toRaw = (id: string, record: MemoryRecord): RawRecord => ({
  id,
  state: record.state,
  attempts: record.attempts,
  token: record.token,
  enqueuedAt: record.enqueuedAt,
  updatedAt: record.updatedAt,
  due: record.due,
  value: record.value,
  log: record.log
})

/**
 * The store in this process' memory: a map of records and a heap of due times per queue.
 * Expired records are swept at most once a minute (by the Effect clock).
 *
 * @internal
 */
export const makeMemoryStore = (): Store => {
  const queues = new Map<string, MemoryQueue>()
  const queueOf = (name: string): MemoryQueue => {
    let queue = queues.get(name)
    if (queue === undefined) {
      queue = { records: new Map(), heap: new DueHeap(), nextSweep: 0 }
      queues.set(name, queue)
    }
    return queue
  }
  const sweep = (queue: MemoryQueue, now: number) => {
    if (now < queue.nextSweep) return
    queue.nextSweep = now + sweepEveryMillis
    for (const [id, record] of queue.records) {
      if (record.expireAt <= now) queue.records.delete(id)
    }
  }
  const live = (queue: MemoryQueue, id: string, now: number): MemoryRecord | undefined => {
    const record = queue.records.get(id)
    if (record === undefined) return undefined
    if (record.expireAt > now) return record
    queue.records.delete(id)
    return undefined
  }
  const schedule = (queue: MemoryQueue, id: string, record: MemoryRecord, due: number | undefined) => {
    record.version++
    record.due = due
    if (due !== undefined) queue.heap.push({ due, id, version: record.version })
  }
  const leased = (queue: MemoryQueue, id: string, token: string, now: number) => {
    const record = live(queue, id, now)
    return record !== undefined && record.state === "processing" && record.token === token ? record : undefined
  }
  return {
    ...makeWakeups(),
    enqueue: (name, input) =>
      Effect.sync(() => {
        const queue = queueOf(name)
        sweep(queue, input.now)
        if (live(queue, input.id, input.now) !== undefined) return false
        const record: MemoryRecord = {
          state: "queued",
          attempts: 0,
          token: "",
          enqueuedAt: input.now,
          updatedAt: input.now,
          due: undefined,
          value: input.value,
          log: "",
          expireAt: input.expireAt,
          version: 0
        }
        queue.records.set(input.id, record)
        schedule(queue, input.id, record, input.availableAt)
        return true
      }),
    take: (name, input) =>
      Effect.sync(() => {
        const queue = queueOf(name)
        sweep(queue, input.now)
        for (;;) {
          const top = queue.heap.peek()
          if (top === undefined) return Either.left(Option.none())
          const record = live(queue, top.id, input.now)
          if (
            record === undefined || record.version !== top.version ||
            (record.state !== "queued" && record.state !== "processing")
          ) {
            queue.heap.pop()
            continue
          }
          if (top.due > input.now) return Either.left(Option.some(top.due))
          queue.heap.pop()
          record.state = "processing"
          record.attempts++
          record.token = input.token
          record.updatedAt = input.now
          record.expireAt = input.expireAt
          schedule(queue, top.id, record, input.leaseUntil)
          return Either.right(toRaw(top.id, record))
        }
      }),
    settle: (name, input) =>
      Effect.sync(() => {
        const queue = queueOf(name)
        const record = leased(queue, input.id, input.token, input.now)
        if (record === undefined) return false
        record.state = input.state
        record.token = ""
        record.updatedAt = input.now
        record.expireAt = input.expireAt
        if (input.uncount) record.attempts = Math.max(0, record.attempts - 1)
        if (input.log !== undefined) record.log = input.log
        schedule(queue, input.id, record, input.state === "queued" ? input.due : undefined)
        return true
      }),
    extend: (name, input) =>
      Effect.sync(() => {
        const queue = queueOf(name)
        // The lease may have run out without anyone taking the item since: the token still holds it.
        const record = leased(queue, input.id, input.token, 0)
        if (record === undefined) return false
        record.expireAt = input.expireAt
        schedule(queue, input.id, record, input.leaseUntil)
        return true
      }),
    get: (name, id, now) =>
      Effect.sync(() => {
        const record = live(queueOf(name), id, now)
        return record === undefined ? Option.none() : Option.some(toRaw(id, record))
      }),
    requeue: (name, input) =>
      Effect.sync(() => {
        const queue = queueOf(name)
        const record = live(queue, input.id, input.now)
        if (record === undefined || record.state !== "failed") return false
        record.state = "queued"
        record.attempts = 0
        record.updatedAt = input.now
        record.log = input.log
        record.expireAt = input.expireAt
        schedule(queue, input.id, record, input.now)
        return true
      })
  }
}
