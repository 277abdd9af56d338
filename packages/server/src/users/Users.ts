/**
 * The users resource on the wire: the schemas the public API, the upstream client and the
 * sandbox upstream share. Field names are the upstream's (`snake_case`).
 *
 * Validation messages never repeat the rejected value: a 400 or 422 body must not echo a
 * password back.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A user id: a positive integer.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserId = Schema.Int.pipe(
  Schema.positive({ message: () => "must be a positive integer" }),
  Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER, { message: () => "is too large" })
).annotations({ identifier: "UserId" })

/**
 * A user id in a URL (path segment or query): decimal digits only, so `1e3`, `0x10` or ` 7`
 * are rejected rather than read as numbers.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserIdFromString = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^\d{1,16}$/, { message: () => "must be a positive integer" })),
  Schema.compose(Schema.NumberFromString, UserId)
).annotations({ identifier: "UserIdFromString" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Username = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9_]{3,32}$/, { message: () => "must be 3 to 32 characters of a-z, 0-9 and _" })
).annotations({ identifier: "Username" })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Email = Schema.String.pipe(
  Schema.maxLength(254, { message: () => "must be at most 254 characters" }),
  Schema.pattern(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, { message: () => "must be an email address" })
).annotations({ identifier: "Email" })

/**
 * A full name; `null` when the user has none.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FullName = Schema.NullOr(
  Schema.String.pipe(Schema.maxLength(100, { message: () => "must be at most 100 characters" }))
)

/**
 * A password, `Redacted` as soon as it is decoded so that it never reaches a log.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Password = Schema.Redacted(
  // Every message is custom: the default ones quote the rejected value.
  Schema.String.annotations({ message: () => "must be a string" }).pipe(
    Schema.minLength(8, { message: () => "must be at least 8 characters" }),
    Schema.maxLength(128, { message: () => "must be at most 128 characters" })
  )
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const User = Schema.Struct({
  id: UserId,
  username: Schema.String,
  email: Schema.String,
  full_name: Schema.NullOr(Schema.String),
  active: Schema.Boolean,
  created_at: Schema.DateTimeUtc
}).annotations({ identifier: "User" })

/**
 * @since 0.1.0
 * @category models
 */
export interface User extends Schema.Schema.Type<typeof User> {}

/**
 * The body of `POST /users`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const NewUser = Schema.Struct({
  username: Username,
  email: Email,
  password: Password,
  full_name: Schema.optionalWith(FullName, { exact: true })
}).annotations({ identifier: "NewUser" })

/**
 * @since 0.1.0
 * @category models
 */
export interface NewUser extends Schema.Schema.Type<typeof NewUser> {}

/**
 * The body of `PUT /users/{id}`: every replaceable field.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserReplace = Schema.Struct({
  email: Email,
  full_name: FullName,
  active: Schema.Boolean
}).annotations({ identifier: "UserReplace" })

/**
 * @since 0.1.0
 * @category models
 */
export interface UserReplace extends Schema.Schema.Type<typeof UserReplace> {}

/**
 * The body of `PATCH /users/{id}`: only the fields present change; `full_name: null` clears it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserPatch = Schema.Struct({
  email: Schema.optionalWith(Email, { exact: true }),
  full_name: Schema.optionalWith(FullName, { exact: true }),
  active: Schema.optionalWith(Schema.Boolean, { exact: true })
}).annotations({ identifier: "UserPatch" })

/**
 * @since 0.1.0
 * @category models
 */
export interface UserPatch extends Schema.Schema.Type<typeof UserPatch> {}

const IntFromString = Schema.compose(
  Schema.String.pipe(Schema.pattern(/^\d{1,9}$/, { message: () => "must be an integer" })),
  Schema.NumberFromString
)

/**
 * The query of `GET /users`: `name` (a substring of the username or full name) and `email`
 * (a substring), both case-insensitive; `active`; `page` from 1 and `page_size` from 1 to 100.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserFilter = Schema.Struct({
  name: Schema.optionalWith(
    Schema.String.pipe(Schema.maxLength(100, { message: () => "must be at most 100 characters" })),
    { exact: true }
  ),
  email: Schema.optionalWith(
    Schema.String.pipe(Schema.maxLength(254, { message: () => "must be at most 254 characters" })),
    { exact: true }
  ),
  active: Schema.optionalWith(
    Schema.BooleanFromString.annotations({ message: () => ({ message: "must be true or false", override: true }) }),
    { exact: true }
  ),
  page: Schema.optionalWith(
    IntFromString.pipe(Schema.greaterThanOrEqualTo(1, { message: () => "must be at least 1" })),
    { exact: true, default: () => 1 }
  ),
  page_size: Schema.optionalWith(
    IntFromString.pipe(Schema.between(1, 100, { message: () => "must be between 1 and 100" })),
    { exact: true, default: () => 10 }
  )
}).annotations({ identifier: "UserFilter" })

/**
 * @since 0.1.0
 * @category models
 */
export interface UserFilter extends Schema.Schema.Type<typeof UserFilter> {}

/**
 * One page of users, and how many match the filter in all.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UserPage = Schema.Struct({
  users: Schema.Array(User),
  page: Schema.Int,
  page_size: Schema.Int,
  total: Schema.Int
}).annotations({ identifier: "UserPage" })

/**
 * @since 0.1.0
 * @category models
 */
export interface UserPage extends Schema.Schema.Type<typeof UserPage> {}
