/**
 * The users sandbox's downloadable files: `<n>(B|KiB|MiB|GiB).bin`, byte `k` being `k mod 251`,
 * streamed in constant memory.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

const units = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const

/** The largest file the sandbox serves: enough to show a download in constant memory. @internal */
export const maxFileSize = 4 * 1024 ** 3

/** `<n>(B|KiB|MiB|GiB).bin` → its size in bytes; `None` for any other name or a size over the limit. @internal */
export const parseFileName = (name: string): Option.Option<number> => {
  const match = /^(\d{1,10})(B|KiB|MiB|GiB)\.bin$/.exec(name)
  if (match === null) return Option.none()
  const size = Number(match[1]) * units[match[2] as keyof typeof units]
  return size <= maxFileSize ? Option.some(size) : Option.none()
}

const period = 251

/** The byte at `offset` of every sandbox file: a prime period, so a misplaced chunk shows. @internal */
export const byteAt = (offset: number): number => offset % period

// A whole number of periods, so every chunk can be a view of this one buffer.
const pattern = Uint8Array.from({ length: period * 256 }, (_, index) => byteAt(index))

/**
 * The body of a file of `size` bytes as a stream of views of one shared ~64 KiB buffer: the
 * consumer pulls a chunk when it is ready for one (the server awaits `drain`), so a 1 GiB
 * file is served in constant memory.
 *
 * @internal
 */
export const fileBody = (size: number): Stream.Stream<Uint8Array> =>
  Stream.unfold(0, (offset) =>
    offset >= size
      ? Option.none()
      : Option.some([pattern.subarray(0, Math.min(pattern.length, size - offset)), offset + pattern.length] as const))
