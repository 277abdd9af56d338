/**
 * A secret in a request URL (a query parameter, `user:password@`) never reaches an error, its
 * message or a span attribute, whatever the path of failure: every error is built through
 * `HttpError`'s constructors, every span by `Http`.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { CircuitBreaker, Http, HttpError, Policy, RateLimit, Retry } from "@liaison/core"
import { Cause, Effect, Exit, FastCheck as fc, Layer, Schema } from "effect"
import type { ChaosUpstream } from "../fixtures/chaos.js"
import { startChaosUpstream } from "../fixtures/chaos.js"
import { freePort } from "../fixtures/ports.js"
import { recordingTracer } from "../fixtures/recordingTracer.js"

const secret = "sk_live_5ecr3t"
const query = `api_key=${secret}&client_secret=pi_1_secret_${secret}`

let chaos: ChaosUpstream
beforeAll(async () => {
  chaos = await startChaosUpstream()
})
afterAll(() => chaos.close())

/** Everything an error shows: its fields as JSON, its message, its pretty cause. */
const shown = (error: unknown, cause: Cause.Cause<unknown>) =>
  [JSON.stringify(error), String(error), error instanceof Error ? error.message : "", Cause.pretty(cause)].join("\n")

const expectNoSecret = <A, E>(effect: Effect.Effect<A, E>, tag: string) =>
  Effect.gen(function*() {
    const { text, tracer } = recordingTracer()
    const exit = yield* Effect.exit(Effect.withSpan(effect, "caller").pipe(Effect.withTracer(tracer)))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isSuccess(exit)) return
    const error = Cause.squash(exit.cause)
    expect(error).toMatchObject({ _tag: tag })
    expect(shown(error, exit.cause)).not.toContain(secret)
    const spans = text()
    // The request's span (an \`http.client\` span, or a policy's attempt) recorded the URL, redacted.
    expect(spans).toContain("url.full")
    expect(spans).not.toContain(secret)
  })

const direct = <A, E>(effect: Effect.Effect<A, E, Http.Http>, options: Http.Options = {}) =>
  Effect.provide(effect, Http.layer({ baseUrl: chaos.url, ...options }))

const retried = <A, E, R>(effect: Effect.Effect<A, E, R>, retry: Retry.Options, options: Http.Options = {}) =>
  Effect.provide(effect, Retry.layer(retry).pipe(Layer.provide(Http.layer({ baseUrl: chaos.url, ...options }))))

const Anything = Schema.Struct({ id: Schema.Number })

describe("HttpError.redactUrl", () => {
  it("drops the query string, the fragment and user:password@ of any URL", () =>
    fc.assert(
      fc.property(
        fc.webUrl({ withQueryParameters: true, withFragments: true }),
        fc.stringMatching(/^[a-z]{1,8}$/),
        (url, user) => {
          const withUser = url.replace("://", `://${user}:${secret}@`)
          const redacted = HttpError.redactUrl(`${withUser}?${query}#${secret}`)
          expect(redacted).not.toContain(secret)
          expect(redacted).not.toContain("?")
          expect(redacted).not.toContain("#")
          expect(redacted).toBe(new URL(url).origin + redacted.slice(new URL(url).origin.length))
        }
      )
    ))
})

describe("a secret in the query string", () => {
  it.live("is in no StatusError and no span", () =>
    direct(Http.json(HttpClientRequest.get(`/status/500?${query}`), Anything)).pipe(
      (effect) => expectNoSecret(effect, "StatusError")
    ))

  it.live("is in no DecodeError", () =>
    direct(Http.json(HttpClientRequest.get(`/text?${query}`), Anything)).pipe(
      (effect) => expectNoSecret(effect, "DecodeError")
    ))

  it.live("is in no read TimeoutError", () =>
    direct(Http.json(HttpClientRequest.get(`/stall/headers?${query}`), Anything), { timeouts: { read: "100 millis" } })
      .pipe((effect) => expectNoSecret(effect, "TimeoutError")))

  it.live("is in no total TimeoutError", () =>
    direct(Http.json(HttpClientRequest.get(`/stall/headers?${query}`), Anything), { timeouts: { total: "100 millis" } })
      .pipe((effect) => expectNoSecret(effect, "TimeoutError")))

  it.live("is in no TransportError (reset)", () =>
    direct(Http.json(HttpClientRequest.get(`/reset?${query}`), Anything)).pipe(
      (effect) => expectNoSecret(effect, "TransportError")
    ))

  it.live("is in no TransportError (refused)", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      yield* Http.json(HttpClientRequest.get(`http://127.0.0.1:${port}/x?${query}`), Anything).pipe(
        Effect.provide(Http.layer()),
        (effect) => expectNoSecret(effect, "TransportError")
      )
    }))

  it.live("is in no InvalidRequest refused before sending", () =>
    direct(
      Http.json(HttpClientRequest.get(`/echo?${query}`).pipe(HttpClientRequest.setHeader("x-bad", "a\r\nb")), Anything)
    ).pipe((effect) => expectNoSecret(effect, "InvalidRequest")))

  it.live("is in no RetryAfterTooLong from Retry", () =>
    retried(
      Http.json(HttpClientRequest.get(`/ratelimit?retryAfter=120&${query}`), Anything),
      { maxAttempts: 3, maxRetryAfter: "1 minute" }
    ).pipe((effect) => expectNoSecret(effect, "RetryAfterTooLong")))

  it.live("is in no RetryBudgetExhausted from Retry", () =>
    retried(
      Http.json(HttpClientRequest.get(`/status/503?${query}`), Anything),
      { maxAttempts: 3, base: "1 millis", budget: { ratio: 0.5, minRetriesPerSecond: 0 } }
    ).pipe((effect) => expectNoSecret(effect, "RetryBudgetExhausted")))

  it.live("is in no total TimeoutError from Retry's deadline", () =>
    retried(
      Http.json(HttpClientRequest.get(`/stall/headers?${query}`), Anything),
      { maxAttempts: 3, deadline: "150 millis" }
    ).pipe((effect) => expectNoSecret(effect, "TimeoutError")))

  it.live("is in no attempt TimeoutError from Policy", () =>
    Http.json(HttpClientRequest.get(`/stall/headers?${query}`), Anything).pipe(
      Effect.provide(
        Policy.layer({ attemptTimeout: "100 millis", retry: false }).pipe(
          Layer.provide(
            Layer.mergeAll(Http.layer({ baseUrl: chaos.url }), CircuitBreaker.layer(), RateLimit.layerMemory())
          )
        )
      ),
      (effect) => expectNoSecret(effect, "TimeoutError")
    ))
})
