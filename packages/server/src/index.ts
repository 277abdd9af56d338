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
 * @since 0.1.0
 */
export * as Health from "./Health.js"

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
