/**
 * What the policy tests share: a scripted upstream (a real local HTTP server) and a driver that
 * moves the `TestClock` only while the policy sleeps (a backoff, a limiter's wait), never while
 * an attempt is on the wire.
 */
import { Chunk, Clock, Effect, Fiber, TestClock } from "effect"
import type * as NodeHttp from "node:http"
import { stubUpstream } from "../server/support.js"

/**
 * An upstream whose every path plays `?steps=` (statuses, `Retry-After` from `?retryAfter=`);
 * past the end the last step repeats. Counts what reached each path.
 */
export const scriptedUpstream = Effect.gen(function*() {
  const calls = new Map<string, number>()
  const handler: NodeHttp.RequestListener = (req, res) => {
    const url = new URL(req.url ?? "/", "http://upstream")
    const call = (calls.get(url.pathname) ?? 0) + 1
    calls.set(url.pathname, call)
    const steps = (url.searchParams.get("steps") ?? "200").split(",")
    const step = steps[Math.min(call, steps.length) - 1] ?? "200"
    const retryAfter = url.searchParams.get("retryAfter")
    res.writeHead(Number(step), {
      "content-type": "application/json",
      ...(retryAfter === null ? {} : { "retry-after": retryAfter })
    })
    res.end(JSON.stringify({ call, status: Number(step) }))
  }
  const { url } = yield* stubUpstream(handler)
  return {
    url,
    host: new URL(url).host,
    /** Requests that reached a path (or all paths). */
    requests: (path?: string) =>
      path === undefined ? [...calls.values()].reduce((a, b) => a + b, 0) : calls.get(path) ?? 0
  }
})

/** Real time passes (the wire works), whatever the clock in context. */
export const realPause = (millis: number) =>
  Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))

/**
 * Runs `fiber` to its end under the `TestClock`: while the next sleep is due within
 * `shortMillis` (a backoff or a limiter's wait, not an attempt's timeout), the clock jumps
 * exactly to it; otherwise real time passes so attempts on the wire can finish.
 */
export const drive = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, shortMillis = 5_000) =>
  Effect.gen(function*() {
    for (let round = 0; round < 2_000; round++) {
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") return yield* Fiber.join(fiber)
      yield* realPause(5)
      const now = yield* Clock.currentTimeMillis
      const next = Chunk.reduce(yield* TestClock.sleeps(), Infinity, (min, at) => Math.min(min, at))
      if (next - now < shortMillis) yield* TestClock.adjust(Math.max(0, next - now))
    }
    return yield* Effect.dieMessage("the call did not finish")
  })
