/**
 * The probes of a process manager or load balancer, next to `GET /health` (which stays as it is):
 *
 * - `GET /livez`: the process is up. Always `200 {"status":"ok"}` while it runs.
 * - `GET /readyz`: it can serve. `200 {"status":"ready","redis":…}` once the whole app is built
 *   (the port only opens then), Redis answers when `REDIS_URL` is set, and the server is not
 *   shutting down; otherwise `503` as `application/problem+json` (RFC 9457) with `Retry-After: 1`
 *   and the failing checks in `checks`. At SIGTERM it turns `503` first, before the server drains.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as MutableRef from "effect/MutableRef"
import { problemBody } from "../internal/problem.js"
import { Health } from "./Health.js"
import type { RedisStatus } from "./Health.js"

/**
 * Whether the server is shutting down: set first at shutdown, read by `/readyz` and by the
 * listener (every response then closes its connection).
 *
 * @since 0.1.0
 * @category models
 */
export class Lifecycle extends Context.Tag("@liaison/server/Lifecycle")<Lifecycle, {
  readonly draining: MutableRef.MutableRef<boolean>
}>() {}

/**
 * A fresh {@link Lifecycle}, not draining.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLifecycle: Layer.Layer<Lifecycle> = Layer.sync(
  Lifecycle,
  () => Lifecycle.of({ draining: MutableRef.make(false) })
)

/**
 * What `/readyz` checks.
 *
 * @since 0.1.0
 * @category models
 */
export interface Readiness {
  readonly ready: boolean
  readonly redis: RedisStatus
  readonly draining: boolean
}

/**
 * Ready: Redis answers or is not configured, and the server is not shutting down.
 *
 * @since 0.1.0
 * @category accessors
 */
export const readiness: Effect.Effect<Readiness, never, Health | Lifecycle> = Effect.gen(function*() {
  const { draining } = yield* Lifecycle
  const redis = yield* (yield* Health).redis
  const isDraining = MutableRef.get(draining)
  return { ready: redis !== "down" && !isDraining, redis, draining: isDraining }
})

/**
 * The `application/problem+json` answer (RFC 9457) of a server that cannot serve yet or any
 * more: `503` with `Retry-After: 1`. `extra` adds members (e.g. `checks`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const unavailableBody = (detail: string, extra: Record<string, unknown> = {}): string =>
  problemBody(503, detail, extra)

const unavailable = (state: Readiness): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(
    unavailableBody(
      state.draining ? "The server is shutting down." : "Redis, which this server needs, does not answer.",
      {
        checks: { redis: state.redis, draining: state.draining }
      }
    ),
    {
      status: 503,
      contentType: "application/problem+json",
      headers: { "retry-after": "1", "cache-control": "no-store" }
    }
  )

/**
 * `GET /livez` and `GET /readyz` on the `HttpApiBuilder` router (outside the `HttpApi`: no
 * credentials, no OpenAPI entry).
 *
 * @since 0.1.0
 * @category layers
 */
export const routes: Layer.Layer<never, never, HttpApiBuilder.Router | Health | Lifecycle> = HttpApiBuilder.Router
  .use((router) =>
    Effect.gen(function*() {
      const context = yield* Effect.context<Health | Lifecycle>()
      yield* router.get(
        "/livez",
        Effect.succeed(HttpServerResponse.unsafeJson({ status: "ok" }, { headers: { "cache-control": "no-store" } }))
      )
      yield* router.get(
        "/readyz",
        Effect.map(
          Effect.provide(readiness, context),
          (state) =>
            state.ready
              ? HttpServerResponse.unsafeJson({ status: "ready", redis: state.redis }, {
                headers: { "cache-control": "no-store" }
              })
              : unavailable(state)
        )
      )
    })
  )
