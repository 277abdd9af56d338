/**
 * The users sandbox's issued OAuth2 tokens, as pure functions over an immutable table (the
 * routes keep it in a `Ref`).
 */

/** @internal */
export interface Issued {
  readonly clientId: string
  readonly scope: string | undefined
  readonly expiresAt: number
}

/** Access token → what it was issued for. @internal */
export type Tokens = ReadonlyMap<string, Issued>

/** How long a token of the built-in endpoint lives. @internal */
export const tokenLifetimeSeconds = 3600

/** The most live tokens kept; the oldest go first. */
const maxTokens = 10_000

/** The table with `token` added, expired tokens dropped and at most {@link maxTokens} kept. @internal */
export const issue = (tokens: Tokens, token: string, issued: Issued, now: number): Tokens =>
  new Map([...tokens].filter(([, entry]) => entry.expiresAt > now).slice(-(maxTokens - 1))).set(token, issued)

/** @internal */
export type Lookup =
  | { readonly _tag: "Live"; readonly issued: Issued }
  | { readonly _tag: "Expired" }
  | { readonly _tag: "Unknown" }

/** What the table says of a bearer token (`undefined`: none was given). @internal */
export const lookup = (tokens: Tokens, token: string | undefined, now: number): Lookup => {
  const found = token === undefined ? undefined : tokens.get(token)
  if (found === undefined) return { _tag: "Unknown" }
  return found.expiresAt > now ? { _tag: "Live", issued: found } : { _tag: "Expired" }
}
