/**
 * The console the server's loggers write to: Node's own `Console` (same formatting, `group`
 * indentation included) over a sink that collects the lines and writes them to stdout / stderr
 * once per turn of the event loop. Writing to a pipe is a synchronous system call on Linux, and
 * the pretty access-log line is nine `console.log` calls: unbuffered, the log cost more CPU than
 * the request it records. A line waits at most one turn; whatever is pending is written
 * synchronously when the process exits.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { Console as NodeConsole } from "node:console"

/** Flushed at once past this many pending characters, so a burst does not grow a large string. */
const maxPending = 64 * 1024

interface Sink {
  readonly write: (chunk: string) => boolean
  readonly flush: () => void
}

const sinkFor = (stream: NodeJS.WriteStream): Sink => {
  let pending: Array<string> = []
  let size = 0
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (pending.length === 0) return
    const text = pending.join("")
    pending = []
    size = 0
    stream.write(text)
  }
  return {
    write: (chunk) => {
      pending.push(chunk)
      size += chunk.length
      if (size >= maxPending) flush()
      else if (!scheduled) {
        scheduled = true
        setImmediate(flush)
      }
      return true
    },
    flush
  }
}

/** An Effect `Console` whose effects run the given unsafe console's methods. */
const effectConsole = (unsafe: Console.UnsafeConsole): Console.Console => ({
  [Console.TypeId]: Console.TypeId,
  assert: (condition, ...args) => Effect.sync(() => unsafe.assert(condition, ...args)),
  clear: Effect.sync(() => unsafe.clear()),
  count: (label) => Effect.sync(() => unsafe.count(label)),
  countReset: (label) => Effect.sync(() => unsafe.countReset(label)),
  debug: (...args) => Effect.sync(() => unsafe.debug(...args)),
  dir: (item, options) => Effect.sync(() => unsafe.dir(item, options)),
  dirxml: (...args) => Effect.sync(() => unsafe.dirxml(...args)),
  error: (...args) => Effect.sync(() => unsafe.error(...args)),
  group: (options) =>
    Effect.sync(() =>
      options?.collapsed === true ? unsafe.groupCollapsed(options.label) : unsafe.group(options?.label)
    ),
  groupEnd: Effect.sync(() => unsafe.groupEnd()),
  info: (...args) => Effect.sync(() => unsafe.info(...args)),
  log: (...args) => Effect.sync(() => unsafe.log(...args)),
  table: (data, properties) => Effect.sync(() => unsafe.table(data, properties)),
  time: (label) => Effect.sync(() => unsafe.time(label)),
  timeEnd: (label) => Effect.sync(() => unsafe.timeEnd(label)),
  timeLog: (label, ...args) => Effect.sync(() => unsafe.timeLog(label, ...args)),
  trace: (...args) => Effect.sync(() => unsafe.trace(...args)),
  warn: (...args) => Effect.sync(() => unsafe.warn(...args)),
  unsafe
})

let shared: Console.Console | undefined

/**
 * The buffered console over this process' stdout and stderr: one per process, so that every
 * logger shares its order and the exit hook is added once.
 */
export const bufferedConsole = (): Console.Console => {
  if (shared !== undefined) return shared
  const stdout = sinkFor(process.stdout)
  const stderr = sinkFor(process.stderr)
  process.once("exit", () => {
    stdout.flush()
    stderr.flush()
  })
  // `ignoreErrors: false`: Node's console then only calls `write` (a write error surfaces on the real stream).
  const node = new NodeConsole({
    stdout: stdout as unknown as NodeJS.WritableStream,
    stderr: stderr as unknown as NodeJS.WritableStream,
    ignoreErrors: false,
    // Decided once, as Node would for the real stream (its "auto" asks on every call).
    colorMode: process.stdout.isTTY === true && process.stdout.getColorDepth() > 2
  })
  shared = effectConsole(node)
  return shared
}
