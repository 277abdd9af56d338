import { describe, expect, layer } from "@effect/vitest"
import { Webhooks } from "@liaison/core"
import { SendGridWebhook, StripeWebhook } from "@liaison/integrations"
import { SandboxSecrets, Server } from "@liaison/server"
import { ConfigProvider, Effect, Either, FastCheck as fc, Layer, Redacted } from "effect"
import { createPrivateKey, randomUUID } from "node:crypto"
import * as http from "node:http"
import { webhookReceiver } from "../fixtures/webhookReceiver.js"
import { redisUrl } from "../setup/redisUrl.js"
import type { Reply } from "./support.js"
import { call, jsonBody, serverLayer } from "./support.js"

const sandbox = SandboxSecrets.sandboxSecrets
const utf8 = (text: string) => new TextEncoder().encode(text)
const now = () => Math.floor(Date.now() / 1000)

/** The server with its webhook settings from `env` (everything else on its defaults). */
const withEnv = (env: Record<string, string>, options: Parameters<typeof serverLayer>[0] = {}) =>
  serverLayer(options).pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

const post = (path: string, body: string, headers: Record<string, string>) =>
  call(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body })

const stripeEvent = (id: string, type = "payment_intent.succeeded") =>
  JSON.stringify({
    id,
    type,
    data: { object: { id: `pi_${id}`, amount: 2000, currency: "usd" } }
  })

const stripeHeaders = (body: string, timestamp = now()) => ({
  "stripe-signature": StripeWebhook.sign({
    secret: Redacted.make(sandbox.STRIPE_WEBHOOK_SECRET),
    timestamp,
    body: utf8(body)
  })
})

/** Polls `GET path` (real time) until `done` holds for the reply. */
const until = (path: string, done: (reply: Reply) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      const reply = yield* call(path)
      if (done(reply)) return reply
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.dieMessage(`${path} never reached the expected state`)
  })

const stateOf = (reply: Reply) => (reply.json as { readonly state?: string } | undefined)?.state

layer(withEnv({ WEBHOOK_MAX_BODY_BYTES: "4096", WEBHOOK_ALLOW_LOOPBACK: "true" }), { excludeTestServices: true })(
  "the server's webhooks (sandbox secrets, memory)",
  (it) => {
    describe("POST /webhooks/{source}", () => {
      it.effect("a verified Stripe event is recorded, answered 200, then processed; its duplicate is acknowledged", () =>
        Effect.gen(function*() {
          const id = `evt_${randomUUID()}`
          const body = stripeEvent(id)
          const first = yield* post("/webhooks/stripe", body, stripeHeaders(body))
          expect(first.status).toBe(200)
          expect(first.json).toEqual({ received: 1, duplicates: 0, events: [{ id, duplicate: false }] })
          const again = yield* post("/webhooks/stripe", body, stripeHeaders(body))
          expect(again.status).toBe(200)
          expect(again.json).toEqual({ received: 1, duplicates: 1, events: [{ id, duplicate: true }] })
          const processed = yield* until(`/webhooks/events/${id}`, (reply) => stateOf(reply) === "processed")
          expect(processed.json).toMatchObject({ id, source: "stripe", type: "payment_intent.succeeded", attempts: 1 })
          const bySource = yield* call(`/webhooks/events/${id}?source=stripe`)
          expect(bySource.status).toBe(200)
          expect((yield* call(`/webhooks/events/${id}?source=github`)).status).toBe(404)
          expect((yield* call("/webhooks/events/evt_nope")).status).toBe(404)
        }))

      it.effect("every source verifies with its sandbox default", () =>
        Effect.gen(function*() {
          const id = randomUUID()
          // Standard Webhooks
          const standardBody = JSON.stringify({ type: "user.created", timestamp: new Date().toISOString(), data: {} })
          const standard = yield* post("/webhooks/standard", standardBody, {
            "webhook-id": `msg_${id}`,
            "webhook-timestamp": String(now()),
            "webhook-signature": Either.getOrThrow(Webhooks.signStandard({
              secret: Redacted.make(sandbox.STANDARD_WEBHOOK_SECRET),
              id: `msg_${id}`,
              timestamp: now(),
              body: utf8(standardBody)
            }))
          })
          // GitHub
          const githubBody = JSON.stringify({ zen: "Keep it logically awesome." })
          const github = yield* post("/webhooks/github", githubBody, {
            "x-hub-signature-256": `sha256=${
              Webhooks.signHex(Redacted.make(sandbox.GITHUB_WEBHOOK_SECRET), utf8(githubBody))
            }`,
            "x-github-delivery": id,
            "x-github-event": "ping"
          })
          // SendGrid, signed with the published sandbox private key
          const sendgridBody = JSON.stringify([{ sg_event_id: `sg_${id}`, event: "bounce", email: "ann@example.com" }])
          const privateKey = createPrivateKey({
            key: Buffer.from(SandboxSecrets.sandboxSendGridPrivateKey, "base64"),
            format: "der",
            type: "pkcs8"
          })
          const sendgrid = yield* post("/webhooks/sendgrid", sendgridBody, {
            "x-twilio-email-event-webhook-signature": SendGridWebhook.sign({
              privateKey,
              timestamp: now(),
              body: utf8(sendgridBody)
            }),
            "x-twilio-email-event-webhook-timestamp": String(now())
          })
          // The lecture's generic scheme
          const genericBody = JSON.stringify({ id: `gen_${id}`, type: "payment.success", data: {} })
          const generic = yield* post("/webhooks/generic", genericBody, {
            "x-webhook-signature": Webhooks.signHex(Redacted.make(sandbox.WEBHOOK_SECRET), utf8(genericBody))
          })
          expect(
            [standard, github, sendgrid, generic].map((
              reply
            ) => [reply.status, (reply.json as { received: number }).received])
          )
            .toEqual([[200, 1], [200, 1], [200, 1], [200, 1]])
          for (
            const [source, eventId] of [["standard", `msg_${id}`], ["github", id], ["sendgrid", `sg_${id}`], [
              "generic",
              `gen_${id}`
            ]]
          ) {
            const reply = yield* until(`/webhooks/events/${eventId}`, (r) => stateOf(r) === "processed")
            expect((reply.json as { source: string }).source).toBe(source)
          }
        }))

      it.effect("each failure has its status: missing header 400, bad signature 401, stale 401, too large 413, bad JSON 400", () =>
        Effect.gen(function*() {
          const body = stripeEvent(`evt_${randomUUID()}`)
          const missing = yield* post("/webhooks/stripe", body, {})
          const bad = yield* post("/webhooks/stripe", body, stripeHeaders(`${body} `))
          const stale = yield* post("/webhooks/stripe", body, stripeHeaders(body, now() - 301))
          const large = `{"id":"evt_x","type":"t","pad":"${"x".repeat(5000)}"}`
          const tooLarge = yield* post("/webhooks/stripe", large, stripeHeaders(large))
          const notJson = "{not json"
          const garbage = yield* post("/webhooks/stripe", notJson, stripeHeaders(notJson))
          expect(
            [missing, bad, stale, tooLarge, garbage].map((
              reply
            ) => [reply.status, (reply.json as { error: string }).error])
          )
            .toEqual([
              [400, "missing_header"],
              [401, "invalid_signature"],
              [401, "timestamp_out_of_tolerance"],
              [413, "payload_too_large"],
              [400, "invalid_payload"]
            ])
          expect(bad.text).not.toContain(sandbox.STRIPE_WEBHOOK_SECRET)
          // Without a content-length (chunked), the body is cut off at the limit.
          const base = yield* Server.url
          const chunked = yield* Effect.promise(() =>
            new Promise<{ status: number; json: { error: string } }>((resolve, reject) => {
              const req = http.request(`${base}/webhooks/stripe`, { method: "POST", headers: stripeHeaders(large) })
              req.on("response", (response) => {
                let text = ""
                response.on("data", (chunk: Buffer) => (text += chunk.toString()))
                response.on("end", () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(text) }))
              })
              // The server may answer and close before the whole body is written.
              req.on("error", (error) => (req.writableEnded ? undefined : reject(error)))
              const bytes = utf8(large)
              for (let i = 0; i < bytes.length; i += 1000) req.write(bytes.subarray(i, i + 1000))
              req.end()
            })
          )
          expect([chunked.status, chunked.json.error]).toEqual([413, "payload_too_large"])
        }))

      it.effect("no input makes the server answer 5xx", () =>
        Effect.flatMap(Server.url, (base) =>
          Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(
                fc.constantFrom("stripe", "standard", "github", "sendgrid", "generic", "nope"),
                fc.dictionary(
                  fc.constantFrom(
                    "stripe-signature",
                    "webhook-id",
                    "webhook-timestamp",
                    "webhook-signature",
                    "x-hub-signature-256",
                    "x-twilio-email-event-webhook-signature",
                    "x-twilio-email-event-webhook-timestamp",
                    "x-webhook-signature",
                    "content-type"
                  ),
                  fc.string({ maxLength: 100 }).map((value) => value.replace(/[^\x20-\x7e]/g, ""))
                ),
                fc.oneof(fc.string({ maxLength: 300 }), fc.json({ maxDepth: 3 })),
                async (source, headers, body) => {
                  const response = await fetch(`${base}/webhooks/${source}`, { method: "POST", headers, body })
                  await response.text()
                  return response.status >= 400 && response.status < 500
                }
              ),
              { numRuns: 60 }
            )
          )))
    })

    describe("outbound", () => {
      it.scoped("subscribe, emit, deliver (signed), look at the delivery, unsubscribe", () =>
        Effect.gen(function*() {
          const receiver = yield* webhookReceiver()
          const created = yield* call(
            "/webhook-subscriptions",
            jsonBody("POST", { url: `${receiver.url}/in`, events: ["order.paid"] })
          )
          expect(created.status).toBe(201)
          const subscription = created.json as { id: string; secret: string; url: string }
          expect(subscription.secret.startsWith("whsec_")).toBe(true)
          const listed = yield* call("/webhook-subscriptions")
          expect((listed.json as ReadonlyArray<{ id: string }>).map((s) => s.id)).toContain(subscription.id)
          expect(listed.text).not.toContain(subscription.secret)
          const emitted = yield* call("/events", jsonBody("POST", { type: "order.paid", data: { order: 7 } }))
          expect(emitted.status).toBe(202)
          const { deliveries, eventId } = emitted.json as { eventId: string; deliveries: Array<{ id: string }> }
          const ours = deliveries.find((d) => (d as { subscriptionId?: string }).subscriptionId === subscription.id)!
          const delivered = yield* until(`/webhook-deliveries/${ours.id}`, (reply) => stateOf(reply) === "delivered")
          expect((delivered.json as { attempts: Array<{ status: number }> }).attempts.map((a) => a.status)).toEqual([
            200
          ])
          const request = receiver.received.find((r) => r.headers["webhook-id"] === eventId)!
          const standard = yield* Webhooks.standardWebhooks({ secret: Redacted.make(subscription.secret) })
          const events = yield* Webhooks.receive(standard, request)
          expect(events.map((e) => e.type)).toEqual(["order.paid"])
          expect((yield* call(`/webhook-subscriptions/${subscription.id}`, { method: "DELETE" })).status).toBe(200)
          expect((yield* call(`/webhook-subscriptions/${subscription.id}`, { method: "DELETE" })).status).toBe(404)
          expect((yield* call("/webhook-deliveries/dlv_nope")).status).toBe(404)
        }))

      it.effect("the SSRF guard refuses metadata, private and non-http targets with 422", () =>
        Effect.gen(function*() {
          for (const url of ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "file:///etc/passwd"]) {
            const reply = yield* call("/webhook-subscriptions", jsonBody("POST", { url, events: ["*"] }))
            expect([url, reply.status]).toEqual([url, 422])
          }
          const invalid = yield* call(
            "/webhook-subscriptions",
            jsonBody("POST", { url: "http://127.0.0.1/", events: [] })
          )
          expect(invalid.status).toBe(400)
        }))
    })
  }
)

layer(withEnv({}, { redisUrl: Redacted.make(redisUrl()) }), { excludeTestServices: true })(
  "the server's webhooks on Redis",
  (it) => {
    it.effect("events are recorded and processed through Redis", () =>
      Effect.gen(function*() {
        const id = `evt_${randomUUID()}`
        const body = stripeEvent(id, "customer.created")
        const first = yield* post("/webhooks/stripe", body, stripeHeaders(body))
        expect(first.status).toBe(200)
        const again = yield* post("/webhooks/stripe", body, stripeHeaders(body))
        expect((again.json as { duplicates: number }).duplicates).toBe(1)
        const processed = yield* until(`/webhooks/events/${id}`, (reply) => stateOf(reply) === "processed")
        expect(processed.json).toMatchObject({ id, source: "stripe", state: "processed" })
      }))
  }
)
