import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { StorageError } from "../LiaisonError.js"
import type * as Redis from "../Redis.js"
import type { StoredSubscription, SubscriptionStoreService } from "../WebhookDelivery.js"

const Stored: Schema.Schema<StoredSubscription> = Schema.Struct({
  id: Schema.String,
  url: Schema.String,
  events: Schema.Array(Schema.String),
  secret: Schema.String,
  createdAt: Schema.Number,
  disabledAt: Schema.optional(Schema.Number),
  disabledReason: Schema.optional(Schema.String)
})

const Json = Schema.parseJson(Stored)
const encode = Schema.encodeSync(Json)
const decode = Schema.decodeEither(Json)

const storageError = (operation: string) => (cause: unknown) =>
  new StorageError({ store: "webhooks", operation, cause })

/**
 * Subscriptions in this process' memory, one map per delivery service name.
 *
 * @internal
 */
export const makeMemory = (): SubscriptionStoreService => {
  const byName = new Map<string, Map<string, StoredSubscription>>()
  const of = (name: string) => {
    let subscriptions = byName.get(name)
    if (subscriptions === undefined) byName.set(name, subscriptions = new Map())
    return subscriptions
  }
  return {
    put: (name, subscription) => Effect.sync(() => void of(name).set(subscription.id, subscription)),
    get: (name, id) => Effect.sync(() => Option.fromNullable(of(name).get(id))),
    list: (name) => Effect.sync(() => [...of(name).values()]),
    remove: (name, id) => Effect.sync(() => of(name).delete(id))
  }
}

const parsed = (raw: string | null | undefined): Option.Option<StoredSubscription> =>
  raw === null || raw === undefined ? Option.none() : Either.getRight(decode(raw))

/**
 * Subscriptions in one Redis hash per name, `liaison:{wh:<name>}:subscriptions`, its expiry pushed
 * back to `retentionMillis` on every write and every listing: it lapses only after that long unused.
 *
 * @internal
 */
export const makeRedis = (
  redis: Redis.Service,
  retentionMillis: number,
  prefix = "liaison"
): SubscriptionStoreService => {
  const { client } = redis
  const keyOf = (name: string) => `${prefix}:{wh:${name}}:subscriptions`
  const run = <A>(operation: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: storageError(operation) })
  return {
    put: (name, subscription) =>
      Effect.asVoid(
        run("subscribe", () =>
          client.multi().hset(keyOf(name), subscription.id, encode(subscription)).pexpire(keyOf(name), retentionMillis)
            .exec())
      ),
    get: (name, id) => Effect.map(run("get subscription", () => client.hget(keyOf(name), id)), parsed),
    list: (name) =>
      Effect.map(
        run(
          "list subscriptions",
          () => client.multi().hgetall(keyOf(name)).pexpire(keyOf(name), retentionMillis).exec()
        ),
        (replies) => {
          const all: unknown = replies?.[0]?.[1]
          if (typeof all !== "object" || all === null) return []
          return Object.values(all).flatMap((raw) => typeof raw === "string" ? Option.toArray(parsed(raw)) : [])
        }
      ),
    remove: (name, id) => Effect.map(run("unsubscribe", () => client.hdel(keyOf(name), id)), (removed) => removed > 0)
  }
}
