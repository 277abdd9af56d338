/**
 * The memory tier of a cache: a bounded map, least recently used first out, with a time to live
 * per entry and a tag index. Values are kept decoded, with the Schema they were typed by, so a hit
 * costs no decoding. Synchronous and single-threaded: the caller passes the time.
 *
 * @internal
 */
import { memoryEntries } from "./cacheTelemetry.js"
import { matchGlob } from "./glob.js"

/** @internal */
export interface MemoryEntry {
  /** The decoded value. */
  readonly value: unknown
  /** The Schema the value was typed by (`Schema.Schema.AnyNoContext`, kept loose here). */
  readonly schema: unknown
  /** Fresh until this time (epoch ms). */
  readonly freshUntil: number
  /** Kept, for stale-if-error, until this time (epoch ms); never before `freshUntil`. */
  readonly staleUntil: number
  readonly tags: ReadonlyArray<string>
  readonly etag: string | undefined
}

/** An entry where it is kept: with the store's counter at its last move to the young end. */
interface Slot {
  readonly entry: MemoryEntry
  stamp: number
}

/** @internal */
export class MemoryStore {
  readonly #entries = new Map<string, Slot>()
  readonly #tags = new Map<string, Set<string>>()
  /** Counts moves to the young end (inserts and touches). */
  #moves = 0
  /** An entry fewer moves than this from the young end is not moved on a hit. */
  readonly #touchAfter: number

  constructor(readonly capacity: number) {
    this.#touchAfter = Math.floor(capacity / 2)
  }

  get size(): number {
    return this.#entries.size
  }

  /**
   * The entry, fresh or stale, or `undefined` once past its `staleUntil`; marks it most recently
   * used. A Map iterates in insertion order, so re-inserting a key moves it to the young end; an
   * entry already in the younger half (fewer than capacity / 2 moves since its own) is left where
   * it is: it cannot be next out, and a hot key costs no re-insertion on every hit.
   */
  get(key: string, now: number): MemoryEntry | undefined {
    const slot = this.#entries.get(key)
    if (slot === undefined) return undefined
    if (slot.entry.staleUntil <= now) {
      this.delete(key)
      return undefined
    }
    if (this.#moves - slot.stamp > this.#touchAfter) {
      this.#entries.delete(key)
      this.#entries.set(key, slot)
      slot.stamp = ++this.#moves
    }
    return slot.entry
  }

  set(key: string, entry: MemoryEntry): void {
    this.delete(key)
    this.#entries.set(key, { entry, stamp: ++this.#moves })
    memoryEntries.add(1)
    for (const tag of entry.tags) {
      let keys = this.#tags.get(tag)
      if (keys === undefined) this.#tags.set(tag, keys = new Set())
      keys.add(key)
    }
    while (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next()
      if (oldest.done === true) break
      this.delete(oldest.value)
    }
  }

  delete(key: string): boolean {
    const slot = this.#entries.get(key)
    if (slot === undefined) return false
    this.#entries.delete(key)
    memoryEntries.add(-1)
    for (const tag of slot.entry.tags) {
      const keys = this.#tags.get(tag)
      keys?.delete(key)
      if (keys?.size === 0) this.#tags.delete(tag)
    }
    return true
  }

  deleteTag(tag: string): number {
    const keys = this.#tags.get(tag)
    if (keys === undefined) return 0
    let count = 0
    for (const key of [...keys]) if (this.delete(key)) count++
    return count
  }

  /** Deletes every key matching the Redis glob `pattern`. */
  deletePattern(pattern: string): number {
    return this.deleteWhere((key) => matchGlob(pattern, key))
  }

  /** Deletes every key `drop` picks. */
  deleteWhere(drop: (key: string) => boolean): number {
    let count = 0
    for (const key of [...this.#entries.keys()]) {
      if (drop(key) && this.delete(key)) count++
    }
    return count
  }

  /** Drops every entry (also when the cache closes: `liaison_cache_entries` counts live caches only). */
  clear(): void {
    memoryEntries.add(-this.#entries.size)
    this.#entries.clear()
    this.#tags.clear()
  }
}
