/**
 * Emails survive a crash without being sent twice: the server is killed (SIGKILL) with 200
 * emails queued and some of them in flight to SendGrid, on a real `redis-server` with an
 * fsynced append-only file; a second instance finishes the queue. Every email ends `sent`,
 * `failed` or `unknown`, and SendGrid (a counting fake) receives each one at most once.
 */
import { describe, expect, it } from "@effect/vitest"
import { SandboxSecrets } from "@liaison/server"
import { countingSendGrid } from "../fixtures/countingSendGrid.js"
import { privateRedis } from "../fixtures/redisServer.js"
import { listeningUrl, startServer } from "../fixtures/serverProcess.js"

const EMAILS = 200

const postEmail = (url: string, n: number) =>
  fetch(`${url}/emails`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${SandboxSecrets.demoApiKey}` },
    body: JSON.stringify({
      from: { email: "shop@example.com" },
      to: [{ email: `user${n}@example.com` }],
      subject: `crash ${n}`,
      text: "hello"
    })
  }).then(async (response) => {
    expect(response.status).toBe(202)
    return ((await response.json()) as { id: string }).id
  })

const statusOf = (url: string, id: string) =>
  fetch(`${url}/emails/${id}`, { headers: { authorization: `Bearer ${SandboxSecrets.demoApiKey}` } }).then((response) =>
    response.json() as Promise<{ status: string; error?: string }>
  )

const until = async (condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe("emails across a crash", () => {
  it("kill -9 with emails in flight: each ends sent, failed or unknown, none reaches SendGrid twice", async () => {
    const redis = await privateRedis({ appendOnly: true })
    const sendgrid = await countingSendGrid(400)
    const env = {
      REDIS_URL: redis.url,
      SENDGRID_API_KEY: "SG.crash-test.secret",
      SENDGRID_API_BASE: sendgrid.url,
      EMAIL_WORKERS: "20",
      EMAIL_LEASE: "1 second",
      EMAIL_SENDERS: "shop@example.com",
      EMAIL_QUEUE: `crash-${Date.now()}`
    }
    const first = startServer(env)
    let second: ReturnType<typeof startServer> | undefined
    try {
      const firstUrl = await listeningUrl(first)
      const ids = await Promise.all(Array.from({ length: EMAILS }, (_, n) => postEmail(firstUrl, n)))
      // Some sends answered, some in flight: then the process dies at once.
      await until(() => sendgrid.total() >= 40, "the first sends")
      first.child.kill("SIGKILL")
      await first.exited

      second = startServer(env)
      const secondUrl = await listeningUrl(second)
      const settled = new Map<string, { status: string; error?: string }>()
      await until(async () => {
        for (const id of ids.filter((id) => !settled.has(id))) {
          const status = await statusOf(secondUrl, id)
          if (status.status === "sent" || status.status === "failed" || status.status === "unknown") {
            settled.set(id, status)
          }
        }
        return settled.size === EMAILS
      }, "every email to settle")

      const counts = { sent: 0, failed: 0, unknown: 0 }
      for (const status of settled.values()) counts[status.status as keyof typeof counts]++
      // SendGrid received no email twice, and every email it did not receive was not `sent`.
      expect([...sendgrid.received.values()].every((times) => times === 1)).toBe(true)
      expect(counts.sent).toBeLessThanOrEqual(sendgrid.received.size)
      expect(counts.sent + counts.failed + counts.unknown).toBe(EMAILS)
      // The sends in flight when the process died are the unknown ones: there were some.
      expect(counts.unknown).toBeGreaterThan(0)
      expect(counts.sent).toBeGreaterThan(0)
      for (const status of settled.values()) {
        if (status.status === "unknown") expect(status.error).toContain("the outcome is unknown")
      }
      console.log(
        `emails after kill -9: ${
          JSON.stringify(counts)
        }; SendGrid received ${sendgrid.total()} requests for ${sendgrid.received.size} emails`
      )
    } finally {
      if (first.child.exitCode === null) first.child.kill("SIGKILL")
      if (second !== undefined && second.child.exitCode === null) second.child.kill("SIGKILL")
      await sendgrid.close()
      await redis.dispose()
    }
  }, 120_000)
})
