import type * as HttpServer from "@effect/platform/HttpServer"
import type { Vitest } from "@effect/vitest"
import { describe, expect, layer } from "@effect/vitest"
import { SendGridSandbox } from "@liaison/server"
import { ConfigProvider, Context, Effect, Layer, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { redisUrl } from "../setup/redisUrl.js"
import type { Reply } from "./support.js"
import { blamedFields, call, jsonBody, serverLayer } from "./support.js"

/** A sandbox SendGrid the test controls, and the server pointed at it as at the real one. */
class FakeSendGrid extends Context.Tag("test/FakeSendGrid")<FakeSendGrid, SendGridSandbox.FakeSendGrid>() {}

const withFakeSendGrid = (options: Parameters<typeof serverLayer>[0] = {}) =>
  Layer.unwrapScoped(Effect.map(SendGridSandbox.make(), (fake) =>
    Layer.merge(
      Layer.succeed(FakeSendGrid, fake),
      serverLayer(options).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
        new Map([
          ["SENDGRID_API_KEY", SendGridSandbox.sandboxApiKey],
          ["SENDGRID_API_BASE", fake.url],
          ["EMAIL_RETRY_DELAY", "50 millis"],
          ["EMAIL_SENDERS", "shop@example.com, @allowed.example"],
          // Its own queue: runs sharing the test Redis do not meet.
          ["EMAIL_QUEUE", `emails-${randomUUID()}`]
        ])
      ))))
    )))

const email = (subject: string) => ({
  from: { email: "shop@example.com", name: "Shop" },
  to: [{ email: "ann@example.com" }],
  subject,
  text: "Thank you!",
  html: "<p>Thank you!</p>"
})

const queue = (body: unknown) => call("/emails", jsonBody("POST", body))

interface EmailStatus {
  readonly id: string
  readonly status: "queued" | "sending" | "sent" | "failed" | "unknown"
  readonly attempts: number
  readonly messageId?: string
  readonly error?: string
}

const statusOf = (reply: Reply) => reply.json as EmailStatus

/** Polls `GET /emails/{id}` (real time) until `done` holds. */
const until = (id: string, done: (status: EmailStatus) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 300; i++) {
      const reply = yield* call(`/emails/${id}`)
      if (reply.status === 200 && done(statusOf(reply))) return statusOf(reply)
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.dieMessage(`email ${id} never reached the expected state`)
  })

const queued = (body: unknown) =>
  Effect.gen(function*() {
    const reply = yield* queue(body)
    expect(reply.status).toBe(202)
    expect(reply.json).toMatchObject({ status: "queued" })
    return (reply.json as { readonly id: string }).id
  })

/** The fake's deliveries of this subject, and its requests carrying it. */
const traffic = (fake: SendGridSandbox.FakeSendGrid, subject: string) => ({
  delivered: fake.outbox().filter((delivered) => delivered.payload.subject === subject),
  requests: fake.requests().filter((request) => request.body.includes(subject))
})

const backgroundSending = (it: Vitest.MethodsNonLive<FakeSendGrid | HttpServer.HttpServer, true>) => {
  it.effect("POST /emails answers 202 at once; the email is sent in the background", () =>
    Effect.gen(function*() {
      const fake = yield* FakeSendGrid
      const subject = `order ${randomUUID()}`
      const id = yield* queued(email(subject))
      expect(id).toMatch(/^email_/)
      const sent = yield* until(id, (status) => status.status === "sent")
      const { delivered } = traffic(fake, subject)
      expect(delivered).toHaveLength(1)
      expect(sent).toEqual({ id, status: "sent", attempts: 1, messageId: delivered[0]?.messageId, sandbox: false })
    }))

  it.effect("queued while SendGrid fails, sent once it recovers, nothing sent twice", () =>
    Effect.gen(function*() {
      const fake = yield* FakeSendGrid
      fake.outage(SendGridSandbox.faults.unavailable(503))
      const subject = `outage ${randomUUID()}`
      const id = yield* queued(email(subject))
      const waiting = yield* until(id, (status) => status.attempts >= 2 && status.status === "queued")
      expect(waiting.error).toContain("503")
      expect(traffic(fake, subject).delivered).toHaveLength(0)
      fake.recover()
      const sent = yield* until(id, (status) => status.status === "sent")
      const { delivered, requests } = traffic(fake, subject)
      expect(delivered).toHaveLength(1)
      expect(sent.messageId).toBe(delivered[0]?.messageId)
      // Every attempt reached SendGrid once; only the last was accepted.
      expect(requests).toHaveLength(sent.attempts)
      expect(sent.attempts).toBeGreaterThanOrEqual(3)
    }))
}

layer(withFakeSendGrid(), { excludeTestServices: true })("the server's emails (memory queue)", (it) => {
  backgroundSending(it)

  describe("what SendGrid refuses, or may have taken", () => {
    it.effect("a message SendGrid refuses (400) fails for good, with SendGrid's reason", () =>
      Effect.gen(function*() {
        const fake = yield* FakeSendGrid
        const subject = `duplicate ${randomUUID()}`
        const id = yield* queued({ ...email(subject), cc: [{ email: "ANN@example.com" }] })
        const failed = yield* until(id, (status) => status.status === "failed")
        expect(failed.attempts).toBe(1)
        expect(failed.error).toContain("should be unique between to, cc, and bcc")
        expect(traffic(fake, subject).requests).toHaveLength(1)
      }))

    it.effect("an answer lost after SendGrid took the message is not retried: never delivered twice", () =>
      Effect.gen(function*() {
        const fake = yield* FakeSendGrid
        fake.inject({ _tag: "DropAfterProcessing" })
        const subject = `lost ${randomUUID()}`
        const id = yield* queued(email(subject))
        const failed = yield* until(id, (status) => status.status === "unknown")
        expect(failed.error).toContain("the outcome is unknown")
        const { delivered, requests } = traffic(fake, subject)
        expect(delivered).toHaveLength(1)
        expect(requests).toHaveLength(1)
      }))
  })

  describe("POST /emails sends only from the configured senders", () => {
    it.effect("an address or a domain of EMAIL_SENDERS is accepted; any other sender is a 403, nothing queued", () =>
      Effect.gen(function*() {
        const fake = yield* FakeSendGrid
        expect((yield* queue(email("from the shop"))).status).toBe(202)
        const byDomain = yield* queue({ ...email("from the domain"), from: { email: "News@Allowed.Example" } })
        expect(byDomain.status).toBe(202)
        const before = fake.requests().length
        const spoofed = yield* queue({ ...email("spoofed"), from: { email: "ceo@bank.example" } })
        expect(spoofed.status).toBe(403)
        expect(spoofed.json).toMatchObject({ _tag: "SenderNotAllowed", error: "sender_not_allowed", field: "from" })
        const lookalike = yield* queue({ ...email("lookalike"), from: { email: "x@notallowed.example" } })
        expect(lookalike.status).toBe(403)
        expect(traffic(fake, "spoofed").requests).toHaveLength(0)
        expect(fake.requests().length).toBeGreaterThanOrEqual(before)
      }))
  })

  describe("POST /emails checks the message first", () => {
    it.effect("SendGrid's rules and limits are a 400 naming the field; nothing is queued", () =>
      Effect.gen(function*() {
        const fake = yield* FakeSendGrid
        const before = fake.requests().length
        const noBody = yield* queue({ ...email("x"), text: undefined, html: undefined })
        expect(noBody.status).toBe(400)
        expect(noBody.json).toMatchObject({ _tag: "InvalidEmail", error: "invalid_email", field: "text" })
        const later = new Date(Date.now() + 73 * 3_600_000).toISOString()
        const tooLate = yield* queue({ ...email("x"), send_at: later })
        expect(tooLate.json).toMatchObject({ _tag: "InvalidEmail", error: "over_limit", field: "send_at" })
        const many = Array.from({ length: 1001 }, (_, n) => ({ email: `user${n}@example.com` }))
        expect((yield* queue({ ...email("x"), to: many })).json).toMatchObject({ field: "recipients" })
        expect(blamedFields(yield* queue({ ...email("x"), from: { email: "nope" } }))).toEqual(["from"])
        const unknownField = yield* queue({ ...email("x"), template_id: "d-0123456789abcdef0123456789abcdef" })
        expect(unknownField.status).toBe(400)
        expect(JSON.stringify(unknownField.json)).toContain("template_id")
        expect(fake.requests().length).toBe(before)
      }))

    it.effect("GET /emails/{id}: an unknown id is a 404, a malformed one a 400", () =>
      Effect.gen(function*() {
        const unknown = yield* call(`/emails/email_${randomUUID()}`)
        expect(unknown.status).toBe(404)
        expect(unknown.json).toMatchObject({ _tag: "EmailNotFound" })
        expect((yield* call("/emails/whatever")).status).toBe(400)
      }))
  })
})

layer(withFakeSendGrid({ redisUrl: Redacted.make(redisUrl()) }), { excludeTestServices: true })(
  "the server's emails (Redis queue)",
  (it) => backgroundSending(it)
)
