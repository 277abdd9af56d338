/**
 * The implementation of {@link Api.Api}: every users endpoint is one call to the {@link Upstream}
 * (the batch a bounded fan-out of them), its `HttpError` mapped to an answer by
 * {@link ApiError.mapUpstream}.
 *
 * @since 0.1.0
 */
import type * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { CircuitBreaker, FanOut, RateLimit } from "@liaison/core"
import type { Cache, HttpError, WebhookDelivery, WebhookInbox } from "@liaison/core"
import type { Stripe } from "@liaison/integrations"
import * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Api } from "./Api.js"
import * as ApiError from "./ApiError.js"
import { CachedUsers, withCacheHeader } from "./CachedUsers.js"
import * as CacheLive from "./CacheLive.js"
import * as EmailsLive from "./EmailsLive.js"
import { Health } from "./Health.js"
import { PaymentsLive } from "./PaymentsLive.js"
import type { Protected } from "./ProtectedLive.js"
import { ProtectedLive } from "./ProtectedLive.js"
import { Upstream } from "./Upstream.js"
import * as WebhooksLive from "./WebhooksLive.js"

/**
 * How many upstream calls one `GET /users/batch` makes at once.
 *
 * @since 0.1.0
 * @category constants
 */
export const batchConcurrency = 10

const isNotFound = (error: HttpError.HttpError) => error._tag === "StatusError" && error.status === 404

/**
 * `GET /health`.
 *
 * @since 0.1.0
 * @category layers
 */
export const HealthLive: Layer.Layer<HttpApiGroup.ApiGroup<"liaison", "health">, never, Health> = HttpApiBuilder.group(
  Api,
  "health",
  (handlers) =>
    Effect.map(
      Health,
      (health) =>
        handlers.handle("health", () => Effect.map(health.redis, (redis) => ({ status: "ok" as const, redis })))
    )
)

type UsersGroup = HttpApiGroup.ApiGroup<"liaison", "users">

/**
 * The users endpoints, each proxied to the upstream through the cache ({@link CachedUsers}).
 *
 * @since 0.1.0
 * @category layers
 */
export const UsersLive: Layer.Layer<UsersGroup, never, CachedUsers> = HttpApiBuilder.group(
  Api,
  "users",
  (handlers) =>
    Effect.map(CachedUsers, (upstream) =>
      handlers
        .handle("batch", ({ urlParams: { ids } }) =>
          // A missing id is not an error of the batch; any other failure fails it (and stops the rest).
          FanOut.all(
            ids.map((id) =>
              upstream.get(id).pipe(
                Effect.map(Either.right),
                Effect.catchIf(isNotFound, () => Effect.succeed(Either.left(id)))
              )
            ),
            { concurrency: batchConcurrency }
          ).pipe(
            Effect.map((found) => {
              const [missing, users] = Arr.separate(found)
              return { users, count: users.length, missing }
            }),
            ApiError.mapUpstream
          ))
        .handle("list", ({ urlParams }) => ApiError.mapUpstream(upstream.list(urlParams)))
        .handle("get", ({ path }) => ApiError.mapUpstream(withCacheHeader(upstream.getCached(path.id))))
        .handle("create", ({ payload }) => ApiError.mapUpstream(upstream.create(payload)))
        .handle("replace", ({ path, payload }) => ApiError.mapUpstream(upstream.replace(path.id, payload)))
        .handle("update", ({ path, payload }) => ApiError.mapUpstream(upstream.update(path.id, payload)))
        .handle("remove", ({ path }) =>
          upstream.remove(path.id).pipe(
            Effect.as({ status: "deleted" as const, id: path.id }),
            ApiError.mapUpstream
          )))
)

/**
 * `GET /download/{name}` answers as soon as the upstream's headers arrive and passes the body
 * through chunk by chunk: nothing is buffered, and the upstream connection (held by the request's
 * scope) is released once the body is sent.
 *
 * @since 0.1.0
 * @category layers
 */
export const FilesLive: Layer.Layer<HttpApiGroup.ApiGroup<"liaison", "files">, never, Upstream> = HttpApiBuilder.group(
  Api,
  "files",
  (handlers) =>
    Effect.map(Upstream, (upstream) =>
      handlers.handle("download", ({ path }) =>
        upstream.download(path.name).pipe(
          Effect.map((file) =>
            HttpServerResponse.stream(
              file.stream.pipe(
                // The status is sent by now: all that is left is to cut the body short, and say why.
                Stream.tapError((error) => Effect.logWarning("download broke off", error.message))
              ),
              {
                contentType: file.contentType,
                ...Option.match(file.contentLength, {
                  onNone: () => ({}),
                  onSome: (contentLength) => ({ contentLength })
                })
              }
            )
          ),
          ApiError.mapUpstream
        )))
)

/**
 * `GET /resilience`.
 *
 * @since 0.1.0
 * @category layers
 */
export const ResilienceLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"liaison", "resilience">,
  never,
  CircuitBreaker.CircuitBreaker | RateLimit.RateLimiter
> = HttpApiBuilder.group(Api, "resilience", (handlers) =>
  Effect.gen(function*() {
    const breakers = yield* CircuitBreaker.CircuitBreaker
    const limiter = yield* RateLimit.RateLimiter
    return handlers.handle("status", () => Effect.all({ breakers: breakers.snapshots, limiters: limiter.snapshots }))
  }))

/**
 * The whole API, needing the upstream client and the health service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  HttpApi.Api,
  never,
  | Upstream
  | Health
  | CircuitBreaker.CircuitBreaker
  | RateLimit.RateLimiter
  | CachedUsers
  | Cache.Cache
  | Protected
  | WebhooksLive.WebhookSources
  | WebhookInbox.WebhookInbox
  | WebhookDelivery.WebhookDelivery
  | Stripe.Stripe
  | EmailsLive.Emails
> = HttpApiBuilder.api(Api).pipe(
  Layer.provide([
    HealthLive,
    UsersLive,
    FilesLive,
    ResilienceLive,
    CacheLive.CacheApiLive,
    ProtectedLive,
    WebhooksLive.WebhooksLive,
    WebhooksLive.WebhookSubscriptionsLive,
    PaymentsLive,
    EmailsLive.EmailsLive
  ])
)
