import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type {
  Depth,
  EnqueueInput,
  ExtendInput,
  RequeueInput,
  SettleInput,
  State,
  StoredRecord,
  StoreService,
  TakeInput
} from "../../DurableQueue.js"
import { makeWakeups } from "./store.js"

/*
 * The store in this process' memory: per queue, a map of records and a heap of due times.
 * Every operation is synchronous, hence atomic. Expired records are swept at most once a minute
 * (by the Effect clock).
 */

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

const queueOf = (queues: Map<string, MemoryQueue>, name: string): MemoryQueue => {
  let queue = queues.get(name)
  if (queue === undefined) {
    queue = { records: new Map(), heap: new DueHeap(), nextSweep: 0 }
    queues.set(name, queue)
  }
  return queue
}

const sweep = (queue: MemoryQueue, now: number): void => {
  if (now < queue.nextSweep) return
  queue.nextSweep = now + sweepEveryMillis
  for (const [id, record] of queue.records) {
    if (record.expireAt <= now) queue.records.delete(id)
  }
}

/** The record of `id` unless it has expired (then it is dropped). */
const live = (queue: MemoryQueue, id: string, now: number): MemoryRecord | undefined => {
  const record = queue.records.get(id)
  if (record === undefined) return undefined
  if (record.expireAt > now) return record
  queue.records.delete(id)
  return undefined
}

/** The record of `id` if `token` holds its lease. */
const leased = (queue: MemoryQueue, id: string, token: string, now: number): MemoryRecord | undefined => {
  const record = live(queue, id, now)
  return record !== undefined && record.state === "processing" && record.token === token ? record : undefined
}

const schedule = (queue: MemoryQueue, id: string, record: MemoryRecord, due: number | undefined): void => {
  record.version++
  record.due = due
  if (due !== undefined) queue.heap.push({ due, id, version: record.version })
}

const toStored = (id: string, record: MemoryRecord): StoredRecord => ({
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

const enqueue = (queue: MemoryQueue, input: EnqueueInput): boolean => {
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
}

const take = (queue: MemoryQueue, input: TakeInput): Either.Either<StoredRecord, Option.Option<number>> => {
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
    return Either.right(toStored(top.id, record))
  }
}

const settle = (queue: MemoryQueue, input: SettleInput): boolean => {
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
}

const extend = (queue: MemoryQueue, input: ExtendInput): boolean => {
  // The lease may have run out without anyone taking the item since: the token still holds it.
  const record = leased(queue, input.id, input.token, 0)
  if (record === undefined) return false
  record.expireAt = input.expireAt
  schedule(queue, input.id, record, input.leaseUntil)
  return true
}

const get = (queue: MemoryQueue, id: string, now: number): Option.Option<StoredRecord> => {
  const record = live(queue, id, now)
  return record === undefined ? Option.none() : Option.some(toStored(id, record))
}

const requeue = (queue: MemoryQueue, input: RequeueInput): boolean => {
  const record = live(queue, input.id, input.now)
  if (record === undefined || record.state !== "failed") return false
  record.state = "queued"
  record.attempts = 0
  record.updatedAt = input.now
  record.log = input.log
  record.expireAt = input.expireAt
  schedule(queue, input.id, record, input.now)
  return true
}

/** A scan of the queue's records: read at most once a second (see `telemetry.ts`). */
const depth = (queue: MemoryQueue, now: number): Depth => {
  let items = 0
  let oldestDue: number | undefined
  for (const record of queue.records.values()) {
    if (record.expireAt <= now || (record.state !== "queued" && record.state !== "processing")) continue
    items++
    if (record.due !== undefined && (oldestDue === undefined || record.due < oldestDue)) oldestDue = record.due
  }
  return { items, oldestDue }
}

/**
 * The store in this process' memory.
 *
 * @internal
 */
export const make = (): StoreService => {
  const queues = new Map<string, MemoryQueue>()
  return {
    ...makeWakeups(),
    enqueue: (name, input) => Effect.sync(() => enqueue(queueOf(queues, name), input)),
    take: (name, input) => Effect.sync(() => take(queueOf(queues, name), input)),
    settle: (name, input) => Effect.sync(() => settle(queueOf(queues, name), input)),
    extend: (name, input) => Effect.sync(() => extend(queueOf(queues, name), input)),
    get: (name, id, now) => Effect.sync(() => get(queueOf(queues, name), id, now)),
    requeue: (name, input) => Effect.sync(() => requeue(queueOf(queues, name), input)),
    depth: (name, now) => Effect.sync(() => depth(queueOf(queues, name), now))
  }
}
