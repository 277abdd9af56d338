/**
 * A local fake SendGrid mail send (`POST /v3/mail/send`), for tests and for the demo server when
 * no `SENDGRID_API_KEY` is configured. It checks requests as https://api.sendgrid.com does
 * (bearer key format, content type, size, SendGrid's payload rules with its error messages and
 * fields) and answers 202 with an `X-Message-Id` (the message lands in `outbox()`), 200 in
 * sandbox mode (nothing sent), or `{ errors: [{ message, field, help }] }`.
 *
 * Faults for tests (429 with `X-RateLimit-Reset`, 5xx, dropped connections) are injected with
 * `inject(...)` (once each) or `outage(...)` (until `recover()`); `requests()` is the wire log.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { FakeSendGrid, FakeSendGridOptions } from "./internal/fakeSendGrid.js"
import { startFakeSendGrid } from "./internal/fakeSendGrid.js"

/**
 * @since 0.1.0
 * @category models
 */
export type { Delivered, FakeSendGrid, FakeSendGridOptions } from "./internal/fakeSendGrid.js"

/**
 * @since 0.1.0
 * @category models
 */
export type { Fault, RecordedRequest } from "./internal/fakeHttp.js"

/**
 * Faults with SendGrid's own bodies: `rateLimited(resetEpochSeconds)`, `unavailable(status)`.
 *
 * @since 0.1.0
 * @category faults
 */
export { faults } from "./internal/fakeSendGrid.js"

/**
 * A well-formed API key the sandbox accepts.
 *
 * @since 0.1.0
 * @category constants
 */
export { sandboxApiKey } from "./internal/fakeSendGrid.js"

/**
 * Starts the sandbox (a free port of `127.0.0.1` by default); `close()` stops it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start: (options?: FakeSendGridOptions) => Promise<FakeSendGrid> = startFakeSendGrid

/**
 * The sandbox for the life of the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: FakeSendGridOptions = {}): Effect.Effect<FakeSendGrid, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => start(options)), (fake) => Effect.promise(() => fake.close()))
