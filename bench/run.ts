/**
 * Benchmark entry point: `npm run bench -- <name>`. Each benchmark lives in its own module, loaded on demand.
 */
const benchmarks: Readonly<Record<string, () => Promise<{ readonly run: () => Promise<void> }>>> = {
  overhead: () => import("./overhead.js"),
  fanout: () => import("./fanout.js"),
  stream: () => import("./stream.js"),
  resilience: () => import("./resilience.js"),
  ratelimit: () => import("./ratelimit.js"),
  chaos: () => import("./chaos.js"),
  cache: () => import("./cache.js"),
  webhooks: () => import("./webhooks.js"),
  server: () => import("./server.js"),
  telemetry: () => import("./telemetry.js"),
  shared: () => import("./shared.js"),
  cluster: () => import("./cluster.js")
}

const name = process.argv[2] ?? ""
const load = benchmarks[name]
if (load === undefined) {
  console.error(`unknown benchmark ${JSON.stringify(name)}; one of: ${Object.keys(benchmarks).join(", ")}`)
  process.exit(1)
}
await (await load()).run()
