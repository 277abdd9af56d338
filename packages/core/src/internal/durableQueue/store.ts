import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type { StoreService } from "../../DurableQueue.js"
import { StorageError } from "../../LiaisonError.js"

/**
 * A failure of the queue's storage, as every store reports it.
 *
 * @internal
 */
export const storageError = (queue: string, operation: string, cause: unknown): StorageError =>
  new StorageError({ store: "durable-queue", operation: `${operation} (queue ${queue})`, cause })

interface Waiting {
  readonly waiters: Array<Deferred.Deferred<void>>
  pending: boolean
}

const waitingOf = (waiting: Map<string, Waiting>, queue: string): Waiting => {
  let entry = waiting.get(queue)
  if (entry === undefined) {
    entry = { waiters: [], pending: false }
    waiting.set(queue, entry)
  }
  return entry
}

const wake = (entry: Waiting): Effect.Effect<void> => {
  const waiter = entry.waiters.shift()
  if (waiter === undefined) {
    entry.pending = true
    return Effect.void
  }
  return Deferred.succeed(waiter, undefined)
}

const awaitWake = (entry: Waiting): Effect.Effect<void> => {
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
}

/**
 * In-process wake-ups, one idle worker per `wake`: a burst of enqueues wakes as many workers as
 * it has items, not every worker for every item. A `wake` with no worker waiting is kept (one), so
 * a worker about to wait does not sleep through an item enqueued just before.
 *
 * @internal
 */
export const makeWakeups = (): Pick<StoreService, "wake" | "awaitWake"> => {
  const waiting = new Map<string, Waiting>()
  return {
    wake: (queue) => Effect.suspend(() => wake(waitingOf(waiting, queue))),
    awaitWake: (queue) => Effect.suspend(() => awaitWake(waitingOf(waiting, queue)))
  }
}
