import { afterAll, beforeAll, beforeEach, describe, expect, it } from "@effect/vitest"
import { Http, RateLimit } from "@liaison/core"
import type { SendGridSchema } from "@liaison/integrations"
import { SendGrid } from "@liaison/integrations"
import { SendGridSandbox } from "@liaison/server"
import { ConfigProvider, Effect, Exit, Layer, Redacted, TestClock } from "effect"
import { drive, driven, failure, farTimeouts, requestsSince } from "./support.js"

let fake: SendGridSandbox.FakeSendGrid
beforeAll(async () => {
  fake = await SendGridSandbox.start()
})
afterAll(() => fake.close())
beforeEach(() => fake.recover())

const client = (options: Partial<SendGrid.Options> = {}) =>
  SendGrid.layerStandalone({
    apiKey: Redacted.make(SendGridSandbox.sandboxApiKey),
    apiBase: fake.url,
    http: { timeouts: farTimeouts },
    ...options
  })

const withClient =
  (options: Partial<SendGrid.Options> = {}) => <A, E>(effect: Effect.Effect<A, E, SendGrid.SendGrid>) =>
    Effect.provide(effect, client(options))
const run = withClient()

const send = (message: SendGridSchema.Message) =>
  Effect.flatMap(SendGrid.SendGrid, (sendgrid) => sendgrid.send(message))

/** The requests the fake receives from now on. */
const since = () => requestsSince(fake)

const seen = () => fake.requests().length

const message: SendGridSchema.Message = {
  from: { email: "shop@example.com", name: "Shop" },
  to: [{ email: "ann@example.com", name: "Ann" }],
  subject: "Your order",
  text: "Thank you!",
  html: "<p>Thank you!</p>"
}

/** A moment well after 2001, so that `X-RateLimit-Reset` reads as a Unix time. */
const t0 = 1_800_000_000_000

describe("SendGrid send against the sandbox", () => {
  it.effect("202: the X-Message-Id; text/plain first, then text/html, as SendGrid requires", () =>
    Effect.gen(function*() {
      const wire = since()
      const accepted = yield* send({ ...message, categories: ["orders"], custom_args: { order: "6735" } })
      const delivered = fake.outbox().at(-1)
      expect(accepted).toEqual({ messageId: delivered?.messageId, sandbox: false })
      expect(accepted.messageId).toMatch(/^[A-Za-z0-9]{22}$/)
      const [request] = wire()
      expect(request).toMatchObject({ method: "POST", path: "/v3/mail/send" })
      expect(request?.headers).toMatchObject({
        authorization: `Bearer ${SendGridSandbox.sandboxApiKey}`,
        "content-type": "application/json"
      })
      expect(JSON.parse(request?.body ?? "")).toEqual({
        personalizations: [{ to: [{ email: "ann@example.com", name: "Ann" }] }],
        from: { email: "shop@example.com", name: "Shop" },
        subject: "Your order",
        content: [{ type: "text/plain", value: "Thank you!" }, { type: "text/html", value: "<p>Thank you!</p>" }],
        categories: ["orders"],
        custom_args: { order: "6735" }
      })
    }).pipe(run))

  it.effect("sandbox mode: 200, accepted, nothing sent", () =>
    Effect.gen(function*() {
      const before = fake.outbox().length
      const wire = since()
      const accepted = yield* send({ ...message, sandbox: true })
      expect(accepted).toEqual({ messageId: undefined, sandbox: true })
      expect(JSON.parse(wire()[0]?.body ?? "").mail_settings).toEqual({ sandbox_mode: { enable: true } })
      expect(fake.outbox()).toHaveLength(before)
    }).pipe(run))

  it.effect("personalizations, cc / bcc / reply_to, attachments in base64 and send_at as Unix seconds", () =>
    Effect.gen(function*() {
      const now = Date.now()
      yield* TestClock.setTime(now)
      const sendAt = new Date(now + 3_600_000)
      const accepted = yield* send({
        from: { email: "shop@example.com" },
        reply_to: { email: "help@example.com" },
        personalizations: [
          { to: [{ email: "a@example.com" }], cc: [{ email: "b@example.com" }], subject: "For A" },
          { to: [{ email: "c@example.com" }], bcc: [{ email: "d@example.com" }], subject: "For C", send_at: sendAt }
        ],
        html: "<img src=\"cid:logo\">",
        attachments: [
          { content: Buffer.from("%PDF-1.4").toString("base64"), filename: "invoice.pdf", type: "application/pdf" },
          { content: "iVBORw0KGgo=", filename: "logo.png", disposition: "inline", content_id: "logo" }
        ]
      })
      const payload = fake.outbox().find((delivered) => delivered.messageId === accepted.messageId)?.payload
      expect(payload?.personalizations).toEqual([
        { to: [{ email: "a@example.com" }], cc: [{ email: "b@example.com" }], subject: "For A" },
        {
          to: [{ email: "c@example.com" }],
          bcc: [{ email: "d@example.com" }],
          subject: "For C",
          send_at: Math.floor(sendAt.getTime() / 1000)
        }
      ])
      expect(payload?.content).toEqual([{ type: "text/html", value: "<img src=\"cid:logo\">" }])
      expect(payload?.reply_to).toEqual({ email: "help@example.com" })
    }).pipe(run))
})

describe("SendGrid checks before sending", () => {
  const refused = (input: unknown) =>
    Effect.gen(function*() {
      const wire = since()
      const error = yield* failure(send(input as SendGridSchema.Message))
      expect(wire()).toHaveLength(0)
      return error
    })

  it.effect("a message that does not validate names the field", () =>
    Effect.gen(function*() {
      expect(yield* refused({ ...message, to: [{ email: "not-an-address" }] })).toMatchObject({
        _tag: "SendGridInvalidMessage",
        field: "to.0.email",
        reason: "must be an email address"
      })
      expect(yield* refused({ ...message, text: undefined, html: undefined })).toMatchObject({
        _tag: "SendGridInvalidMessage",
        field: "text"
      })
      const categories = Array.from({ length: 11 }, (_, n) => `c${n}`)
      expect(yield* refused({ ...message, categories })).toMatchObject({ field: "categories" })
      expect(yield* refused({ ...message, categories: ["x".repeat(256)] })).toMatchObject({ field: "categories.0" })
      expect(yield* refused({ ...message, attachments: [{ content: "not base64!", filename: "a.txt" }] }))
        .toMatchObject({ field: "attachments.0.content" })
      expect(
        yield* refused({ ...message, attachments: [{ content: "AAAA", filename: "a.png", disposition: "inline" }] })
      ).toMatchObject({ field: "attachments.0.content_id" })
      expect(yield* refused({ ...message, subject: undefined })).toMatchObject({ field: "subject" })
      expect(yield* refused({ ...message, to: [{ email: "a@example.com", name: "Lee, Ann" }] }))
        .toMatchObject({ field: "to.0.name" })
    }).pipe(run))

  it.effect("SendGrid's limits: 1000 personalizations, 1000 recipients, 30 MiB, custom_args, send_at ≤ 72 h", () =>
    Effect.gen(function*() {
      const address = (n: number) => ({ email: `user${n}@example.com` })
      const personalizations = Array.from({ length: 1001 }, (_, n) => ({ to: [address(n)] }))
      expect(yield* refused({ ...message, to: undefined, personalizations })).toMatchObject({
        _tag: "SendGridLimitExceeded",
        limit: "personalizations",
        max: 1000,
        actual: 1001
      })
      const to = Array.from({ length: 600 }, (_, n) => address(n))
      const cc = Array.from({ length: 401 }, (_, n) => address(1000 + n))
      expect(yield* refused({ ...message, to, cc })).toMatchObject({ limit: "recipients", actual: 1001 })
      const huge = "A".repeat(31 * 1024 * 1024)
      const tooBig = yield* refused({ ...message, attachments: [{ content: huge, filename: "big.bin" }] })
      expect(tooBig).toMatchObject({ limit: "size", max: 30 * 1024 * 1024 })
      const args = Object.fromEntries(Array.from({ length: 1000 }, (_, n) => [`key${n}`, "value"]))
      expect(yield* refused({ ...message, custom_args: args })).toMatchObject({ limit: "custom_args" })
      // The sandbox checks send_at against the real time too: both clocks read now.
      const now = Date.now()
      yield* TestClock.setTime(now)
      const later = new Date(now + 72 * 3_600_000 + 1000)
      expect(yield* refused({ ...message, send_at: later })).toMatchObject({ limit: "send_at" })
      const accepted = yield* send({ ...message, send_at: new Date(now + 71 * 3_600_000), sandbox: true })
      expect(accepted.sandbox).toBe(true)
    }).pipe(run))
})

describe("SendGrid's answers", () => {
  it.effect("a 400 carries SendGrid's errors: message, field and help", () =>
    Effect.gen(function*() {
      const error = yield* failure(send({
        ...message,
        to: undefined,
        personalizations: [{ to: [{ email: "ann@example.com" }] }, { to: [{ email: "ANN@example.com" }] }]
      }))
      expect(error).toMatchObject({ _tag: "SendGridError", status: 400 })
      const [entry] = error._tag === "SendGridError" ? error.errors : []
      expect(entry?.field).toBe("personalizations.1.to")
      expect(entry?.message).toContain("should be unique between to, cc, and bcc")
      expect(entry?.help).toMatch(/^http:\/\/sendgrid\.com\/docs\//)
    }).pipe(run))

  it.effect("a key SendGrid does not take: 401", () =>
    Effect.gen(function*() {
      const error = yield* failure(send(message))
      expect(error).toMatchObject({
        _tag: "SendGridError",
        status: 401,
        errors: [{ message: "The provided authorization grant is invalid, expired, or revoked", field: null }]
      })
    }).pipe(withClient({ apiKey: Redacted.make("not-a-sendgrid-key") })))

  it.effect("429 waits until X-RateLimit-Reset, then sends", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      fake.inject(SendGridSandbox.faults.rateLimited(t0 / 1000 + 30))
      const { arrivals, exit } = yield* drive(send(message), seen)
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(arrivals).toEqual([t0, t0 + 30_000])
    }).pipe(run))

  it.effect("429 asking for longer than maxRateLimitWait fails at once with RetryAfterTooLong", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      fake.inject(SendGridSandbox.faults.rateLimited(t0 / 1000 + 3600))
      const wire = since()
      const error = yield* failure(send(message))
      expect(error).toMatchObject({ _tag: "RetryAfterTooLong", status: 429, retryAfterMillis: 3_600_000 })
      expect(wire()).toHaveLength(1)
    }).pipe(run))

  it.effect("429s until the retries are spent: SendGridError 429", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      fake.inject(...Array.from({ length: 3 }, () => SendGridSandbox.faults.rateLimited(t0 / 1000 + 1)))
      const error = yield* driven(failure(send(message)))
      expect(error).toMatchObject({ _tag: "SendGridError", status: 429, errors: [{ message: "too many requests" }] })
    }).pipe(withClient({ maxRetries: 2 })))

  it.effect("a 5xx is not retried: mail send has no idempotency key (the durable queue retries)", () =>
    Effect.gen(function*() {
      fake.inject(SendGridSandbox.faults.unavailable(503))
      const wire = since()
      const error = yield* failure(send(message))
      expect(error).toMatchObject({ _tag: "SendGridError", status: 503 })
      expect(wire()).toHaveLength(1)
    }).pipe(run))

  it.effect("a refused connection is retried (nothing can have been sent)", () =>
    Effect.gen(function*() {
      const error = yield* driven(failure(send(message)))
      expect(error).toMatchObject({ _tag: "TransportError", reason: "refused" })
    }).pipe(withClient({ apiBase: "http://127.0.0.1:1", maxRetries: 2 })))
})

describe("SendGrid rate limiting", () => {
  it.effect("every send takes a permit: 2 per second, bursts of 2", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      const five = Effect.forEach(Array.from({ length: 5 }), () => send({ ...message, sandbox: true }), {
        concurrency: "unbounded"
      })
      const { arrivals, exit } = yield* drive(five, seen)
      expect(Exit.isSuccess(exit)).toBe(true)
      // Permits at 0, 0 (the burst), 500, 1000 and 1500 ms: the last send cannot start before 1.5 s.
      // (With sends in flight while others wait, an arrival may be seen a little late, never early.)
      expect(arrivals).toHaveLength(5)
      expect((arrivals[4] as number) - t0).toBeGreaterThanOrEqual(1500)
      expect((arrivals[4] as number) - t0).toBeLessThan(1600)
    }).pipe(withClient({ rateLimit: RateLimit.tokenBucket({ limit: 2, interval: "1 second" }) })))

  it.effect("a RateLimiter in the context is the one used (shared, e.g. Redis-backed)", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      const limiter = yield* RateLimit.RateLimit
      yield* send({ ...message, sandbox: true })
      const snapshots = yield* limiter.snapshots
      expect(snapshots.map((snapshot) => snapshot.key)).toEqual(["sendgrid:test"])
    }).pipe(
      Effect.provide(client({ rateLimitKey: "sendgrid:test" }).pipe(Layer.provideMerge(RateLimit.layerMemory())))
    ))
})

describe("SendGrid layerConfig", () => {
  it.effect("reads SENDGRID_API_KEY and SENDGRID_API_BASE (the EU base URL is a constant)", () =>
    Effect.gen(function*() {
      expect(SendGrid.euApiBase).toBe("https://api.eu.sendgrid.com")
      const accepted = yield* send({ ...message, sandbox: true })
      expect(accepted.sandbox).toBe(true)
    }).pipe(
      Effect.provide(
        SendGrid.layerConfig().pipe(
          Layer.provide(Http.layer({ timeouts: farTimeouts })),
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
            new Map([["SENDGRID_API_KEY", SendGridSandbox.sandboxApiKey], ["SENDGRID_API_BASE", fake.url]])
          )))
        )
      )
    ))
})

describe("the SendGrid sandbox checks requests as SendGrid does", () => {
  const post = (body: string, headers: Record<string, string> = {}) =>
    Effect.promise(async () => {
      const response = await fetch(`${fake.url}/v3/mail/send`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${SendGridSandbox.sandboxApiKey}`,
          "content-type": "application/json",
          ...headers
        },
        body
      })
      const text = await response.text()
      return { status: response.status, body: text === "" ? undefined : JSON.parse(text) as unknown }
    })
  const payload = {
    personalizations: [{ to: [{ email: "ann@example.com" }] }],
    from: { email: "shop@example.com" },
    subject: "Hi",
    content: [{ type: "text/plain", value: "Hi" }]
  }
  const firstError = (answer: { readonly body: unknown }) =>
    (answer.body as { readonly errors: ReadonlyArray<{ readonly field: string | null; readonly message: string }> })
      .errors[0]

  it.effect("auth, content type, JSON, and the payload rules the client already keeps", () =>
    Effect.gen(function*() {
      expect(yield* post(JSON.stringify(payload))).toMatchObject({ status: 202 })
      expect(firstError(yield* post(JSON.stringify(payload), { authorization: "" }))).toMatchObject({
        message: "authorization required"
      })
      expect(yield* post(JSON.stringify(payload), { "content-type": "text/plain" })).toMatchObject({ status: 415 })
      expect(yield* post("{not json", {})).toMatchObject({ status: 400 })
      const html = { type: "text/html", value: "<p>Hi</p>" }
      const wrongOrder = yield* post(JSON.stringify({ ...payload, content: [html, payload.content[0]] }))
      expect(wrongOrder.status).toBe(400)
      expect(firstError(wrongOrder)).toMatchObject({ field: "content" })
      expect(firstError(yield* post(JSON.stringify({ ...payload, subject: undefined })))).toMatchObject({
        field: "subject"
      })
      const farAhead = Math.floor(Date.now() / 1000) + 73 * 3600
      expect(firstError(yield* post(JSON.stringify({ ...payload, send_at: farAhead })))).toMatchObject({
        field: "send_at"
      })
      expect(firstError(yield* post(JSON.stringify({ ...payload, headers: { "Reply-To": "x@example.com" } }))))
        .toMatchObject({ field: "headers" })
      expect(firstError(yield* post(JSON.stringify({ ...payload, personalizations: [] })))).toMatchObject({
        field: "personalizations",
        message: "You must have at least one personalization."
      })
    }))
})

describe("SendGrid templates and the other mail send fields", () => {
  const templateId = "d-0123456789abcdef0123456789abcdef"

  it.effect("a template-only message (no subject, no content) is sent: template_id and each envelope's data", () =>
    Effect.gen(function*() {
      const accepted = yield* send({
        from: { email: "shop@example.com" },
        template_id: templateId,
        personalizations: [
          { to: [{ email: "ann@example.com" }], dynamic_template_data: { name: "Ann", items: [{ sku: "A1" }] } },
          { to: [{ email: "bob@example.com" }], dynamic_template_data: { name: "Bob" } }
        ],
        asm: { group_id: 42, groups_to_display: [42, 43] },
        ip_pool_name: "transactional",
        tracking_settings: { open_tracking: { enable: true } }
      })
      const payload = fake.outbox().find((delivered) => delivered.messageId === accepted.messageId)?.payload
      expect(payload).toEqual({
        personalizations: [
          { to: [{ email: "ann@example.com" }], dynamic_template_data: { name: "Ann", items: [{ sku: "A1" }] } },
          { to: [{ email: "bob@example.com" }], dynamic_template_data: { name: "Bob" } }
        ],
        from: { email: "shop@example.com" },
        template_id: templateId,
        asm: { group_id: 42, groups_to_display: [42, 43] },
        ip_pool_name: "transactional",
        tracking_settings: { open_tracking: { enable: true } }
      })
    }).pipe(run))

  it.effect("sandbox: true joins the caller's mail_settings", () =>
    Effect.gen(function*() {
      const wire = since()
      const accepted = yield* send({ ...message, sandbox: true, mail_settings: { footer: { enable: false } } })
      expect(accepted.sandbox).toBe(true)
      expect(JSON.parse(wire()[0]?.body ?? "").mail_settings).toEqual({
        footer: { enable: false },
        sandbox_mode: { enable: true }
      })
    }).pipe(run))
})

describe("SendGrid drops nothing silently: an unknown field is an error naming it", () => {
  const refusedWith = (input: unknown) =>
    Effect.gen(function*() {
      const wire = since()
      const error = yield* failure(send(input as SendGridSchema.Message))
      expect(wire()).toHaveLength(0)
      expect(error._tag).toBe("SendGridInvalidMessage")
      return error
    })

  it.effect("unknown fields, at the top and nested, are refused before sending", () =>
    Effect.gen(function*() {
      const camel = yield* refusedWith({ ...message, templateId: "d-0123456789abcdef0123456789abcdef" })
      expect(camel).toMatchObject({ field: "templateId" })
      expect(camel.message).toContain("templateId is not a field of a SendGrid message")
      expect(yield* refusedWith({ ...message, asm: { group_id: 1, groupsToDisplay: [1] } })).toMatchObject({
        field: "asm.groupsToDisplay"
      })
      expect(
        yield* refusedWith({
          ...message,
          to: undefined,
          personalizations: [{ to: [{ email: "ann@example.com" }], dynamicTemplateData: { name: "Ann" } }]
        })
      ).toMatchObject({ field: "personalizations.0.dynamicTemplateData" })
      expect(yield* refusedWith({ ...message, mail_settings: { spam_check: { enable: true } } })).toMatchObject({
        field: "mail_settings.spam_check"
      })
      expect(yield* refusedWith({ ...message, from: { email: "shop@example.com", nmae: "Shop" } })).toMatchObject({
        field: "from.nmae"
      })
    }).pipe(run))

  it.effect("dynamic_template_data without a dynamic template, and the other field rules", () =>
    Effect.gen(function*() {
      const withoutTemplate = yield* refusedWith({ ...message, dynamic_template_data: { name: "Ann" } })
      expect(withoutTemplate).toMatchObject({ field: "dynamic_template_data" })
      expect(withoutTemplate.message).toContain("dynamic template_id")
      const legacy = "0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
      expect(
        yield* refusedWith({
          from: message.from,
          template_id: legacy,
          personalizations: [{ to: [{ email: "ann@example.com" }], dynamic_template_data: { a: 1 } }]
        })
      ).toMatchObject({ field: "personalizations.0.dynamic_template_data" })
      expect(
        yield* refusedWith({
          from: message.from,
          template_id: "d-0123456789abcdef0123456789abcdef",
          dynamic_template_data: { a: 1 },
          personalizations: [{ to: [{ email: "ann@example.com" }] }]
        })
      ).toMatchObject({ field: "dynamic_template_data" })
      expect(yield* refusedWith({ ...message, template_id: "welcome" })).toMatchObject({ field: "template_id" })
      expect(yield* refusedWith({ ...message, asm: { group_id: 0 } })).toMatchObject({ field: "asm.group_id" })
      expect(yield* refusedWith({ ...message, ip_pool_name: "x" })).toMatchObject({ field: "ip_pool_name" })
      expect(yield* refusedWith({ ...message, batch_id: "not a batch" })).toMatchObject({ field: "batch_id" })
      expect(
        yield* refusedWith({
          ...message,
          mail_settings: { bypass_list_management: { enable: true }, bypass_spam_management: { enable: true } }
        })
      ).toMatchObject({ field: "mail_settings.bypass_list_management" })
      expect(yield* refusedWith({ ...message, sandbox: true, mail_settings: { sandbox_mode: { enable: false } } }))
        .toMatchObject({ field: "sandbox" })
      expect(yield* refusedWith({ ...message, text: undefined, html: undefined, subject: undefined })).toMatchObject({
        field: "text"
      })
    }).pipe(run))
})

describe("SendGrid batches: scheduled sends paused, cancelled and resumed together", () => {
  it.effect("create a batch id, schedule with it, cancel, resume, pause", () =>
    Effect.gen(function*() {
      const sendgrid = yield* SendGrid.SendGrid
      const wire = since()
      const batchId = yield* sendgrid.batches.create
      expect(fake.batches().get(batchId)).toBe("scheduled")
      const now = Date.now()
      yield* TestClock.setTime(now)
      const accepted = yield* sendgrid.send({ ...message, batch_id: batchId, send_at: new Date(now + 3_600_000) })
      const payload = fake.outbox().find((delivered) => delivered.messageId === accepted.messageId)?.payload
      expect(payload).toMatchObject({ batch_id: batchId, send_at: Math.floor((now + 3_600_000) / 1000) })
      yield* sendgrid.batches.cancel(batchId)
      expect(fake.batches().get(batchId)).toBe("cancel")
      yield* sendgrid.batches.resume(batchId)
      expect(fake.batches().get(batchId)).toBe("scheduled")
      yield* sendgrid.batches.pause(batchId)
      expect(fake.batches().get(batchId)).toBe("pause")
      const requests = wire().map((request) => ({ method: request.method, path: request.path, body: request.body }))
      expect(requests.filter((request) => request.path !== "/v3/mail/send")).toEqual([
        { method: "POST", path: "/v3/mail/batch", body: "" },
        {
          method: "POST",
          path: "/v3/user/scheduled_sends",
          body: JSON.stringify({ batch_id: batchId, status: "cancel" })
        },
        { method: "DELETE", path: `/v3/user/scheduled_sends/${batchId}`, body: "" },
        {
          method: "POST",
          path: "/v3/user/scheduled_sends",
          body: JSON.stringify({ batch_id: batchId, status: "pause" })
        }
      ])
    }).pipe(run))

  it.effect("an unknown batch id is SendGrid's 400; a malformed one is refused before sending", () =>
    Effect.gen(function*() {
      const sendgrid = yield* SendGrid.SendGrid
      const unknown = yield* failure(sendgrid.batches.cancel("NoSuchBatch"))
      expect(unknown).toMatchObject({ _tag: "SendGridError", status: 400, errors: [{ field: "batch_id" }] })
      const wire = since()
      expect(yield* failure(sendgrid.batches.pause("two words"))).toMatchObject({
        _tag: "SendGridInvalidMessage",
        field: "batch_id"
      })
      expect(wire()).toHaveLength(0)
    }).pipe(run))
})
