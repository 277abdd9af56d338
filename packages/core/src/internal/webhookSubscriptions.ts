import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Redis as IORedis } from "ioredis"

/** A subscription as stored (the secret in clear: it signs every delivery). @internal */
export const StoredSubscription = Schema.Struct({
  id: Schema.String,
  url: Schema.String,
  events: Schema.Array(Schema.String),
  secret: Schema.String,
  createdAt: Schema.Number,
  disabledAt: Schema.optional(Schema.Number),
  disabledReason: Schema.optional(Schema.String)
})

/** @internal */
export type StoredSubscription = typeof StoredSubscription.Type

const Json = Schema.parseJson(StoredSubscription)
const encode = Schema.encodeSync(Json)
const decode = Schema.decodeEither(Json)

/** @internal */
export interface SubscriptionStore {
  readonly put: (subscription: StoredSubscription) => Effect.Effect<void, unknown>
  readonly get: (id: string) => Effect.Effect<Option.Option<StoredSubscription>, unknown>
  readonly list: Effect.Effect<ReadonlyArray<StoredSubscription>, unknown>
  readonly remove: (id: string) => Effect.Effect<boolean, unknown>
}

/** @internal */
export const makeMemorySubscriptions = (): SubscriptionStore => {
  const subscriptions = new Map<string, StoredSubscription>()
  return {
    put: (subscription) => Effect.sync(() => void subscriptions.set(subscription.id, subscription)),
    get: (id) => Effect.sync(() => Option.fromNullable(subscriptions.get(id))),
    list: Effect.sync(() => [...subscriptions.values()]),
    remove: (id) => Effect.sync(() => subscriptions.delete(id))
  }
}

const parsed = (raw: string | null | undefined): Option.Option<StoredSubscription> =>
  raw === null || raw === undefined ? Option.none() : Either.getRight(decode(raw))

/**
 * Subscriptions in one Redis hash, `liaison:{wh:<name>}:subscriptions`, its expiry pushed back to
 * `retentionMillis` on every write and every listing: it lapses only after that long unused.
 *
 * @internal
 */
export const makeRedisSubscriptions = (client: IORedis, name: string, retentionMillis: number): SubscriptionStore => {
  const key = `liaison:{wh:${name}}:subscriptions`
  const run = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => cause })
  return {
    put: (subscription) =>
      Effect.asVoid(
        run(() => client.multi().hset(key, subscription.id, encode(subscription)).pexpire(key, retentionMillis).exec())
      ),
    get: (id) => Effect.map(run(() => client.hget(key, id)), parsed),
    list: Effect.map(
      run(() => client.multi().hgetall(key).pexpire(key, retentionMillis).exec()),
      (replies) => {
        const all = replies?.[0]?.[1]
        if (typeof all !== "object" || all === null) return []
        return Object.values(all as Record<string, string>).flatMap((raw) => Option.toArray(parsed(raw)))
      }
    ),
    remove: (id) => Effect.map(run(() => client.hdel(key, id)), (removed) => removed > 0)
  }
}
