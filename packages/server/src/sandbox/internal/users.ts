/**
 * The users sandbox's table: pure functions over an immutable state (each write returns the
 * result and the next state), and a store that applies each one with a single `Ref.modify`, so
 * that a check (exists? taken?) and its change are atomic.
 */
import * as Arr from "effect/Array"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type { NewUser, User, UserFilter, UserPage, UserPatch, UserReplace } from "../../users/Users.js"

interface State {
  readonly users: ReadonlyMap<number, User>
  readonly nextId: number
}

/** Why a write was refused. @internal */
export type WriteError =
  | { readonly _tag: "NotFound"; readonly id: number }
  | { readonly _tag: "UsernameTaken"; readonly username: string }

type Written = readonly [Either.Either<User, WriteError>, State]

/** The sandbox's in-memory users table. @internal */
export interface UsersStore {
  readonly list: (filter: UserFilter) => Effect.Effect<UserPage>
  readonly get: (id: number) => Effect.Effect<Option.Option<User>>
  readonly create: (input: NewUser) => Effect.Effect<Either.Either<User, WriteError>>
  readonly replace: (id: number, input: UserReplace) => Effect.Effect<Either.Either<User, WriteError>>
  readonly update: (id: number, input: UserPatch) => Effect.Effect<Either.Either<User, WriteError>>
  readonly remove: (id: number) => Effect.Effect<boolean>
}

const seedEpoch = DateTime.unsafeMake("2024-01-01T00:00:00Z")

/**
 * `count` predictable users: `user01`…, every 7th without a full name, every 5th inactive,
 * one day apart from 2024-01-01.
 *
 * @internal
 */
export const seedUsers = (count: number): Array<User> =>
  Arr.makeBy(count, (index) => {
    const id = index + 1
    const tag = String(id).padStart(2, "0")
    return {
      id,
      username: `user${tag}`,
      email: `user${tag}@example.com`,
      full_name: id % 7 === 0 ? null : `User ${tag}`,
      active: id % 5 !== 0,
      created_at: DateTime.add(seedEpoch, { days: index })
    }
  })

const includes = (haystack: string | null, needle: string) =>
  haystack !== null && haystack.toLowerCase().includes(needle.toLowerCase())

const matches = (filter: UserFilter) => (user: User): boolean =>
  (filter.name === undefined || includes(user.username, filter.name) || includes(user.full_name, filter.name)) &&
  (filter.email === undefined || includes(user.email, filter.email)) &&
  (filter.active === undefined || user.active === filter.active)

const list = (state: State, filter: UserFilter): UserPage => {
  const found = Array.from(state.users.values()).filter(matches(filter)).sort((a, b) => a.id - b.id)
  const start = (filter.page - 1) * filter.page_size
  return {
    users: found.slice(start, start + filter.page_size),
    page: filter.page,
    page_size: filter.page_size,
    total: found.length
  }
}

const put = (state: State, user: User, nextId = state.nextId): Written => [
  Either.right(user),
  { users: new Map(state.users).set(user.id, user), nextId }
]

const create = (state: State, input: NewUser, now: DateTime.Utc): Written => {
  const taken = Array.from(state.users.values()).some((user) => user.username === input.username)
  if (taken) return [Either.left({ _tag: "UsernameTaken", username: input.username }), state]
  // The sandbox has no logins: the password is validated, then dropped.
  const user: User = {
    id: state.nextId,
    username: input.username,
    email: input.email,
    full_name: input.full_name ?? null,
    active: true,
    created_at: now
  }
  return put(state, user, state.nextId + 1)
}

const modify = (state: State, id: number, f: (user: User) => User): Written => {
  const user = state.users.get(id)
  return user === undefined ? [Either.left({ _tag: "NotFound", id }), state] : put(state, f(user))
}

const replace = (input: UserReplace) => (user: User): User => ({
  ...user,
  email: input.email,
  full_name: input.full_name,
  active: input.active
})

const patch = (input: UserPatch) => (user: User): User => ({
  ...user,
  ...(input.email === undefined ? {} : { email: input.email }),
  ...(input.full_name === undefined ? {} : { full_name: input.full_name }),
  ...(input.active === undefined ? {} : { active: input.active })
})

const remove = (state: State, id: number): readonly [boolean, State] => {
  if (!state.users.has(id)) return [false, state]
  const users = new Map(state.users)
  users.delete(id)
  return [true, { ...state, users }]
}

/** @internal */
export const makeUsersStore = (seed: ReadonlyArray<User>): Effect.Effect<UsersStore> =>
  Effect.map(
    Ref.make<State>({ users: new Map(seed.map((user) => [user.id, user])), nextId: seed.length + 1 }),
    (ref): UsersStore => ({
      list: (filter) => Effect.map(Ref.get(ref), (state) => list(state, filter)),
      get: (id) => Effect.map(Ref.get(ref), (state) => Option.fromNullable(state.users.get(id))),
      create: (input) => Effect.flatMap(DateTime.now, (now) => Ref.modify(ref, (state) => create(state, input, now))),
      replace: (id, input) => Ref.modify(ref, (state) => modify(state, id, replace(input))),
      update: (id, input) => Ref.modify(ref, (state) => modify(state, id, patch(input))),
      remove: (id) => Ref.modify(ref, (state) => remove(state, id))
    })
  )
