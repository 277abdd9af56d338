/**
 * Safe by default: a server reachable from other machines must not run on secrets everybody has.
 *
 * On a loopback address (the default `HOST`, `127.0.0.1`) the demo's published sandbox secrets are
 * fine: nobody else can reach it. Bound anywhere else, the server refuses to start while any
 * webhook secret, the admin key or the API keys are unset (so the published sandbox value would be used) or set
 * to its published sandbox value — one message listing every problem — unless the operator says
 * `LIAISON_SANDBOX=true` (a public demo that accepts anyone's forged webhooks, on purpose).
 *
 * | variable | default | |
 * |---|---|---|
 * | `LIAISON_SANDBOX` | `false` | allow published sandbox secrets on a non-loopback address |
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as net from "node:net"
import { host } from "./Config.js"
import { demoApiKey, sandboxSecrets } from "./sandbox/secrets.js"

/**
 * The server would listen beyond this machine with secrets anybody can read in the README.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsafeConfiguration extends Schema.TaggedError<UnsafeConfiguration>(
  "@liaison/server/Safety/UnsafeConfiguration"
)("UnsafeConfiguration", {
  host: Schema.String,
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `refusing to listen on ${this.host}, reachable from other machines, with published secrets:\n${
      this.problems.map((problem) => `  - ${problem}`).join("\n")
    }\nSet each of them to a secret of your own, bind HOST=127.0.0.1, or set LIAISON_SANDBOX=true to run a public sandbox on purpose.`
  }
}

const loopback = new net.BlockList()
loopback.addSubnet("127.0.0.0", 8, "ipv4")
loopback.addAddress("::1", "ipv6")

/**
 * Whether a bind address only accepts connections from this machine.
 *
 * @since 0.1.0
 * @category guards
 */
export const isLoopback = (address: string): boolean => {
  const bare = address.replace(/^\[(.*)\]$/, "$1")
  if (bare === "localhost") return true
  const family = net.isIP(bare)
  return family === 4 ? loopback.check(bare, "ipv4") : family === 6 ? loopback.check(bare, "ipv6") : false
}

/** The secrets that protect state or verify webhooks, with their published sandbox values. */
const guarded: ReadonlyArray<readonly [name: string, published: string | undefined]> = [
  ...Object.entries(sandboxSecrets),
  ["ADMIN_API_KEY", undefined],
  ["API_KEYS", demoApiKey]
]

const problemOf = (name: string, published: string | undefined) =>
  Config.map(Config.option(Config.redacted(name)), (value) =>
    Option.match(value, {
      onNone: () =>
        published === undefined
          ? Option.some(`${name} is unset`)
          : Option.some(`${name} is unset, so its published sandbox value would be used`),
      onSome: (secret) =>
        published !== undefined && Redacted.value(secret) === published
          ? Option.some(`${name} is set to its published sandbox value`)
          : Option.none()
    }))

/**
 * What the check reads: where the server binds, the sandbox flag and every problem with a secret.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<{
  readonly host: string
  readonly sandbox: boolean
  readonly problems: ReadonlyArray<string>
}> = Config.all({
  host,
  sandbox: Config.boolean("LIAISON_SANDBOX").pipe(Config.withDefault(false)),
  problems: Config.all(guarded.map(([name, published]) => problemOf(name, published)))
}).pipe(Config.map(({ host, problems, sandbox }) => ({ host, sandbox, problems: problems.flatMap(Option.toArray) })))

/**
 * Fails with {@link UnsafeConfiguration} when the server would listen beyond loopback on
 * published or missing secrets without `LIAISON_SANDBOX=true`. Runs before anything starts.
 *
 * @since 0.1.0
 * @category constructors
 */
export const check: Effect.Effect<void, UnsafeConfiguration | ConfigError.ConfigError> = Effect.flatMap(
  config,
  ({ host, problems, sandbox }) =>
    isLoopback(host) || sandbox || problems.length === 0
      ? Effect.void
      : Effect.fail(new UnsafeConfiguration({ host, problems }))
)
