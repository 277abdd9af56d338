import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, randomUUID } from "node:crypto"
import { StorageError } from "../LiaisonError.js"
import type * as Redis from "../Redis.js"
import type { Token } from "./auth.js"
import { redactText } from "./auth.js"
import { redisScript } from "./redisScript.js"

/**
 * Which token: `id` names it in the store (a hash of the token endpoint, client id, scope and
 * audience), `secret` (the client secret) encrypts it there.
 *
 * @internal
 */
export interface StoreKey {
  readonly id: string
  readonly secret: Redacted.Redacted<string>
}

/** @internal */
export interface RedisStoreOptions {
  readonly lockTtl: Duration.Duration
  readonly pollInterval: Duration.Duration
  /** The first part of every key. */
  readonly prefix: string
}

/** `DEL key` only while it still holds the token whose fingerprint is `ARGV[1]`. */
const deleteIfToken = redisScript(
  `local v = redis.call("GET", KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ":" then return redis.call("DEL", KEYS[1]) end
return 0`
)

/** `DEL key` only while it still holds `ARGV[1]` (a lock released by its owner only). */
const deleteIfValue = redisScript(
  `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`
)

/** A short, one-way name of a token, so a token can be deleted only if it is the one rejected. */
const fingerprint = (token: Redacted.Redacted<string>): string =>
  createHash("sha256").update(Redacted.value(token)).digest("hex").slice(0, 16)

const cipherKey = (key: StoreKey): Buffer =>
  Buffer.from(hkdfSync("sha256", Redacted.value(key.secret), key.id, "liaison auth token store", 32))

/** `<fingerprint>:<base64url(iv | tag | AES-256-GCM ciphertext)>` of `{ t, r }`. */
const seal = (key: Buffer, token: Token): string => {
  const iv = randomBytes(12)
  const cipher = createCipheriv("aes-256-gcm", key, iv)
  const plain = JSON.stringify({ t: Redacted.value(token.accessToken), r: token.refreshAt })
  const sealed = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()])
  return `${fingerprint(token.accessToken)}:${Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString("base64url")}`
}

/** The token in a stored value; `None` for anything that does not open with this key (another secret). */
const open = (key: Buffer, value: string): Option.Option<Token> => {
  try {
    const raw = Buffer.from(value.slice(value.indexOf(":") + 1), "base64url")
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12))
    decipher.setAuthTag(raw.subarray(12, 28))
    const plain = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8")
    const parsed: unknown = JSON.parse(plain)
    if (
      typeof parsed === "object" && parsed !== null && "t" in parsed && typeof parsed.t === "string" &&
      "r" in parsed && typeof parsed.r === "number"
    ) {
      return Option.some({ accessToken: Redacted.make(parsed.t), refreshAt: parsed.r })
    }
    return Option.none()
  } catch {
    return Option.none()
  }
}

const keysOf = (key: StoreKey, prefix: string) => ({
  token: `${prefix}:{auth:${key.id}}:token`,
  lock: `${prefix}:{auth:${key.id}}:lock`
})

/**
 * The token store on Redis, shared by every instance with the same client: a token found
 * there is used; otherwise one instance (holding a short lock) asks the token endpoint and
 * stores the token, encrypted with a key derived from the client secret, expiring when it is
 * due for refresh; the others poll until it is there (or the lock expires). Redis failing
 * (a `StorageError`, store `"auth-tokens"`, logged) fails open: the token is fetched without it.
 *
 * @internal
 */
export const makeRedisTokenStore = (redis: Redis.Service, options: RedisStoreOptions) => {
  const run = <A>(operation: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: (cause) => new StorageError({ store: "auth-tokens", operation, cause }) })
  const degraded = (error: StorageError) =>
    Effect.logWarning("auth token store: Redis failed, the token is fetched without it", redactText(error.message))
  const lockMillis = Duration.toMillis(options.lockTtl)

  const getOrFetch = <E>(key: StoreKey, fetch: Effect.Effect<Token, E>): Effect.Effect<Token, E> => {
    const keys = keysOf(key, options.prefix)
    const aes = cipherKey(key)
    const read: Effect.Effect<Option.Option<Token>, StorageError> = Effect.flatMap(
      Effect.zip(run("GET", () => redis.client.get(keys.token)), Clock.currentTimeMillis),
      ([value, now]) =>
        Effect.succeed(
          value === null ? Option.none() : Option.filter(open(aes, value), (token) => now < token.refreshAt)
        )
    )
    const write = (token: Token) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const ttl = Math.floor(token.refreshAt - now)
        return ttl <= 0 ? Effect.void : run("SET", () => redis.client.set(keys.token, seal(aes, token), "PX", ttl))
      }).pipe(Effect.catchAll(degraded))
    const owned = (owner: string) =>
      fetch.pipe(
        Effect.tap(write),
        Effect.ensuring(
          run("EVALSHA", () => deleteIfValue.run(redis.client, [keys.lock], [owner])).pipe(Effect.ignore)
        )
      )
    const attempt = (deadline: number): Effect.Effect<Token, E | StorageError> =>
      Effect.gen(function*() {
        const found = yield* read
        if (Option.isSome(found)) return found.value
        const owner = randomUUID()
        const locked = yield* run("SET", () => redis.client.set(keys.lock, owner, "PX", lockMillis, "NX"))
        if (locked === "OK") {
          // Someone may have stored a token between the read and the lock.
          const again = yield* read
          if (Option.isSome(again)) {
            yield* run("EVALSHA", () => deleteIfValue.run(redis.client, [keys.lock], [owner])).pipe(Effect.ignore)
            return again.value
          }
          return yield* owned(owner)
        }
        // Another instance is asking; wait for its token, but not past its lock.
        if ((yield* Clock.currentTimeMillis) >= deadline) return yield* fetch
        yield* Effect.sleep(options.pollInterval)
        return yield* attempt(deadline)
      })
    return Effect.flatMap(Clock.currentTimeMillis, (now) =>
      attempt(now + lockMillis).pipe(
        Effect.catchIf(
          (error): error is StorageError => error instanceof StorageError,
          (error) => Effect.zipRight(degraded(error), fetch)
        )
      ))
  }

  const invalidate = (key: StoreKey, token: Token): Effect.Effect<void> =>
    run(
      "EVALSHA",
      () => deleteIfToken.run(redis.client, [keysOf(key, options.prefix).token], [fingerprint(token.accessToken)])
    ).pipe(
      Effect.catchAll(degraded),
      Effect.asVoid
    )

  return { getOrFetch, invalidate }
}
