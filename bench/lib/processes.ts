/**
 * Runs a server under test in its own Node process, so that it does not share a CPU core or a heap with the
 * client being measured.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as readline from "node:readline"

/** The repository root, where `tsx` and the workspaces resolve. */
export const repoRoot: string = path.resolve(import.meta.dirname, "..", "..")

export interface Spawned<A> {
  /** The pid of the Node process itself (no npx or shell in between), e.g. to read its RSS. */
  readonly pid: number
  /** What `ready` found in the process's output. */
  readonly ready: A
  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  readonly stop: () => Promise<void>
}

export interface SpawnOptions<A> {
  /** Arguments after `node --import tsx --conditions=@liaison/source`, e.g. a script path. */
  readonly args: ReadonlyArray<string>
  readonly env?: Readonly<Record<string, string>>
  /** Looks at each output line (stdout and stderr); the first defined result means the process is ready. */
  readonly ready: (line: string) => A | undefined
  readonly timeoutMs?: number
  /** Run TypeScript sources through tsx (the default); false runs built JavaScript as it is. */
  readonly typescript?: boolean
}

/**
 * `BENCH_CPU_PROF=<dir>`: the arguments that run a server under test with `node --cpu-prof`, its
 * profile written into `<dir>` when it exits; none otherwise.
 */
export const profileArgs = (): ReadonlyArray<string> => {
  const dir = process.env.BENCH_CPU_PROF
  return dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`]
}

/**
 * The built demo server in its own process on a free loopback port, with `env` on top (under
 * `--cpu-prof` when `BENCH_CPU_PROF` is set).
 */
export const spawnDemoServer = <A>(
  env: Readonly<Record<string, string>>,
  ready: (line: string) => A | undefined
): Promise<Spawned<A>> =>
  spawnNode({
    args: [...profileArgs(), "packages/server/dist/main.js"],
    typescript: false,
    env: { PORT: "0", HOST: "127.0.0.1", ...env },
    ready
  })

/** CPU time (user + system) of a process so far, in microseconds, from `/proc/<pid>/stat` (Linux). */
export const cpuMicros = async (pid: number): Promise<number> => {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

const running = new Set<ChildProcess>()

// A crashed benchmark must not leave servers behind.
process.once("exit", () => running.forEach((child) => child.kill("SIGKILL")))

const stopper = (child: ChildProcess) => async (): Promise<void> => {
  running.delete(child)
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, "exit")
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
  await exited
  clearTimeout(timer)
}

/** Resolves with the first line `ready` accepts; rejects if the process exits or the timeout passes first. */
const waitReady = <A>(child: ChildProcess, options: SpawnOptions<A>): Promise<A> =>
  new Promise((resolve, reject) => {
    const recent: Array<string> = []
    const fail = (why: string) => reject(new Error(`${why}; last output:\n${recent.join("\n")}`))
    const timer = setTimeout(
      () => fail(`not ready within ${options.timeoutMs ?? 60_000} ms`),
      options.timeoutMs ?? 60_000
    )
    const onLine = (line: string) => {
      recent.push(line)
      if (recent.length > 20) recent.shift()
      const found = options.ready(line)
      if (found === undefined) return
      clearTimeout(timer)
      resolve(found)
    }
    for (const stream of [child.stdout, child.stderr]) {
      if (stream !== null) readline.createInterface({ input: stream }).on("line", onLine)
    }
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      fail(`exited early (code ${String(code)}, signal ${String(signal)})`)
    })
  })

/** Starts a Node process (on TypeScript sources through tsx, by default) and waits until it says it is ready. */
export const spawnNode = async <A>(options: SpawnOptions<A>): Promise<Spawned<A>> => {
  const loader = options.typescript === false ? [] : ["--import", "tsx", "--conditions=@liaison/source"]
  const child = spawn(process.execPath, [...loader, ...options.args], {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  running.add(child)
  const stop = stopper(child)
  try {
    const ready = await waitReady(child, options)
    // Keep draining its output, or a chatty server would block on a full pipe.
    child.stdout?.resume()
    child.stderr?.resume()
    return { pid: child.pid ?? -1, ready, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

interface UpstreamLine {
  readonly url: string
}

const parseUpstreamLine = (line: string): UpstreamLine | undefined => {
  if (!line.startsWith("{")) return undefined
  const parsed: unknown = JSON.parse(line)
  return typeof parsed === "object" && parsed !== null && "url" in parsed && typeof parsed.url === "string"
    ? { url: parsed.url }
    : undefined
}

/** The chaos upstream (test/fixtures/chaosServer.ts) in its own process; `ready.url` is its plain HTTP URL. */
export const spawnUpstream = (): Promise<Spawned<UpstreamLine>> =>
  spawnNode({ args: ["test/fixtures/chaosServer.ts"], ready: parseUpstreamLine })

/** Runs `body` with a started process, stopping it afterwards whatever happens. */
/** Starts every process in turn (in parallel they would compete for the CPU while starting), runs `body`, stops them all. */
export const withProcesses = async <K extends string, A, B>(
  starts: Readonly<Record<K, () => Promise<Spawned<A>>>>,
  body: (spawned: Readonly<Record<K, Spawned<A>>>) => Promise<B>
): Promise<B> => {
  const spawned: Partial<Record<K, Spawned<A>>> = {}
  try {
    for (const name of Object.keys(starts) as Array<K>) spawned[name] = await starts[name]()
    return await body(spawned as Record<K, Spawned<A>>)
  } finally {
    await Promise.all(Object.values<Spawned<A> | undefined>(spawned).map((process) => process?.stop()))
  }
}

export const withProcess = async <A, B>(
  start: () => Promise<Spawned<A>>,
  body: (spawned: Spawned<A>) => Promise<B>
): Promise<B> => {
  const spawned = await start()
  try {
    return await body(spawned)
  } finally {
    await spawned.stop()
  }
}
