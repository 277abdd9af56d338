/**
 * Outbound webhooks: subscriptions, and signed deliveries that survive a crash.
 *
 * - A subscription is a `url`, the event `types` it wants (`*` for all) and a `whsec_` secret
 *   (generated when not given). Its URL passes the SSRF guard: loopback, private, link-local and
 *   cloud metadata addresses are refused unless allowed ({@link Options.allow}), checked after DNS
 *   resolution when subscribing, and again on the very address each delivery connects to (so a
 *   name that later resolves inside, DNS rebinding, is refused too).
 * - Subscriptions live in the {@link SubscriptionStore} and deliveries on the `DurableQueue.Store`,
 *   both taken from context: {@link layerMemory} keeps both in memory, {@link layerRedis} both on
 *   the shared Redis, so a crash or a restart loses none.
 * - {@link Service.emit} queues one delivery per matching subscription.
 * - Each attempt POSTs the same JSON body `{ id, type, timestamp, data }` through `Http` (one
 *   client span per attempt, the URL redacted) signed with Standard Webhooks headers
 *   (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,…`) and `X-Webhook-Signature`
 *   (hex HMAC-SHA256 of the body, keyed with the secret string).
 * - 2xx is delivered. 408, 425, 429, 5xx and network failures are retried on the schedule
 *   (default, as Standard Webhooks / Svix: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h),
 *   each delay jittered (×0.8 to ×1.2) and lengthened to the receiver's `Retry-After` (at most
 *   1 hour). Other 3xx and 4xx fail at once, and 410 Gone also disables the subscription. Each
 *   attempt has 15 s.
 * - Every attempt is recorded (status, error, duration) and readable with {@link Service.delivery}.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as DurableQueue from "./DurableQueue.js"
import * as engine from "./internal/webhookDelivery/engine.js"
import * as subscriptions from "./internal/webhookDelivery/subscriptions.js"
import * as stores from "./internal/webhookSubscriptions.js"
import type * as LiaisonError from "./LiaisonError.js"
import * as Redis from "./Redis.js"

// ---------------------------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------------------------

/**
 * A subscription that cannot be made: its URL is not http(s), does not resolve, or points where
 * the SSRF guard does not allow; its events are empty; its secret is not `whsec_` + base64.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSubscription
  extends Schema.TaggedError<InvalidSubscription>("@liaison/core/WebhookDelivery/InvalidSubscription")(
    "InvalidSubscription",
    { reason: Schema.String }
  )
{
  override get message(): string {
    return `invalid webhook subscription: ${this.reason}`
  }
}

/**
 * An event whose data cannot be sent as JSON.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>("@liaison/core/WebhookDelivery/InvalidEvent")(
  "InvalidEvent",
  { reason: Schema.String }
) {
  override get message(): string {
    return `invalid webhook event: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------

/**
 * A subscription; its secret is `Redacted` (shown once, when it is made).
 *
 * @since 0.1.0
 * @category models
 */
export interface Subscription {
  readonly id: string
  readonly url: string
  readonly events: ReadonlyArray<string>
  readonly secret: Redacted.Redacted<string>
  readonly createdAt: number
  /** Set when the receiver answered 410 Gone: nothing more is delivered to it. */
  readonly disabled: Option.Option<{ readonly at: number; readonly reason: string }>
}

/**
 * `pending` (queued, perhaps waiting for a retry), `delivering`, `delivered`, `failed`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeliveryState = Schema.Literal("pending", "delivering", "delivered", "failed")

/**
 * @since 0.1.0
 * @category models
 */
export type DeliveryState = typeof DeliveryState.Type

/**
 * One attempt of a delivery.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DeliveryAttempt = Schema.Struct({
  attempt: Schema.Int,
  /** Milliseconds since the epoch. */
  at: Schema.Number,
  outcome: Schema.Literal("delivered", "retry", "failed", "lost"),
  /** The receiver's status, when it answered. */
  status: Schema.optional(Schema.Int),
  error: Schema.optional(Schema.String),
  durationMs: Schema.optional(Schema.Number)
}).annotations({ identifier: "WebhookDeliveryAttempt" })

/**
 * @since 0.1.0
 * @category models
 */
export type DeliveryAttempt = typeof DeliveryAttempt.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const DeliveryStatus = Schema.Struct({
  id: Schema.String,
  subscriptionId: Schema.String,
  eventId: Schema.String,
  type: Schema.String,
  url: Schema.String,
  state: DeliveryState,
  createdAt: Schema.Number,
  /** Pending: when the next attempt is due. */
  nextAttemptAt: Schema.optional(Schema.Number),
  attempts: Schema.Array(DeliveryAttempt)
}).annotations({ identifier: "WebhookDeliveryStatus" })

/**
 * @since 0.1.0
 * @category models
 */
export type DeliveryStatus = typeof DeliveryStatus.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface Emitted {
  /** The event's id: the `webhook-id` of every delivery of it. */
  readonly eventId: string
  readonly deliveries: ReadonlyArray<{ readonly id: string; readonly subscriptionId: string }>
}

/**
 * A queued delivery.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Delivery = Schema.Struct({
  subscriptionId: Schema.String,
  eventId: Schema.String,
  type: Schema.String,
  url: Schema.String,
  /** The exact bytes sent (as text), the same on every attempt. */
  body: Schema.String,
  createdAt: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type Delivery = typeof Delivery.Type

/**
 * What {@link Service.subscribe} takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscribeInput {
  readonly url: string
  readonly events: ReadonlyArray<string>
  /** `whsec_` + base64; generated when not given. */
  readonly secret?: Redacted.Redacted<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly subscribe: (
    input: SubscribeInput
  ) => Effect.Effect<Subscription, InvalidSubscription | LiaisonError.StorageError>
  readonly subscriptions: Effect.Effect<ReadonlyArray<Subscription>, LiaisonError.StorageError>
  readonly subscription: (id: string) => Effect.Effect<Option.Option<Subscription>, LiaisonError.StorageError>
  /** False when there was no such subscription. Its queued deliveries then fail. */
  readonly unsubscribe: (id: string) => Effect.Effect<boolean, LiaisonError.StorageError>
  /** Queues one delivery of the event per active subscription that wants its type. */
  readonly emit: (type: string, data: unknown) => Effect.Effect<Emitted, InvalidEvent | LiaisonError.StorageError>
  readonly delivery: (id: string) => Effect.Effect<Option.Option<DeliveryStatus>, LiaisonError.StorageError>
  /** Runs `concurrency` delivery workers (default 8) until the scope closes. */
  readonly run: (options?: { readonly concurrency?: number | undefined }) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category models
 */
export class WebhookDelivery extends Context.Tag("@liaison/core/WebhookDelivery")<WebhookDelivery, Service>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Names the queue and the subscriptions in their store. Default `webhook-deliveries`. */
  readonly name?: string | undefined
  /** Delays between attempts; the first attempt is at once. Default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
  readonly schedule?: ReadonlyArray<Duration.DurationInput> | undefined
  /** Each delay is multiplied by a random factor in this range. Default 0.8 to 1.2. */
  readonly jitter?: { readonly min: number; readonly max: number } | undefined
  /** The longest `Retry-After` honoured. Default 1 hour. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Each attempt's time limit. Default 15 s. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Targets the SSRF guard lets through besides public addresses. Default none. */
  readonly allow?: {
    readonly loopback?: boolean | undefined
    readonly privateNetworks?: boolean | undefined
    readonly linkLocal?: boolean | undefined
  } | undefined
  /** How long delivery records are kept after their last change. Default 7 days. */
  readonly retention?: Duration.DurationInput | undefined
  /** How often idle workers look for deliveries queued by other instances. Default 1 s. */
  readonly pollInterval?: Duration.DurationInput | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// subscription store
// ---------------------------------------------------------------------------------------------------------------

/**
 * A subscription as a store keeps it. The secret is in clear: it signs every delivery.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredSubscription {
  readonly id: string
  readonly url: string
  readonly events: ReadonlyArray<string>
  readonly secret: string
  readonly createdAt: number
  readonly disabledAt?: number | undefined
  readonly disabledReason?: string | undefined
}

/**
 * Where subscriptions are kept, under the name of the delivery service they belong to
 * ({@link Options.name}). Fails closed: a store that cannot be read fails with
 * `LiaisonError.StorageError`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscriptionStoreService {
  readonly put: (name: string, subscription: StoredSubscription) => Effect.Effect<void, LiaisonError.StorageError>
  readonly get: (
    name: string,
    id: string
  ) => Effect.Effect<Option.Option<StoredSubscription>, LiaisonError.StorageError>
  readonly list: (name: string) => Effect.Effect<ReadonlyArray<StoredSubscription>, LiaisonError.StorageError>
  /** False when there was no such subscription. */
  readonly remove: (name: string, id: string) => Effect.Effect<boolean, LiaisonError.StorageError>
}

/**
 * The subscriptions' backend.
 *
 * @since 0.1.0
 * @category models
 */
export class SubscriptionStore extends Context.Tag("@liaison/core/WebhookDelivery/SubscriptionStore")<
  SubscriptionStore,
  SubscriptionStoreService
>() {}

/**
 * Subscriptions in this process' memory: lost with it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSubscriptionStoreMemory: Layer.Layer<SubscriptionStore> = Layer.sync(
  SubscriptionStore,
  () => stores.makeMemory()
)

/**
 * @since 0.1.0
 * @category models
 */
export interface SubscriptionStoreRedisOptions {
  /** Subscriptions lapse after this long without a write or an emit. Default 365 days. */
  readonly retention?: Duration.DurationInput | undefined
  /** The first part of every key: `<prefix>:{wh:<name>}:subscriptions`. Default `liaison`. */
  readonly prefix?: string | undefined
}

/**
 * Subscriptions on the shared Redis, one hash per service name
 * (`liaison:{wh:<name>}:subscriptions`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSubscriptionStoreRedis = (
  options: SubscriptionStoreRedisOptions = {}
): Layer.Layer<SubscriptionStore, never, Redis.Redis> =>
  Layer.effect(
    SubscriptionStore,
    Effect.map(Redis.Redis, (redis) =>
      stores.makeRedis(
        redis,
        Duration.toMillis(Duration.decode(options.retention ?? defaults.subscriptionRetention)),
        options.prefix
      ))
  )

// ---------------------------------------------------------------------------------------------------------------
// defaults and config
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Defaults {
  readonly name: string
  /**
   * The retry schedule of Standard Webhooks and Svix, after the first attempt: 5 s, 5 min,
   * 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts over about 28 hours).
   */
  readonly schedule: ReadonlyArray<Duration.DurationInput>
  readonly jitter: { readonly min: number; readonly max: number }
  readonly maxRetryAfter: Duration.Duration
  readonly requestTimeout: Duration.Duration
  readonly retention: Duration.Duration
  readonly subscriptionRetention: Duration.Duration
  readonly pollInterval: Duration.Duration
  /** Delivery workers {@link Service.run} starts. */
  readonly concurrency: number
}

/**
 * The defaults: queue `webhook-deliveries`; the Standard Webhooks schedule; jitter ×0.8 to ×1.2;
 * `Retry-After` honoured up to 1 hour; 15 s per attempt; records kept 7 days, subscriptions
 * (Redis) 365 days; idle workers poll every second; 8 workers.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: Defaults = {
  name: "webhook-deliveries",
  schedule: ["5 seconds", "5 minutes", "30 minutes", "2 hours", "5 hours", "10 hours", "10 hours"],
  jitter: { min: 0.8, max: 1.2 },
  maxRetryAfter: Duration.hours(1),
  requestTimeout: Duration.seconds(15),
  retention: Duration.days(7),
  subscriptionRetention: Duration.days(365),
  pollInterval: Duration.seconds(1),
  concurrency: 8
}

/**
 * The options from the environment, each optional (unset: the default):
 * `WEBHOOK_DELIVERY_SCHEDULE` (comma-separated durations), `WEBHOOK_DELIVERY_TIMEOUT`,
 * `WEBHOOK_DELIVERY_MAX_RETRY_AFTER`, `WEBHOOK_RETENTION`, `WEBHOOK_DELIVERY_POLL_INTERVAL`,
 * `WEBHOOK_ALLOW_LOOPBACK`, `WEBHOOK_ALLOW_PRIVATE_NETWORKS` and `WEBHOOK_ALLOW_LINK_LOCAL`
 * (booleans; link-local follows private networks when unset).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  schedule: Config.option(Config.array(Config.duration(), "WEBHOOK_DELIVERY_SCHEDULE")),
  requestTimeout: Config.option(Config.duration("WEBHOOK_DELIVERY_TIMEOUT")),
  maxRetryAfter: Config.option(Config.duration("WEBHOOK_DELIVERY_MAX_RETRY_AFTER")),
  retention: Config.option(Config.duration("WEBHOOK_RETENTION")),
  pollInterval: Config.option(Config.duration("WEBHOOK_DELIVERY_POLL_INTERVAL")),
  loopback: Config.option(Config.boolean("WEBHOOK_ALLOW_LOOPBACK")),
  privateNetworks: Config.option(Config.boolean("WEBHOOK_ALLOW_PRIVATE_NETWORKS")),
  linkLocal: Config.option(Config.boolean("WEBHOOK_ALLOW_LINK_LOCAL"))
}).pipe(
  // Unset variables stay undefined: `make` fills in the defaults.
  Config.map((env): Options => {
    const privateNetworks = Option.getOrUndefined(env.privateNetworks)
    return {
      schedule: Option.getOrUndefined(env.schedule),
      requestTimeout: Option.getOrUndefined(env.requestTimeout),
      maxRetryAfter: Option.getOrUndefined(env.maxRetryAfter),
      retention: Option.getOrUndefined(env.retention),
      pollInterval: Option.getOrUndefined(env.pollInterval),
      allow: {
        loopback: Option.getOrUndefined(env.loopback),
        privateNetworks,
        linkLocal: Option.getOrElse(env.linkLocal, () => privateNetworks)
      }
    }
  })
)

// ---------------------------------------------------------------------------------------------------------------
// constructors and layers
// ---------------------------------------------------------------------------------------------------------------

/**
 * The service on the {@link SubscriptionStore} and the `DurableQueue.Store` in context. Its
 * `Http` (its own connection pool, every connection through the SSRF guard) closes with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<
  Service,
  LiaisonError.InvalidOptions,
  SubscriptionStore | DurableQueue.Store | Scope.Scope
> =>
  Effect.gen(function*() {
    const state = yield* engine.make(options, defaults, yield* SubscriptionStore)
    const { name, policy } = state.settings
    return WebhookDelivery.of({
      subscribe: (input) => subscriptions.subscribe(state.store, name, policy, input),
      subscriptions: engine.subscriptions(state),
      subscription: (id) => engine.subscription(state, id),
      unsubscribe: (id) => state.store.remove(name, id),
      emit: (type, data) => engine.emit(state, type, data),
      delivery: (id) => engine.delivery(state, id),
      run: (runOptions) => engine.run(state, runOptions)
    })
  })

/**
 * The service as a layer, on the {@link SubscriptionStore} and the `DurableQueue.Store` in context
 * (provide both from the same backend: memory subscriptions with Redis deliveries would vanish
 * on a restart while their deliveries stay queued).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<WebhookDelivery, LiaisonError.InvalidOptions, SubscriptionStore | DurableQueue.Store> =>
  Layer.scoped(WebhookDelivery, make(options))

/**
 * The service configured by `options` (default {@link config}: the environment).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options> = config
): Layer.Layer<
  WebhookDelivery,
  LiaisonError.InvalidOptions | ConfigError.ConfigError,
  SubscriptionStore | DurableQueue.Store
> => Layer.unwrapEffect(Effect.map(Config.unwrap(options), layer))

/**
 * Deliveries and subscriptions in this process' memory.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: Options = {}): Layer.Layer<WebhookDelivery, LiaisonError.InvalidOptions> =>
  layer(options).pipe(Layer.provide(Layer.merge(layerSubscriptionStoreMemory, DurableQueue.layerStoreMemory)))

/**
 * The options of {@link layerRedis}.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisOptions extends Options {
  /** Subscriptions lapse after this long without a write or an emit. Default 365 days. */
  readonly subscriptionRetention?: Duration.DurationInput | undefined
  /** The first part of every key, for subscriptions and the delivery queue. Default `liaison`. */
  readonly prefix?: string | undefined
}

/**
 * Deliveries and subscriptions on the shared Redis: several instances deliver as one, and a
 * restart loses nothing.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRedis = (
  options: RedisOptions = {}
): Layer.Layer<WebhookDelivery, LiaisonError.InvalidOptions, Redis.Redis> =>
  layer(options).pipe(Layer.provide(Layer.merge(
    layerSubscriptionStoreRedis({ retention: options.subscriptionRetention, prefix: options.prefix }),
    DurableQueue.layerStoreRedis({ prefix: options.prefix })
  )))

// ---------------------------------------------------------------------------------------------------------------
// accessors
// ---------------------------------------------------------------------------------------------------------------

/**
 * Runs the delivery workers until the scope closes; see {@link Service.run}.
 *
 * @since 0.1.0
 * @category accessors
 */
export const run = (
  options?: { readonly concurrency?: number | undefined }
): Effect.Effect<void, never, WebhookDelivery | Scope.Scope> =>
  Effect.flatMap(WebhookDelivery, (service) => service.run(options))
