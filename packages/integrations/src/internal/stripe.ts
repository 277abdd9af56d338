import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Http, HttpError } from "@liaison/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { Error, PaymentIntents, Request, RequestOptions, Service } from "../Stripe.js"
import * as StripeError from "../StripeError.js"
import * as StripeSchema from "../StripeSchema.js"
import * as Provider from "./provider.js"
import { encodeForm, formString } from "./stripeForm.js"

/** The HTTP request of a call: its parameters as a form body (POST) or URL parameters. */
const toHttpRequest = <A, I>(
  spec: Request<A, I>,
  newKey: () => string
): Either.Either<HttpClientRequest.HttpClientRequest, HttpError.InvalidRequest> =>
  Either.map(
    Either.mapLeft(encodeForm(spec.params ?? {}), (reason) =>
      new HttpError.InvalidRequest({ reason: `Stripe parameters: ${reason}` })),
    (pairs) => {
      let built = HttpClientRequest.make(spec.method)(spec.path)
      if (spec.method === "POST") {
        built = HttpClientRequest.bodyText(built, formString(pairs), "application/x-www-form-urlencoded")
        // One key for every attempt of this call: a retry after a lost answer replays it.
        built = HttpClientRequest.setHeader(built, "idempotency-key", spec.options?.idempotencyKey ?? newKey())
      } else if (pairs.length > 0) {
        // Stripe reads the query as it reads a form body; kept out of the URL string (secrets).
        built = HttpClientRequest.setUrlParams(built, pairs)
      }
      const account = spec.options?.stripeAccount
      return account === undefined ? built : HttpClientRequest.setHeader(built, "stripe-account", account)
    }
  )

/** Reads an answer: Stripe's typed error for a non-2xx, else the JSON decoded with `schema`. */
const readAnswer =
  <A, I>(schema: Schema.Schema<A, I>, maxErrorBodyBytes: number) =>
  (response: Http.Response): Effect.Effect<A, Error> =>
    Http.ensureOk(response, { maxErrorBodyBytes }).pipe(
      Effect.catchTag(
        "StatusError",
        (error) => Effect.fail(StripeError.errorFromResponse(error.status, error.headers, error.body))
      ),
      Effect.flatMap(Http.decodeJson(schema))
    )

/**
 * The client's `request`: one span per call (`Stripe.request`), the attempts counted.
 *
 * @internal
 */
export const makeRequest = (http: Http.Service, newKey: () => string, maxErrorBodyBytes: number): Service["request"] =>
  Effect.fn("Stripe.request")(function*<A, I>(spec: Request<A, I>) {
    yield* Effect.annotateCurrentSpan({ "http.request.method": spec.method, "url.path": spec.path })
    const request = yield* toHttpRequest(spec, newKey)
    return yield* Provider.countAttempts(
      Effect.scoped(Effect.flatMap(http.execute(request), readAnswer(spec.schema, maxErrorBodyBytes)))
    )
  })

const intentPath = (id: string, action = "") => `/v1/payment_intents/${encodeURIComponent(id)}${action}`

/**
 * The PaymentIntents endpoints over the client's `request`.
 *
 * @internal
 */
export const makePaymentIntents = (request: Service["request"]): PaymentIntents => {
  const schema = StripeSchema.PaymentIntent
  const post = (path: string, params: StripeSchema.Params | undefined, options: RequestOptions | undefined) =>
    request({ method: "POST", path, params, schema, options })
  const list: PaymentIntents["list"] = (params, options) =>
    request({ method: "GET", path: "/v1/payment_intents", params, schema: StripeSchema.List(schema), options })
  return {
    create: (params, options) => post("/v1/payment_intents", params, options),
    retrieve: (id, params, options) => request({ method: "GET", path: intentPath(id), params, schema, options }),
    update: (id, params, options) => post(intentPath(id), params, options),
    confirm: (id, params, options) => post(intentPath(id, "/confirm"), params, options),
    cancel: (id, params, options) => post(intentPath(id, "/cancel"), params, options),
    capture: (id, params, options) => post(intentPath(id, "/capture"), params, options),
    list,
    autoPaginate: (params = {}, options) => autoPaginate((page) => list(page, options), params)
  }
}

/**
 * Every item of a list from the cursor in `params` on: see `Stripe.autoPaginate`.
 *
 * @internal
 */
export const autoPaginate = <A extends { readonly id: string }, E, R, P extends StripeSchema.ListParams>(
  list: (params: P) => Effect.Effect<StripeSchema.List<A>, E, R>,
  params: P
): Stream.Stream<A, E, R> => {
  const backwards = params.ending_before !== undefined
  const page = (cursor: string | undefined): P =>
    cursor === undefined
      ? params
      : backwards
      ? { ...params, ending_before: cursor }
      : { ...params, starting_after: cursor }
  return Stream.paginateEffect<string | undefined, ReadonlyArray<A>, E, R>(
    undefined,
    (cursor) =>
      Effect.map(list(page(cursor)), (result) => {
        const next = backwards ? result.data[0] : result.data[result.data.length - 1]
        return [result.data, result.has_more && next !== undefined ? Option.some(next.id) : Option.none()] as const
      })
  ).pipe(Stream.flattenIterables)
}
