/**
 * `stream`: 1 GiB through the demo server's `GET /download/1GiB.bin` (the server, built, in its own process,
 * streaming from its built-in sandbox upstream). The client reads and discards the body. The server's RSS is
 * sampled from /proc every 50 ms: its growth over the idle baseline shows whether anything buffers the body.
 */
import * as fs from "node:fs/promises"
import { Agent, request } from "undici"
import { spawnNode, withProcess } from "./lib/processes.js"
import { markdownTable, round, writeResult } from "./lib/report.js"

const SIZE = 2 ** 30
const MiB = 2 ** 20
const SAMPLE_MS = 50

/** Resident set size of a process, in bytes (Linux). */
const rss = async (pid: number): Promise<number> => {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8")
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
  if (kib === undefined) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(kib) * 1024
}

/** Samples `pid`'s RSS until stopped; returns the peak. */
const sampler = (pid: number) => {
  let peak = 0
  let samples = 0
  const timer = setInterval(() => {
    rss(pid).then((bytes) => {
      peak = Math.max(peak, bytes)
      samples++
    }, () => {})
  }, SAMPLE_MS)
  return {
    stop: async () => {
      clearInterval(timer)
      const last = await rss(pid)
      return { peak: Math.max(peak, last), samples: samples + 1 }
    }
  }
}

/** The server logs `listening on http://host:port`; the port is all we need. */
const parseListening = (line: string): { readonly url: string } | undefined => {
  const port = /listening on http:\/\/[^:\s"]+:(\d+)/.exec(line)?.[1]
  return port === undefined ? undefined : { url: `http://127.0.0.1:${port}` }
}

const download = async (agent: Agent, url: string): Promise<number> => {
  const response = await request(url, { dispatcher: agent })
  if (response.statusCode !== 200) throw new Error(`GET ${url} answered ${response.statusCode}`)
  let received = 0
  for await (const chunk of response.body) received += (chunk as Buffer).length
  return received
}

export const run = (): Promise<void> =>
  withProcess(
    () =>
      spawnNode({
        args: ["packages/server/dist/main.js"],
        typescript: false,
        env: { PORT: "0", HOST: "127.0.0.1" },
        ready: parseListening
      }),
    async (server) => {
      const agent = new Agent({ connections: 1 })
      try {
        // Warm-up: JIT and connections, then let the heap settle before the baseline.
        await download(agent, `${server.ready.url}/download/64MiB.bin`)
        await new Promise((resolve) => setTimeout(resolve, 500))
        const baseline = await rss(server.pid)
        const samples = sampler(server.pid)
        const start = performance.now()
        const received = await download(agent, `${server.ready.url}/download/1GiB.bin`)
        const seconds = (performance.now() - start) / 1000
        const { peak, samples: count } = await samples.stop()
        if (received !== SIZE) throw new Error(`received ${received} bytes, expected ${SIZE}`)
        const result = {
          bytes: received,
          baseline_rss_mib: round(baseline / MiB, 1),
          peak_rss_mib: round(peak / MiB, 1),
          rss_growth_mib: round((peak - baseline) / MiB, 1),
          target: "rss_growth_mib < 64",
          throughput_mib_s: round(received / MiB / seconds, 1),
          seconds: round(seconds, 2),
          samples: count
        }
        const file = await writeResult("stream", result)
        console.log(markdownTable(["metric", "value"], [
          ["bytes", received],
          ["server RSS baseline (MiB)", result.baseline_rss_mib],
          ["server RSS peak (MiB)", result.peak_rss_mib],
          ["growth (MiB)", result.rss_growth_mib],
          ["throughput (MiB/s)", result.throughput_mib_s]
        ]))
        console.log(`\nserver RSS growth = ${result.rss_growth_mib} MiB (target < 64); written to ${file}`)
      } finally {
        await agent.close()
      }
    }
  )
