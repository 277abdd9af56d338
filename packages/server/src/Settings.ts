/**
 * Every setting the server reads, checked together before anything starts: one bad value stops
 * the start-up with one message that names each problem once, instead of the first layer to read
 * it failing after others have started (and a second bad value surfacing only on the next try).
 *
 * @since 0.1.0
 */
import { Cache, RateLimit } from "@liaison/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as CacheLive from "./cache/Live.js"
import { ServerConfig } from "./Config.js"
import * as Credentials from "./Credentials.js"
import * as Emails from "./emails/Emails.js"
import * as Telemetry from "./observability/Telemetry.js"
import * as PaymentsLive from "./payments/Live.js"
import * as ProtectedLive from "./protected/Live.js"
import * as Safety from "./Safety.js"
import * as Stores from "./Stores.js"
import * as CachedUsers from "./users/CachedUsers.js"
import * as WebhookSources from "./webhooks/Sources.js"

/**
 * One or more settings cannot be read; nothing was started.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidConfiguration extends Schema.TaggedError<InvalidConfiguration>(
  "@liaison/server/Settings/InvalidConfiguration"
)("InvalidConfiguration", {
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const count = this.problems.length === 1 ? "1 setting" : `${this.problems.length} settings`
    return `invalid configuration (${count}); nothing was started:\n${
      this.problems.map((problem) => `  - ${problem}`).join("\n")
    }`
  }
}

/**
 * Every setting of the server and of the library layers it configures from the environment.
 * (The upstream client's `HTTP_*` settings are read by `Http.layerConfig` itself.)
 *
 * @since 0.1.0
 * @category config
 */
export const all: Config.Config<unknown> = Config.all([
  ServerConfig,
  Safety.config,
  ProtectedLive.config,
  PaymentsLive.config,
  Emails.settings,
  WebhookSources.settings,
  Credentials.apiKeys,
  Credentials.jsonBodyLimit,
  CacheLive.adminApiKey,
  CachedUsers.usersTtl,
  Stores.cacheTier,
  Stores.redisKeyPrefix,
  Cache.config,
  RateLimit.config,
  Telemetry.logConfig,
  Telemetry.otlpConfig
])

/**
 * The problems of a `ConfigError`, one line each (`NAME: what is wrong`), each once: a setting
 * read by two configs (e.g. `HOST`) is reported once.
 *
 * @since 0.1.0
 * @category formatting
 */
export const problemsOf = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  const lines = new Set<string>()
  const visit = (error: ConfigError.ConfigError): void => {
    switch (error._op) {
      case "And":
      case "Or":
        visit(error.left)
        visit(error.right)
        return
      default: {
        // A missing value's own message can be `<redacted>` (a secret's); say what it means.
        const reason = error._op === "MissingData" ? "must be set" : error.message
        lines.add(error.path.length === 0 ? reason : `${error.path.join("_")}: ${reason}`)
      }
    }
  }
  visit(error)
  return [...lines]
}

/**
 * Reads {@link all}; fails with every problem at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validate: Effect.Effect<void, InvalidConfiguration> = Effect.mapError(
  Effect.asVoid(all),
  (error) => new InvalidConfiguration({ problems: problemsOf(error) })
)
