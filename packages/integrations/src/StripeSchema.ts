/**
 * Stripe's objects and parameters: the {@link PaymentIntent} and {@link List} Schemas the client
 * decodes answers with, the parameter types of each PaymentIntents call, and
 * {@link encodeParams}, Stripe's form encoding (`metadata[order_id]=6735`,
 * `payment_method_types[0]=card`, `null` to unset a field).
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { encodeForm, formString } from "./internal/stripeForm.js"

/**
 * A field that may be a plain id or, when expanded, the object (kept as its `id`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Expandable = Schema.Union(
  Schema.String,
  Schema.transform(Schema.Struct({ id: Schema.String }), Schema.String, {
    strict: true,
    decode: (object) => object.id,
    encode: (id) => ({ id })
  })
)

const nullable = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.optionalWith(Schema.NullOr(schema), { default: () => null })

/**
 * `status` of a PaymentIntent, as the real enum.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PaymentIntentStatus = Schema.Literal(
  "requires_payment_method",
  "requires_confirmation",
  "requires_action",
  "processing",
  "requires_capture",
  "canceled",
  "succeeded"
)

/**
 * @since 0.1.0
 * @category models
 */
export type PaymentIntentStatus = typeof PaymentIntentStatus.Type

/**
 * Why a PaymentIntent was canceled (the first four may be given when canceling).
 *
 * @since 0.1.0
 * @category schemas
 */
export const CancellationReason = Schema.Literal(
  "duplicate",
  "fraudulent",
  "requested_by_customer",
  "abandoned",
  "failed_invoice",
  "void_invoice",
  "automatic",
  "expired"
)

/**
 * @since 0.1.0
 * @category models
 */
export type CancellationReason = typeof CancellationReason.Type

/**
 * The last payment error of a PaymentIntent.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LastPaymentError = Schema.Struct({
  type: Schema.String,
  code: Schema.optional(Schema.String),
  decline_code: Schema.optional(Schema.String),
  message: Schema.optional(Schema.String),
  param: Schema.optional(Schema.String),
  doc_url: Schema.optional(Schema.String)
})

/**
 * A PaymentIntent: the fields most integrations need. Fields Stripe adds that are not listed
 * here are tolerated (and left out); nullable ones Stripe leaves out are `null`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PaymentIntent = Schema.Struct({
  id: Schema.String,
  object: Schema.Literal("payment_intent"),
  amount: Schema.Int,
  amount_capturable: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  amount_received: Schema.Int,
  currency: Schema.String,
  status: PaymentIntentStatus,
  client_secret: nullable(Schema.String),
  capture_method: Schema.optional(Schema.String),
  confirmation_method: Schema.optional(Schema.String),
  created: Schema.Int,
  livemode: Schema.Boolean,
  metadata: Schema.Record({ key: Schema.String, value: Schema.String }),
  description: nullable(Schema.String),
  customer: nullable(Expandable),
  payment_method: nullable(Expandable),
  payment_method_types: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  latest_charge: nullable(Expandable),
  last_payment_error: nullable(LastPaymentError),
  receipt_email: nullable(Schema.String),
  canceled_at: nullable(Schema.Int),
  cancellation_reason: nullable(CancellationReason)
}).annotations({ identifier: "Stripe.PaymentIntent" })

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntent extends Schema.Schema.Type<typeof PaymentIntent> {}

/**
 * One page of a list.
 *
 * @since 0.1.0
 * @category models
 */
export interface List<A> {
  readonly object: "list"
  readonly data: ReadonlyArray<A>
  readonly has_more: boolean
  readonly url: string
}

/**
 * The Schema of one page of a list of `item`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const List = <A, I, R>(item: Schema.Schema<A, I, R>): Schema.Schema<List<A>, List<I>, R> =>
  Schema.Struct({
    object: Schema.Literal("list"),
    data: Schema.Array(item),
    has_more: Schema.Boolean,
    url: Schema.String
  })

/**
 * A parameter value in Stripe's form encoding: scalars, `Date`s (sent as Unix seconds), and
 * arrays and objects of them; `null` unsets a field, `undefined` is not sent.
 *
 * @since 0.1.0
 * @category models
 */
export type Param =
  | string
  | number
  | bigint
  | boolean
  | Date
  | DateTime.DateTime
  | null
  | undefined
  | ReadonlyArray<Param>
  | { readonly [key: string]: Param }

/**
 * Parameters in Stripe's form encoding, as a query string or `application/x-www-form-urlencoded`
 * body: nested objects as `a[b][c]=…`, arrays as `a[0]=…&a[1]=…`, `null` as an empty value
 * (Stripe unsets the field), `undefined` fields and empty objects or arrays left out (as an array
 * element, an empty object or array is an empty value, so no index is skipped), booleans as
 * `true` / `false`, `Date`s and `DateTime`s as Unix seconds. Fails with what does not encode
 * (a non-finite number, a key with `[` or `]`, an `undefined` array element, a function, …).
 *
 * @since 0.1.0
 * @category constructors
 */
export const encodeParams = (params: Params): Either.Either<string, string> =>
  Either.map(encodeForm(params), formString)

/**
 * Request parameters: the named ones are typed, any other Stripe parameter may be added.
 *
 * @since 0.1.0
 * @category models
 */
export interface Params {
  readonly [param: string]: Param
}

/**
 * `metadata`: up to 50 keys; a `null` (or empty) value removes that key on update.
 *
 * @since 0.1.0
 * @category models
 */
export type Metadata = Readonly<Record<string, string | number | null>>

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentCreateParams extends Params {
  /** In the smallest currency unit (cents). */
  readonly amount: number
  /** Three-letter ISO code, lowercase, e.g. `usd`. */
  readonly currency: string
  readonly automatic_payment_methods?: { readonly enabled: boolean; readonly allow_redirects?: "always" | "never" }
  readonly capture_method?: "automatic" | "automatic_async" | "manual"
  readonly confirm?: boolean
  readonly customer?: string
  readonly description?: string
  readonly metadata?: Metadata
  readonly payment_method?: string
  readonly payment_method_types?: ReadonlyArray<string>
  readonly receipt_email?: string
  readonly return_url?: string
  readonly statement_descriptor?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentUpdateParams extends Params {
  readonly amount?: number
  readonly currency?: string
  readonly customer?: string
  readonly description?: string | null
  readonly metadata?: Metadata | null
  readonly payment_method?: string
  readonly receipt_email?: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentConfirmParams extends Params {
  readonly payment_method?: string
  readonly capture_method?: "automatic" | "automatic_async" | "manual"
  readonly receipt_email?: string | null
  readonly return_url?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentCancelParams extends Params {
  readonly cancellation_reason?: "duplicate" | "fraudulent" | "requested_by_customer" | "abandoned"
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentCaptureParams extends Params {
  /** Defaults to the whole `amount_capturable`. */
  readonly amount_to_capture?: number
  readonly metadata?: Metadata
}

/**
 * The cursor parameters of every list: `limit` from 1 to 100 (Stripe's default 10),
 * `starting_after` (the page after this object) or `ending_before` (the page before it).
 *
 * @since 0.1.0
 * @category models
 */
export interface ListParams extends Params {
  readonly limit?: number
  readonly starting_after?: string
  readonly ending_before?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PaymentIntentListParams extends ListParams {
  readonly customer?: string
  /** Unix seconds or a `Date`, or a range: `{ gte: new Date(...) }`. */
  readonly created?:
    | number
    | Date
    | {
      readonly gt?: number | Date
      readonly gte?: number | Date
      readonly lt?: number | Date
      readonly lte?: number | Date
    }
}
