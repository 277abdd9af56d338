/**
 * The reference for `bench/webhooks.ts`: the least a Node server must do per inbound Stripe webhook —
 * read the raw body, check the HMAC-SHA256 signature in constant time, claim the event id (a `Set`, or
 * `SET NX EX` on Redis when `REDIS_URL` is set) and answer 200. No framework, no queue, no workers.
 *
 *   STRIPE_WEBHOOK_SECRET=… [REDIS_URL=redis://…] tsx bench/lib/bareWebhookServer.ts
 *
 * Prints `{"url":…}` once listening.
 */
import { Redis as IORedis } from "ioredis"
import { createHmac, timingSafeEqual } from "node:crypto"
import * as http from "node:http"
import { listenAndAnnounce } from "./bareServer.js"

const secret = process.env.STRIPE_WEBHOOK_SECRET ?? ""
const redis = process.env.REDIS_URL === undefined ? undefined : new IORedis(process.env.REDIS_URL)
const seen = new Set<string>()

const verify = (header: string, body: Buffer): boolean => {
  let t: string | undefined
  const signatures: Array<string> = []
  for (const part of header.split(",")) {
    const [key, value] = part.split("=")
    if (key === "t") t = value
    if (key === "v1" && value !== undefined) signatures.push(value)
  }
  if (t === undefined || Math.abs(Date.now() / 1000 - Number(t)) > 300) return false
  const expected = createHmac("sha256", secret).update(`${t}.`).update(body).digest()
  return signatures.some((s) => /^[0-9a-f]{64}$/.test(s) && timingSafeEqual(Buffer.from(s, "hex"), expected))
}

const claim = async (id: string): Promise<boolean> => {
  if (redis === undefined) {
    if (seen.has(id)) return false
    seen.add(id)
    return true
  }
  return (await redis.set(`bench:bare:${id}`, "1", "EX", 259_200, "NX")) === "OK"
}

const server = http.createServer((req, res) => {
  const chunks: Array<Buffer> = []
  req.on("data", (chunk: Buffer) => chunks.push(chunk))
  req.on("end", () => {
    const body = Buffer.concat(chunks)
    if (!verify(String(req.headers["stripe-signature"] ?? ""), body)) {
      res.writeHead(401).end()
      return
    }
    const event = JSON.parse(body.toString("utf8")) as { readonly id: string }
    claim(event.id).then(
      (fresh) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ duplicate: !fresh }))
      },
      () => res.writeHead(503).end()
    )
  })
})

listenAndAnnounce(server, () => redis?.disconnect())
