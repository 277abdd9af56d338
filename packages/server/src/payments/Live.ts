/**
 * The handlers of {@link PaymentsApi.PaymentsApi} and the Stripe client they use: the real Stripe
 * when `STRIPE_SECRET_KEY` is set, else the built-in sandbox (said at startup).
 *
 * | variable | default | |
 * |---|---|---|
 * | `STRIPE_SECRET_KEY` | (unset) | redacted; unset → the built-in sandbox Stripe |
 * | `STRIPE_API_BASE` | `https://api.stripe.com` | Stripe's base URL (with a key) |
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import type { LiaisonError } from "@liaison/core"
import { HttpError } from "@liaison/core"
import type { StripeSchema } from "@liaison/integrations"
import { Stripe, StripeError } from "@liaison/integrations"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { Api } from "../Api.js"
import * as ApiError from "../ApiError.js"
import type { Authorization, JsonOnly } from "../Credentials.js"
import * as StripeSandbox from "../sandbox/Stripe.js"
import type { Payment } from "./Api.js"
import { PaymentDeclined } from "./Api.js"

/**
 * `STRIPE_SECRET_KEY` (optional, redacted) and `STRIPE_API_BASE`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<{
  readonly secretKey: Option.Option<Redacted.Redacted<string>>
  readonly apiBase: string
}> = Config.all({
  secretKey: Config.option(Config.redacted("STRIPE_SECRET_KEY")),
  apiBase: Config.string("STRIPE_API_BASE").pipe(Config.withDefault(Stripe.defaults.apiBase))
})

/**
 * The Stripe client: with `STRIPE_SECRET_KEY`, Stripe at `STRIPE_API_BASE`; without, the built-in
 * sandbox, started for the life of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStripe: Layer.Layer<Stripe.Stripe, ConfigError.ConfigError | LiaisonError.InvalidOptions> = Layer
  .unwrapScoped(
    Effect.gen(function*() {
      const { apiBase, secretKey } = yield* config
      if (Option.isSome(secretKey)) {
        yield* Effect.logInfo(`payments: Stripe at ${new URL(apiBase).origin}`)
        return Stripe.layerStandalone({ apiKey: secretKey.value, apiBase })
      }
      const sandbox = yield* StripeSandbox.make()
      yield* Effect.logInfo(
        `payments: no STRIPE_SECRET_KEY, using the built-in sandbox Stripe at ${sandbox.url} (test mode, nothing ` +
          "is charged; payment methods pm_card_visa, pm_card_chargeDeclined, …)"
      )
      return Stripe.layerStandalone({ apiKey: Redacted.make(StripeSandbox.sandboxSecretKey), apiBase: sandbox.url })
    })
  )

const toPayment = (intent: StripeSchema.PaymentIntent): Payment => ({
  id: intent.id,
  status: intent.status,
  amount: intent.amount,
  amount_received: intent.amount_received,
  currency: intent.currency,
  description: intent.description,
  metadata: intent.metadata,
  created: intent.created,
  cancellation_reason: intent.cancellation_reason,
  last_payment_error: intent.last_payment_error?.message ?? null
})

/**
 * The answer to a failed Stripe call: a declined card is a 402 and an invalid request a 400 (404
 * for an unknown object), with Stripe's message; a key Stripe refuses, Stripe failing, or Stripe
 * unreachable are the server's problem (5xx, Stripe's words kept for the log).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromStripeError = (error: Stripe.Error): PaymentDeclined | ApiError.UpstreamError => {
  if (!StripeError.isStripeError(error)) return ApiError.fromHttpError(error)
  switch (error._tag) {
    case "StripeCardError":
      return new PaymentDeclined({
        error: error.code ?? "card_declined",
        message: error.message,
        ...(error.decline_code === undefined ? {} : { decline_code: error.decline_code }),
        ...(error.payment_intent_id === undefined ? {} : { payment_intent_id: error.payment_intent_id })
      })
    case "StripeInvalidRequestError":
      return error.status === 404
        ? new ApiError.NotFound({ error: error.code ?? "resource_missing", message: error.message })
        : new ApiError.UpstreamBadRequest({ error: error.code ?? "invalid_request", message: error.message })
    case "StripeIdempotencyError":
      return new ApiError.Conflict({ error: "idempotency_error", message: error.message })
    case "StripeRateLimitError":
      return new ApiError.TooManyRequests({ error: "rate_limited", message: "Stripe is rate limiting the server" })
    case "StripeAuthenticationError":
    case "StripePermissionError":
      return new ApiError.BadGateway({ error: "payment_provider_refused", message: "Stripe refused the server's key" })
    case "StripeApiError":
      return new ApiError.BadGateway({ error: "payment_provider_error", message: `Stripe failed (${error.status})` })
  }
}

const isServerSide = (error: Stripe.Error) =>
  StripeError.isStripeError(error)
    ? error.status >= 500 || error.status === 401 || error.status === 403
    : HttpError.toHttpStatus(error) >= 500

/** Maps a Stripe failure to its answer, logging (with Stripe's request id) those that are the server's. */
const answerCreate = <A, R>(self: Effect.Effect<A, Stripe.Error, R>) =>
  Effect.mapError(
    Effect.tapError(self, (error) =>
      isServerSide(error)
        ? Effect.logWarning(
          "Stripe call failed",
          error.message,
          StripeError.isStripeError(error) ? `request ${error.request_id ?? "unknown"}` : error._tag
        )
        : Effect.void),
    fromStripeError
  )

/** {@link answerCreate} for calls that confirm nothing: a card error there is not the client's to see. */
const answer = <A, R>(self: Effect.Effect<A, Stripe.Error, R>) =>
  Effect.mapError(
    answerCreate(self),
    (error): ApiError.UpstreamError =>
      error._tag === "PaymentDeclined" ? new ApiError.BadGateway({ error: error.error, message: error.message }) : error
  )

/**
 * `POST /payments`, `GET /payments`, `GET /payments/{id}`, `POST /payments/{id}/cancel`.
 *
 * @since 0.1.0
 * @category layers
 */
export const PaymentsLive: Layer.Layer<
  HttpApiGroup.ApiGroup<"liaison", "payments">,
  never,
  Stripe.Stripe | Authorization | JsonOnly
> = HttpApiBuilder.group(Api, "payments", (handlers) =>
  Effect.map(Stripe.Stripe, ({ paymentIntents }) =>
    handlers
      .handle("create", ({ headers, payload }) =>
        paymentIntents.create(
          {
            ...payload,
            ...(payload.payment_method === undefined ? {} : { confirm: true })
          },
          { idempotencyKey: headers["idempotency-key"] }
        ).pipe(
          Effect.flatMap((intent) =>
            intent.client_secret === null
              ? Effect.fail(
                new HttpError.DecodeError({
                  method: "POST",
                  url: "/v1/payment_intents",
                  status: 200,
                  reason: "the PaymentIntent has no client_secret"
                })
              )
              : Effect.succeed({
                client_secret: intent.client_secret,
                payment_intent_id: intent.id,
                status: intent.status
              })
          ),
          answerCreate
        ))
      .handle("list", ({ urlParams }) =>
        paymentIntents.list({
          limit: urlParams.limit,
          ...(urlParams.starting_after === undefined ? {} : { starting_after: urlParams.starting_after })
        }).pipe(
          Effect.map((page) => ({
            data: page.data.map(toPayment),
            has_more: page.has_more,
            next_cursor: page.has_more ? page.data.at(-1)?.id ?? null : null
          })),
          answer
        ))
      .handle("get", ({ path }) => paymentIntents.retrieve(path.id).pipe(Effect.map(toPayment), answer))
      .handle(
        "cancel",
        ({ path, payload }) => paymentIntents.cancel(path.id, payload).pipe(Effect.map(toPayment), answer)
      )))
