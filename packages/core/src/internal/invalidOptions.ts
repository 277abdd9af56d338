import { InvalidOptions } from "../LiaisonError.js"

/**
 * Collects the checks that fail into one `InvalidOptions` (the first): options are validated
 * when a layer is built, with a table that names each field and its rule.
 *
 * @internal
 */
export const check = (
  checks: ReadonlyArray<readonly [ok: boolean, option: string, reason: string]>
): InvalidOptions | undefined => {
  const failed = checks.find(([ok]) => !ok)
  return failed === undefined ? undefined : new InvalidOptions({ option: failed[1], reason: failed[2] })
}
