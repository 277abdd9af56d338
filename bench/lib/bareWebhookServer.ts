/**
 * The reference for `bench/webhooks.ts`: the least a Node server must do per inbound Stripe webhook —
 * read the raw body, check the HMAC-SHA256 signature in constant time, claim the event id (a `Set`, or
 * `SET NX EX` on Redis when `REDIS_URL` is set) and answer 200. No framework, no queue, no workers.
 *
 *   STRIPE_WEBHOOK_SECRET=… [REDIS_URL=redis://…] tsx bench/lib/bareWebhookServer.ts
 *
 * Prints `{"url":…}` once listening.
 */
import * as http from "node:http"
import { listenAndAnnounce } from "./bareServer.js"
import { makeClaim, verify } from "./stripeClaim.js"

const { claim, close } = makeClaim()

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

listenAndAnnounce(server, close)
