/**
 * A local cluster: a private `redis-server`, N instances of the demo server sharing it (one
 * `REDIS_URL`, one `REDIS_KEY_PREFIX`), and nginx in front of them with `deploy/nginx.conf.template`.
 *
 *   npm run cluster                       # 3 instances, nginx on http://127.0.0.1:8080
 *   npm run cluster -- --instances 5 --port 9000
 *
 * Every other variable of the environment (`UPSTREAM_URL`, `UPSTREAM_RATE_LIMIT`, …) is passed to
 * every instance. Ctrl-C or SIGTERM stops nginx, then the instances (gracefully), then Redis, and
 * removes the temporary directory. The test of the cluster (`test/cluster`) uses the same
 * {@link startCluster} on the TypeScript sources.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { once } from "node:events"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

const root = path.resolve(import.meta.dirname, "..")
export const templatePath: string = path.join(root, "deploy", "nginx.conf.template")

export interface ClusterOptions {
  /** Instances behind nginx (default 3). */
  readonly instances?: number
  /** nginx's port (default: any free port). */
  readonly port?: number
  /** On top of the inherited environment, for every instance. */
  readonly env?: Readonly<Record<string, string>>
  /** `dist`: `node packages/server/dist/main.js`, as `npm start`; `source`: the sources through tsx. */
  readonly run?: "dist" | "source"
  /** nginx worker processes (default 1). */
  readonly nginxWorkers?: number
  /** Every line the children print, prefixed with their name (default: kept, not printed). */
  readonly onLine?: (name: string, line: string) => void
}

export interface Child {
  readonly name: string
  readonly pid: () => number | undefined
  readonly running: () => boolean
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<void>
}

export interface Instance extends Child {
  /** `http://127.0.0.1:port`, the same across restarts. */
  readonly url: string
  readonly port: number
  /** Starts it (again: stopping it first, SIGTERM) and resolves once it prints that it listens. */
  readonly start: () => Promise<void>
}

export interface Cluster {
  /** nginx's URL. */
  readonly url: string
  readonly redisUrl: string
  readonly redisKeyPrefix: string
  readonly redis: Child & { readonly start: () => Promise<void> }
  readonly instances: ReadonlyArray<Instance>
  readonly nginx: Child
  /** Replaces the extra environment of the instances started from now on (`ClusterOptions.env`). */
  readonly setEnv: (env: Readonly<Record<string, string>>) => void
  /** The last lines every child printed, for a failure message. */
  readonly recentOutput: () => string
  /** Stops everything (nginx, instances, Redis) and removes the temporary directory. */
  readonly stop: () => Promise<void>
}

/** A local port that was free a moment ago. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))
      )
    })
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Whether something on 127.0.0.1:`port` accepts a connection (and, with `send`, answers with `expect`). */
const answers = (port: number, send?: string, expect?: string): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1")
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once("error", () => done(false))
    socket.once("connect", () => send === undefined ? done(true) : socket.write(send))
    socket.once("data", (data) => done(expect === undefined || data.toString().startsWith(expect)))
  })

const waitUntil = async (what: string, check: () => Promise<boolean>, child: Child, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    if (!child.running()) throw new Error(`${what} exited before it was ready`)
    await sleep(50)
  }
  throw new Error(`${what} was not ready within ${timeoutMs} ms`)
}

/** The template with its `${LIAISON_*}` placeholders filled; fails on a placeholder left unfilled. */
export const renderNginxConf = (values: {
  readonly listen: string
  readonly upstreams: ReadonlyArray<string>
  readonly workers: number
}): string => {
  const filled = fs.readFileSync(templatePath, "utf8")
    .replaceAll("${LIAISON_NGINX_LISTEN}", values.listen)
    .replaceAll("${LIAISON_NGINX_WORKERS}", String(values.workers))
    .replaceAll(
      "${LIAISON_UPSTREAM_SERVERS}",
      values.upstreams.map((address) => `    server ${address} max_fails=2 fail_timeout=5s;`).join("\n")
    )
  const left = /\$\{LIAISON_[A-Z_]+\}/.exec(filled)
  if (left !== null) throw new Error(`nginx template: ${left[0]} was not filled`)
  return filled
}

/** The nginx binary, or a loud error: the cluster needs a real nginx. */
export const nginxBinary = (): string => {
  for (const candidate of [process.env.NGINX_BIN, "nginx", "/usr/sbin/nginx"]) {
    if (candidate === undefined) continue
    if (spawnSync(candidate, ["-v"], { stdio: "ignore" }).status === 0) return candidate
  }
  throw new Error("nginx is not installed (apt-get install nginx, or set NGINX_BIN): the cluster needs it")
}

/** Every child still running: killed if this process exits without stopping them (a crash, a test timeout). */
const running = new Set<ChildProcess>()
process.once("exit", () => running.forEach((child) => child.kill("SIGKILL")))

/** A child process that is started by `spawnIt` and whose output lines go to `onLine` and a short log. */
const managed = (
  name: string,
  spawnIt: () => ChildProcess,
  onLine: (name: string, line: string) => void
): Child & { readonly spawn: () => ChildProcess } => {
  let child: ChildProcess | undefined
  const isRunning = (proc: ChildProcess | undefined): proc is ChildProcess =>
    proc !== undefined && proc.exitCode === null && proc.signalCode === null
  return {
    name,
    pid: () => child?.pid,
    running: () => isRunning(child),
    spawn: () => {
      const proc = spawnIt()
      child = proc
      running.add(proc)
      proc.once("exit", () => running.delete(proc))
      let partial = ""
      const onData = (data: Buffer) => {
        const lines = (partial + data.toString()).split("\n")
        partial = lines.pop() ?? ""
        for (const line of lines) onLine(name, line)
      }
      proc.stdout?.on("data", onData)
      proc.stderr?.on("data", onData)
      proc.once("error", (error) => onLine(name, `failed to start: ${error.message}`))
      return proc
    },
    stop: async (signal = "SIGTERM") => {
      const proc = child
      if (!isRunning(proc)) return
      const exited = once(proc, "exit")
      proc.kill(signal)
      // A graceful stop that takes too long is finished off.
      const timer = setTimeout(() => proc.kill("SIGKILL"), 35_000)
      await exited
      clearTimeout(timer)
    }
  }
}

/** The instances' environment: the inherited one without what a test run sets for in-process servers. */
const instanceEnv = (extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv => {
  const { HTTP_BASE_URL: _base, NODE_OPTIONS: _options, REDIS_URL: _redis, ...inherited } = process.env
  return { ...inherited, HOST: "127.0.0.1", ...extra }
}

type OnLine = (name: string, line: string) => void

/** A private `redis-server` (no persistence) in `dir`. */
const redisChild = async (dir: string, onLine: OnLine) => {
  const port = await freePort()
  fs.mkdirSync(dir)
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir]
  const child = managed("redis", () => spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] }), onLine)
  const start = async () => {
    child.spawn()
    await waitUntil("redis-server", () => answers(port, "PING\r\n", "+PONG"), child, 10_000)
  }
  return { ...child, start, url: `redis://127.0.0.1:${port}` }
}

/** One instance on `port`, kept across restarts (nginx's list of instances is fixed). */
const instanceChild = (
  name: string,
  port: number,
  options: { readonly run: "dist" | "source"; readonly env: () => NodeJS.ProcessEnv },
  onLine: OnLine
): Instance => {
  const entry = options.run === "source"
    ? ["--import", "tsx", "--conditions=@liaison/source", path.join(root, "packages/server/src/main.ts")]
    : [path.join(root, "packages/server/dist/main.js")]
  let listening: Promise<void> = Promise.resolve()
  const child = managed(name, () => {
    const proc = spawn(process.execPath, entry, { cwd: root, env: options.env(), stdio: ["ignore", "pipe", "pipe"] })
    listening = new Promise((resolve, reject) => {
      let seen = ""
      const onData = (data: Buffer) => {
        seen += data.toString()
        if (/listening on http/.test(seen)) resolve()
      }
      proc.stdout?.on("data", onData)
      proc.stderr?.on("data", onData)
      proc.once("exit", (code, signal) => reject(new Error(`${name} exited (${code ?? signal}) before listening`)))
    })
    listening.catch(() => undefined)
    return proc
  }, onLine)
  return {
    ...child,
    url: `http://127.0.0.1:${port}`,
    port,
    start: async () => {
      await child.stop()
      child.spawn()
      await listening
    }
  }
}

/** nginx, unprivileged, with `prefix` as its prefix (config, logs, temp files, pid). */
const nginxChild = async (
  prefix: string,
  values: Parameters<typeof renderNginxConf>[0] & { readonly port: number },
  onLine: OnLine
) => {
  const binary = nginxBinary()
  for (const sub of ["logs", "temp"]) fs.mkdirSync(path.join(prefix, sub), { recursive: true })
  // Run as root, nginx's workers switch to `nobody`: they must be able to write temp files.
  fs.chmodSync(path.dirname(prefix), 0o755)
  fs.chmodSync(prefix, 0o755)
  fs.chmodSync(path.join(prefix, "temp"), 0o777)
  fs.writeFileSync(path.join(prefix, "nginx.conf"), renderNginxConf(values))
  const args = ["-p", prefix, "-c", "nginx.conf", "-e", "stderr", "-g", "daemon off;"]
  const child = managed("nginx", () => spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] }), onLine)
  child.spawn()
  await waitUntil("nginx", () => answers(values.port), child, 10_000)
  return child
}

/** Starts Redis, then the instances (all at once), then nginx; on a failure stops what started. */
export const startCluster = async (options: ClusterOptions = {}): Promise<Cluster> => {
  const count = options.instances ?? 3
  if (!Number.isInteger(count) || count < 1) throw new Error(`instances: expected a positive integer, got ${count}`)
  nginxBinary()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "liaison-cluster-"))
  const recent: Array<string> = []
  const onLine = (name: string, line: string) => {
    recent.push(`[${name}] ${line}`)
    if (recent.length > 200) recent.shift()
    options.onLine?.(name, line)
  }
  const children: Array<Child> = []
  // nginx first (no new requests), then every instance at once (each drains), then Redis.
  const stopAll = async () => {
    const byKind = (kind: string) => children.filter((child) => child.name.startsWith(kind))
    await Promise.all(byKind("nginx").map((child) => child.stop("SIGQUIT")))
    await Promise.all(byKind("server").map((child) => child.stop("SIGTERM")))
    await Promise.all(byKind("redis").map((child) => child.stop("SIGTERM")))
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    const redis = await redisChild(path.join(dir, "redis"), onLine)
    children.push(redis)
    await redis.start()
    const redisKeyPrefix = `liaison-cluster-${path.basename(dir).slice(-6)}`
    let extraEnv = options.env ?? {}
    const ports = await Promise.all(Array.from({ length: count }, () => freePort()))
    const instances = ports.map((port, i) =>
      instanceChild(`server-${i + 1}`, port, {
        run: options.run ?? "dist",
        env: () =>
          instanceEnv({ ...extraEnv, PORT: String(port), REDIS_URL: redis.url, REDIS_KEY_PREFIX: redisKeyPrefix })
      }, onLine)
    )
    children.push(...instances)
    await Promise.all(instances.map((instance) => instance.start()))
    const port = options.port === undefined || options.port === 0 ? await freePort() : options.port
    const nginx = await nginxChild(path.join(dir, "nginx"), {
      port,
      listen: `127.0.0.1:${port}`,
      upstreams: ports.map((port) => `127.0.0.1:${port}`),
      workers: options.nginxWorkers ?? 1
    }, onLine)
    children.push(nginx)
    return {
      url: `http://127.0.0.1:${port}`,
      redisUrl: redis.url,
      redisKeyPrefix,
      redis,
      instances,
      nginx,
      setEnv: (env) => {
        extraEnv = env
      },
      recentOutput: () => recent.join("\n"),
      stop: stopAll
    }
  } catch (error) {
    await stopAll()
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${recent.slice(-30).join("\n")}`)
  }
}

const argument = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  const raw = at === -1 ? undefined : process.argv[at + 1]
  const value = raw === undefined ? fallback : Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name}: expected a non-negative integer, got ${raw}`)
  return value
}

const main = async () => {
  const cluster = await startCluster({
    instances: argument("instances", 3),
    port: argument("port", 8080),
    run: "dist",
    onLine: (name, line) => process.stdout.write(`[${name}] ${line}\n`)
  })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    process.stdout.write(`cluster: ${signal}, stopping nginx, the instances, Redis\n`)
    cluster.stop().then(() => process.exit(0), (error) => {
      process.stderr.write(`cluster: ${String(error)}\n`)
      process.exit(1)
    })
  }
  process.on("SIGINT", () => stop("SIGINT"))
  process.on("SIGTERM", () => stop("SIGTERM"))
  process.stdout.write(
    `cluster: ${cluster.instances.length} instances (${
      cluster.instances.map((i) => i.url).join(", ")
    }), Redis at ${cluster.redisUrl}\ncluster: listening on ${cluster.url} (Ctrl-C stops everything)\n`
  )
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    process.stderr.write(`cluster: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  })
}
