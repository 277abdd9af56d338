/**
 * A local fake SendGrid mail send (`POST /v3/mail/send`, and the batch ids of the Cancel Scheduled
 * Sends API), for tests and for the demo server when no `SENDGRID_API_KEY` is configured. It checks requests as https://api.sendgrid.com does
 * (bearer key format, content type, size, SendGrid's payload rules with its error messages and
 * fields) and answers 202 with an `X-Message-Id` (the message lands in `outbox()`), 200 in
 * sandbox mode (nothing sent), or `{ errors: [{ message, field, help }] }`.
 *
 * Faults for tests (429 with `X-RateLimit-Reset`, 5xx, dropped connections) are injected with
 * `inject(...)` (once each) or `outage(...)` (until `recover()`); `requests()` is the wire log.
 *
 * Built like every sandbox: one pure transition per request (`internal/sendGrid.ts`) served by
 * `@effect/platform-node` for the life of a scope (`internal/serve.ts`).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { serveSendGrid } from "./internal/sendGrid.js"
import type { FakeControls, Fault } from "./internal/serve.js"
import { start as startServed } from "./internal/serve.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface FakeSendGridOptions {
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** Accept only this key. Default: any well-formed `SG.…` key. */
  readonly apiKey?: string | undefined
  /** The time, for `send_at`. Default `Date.now`. */
  readonly now?: (() => number) | undefined
}

/**
 * A message SendGrid accepted for delivery.
 *
 * @since 0.1.0
 * @category models
 */
export interface Delivered {
  readonly messageId: string
  /** The JSON payload as sent. */
  readonly payload: Record<string, unknown>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FakeSendGrid extends FakeControls {
  /** Messages accepted with 202, oldest first (sandbox-mode ones are not: nothing was sent). */
  readonly outbox: () => ReadonlyArray<Delivered>
  /**
   * The batch ids created with `POST /v3/mail/batch`, each with its scheduled-send status:
   * `scheduled` (none set, or resumed), `pause` or `cancel`.
   */
  readonly batches: () => ReadonlyMap<string, "scheduled" | "pause" | "cancel">
}

/**
 * @since 0.1.0
 * @category models
 */
export type { Fault, RecordedRequest } from "./internal/serve.js"

/**
 * A well-formed API key the sandbox accepts.
 *
 * @since 0.1.0
 * @category constants
 */
export { sandboxApiKey } from "./secrets.js"

/**
 * Faults with SendGrid's own bodies: `rateLimited(resetEpochSeconds)`, `unavailable(status)`.
 *
 * @since 0.1.0
 * @category constants
 */
export const faults = {
  /** 429 with `X-RateLimit-Reset` (Unix seconds). */
  rateLimited: (resetEpochSeconds: number, limit = 600): Fault => ({
    _tag: "Respond",
    status: 429,
    body: { errors: [{ field: null, message: "too many requests" }] },
    headers: {
      "x-ratelimit-limit": String(limit),
      "x-ratelimit-remaining": "0",
      "x-ratelimit-reset": String(resetEpochSeconds)
    }
  }),
  /** A SendGrid-side failure (500 or 503). */
  unavailable: (status: 500 | 503 = 503): Fault => ({
    _tag: "Respond",
    status,
    body: { errors: [{ field: null, message: status === 500 ? "internal server error" : "service unavailable" }] }
  })
} as const

/**
 * Starts the sandbox (a free port of `127.0.0.1` by default); `close()` stops it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (options: FakeSendGridOptions = {}): Promise<FakeSendGrid> => {
  const { state, ...controls } = await startServed(serveSendGrid(options))
  return { ...controls, outbox: () => state().outbox, batches: () => state().batches }
}

/**
 * The sandbox for the life of the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: FakeSendGridOptions = {}): Effect.Effect<FakeSendGrid, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => start(options)), (fake) => Effect.promise(() => fake.close()))
