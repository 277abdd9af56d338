/**
 * `liaison_emails_total{outcome}` counts each email once, when a worker settles it: a send after
 * two refused attempts (503) is one `sent`, a message SendGrid refuses (400) one `failed`, an
 * answer lost after SendGrid took the message one `unknown` — exact values after that sequence.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Emails, SendGridSandbox } from "@liaison/server"
import { ConfigProvider, Context, Effect, Layer, Metric } from "effect"
import { randomUUID } from "node:crypto"
import { call, jsonBody, serverLayer } from "./support.js"

class FakeSendGrid extends Context.Tag("test/ObservabilityFakeSendGrid")<
  FakeSendGrid,
  SendGridSandbox.FakeSendGrid
>() {}

const withFakeSendGrid = Layer.unwrapScoped(Effect.map(SendGridSandbox.make(), (fake) =>
  Layer.merge(
    Layer.succeed(FakeSendGrid, fake),
    serverLayer().pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
      new Map([
        ["SENDGRID_API_KEY", SendGridSandbox.sandboxApiKey],
        ["SENDGRID_API_BASE", fake.url],
        ["EMAIL_RETRY_DELAY", "20 millis"],
        ["EMAIL_SENDERS", "shop@example.com"],
        ["EMAIL_QUEUE", `emails-${randomUUID()}`]
      ])
    ))))
  )))

const email = (subject: string, extra: Record<string, unknown> = {}) => ({
  from: { email: "shop@example.com" },
  to: [{ email: "ann@example.com" }],
  subject,
  text: "Hi",
  ...extra
})

const counts = Effect.all({
  sent: Metric.value(Metric.tagged(Emails.emailsTotal, "outcome", "sent")),
  failed: Metric.value(Metric.tagged(Emails.emailsTotal, "outcome", "failed")),
  unknown: Metric.value(Metric.tagged(Emails.emailsTotal, "outcome", "unknown"))
}).pipe(Effect.map(({ failed, sent, unknown }) => ({ sent: sent.count, failed: failed.count, unknown: unknown.count })))

/** Queues an email and polls (real time) until it reaches `status`. */
const settle = (body: unknown, status: string) =>
  Effect.gen(function*() {
    const reply = yield* call("/emails", jsonBody("POST", body))
    expect(reply.status).toBe(202)
    const id = (reply.json as { readonly id: string }).id
    for (let i = 0; i < 300; i++) {
      const now = yield* call(`/emails/${id}`)
      if ((now.json as { readonly status: string }).status === status) return
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.dieMessage(`email ${id} never became ${status}`)
  })

layer(withFakeSendGrid, { excludeTestServices: true })("liaison_emails_total", (it) => {
  describe("after a scripted sequence", () => {
    it.effect("one sent after two retried attempts, one failed, one unknown: each counted once", () =>
      Effect.gen(function*() {
        const fake = yield* FakeSendGrid
        const before = yield* counts
        fake.inject(SendGridSandbox.faults.unavailable(503), SendGridSandbox.faults.unavailable(503))
        yield* settle(email(`retried ${randomUUID()}`), "sent")
        expect(yield* counts).toEqual({ ...before, sent: before.sent + 1 })
        yield* settle(email(`refused ${randomUUID()}`, { cc: [{ email: "ANN@example.com" }] }), "failed")
        fake.inject({ _tag: "DropAfterProcessing" })
        yield* settle(email(`lost ${randomUUID()}`), "unknown")
        expect(yield* counts).toEqual({ sent: before.sent + 1, failed: before.failed + 1, unknown: before.unknown + 1 })
      }))
  })
})
