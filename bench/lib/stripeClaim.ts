/**
 * What the `webhooks` reference servers (bare `node:http` and the platform floor) do per request: check a
 * Stripe signature over the raw body in constant time, then claim the event id (a `Set`, or `SET NX EX` on
 * Redis when `REDIS_URL` is set).
 */
import { Redis as IORedis } from "ioredis"
import { createHmac, timingSafeEqual } from "node:crypto"

const secret = process.env.STRIPE_WEBHOOK_SECRET ?? ""

/** Whether `header` (`Stripe-Signature`) signs `body` with the secret, within 300 s. */
export const verify = (header: string, body: Uint8Array): boolean => {
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

/** Claims event ids: true the first time an id is seen. `close` frees the Redis connection. */
export const makeClaim = (): { readonly claim: (id: string) => Promise<boolean>; readonly close: () => void } => {
  const redis = process.env.REDIS_URL === undefined ? undefined : new IORedis(process.env.REDIS_URL)
  const seen = new Set<string>()
  return {
    claim: async (id) => {
      if (redis === undefined) {
        if (seen.has(id)) return false
        seen.add(id)
        return true
      }
      return (await redis.set(`bench:claim:${id}`, "1", "EX", 259_200, "NX")) === "OK"
    },
    close: () => redis?.disconnect()
  }
}
