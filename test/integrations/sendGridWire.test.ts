/**
 * Liaison's SendGrid client against `@sendgrid/mail` (SendGrid's own Node library) on the wire:
 * the same message sent through both to one local capture server must give the same JSON body
 * (deep equality: key order aside) and the same method, path, `Authorization`, `Content-Type` and
 * `Accept`. `@sendgrid/mail` is written the way its users write it (camelCase options); Liaison
 * takes SendGrid's own field names.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { SendGridSchema } from "@liaison/integrations"
import { SendGrid } from "@liaison/integrations"
import { SendGridSandbox } from "@liaison/server"
import { Client } from "@sendgrid/client"
import type { MailDataRequired } from "@sendgrid/mail"
import { MailService } from "@sendgrid/mail"
import { Effect, Redacted, TestClock } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { farTimeouts } from "./support.js"

type SendGridAttachment = NonNullable<MailDataRequired["attachments"]>[number]

interface Captured {
  readonly method: string
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: unknown
}

/** A local server that records every request and answers as SendGrid does to a send: 202. */
const captureServer = async () => {
  const captured: Array<Captured> = []
  const server = http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8")
      captured.push({
        method: request.method ?? "",
        path: (request.url ?? "").split("?", 1)[0] ?? "",
        headers: request.headers,
        body: text === "" ? undefined : JSON.parse(text)
      })
      response.writeHead(202, { "x-message-id": `capture${captured.length}` })
      response.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    captured,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => error ? reject(error) : resolve()))
  }
}

let capture: Awaited<ReturnType<typeof captureServer>>
let sendgridMail: MailService
/** Every compared body is also posted to the fake SendGrid, which must take it as SendGrid would. */
let fake: SendGridSandbox.FakeSendGrid
beforeAll(async () => {
  capture = await captureServer()
  fake = await SendGridSandbox.start()
  const client = new Client()
  client.setApiKey(SendGridSandbox.sandboxApiKey)
  // After setApiKey, which resets the base URL to SendGrid's.
  client.setDefaultRequest("baseUrl", `${capture.url}/`)
  sendgridMail = new MailService()
  sendgridMail.setClient(client)
})
afterAll(() => Promise.all([capture.close(), fake.close()]))

/** The fake SendGrid's answer to a body. */
const fakeAnswer = (body: unknown) =>
  Effect.promise(() =>
    fetch(`${fake.url}/v3/mail/send`, {
      method: "POST",
      headers: { authorization: `Bearer ${SendGridSandbox.sandboxApiKey}`, "content-type": "application/json" },
      body: JSON.stringify(body)
    }).then(async (response) => ({ status: response.status, body: await response.text() }))
  )

/** Sends `ours` through Liaison and `theirs` through `@sendgrid/mail`; the two requests. */
const sendBoth = (ours: SendGridSchema.Message, theirs: MailDataRequired) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(Date.now())
    const start = capture.captured.length
    const accepted = yield* Effect.flatMap(SendGrid.SendGrid, (sendgrid) => sendgrid.send(ours)).pipe(
      Effect.provide(SendGrid.layerStandalone({
        apiKey: Redacted.make(SendGridSandbox.sandboxApiKey),
        apiBase: capture.url,
        http: { timeouts: farTimeouts }
      }))
    )
    expect(accepted.sandbox).toBe(false)
    const [response] = yield* Effect.promise(() => sendgridMail.send(theirs))
    expect(response.statusCode).toBe(202)
    const [mine, reference] = capture.captured.slice(start)
    if (mine === undefined || reference === undefined) return yield* Effect.dieMessage("a request is missing")
    return { mine, reference }
  })

const headersCompared = ["authorization", "content-type", "accept"] as const

/**
 * Same method, path, compared headers and JSON body, and a body the fake SendGrid accepts (202,
 * or 200 in sandbox mode); returns the body for further checks.
 */
const sameOnTheWire = (ours: SendGridSchema.Message, theirs: MailDataRequired) =>
  Effect.gen(function*() {
    const { mine, reference } = yield* sendBoth(ours, theirs)
    expect({ method: mine.method, path: mine.path }).toEqual({ method: reference.method, path: reference.path })
    expect(mine.path).toBe("/v3/mail/send")
    for (const name of headersCompared) {
      expect({ [name]: mine.headers[name] }).toEqual({ [name]: reference.headers[name] })
    }
    expect(mine.headers.authorization).toBe(`Bearer ${SendGridSandbox.sandboxApiKey}`)
    expect(mine.body).toEqual(reference.body)
    const answer = yield* fakeAnswer(mine.body)
    expect([200, 202].includes(answer.status) ? "accepted" : answer.body).toBe("accepted")
    return mine.body as Record<string, unknown>
  })

const shop = { email: "shop@example.com", name: "Shop" }
const ann = { email: "ann@example.com", name: "Ann" }
const bob = { email: "bob@example.com" }
const templateId = "d-0123456789abcdef0123456789abcdef"
/** Two pixels' worth of PNG and a PDF header, in base64. */
const png = "iVBORw0KGgo="
const pdf = Buffer.from("%PDF-1.4").toString("base64")

describe("SendGrid on the wire: Liaison's body equals @sendgrid/mail's", () => {
  it.effect("plain text + html, cc, bcc, reply_to", () =>
    Effect.gen(function*() {
      const body = yield* sameOnTheWire(
        {
          from: shop,
          to: [ann],
          cc: [{ email: "carol@example.com" }],
          bcc: [bob],
          reply_to: { email: "help@example.com" },
          subject: "Your order",
          text: "Thank you!",
          html: "<p>Thank you!</p>"
        },
        {
          from: shop,
          to: ann,
          cc: { email: "carol@example.com" },
          bcc: bob,
          replyTo: { email: "help@example.com" },
          subject: "Your order",
          text: "Thank you!",
          html: "<p>Thank you!</p>"
        }
      )
      expect(body.content).toEqual([
        { type: "text/plain", value: "Thank you!" },
        { type: "text/html", value: "<p>Thank you!</p>" }
      ])
    }))

  it.effect("a dynamic template with dynamic_template_data per personalization (and a subject, headers)", () =>
    Effect.gen(function*() {
      const annData = { name: "Ann", items: [{ sku: "A1", qty: 2 }], total: { amount: 2000, currency: "usd" } }
      const body = yield* sameOnTheWire(
        {
          from: shop,
          template_id: templateId,
          personalizations: [
            { to: [ann], dynamic_template_data: annData },
            {
              to: [bob],
              subject: "For Bob",
              headers: { "X-Campaign": "welcome" },
              dynamic_template_data: { name: "Bob", vip: true }
            }
          ]
        },
        {
          from: shop,
          templateId,
          personalizations: [
            { to: ann, dynamicTemplateData: annData },
            {
              to: bob,
              subject: "For Bob",
              headers: { "X-Campaign": "welcome" },
              dynamicTemplateData: { name: "Bob", vip: true }
            }
          ]
        }
      )
      expect(body.template_id).toBe(templateId)
      expect(body).not.toHaveProperty("content")
      expect(body).not.toHaveProperty("subject")
      expect((body.personalizations as ReadonlyArray<unknown>)[0]).toMatchObject({ dynamic_template_data: annData })
    }))

  it.effect("template-only, no data: neither subject nor content", () =>
    Effect.gen(function*() {
      const body = yield* sameOnTheWire(
        { from: shop, to: [ann], template_id: templateId },
        { from: shop, to: ann, templateId }
      )
      expect(Object.keys(body).sort()).toEqual(["from", "personalizations", "template_id"])
    }))

  it.effect("template-only with the message's dynamic_template_data (one envelope)", () =>
    Effect.gen(function*() {
      const body = yield* sameOnTheWire(
        { from: shop, to: [ann, bob], template_id: templateId, dynamic_template_data: { name: "friends" } },
        { from: shop, to: [ann, bob], templateId, dynamicTemplateData: { name: "friends" } }
      )
      expect(body.personalizations).toEqual([{ to: [ann, bob], dynamic_template_data: { name: "friends" } }])
    }))

  it.effect("attachments: a file and an inline image", () =>
    sameOnTheWire(
      {
        from: shop,
        to: [ann],
        subject: "Invoice",
        html: "<img src=\"cid:logo\">",
        attachments: [
          { content: pdf, filename: "invoice.pdf", type: "application/pdf", disposition: "attachment" },
          { content: png, filename: "logo.png", type: "image/png", disposition: "inline", content_id: "logo" }
        ]
      },
      {
        from: shop,
        to: ann,
        subject: "Invoice",
        html: "<img src=\"cid:logo\">",
        attachments: [
          { content: pdf, filename: "invoice.pdf", type: "application/pdf", disposition: "attachment" },
          // Plain objects go out as written (@sendgrid/mail converts no key inside an array):
          // SendGrid's own `content_id`, as in @sendgrid/mail's examples (its typed `contentId`
          // would reach SendGrid as `contentId` and be ignored).
          {
            content: png,
            filename: "logo.png",
            type: "image/png",
            disposition: "inline",
            content_id: "logo"
          } as SendGridAttachment
        ]
      }
    ))

  it.effect("categories, custom_args (message and personalization) and headers", () =>
    sameOnTheWire(
      {
        from: shop,
        personalizations: [{ to: [ann], custom_args: { customer: "c_1" } }],
        subject: "Your order",
        text: "Thank you!",
        categories: ["orders", "receipts"],
        custom_args: { order: "6735" },
        headers: { "X-Order": "6735" }
      },
      {
        from: shop,
        personalizations: [{ to: ann, customArgs: { customer: "c_1" } }],
        subject: "Your order",
        text: "Thank you!",
        categories: ["orders", "receipts"],
        customArgs: { order: "6735" },
        headers: { "X-Order": "6735" }
      }
    ))

  it.effect("asm: an unsubscribe group and the groups to display", () =>
    Effect.gen(function*() {
      const body = yield* sameOnTheWire(
        { from: shop, to: [ann], template_id: templateId, asm: { group_id: 42, groups_to_display: [42, 43] } },
        { from: shop, to: ann, templateId, asm: { groupId: 42, groupsToDisplay: [42, 43] } }
      )
      expect(body.asm).toEqual({ group_id: 42, groups_to_display: [42, 43] })
    }))

  it.effect("batch_id and send_at (message and personalization)", () =>
    Effect.gen(function*() {
      const sendAt = Math.floor(Date.now() / 1000) + 3600
      const body = yield* sameOnTheWire(
        {
          from: shop,
          personalizations: [{ to: [ann] }, { to: [bob], send_at: new Date((sendAt + 60) * 1000) }],
          subject: "Later",
          text: "Scheduled",
          batch_id: "HkJ5yLYULb7Rj8GKSx7u025ouWVlMgAi",
          send_at: new Date(sendAt * 1000)
        },
        {
          from: shop,
          personalizations: [{ to: ann }, { to: bob, sendAt: sendAt + 60 }],
          subject: "Later",
          text: "Scheduled",
          batchId: "HkJ5yLYULb7Rj8GKSx7u025ouWVlMgAi",
          sendAt
        }
      )
      expect(body).toMatchObject({ batch_id: "HkJ5yLYULb7Rj8GKSx7u025ouWVlMgAi", send_at: sendAt })
    }))

  it.effect("ip_pool_name", () =>
    sameOnTheWire(
      { from: shop, to: [ann], subject: "Hi", text: "Hi", ip_pool_name: "transactional" },
      { from: shop, to: ann, subject: "Hi", text: "Hi", ipPoolName: "transactional" }
    ))

  it.effect("mail_settings: the three bypasses and a footer", () =>
    Effect.gen(function*() {
      const body = yield* sameOnTheWire(
        {
          from: shop,
          to: [ann],
          subject: "Hi",
          text: "Hi",
          mail_settings: {
            bypass_spam_management: { enable: true },
            bypass_bounce_management: { enable: false },
            bypass_unsubscribe_management: { enable: true },
            footer: { enable: true, text: "Shop Inc.", html: "<p>Shop Inc.</p>" }
          }
        },
        {
          from: shop,
          to: ann,
          subject: "Hi",
          text: "Hi",
          mailSettings: {
            bypassSpamManagement: { enable: true },
            bypassBounceManagement: { enable: false },
            bypassUnsubscribeManagement: { enable: true },
            footer: { enable: true, text: "Shop Inc.", html: "<p>Shop Inc.</p>" }
          }
        }
      )
      expect(body.mail_settings).toHaveProperty("bypass_unsubscribe_management", { enable: true })
    }))

  it.effect("mail_settings: bypass_list_management, and sandbox: true as sandbox_mode", () =>
    sameOnTheWire(
      {
        from: shop,
        to: [ann],
        subject: "Hi",
        text: "Hi",
        sandbox: true,
        mail_settings: { bypass_list_management: { enable: true } }
      },
      {
        from: shop,
        to: ann,
        subject: "Hi",
        text: "Hi",
        mailSettings: { bypassListManagement: { enable: true }, sandboxMode: { enable: true } }
      }
    ))

  it.effect("tracking_settings: click, open, subscription tracking and Google Analytics", () =>
    Effect.gen(function*() {
      const body = yield* sameOnTheWire(
        {
          from: shop,
          to: [ann],
          subject: "Hi",
          html: "<p>Hi</p>",
          tracking_settings: {
            click_tracking: { enable: true, enable_text: false },
            open_tracking: { enable: true, substitution_tag: "%open%" },
            subscription_tracking: {
              enable: true,
              text: "Unsubscribe: <%asm_group_unsubscribe_raw_url%>",
              html: "<a href=\"<%asm_group_unsubscribe_raw_url%>\">Unsubscribe</a>",
              substitution_tag: "%unsubscribe%"
            },
            ganalytics: {
              enable: true,
              utm_source: "liaison",
              utm_medium: "email",
              utm_term: "shoes",
              utm_content: "banner",
              utm_campaign: "welcome"
            }
          }
        },
        {
          from: shop,
          to: ann,
          subject: "Hi",
          html: "<p>Hi</p>",
          trackingSettings: {
            clickTracking: { enable: true, enableText: false },
            openTracking: { enable: true, substitutionTag: "%open%" },
            subscriptionTracking: {
              enable: true,
              text: "Unsubscribe: <%asm_group_unsubscribe_raw_url%>",
              html: "<a href=\"<%asm_group_unsubscribe_raw_url%>\">Unsubscribe</a>",
              substitutionTag: "%unsubscribe%"
            },
            ganalytics: {
              enable: true,
              utmSource: "liaison",
              utmMedium: "email",
              utmTerm: "shoes",
              utmContent: "banner",
              utmCampaign: "welcome"
            }
          }
        }
      )
      expect(body.tracking_settings).toHaveProperty("ganalytics.utm_campaign", "welcome")
    }))
})
