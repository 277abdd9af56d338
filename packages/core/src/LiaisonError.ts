/**
 * The library's own errors, apart from the outbound-call union in {@link HttpError}: options
 * that cannot work (found when a layer is built, never at call time) and a backing store that
 * failed. Every error is a `Schema.TaggedError` whose tag equals its class name, so it can
 * cross a wire and be matched with `Effect.catchTag`.
 *
 * The rule for every error class of Liaison: `Schema.TaggedError`, identifier
 * `@liaison/<package>/<Module>/<Name>`, tag equal to the class name, except for a provider
 * prefix on the tag when the class name is generic (`Stripe`'s `CardError` is `StripeCardError`).
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * Options that cannot work together or are out of range, found when a breaker, limiter, retry,
 * queue or policy is built, never later at call time.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Schema.TaggedError<InvalidOptions>("@liaison/core/LiaisonError/InvalidOptions")(
  "InvalidOptions",
  {
    /** The option at fault, e.g. `retry.maxAttempts`. */
    option: Schema.String,
    /** What is wrong with it. */
    reason: Schema.String
  }
) {
  override get message(): string {
    return `Invalid option ${this.option}: ${this.reason}`
  }
}

/**
 * A backing store (memory or Redis) failed: `store` says which service's
 * (`"durable-queue"`, `"webhooks"`, `"cache"`, `"rate-limit"`, `"auth-tokens"`), `operation`
 * what it was doing. The cause is kept for logs; the message carries only the cause's own
 * message, never the data being stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class StorageError extends Schema.TaggedError<StorageError>("@liaison/core/LiaisonError/StorageError")(
  "StorageError",
  {
    store: Schema.String,
    operation: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  override get message(): string {
    const cause = this.cause instanceof Error
      ? `: ${this.cause.message}`
      : Predicate.hasProperty(this.cause, "message") && typeof this.cause.message === "string"
      ? `: ${this.cause.message}`
      : ""
    return `${this.store} storage failed during ${this.operation}${cause}`
  }
}

/**
 * Any error of this module.
 *
 * @since 0.1.0
 * @category errors
 */
export type LiaisonError = InvalidOptions | StorageError

/**
 * Whether a value is one of this module's errors (by class, so a user's own `StorageError` is
 * not mistaken for it).
 *
 * @since 0.1.0
 * @category guards
 */
export const isLiaisonError = (u: unknown): u is LiaisonError =>
  u instanceof InvalidOptions || u instanceof StorageError
