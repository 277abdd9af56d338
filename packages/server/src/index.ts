/**
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Api from "./Api.js"

/**
 * @since 0.1.0
 */
export * as ApiError from "./ApiError.js"

/**
 * @since 0.1.0
 */
export * as ApiLive from "./ApiLive.js"

/**
 * @since 0.1.0
 */
export * as Config from "./Config.js"

/**
 * Safe by default: beyond loopback, no published or missing secrets (`LIAISON_SANDBOX` aside).
 *
 * @since 0.1.0
 */
export * as Safety from "./Safety.js"

/**
 * @since 0.1.0
 */
export * as Server from "./Server.js"

/**
 * Every setting the server reads, validated together before anything starts.
 *
 * @since 0.1.0
 */
export * as Settings from "./Settings.js"

/**
 * @since 0.1.0
 */
export * as Stores from "./Stores.js"

/**
 * @since 0.1.0
 */
export * as HealthApi from "./health/Api.js"

/**
 * @since 0.1.0
 */
export * as Health from "./health/Health.js"

/**
 * @since 0.1.0
 */
export * as HealthLive from "./health/Live.js"

/**
 * @since 0.1.0
 */
export * as Users from "./users/Users.js"

/**
 * @since 0.1.0
 */
export * as UsersApi from "./users/Api.js"

/**
 * @since 0.1.0
 */
export * as Upstream from "./users/Upstream.js"

/**
 * @since 0.1.0
 */
export * as CachedUsers from "./users/CachedUsers.js"

/**
 * @since 0.1.0
 */
export * as UsersLive from "./users/Live.js"

/**
 * @since 0.1.0
 */
export * as FilesApi from "./files/Api.js"

/**
 * @since 0.1.0
 */
export * as FilesLive from "./files/Live.js"

/**
 * @since 0.1.0
 */
export * as ResilienceApi from "./resilience/Api.js"

/**
 * @since 0.1.0
 */
export * as ResilienceLive from "./resilience/Live.js"

/**
 * @since 0.1.0
 */
export * as CacheApi from "./cache/Api.js"

/**
 * @since 0.1.0
 */
export * as CacheLive from "./cache/Live.js"

/**
 * @since 0.1.0
 */
export * as ProtectedApi from "./protected/Api.js"

/**
 * @since 0.1.0
 */
export * as ProtectedLive from "./protected/Live.js"

/**
 * @since 0.1.0
 */
export * as WebhooksApi from "./webhooks/Api.js"

/**
 * @since 0.1.0
 */
export * as WebhookSources from "./webhooks/Sources.js"

/**
 * @since 0.1.0
 */
export * as WebhooksLive from "./webhooks/Live.js"

/**
 * @since 0.1.0
 */
export * as PaymentsApi from "./payments/Api.js"

/**
 * @since 0.1.0
 */
export * as PaymentsLive from "./payments/Live.js"

/**
 * @since 0.1.0
 */
export * as EmailsApi from "./emails/Api.js"

/**
 * @since 0.1.0
 */
export * as Emails from "./emails/Emails.js"

/**
 * @since 0.1.0
 */
export * as EmailsLive from "./emails/Live.js"

/**
 * @since 0.1.0
 */
export * as Sandbox from "./sandbox/Users.js"

/**
 * @since 0.1.0
 */
export * as StripeSandbox from "./sandbox/Stripe.js"

/**
 * @since 0.1.0
 */
export * as SendGridSandbox from "./sandbox/SendGrid.js"

/**
 * @since 0.1.0
 */
export * as SandboxSecrets from "./sandbox/secrets.js"

/**
 * @since 0.1.0
 */
export * as Prometheus from "./observability/Prometheus.js"

/**
 * @since 0.1.0
 */
export * as Telemetry from "./observability/Telemetry.js"

/**
 * @since 0.1.0
 */
export * as Access from "./observability/Access.js"

/**
 * @since 0.1.0
 */
export * as MetricsApi from "./observability/Api.js"

/**
 * @since 0.1.0
 */
export * as MetricsLive from "./observability/Live.js"
