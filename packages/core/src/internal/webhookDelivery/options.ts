import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { InvalidOptions } from "../../LiaisonError.js"
import type * as WebhookDelivery from "../../WebhookDelivery.js"
import { millis } from "../duration.js"
import * as Invalid from "../invalidOptions.js"
import type * as Ssrf from "../ssrf.js"

/**
 * The options with every default filled in.
 *
 * @internal
 */
export interface Settings {
  readonly name: string
  /** The delays between attempts, in order. */
  readonly schedule: ReadonlyArray<Duration.Duration>
  readonly jitter: { readonly min: number; readonly max: number }
  readonly maxRetryAfterMillis: number
  /** Each attempt's time limit. */
  readonly timeout: Duration.Duration
  readonly policy: Ssrf.Policy
  readonly retention: Duration.Duration
  readonly pollInterval: Duration.Duration
  /** Workers `run` starts unless told otherwise. */
  readonly concurrency: number
}

/**
 * Fills in `defaults` and checks the numbers; the face passes its `defaults` in (this module
 * must not read the face's values: the face imports it).
 *
 * @internal
 */
export const resolve = (
  options: WebhookDelivery.Options,
  defaults: WebhookDelivery.Defaults
): Effect.Effect<Settings, InvalidOptions> => {
  const settings: Settings = {
    name: options.name ?? defaults.name,
    schedule: (options.schedule ?? defaults.schedule).map((delay) => Duration.decode(delay)),
    jitter: options.jitter ?? defaults.jitter,
    maxRetryAfterMillis: millis(options.maxRetryAfter ?? defaults.maxRetryAfter),
    timeout: Duration.decode(options.requestTimeout ?? defaults.requestTimeout),
    policy: {
      loopback: options.allow?.loopback ?? false,
      private: options.allow?.privateNetworks ?? false,
      linkLocal: options.allow?.linkLocal ?? false
    },
    retention: Duration.decode(options.retention ?? defaults.retention),
    pollInterval: Duration.decode(options.pollInterval ?? defaults.pollInterval),
    concurrency: defaults.concurrency
  }
  const { jitter, maxRetryAfterMillis, timeout } = settings
  const invalid = Invalid.check([
    [settings.schedule.every(Duration.isFinite), "schedule", "delays must be finite"],
    [jitter.min > 0 && jitter.max >= jitter.min, "jitter", "needs 0 < min <= max"],
    [Number.isFinite(maxRetryAfterMillis) && maxRetryAfterMillis >= 0, "maxRetryAfter", "must be finite"],
    [Duration.toMillis(timeout) > 0 && Duration.isFinite(timeout), "requestTimeout", "must be finite and > 0"]
  ])
  return invalid === undefined ? Effect.succeed(settings) : Effect.fail(invalid)
}
