/** Measuring helpers, result files and Markdown tables shared by the benchmarks. */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"

export const resultsDir: string = path.resolve(import.meta.dirname, "..", "results")

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  const upper = sorted[middle] ?? Number.NaN
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2
}

/** Rounds to a few significant decimals, so the JSON files stay readable. */
export const round = (value: number, decimals = 2): number => Number(value.toFixed(decimals))

/** Wall-clock milliseconds of one run. */
export const timeMs = async (run: () => Promise<void>): Promise<number> => {
  const start = performance.now()
  await run()
  return performance.now() - start
}

/**
 * `timeMs`, also pushing this process' CPU time of the round (ms) to `cpu[name]`: on a shared,
 * busy machine it says what a contender itself costs (the upstream runs in another process).
 */
export const timeWithCpu = async (
  cpu: Record<string, Array<number>>,
  name: string,
  run: () => Promise<void>
): Promise<number> => {
  const before = process.cpuUsage()
  const ms = await timeMs(run)
  const used = process.cpuUsage(before)
  ;(cpu[name] ??= []).push((used.user + used.system) / 1000)
  return ms
}

/** Runs `total` tasks with at most `concurrency` in flight, for the promise-based contenders. */
export const runPool = async (total: number, concurrency: number, task: () => Promise<void>): Promise<void> => {
  let started = 0
  const worker = async (): Promise<void> => {
    while (started < total) {
      started++
      await task()
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker))
}

export interface Contender {
  readonly name: string
  /** One timed round, in ms. */
  readonly run: () => Promise<number>
}

/**
 * Runs every contender `rounds` times, interleaved (A B C A B C ...), so that a noisy neighbour or a thermal
 * slowdown hits them all alike; returns each contender's round times.
 */
export const interleave = async (
  contenders: ReadonlyArray<Contender>,
  rounds: number
): Promise<Record<string, Array<number>>> => {
  const times: Record<string, Array<number>> = Object.fromEntries(contenders.map((c) => [c.name, []]))
  for (let i = 0; i < rounds; i++) {
    for (const contender of contenders) {
      const ms = await contender.run()
      times[contender.name]?.push(ms)
      console.error(`  round ${i + 1}/${rounds} ${contender.name}: ${ms.toFixed(0)} ms`)
    }
  }
  return times
}

/** Where the numbers come from: they mean little without the machine. */
export const environment = () => ({
  date: new Date().toISOString(),
  node: process.version,
  platform: `${os.platform()} ${os.release()}`,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? "unknown"
})

export const writeResult = async (name: string, result: Readonly<Record<string, unknown>>): Promise<string> => {
  await fs.mkdir(resultsDir, { recursive: true })
  const file = path.join(resultsDir, `${name}.json`)
  await fs.writeFile(file, `${JSON.stringify({ ...result, environment: environment() }, null, 2)}\n`)
  return file
}

export type Cell = string | number

const show = (cell: Cell): string => (typeof cell === "number" ? cell.toLocaleString("en-US") : cell)

/** A GitHub-flavoured Markdown table. */
export const markdownTable = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<Cell>>): string => {
  const line = (cells: ReadonlyArray<string>) => `| ${cells.join(" | ")} |`
  return [line(headers), line(headers.map(() => "---")), ...rows.map((row) => line(row.map(show)))].join("\n")
}
