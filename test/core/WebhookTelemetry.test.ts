import { describe, expect, it } from "@effect/vitest"
import { DurableQueue, WebhookInbox, Webhooks } from "@liaison/core"
import { Effect, Option, Redacted, Schema } from "effect"
import { randomUUID } from "node:crypto"
import { drive } from "../fixtures/drive.js"
import { metricValue } from "../fixtures/metricValues.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"

const utf8 = (text: string) => new TextEncoder().encode(text)

const received = (source: string) =>
  Effect.all(
    Object.fromEntries(
      (["verified", "rejected", "duplicate", "processed", "failed"] as const).map((outcome) => [
        outcome,
        metricValue("liaison_webhooks_received_total", { source, outcome })
      ])
    )
  )

describe("Webhooks telemetry", () => {
  it.scoped("verified, rejected, duplicate, processed and failed are counted by source; spans carry no secret", () => {
    const { spans, text, tracer } = recordingTracer()
    // The source's name is the label: one of its own for this test.
    const name = `src-${randomUUID().slice(0, 8)}`
    const secret = Redacted.make("whsec-telemetry-test-secret")
    return Effect.gen(function*() {
      const source = yield* Webhooks.generic({ secret, name })
      const inbox = yield* WebhookInbox.make({ name: `inbox-${randomUUID()}`, retryDelays: ["1 second"] })
      const request = (body: string, signature = Webhooks.signHex(secret, utf8(body))) => ({
        headers: { "x-webhook-signature": signature },
        body: utf8(body)
      })
      const good = JSON.stringify({ id: "evt_ok", type: "paid" })
      const events = yield* Webhooks.receive(source, request(good)).pipe(Effect.withSpan("request"))
      yield* Effect.flip(Webhooks.receive(source, request(good, "00".repeat(32))))
      yield* Effect.flip(Webhooks.receive(source, request(good), { maxBytes: 4 }))
      yield* inbox.record(name, events)
      yield* inbox.record(name, events).pipe(Effect.withSpan("again"))
      yield* inbox.record(name, [{ id: "evt_bad", type: "refunded", payload: {} }])
      yield* inbox.run([
        WebhookInbox.on("paid", Schema.Unknown, () => Effect.void),
        WebhookInbox.on("refunded", Schema.Unknown, () => Effect.fail("the ledger is down"))
      ])
      const stateIs = (id: string, state: WebhookInbox.State) =>
        Effect.map(inbox.status(name, id), (status) => Option.getOrUndefined(status)?.state === state)
      yield* drive(Effect.zipWith(stateIs("evt_ok", "processed"), stateIs("evt_bad", "failed"), (a, b) => a && b))
      expect(yield* received(name)).toEqual({ verified: 1, rejected: 2, duplicate: 1, processed: 1, failed: 1 })

      const verify = spans.filter((span) => span.name === "liaison.webhook.verify")
      expect(verify.map((span) => span.attributes.get("liaison.webhook.outcome"))).toEqual([
        "verified",
        "rejected",
        "rejected"
      ])
      expect(verify.map((span) => span.attributes.get("error.type"))).toEqual([
        undefined,
        "InvalidSignature",
        "PayloadTooLarge"
      ])
      expect(verify.every((span) => span.attributes.get("liaison.webhook.source") === name)).toBe(true)
      expect(spans.find((span) => span.name === "again")?.events).toEqual([{
        name: "liaison.webhook.verify",
        attributes: {
          "liaison.webhook.source": name,
          "liaison.webhook.outcome": "duplicate",
          "liaison.webhook.duplicates": 1
        }
      }])
      const handled = spans.filter((span) => span.name === "liaison.webhook.handle")
        .map((span) => [span.attributes.get("liaison.webhook.type"), span.attributes.get("liaison.webhook.outcome")])
      expect(handled).toContainEqual(["paid", "processed"])
      expect(handled).toContainEqual(["refunded", "retried"])
      expect(handled).toContainEqual(["refunded", "failed"])
      const shown = text()
      expect(shown).not.toContain(Redacted.value(secret))
      expect(shown).not.toContain(Webhooks.signHex(secret, utf8(good)))
      expect(shown).not.toContain("evt_ok")
    }).pipe(Effect.provide(DurableQueue.layerStoreMemory), Effect.withTracer(tracer))
  })
})
