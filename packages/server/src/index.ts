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
export * as CacheApi from "./CacheApi.js"

/**
 * @since 0.1.0
 */
export * as CachedUsers from "./CachedUsers.js"

/**
 * @since 0.1.0
 */
export * as CacheLive from "./CacheLive.js"

/**
 * @since 0.1.0
 */
export * as Config from "./Config.js"

/**
 * @since 0.1.0
 */
export * as Health from "./Health.js"

/**
 * @since 0.1.0
 */
export * as ProtectedApi from "./ProtectedApi.js"

/**
 * @since 0.1.0
 */
export * as ProtectedLive from "./ProtectedLive.js"

/**
 * @since 0.1.0
 */
export * as Sandbox from "./Sandbox.js"

/**
 * @since 0.1.0
 */
export * as Server from "./Server.js"

/**
 * @since 0.1.0
 */
export * as Upstream from "./Upstream.js"

/**
 * @since 0.1.0
 */
export * as Users from "./Users.js"

/**
 * @since 0.1.0
 */
export * as StripeSandbox from "./StripeSandbox.js"

/**
 * @since 0.1.0
 */
export * as SendGridSandbox from "./SendGridSandbox.js"

/**
 * @since 0.1.0
 */
export * as WebhooksApi from "./WebhooksApi.js"

/**
 * @since 0.1.0
 */
export * as WebhooksLive from "./WebhooksLive.js"

/**
 * @since 0.1.0
 */
export * as PaymentsApi from "./PaymentsApi.js"

/**
 * @since 0.1.0
 */
export * as PaymentsLive from "./PaymentsLive.js"

/**
 * @since 0.1.0
 */
export * as EmailsApi from "./EmailsApi.js"

/**
 * @since 0.1.0
 */
export * as EmailsLive from "./EmailsLive.js"
