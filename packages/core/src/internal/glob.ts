/**
 * Redis glob patterns (`SCAN … MATCH`, `PSUBSCRIBE`) evaluated in memory with Redis' own rules, so
 * that the memory tier of a cache invalidates exactly the keys the Redis tier does.
 *
 * - `*` any run of characters, `?` any one character;
 * - `[abc]`, `[a-z]` (bounds in either order), `[^…]` negated; `\` escapes inside a class too; a class
 *   left open runs to the end of the pattern;
 * - `\x` is a literal `x` (a trailing `\` is a literal backslash);
 * - case-sensitive; compared by UTF-16 code unit (Redis compares bytes: the two agree on ASCII).
 *
 * Not exported by the package (it is under `internal/`), but not marked internal either: the
 * property tests import it.
 */

/** Escapes `*`, `?`, `[`, `]`, `^`, `-` and `\` so that `text` matches only itself. */
export const escapeGlob = (text: string): string => text.replace(/[*?[\]\\^-]/g, "\\$&")

/** Matches a bracket class starting just after `[` at `p`; returns whether `c` is in it and where the class ends. */
const matchClass = (pattern: string, start: number, c: string): { readonly match: boolean; readonly end: number } => {
  let p = start
  const negated = pattern[p] === "^"
  if (negated) p++
  let match = false
  for (;;) {
    const left = pattern.length - p
    if (pattern[p] === "\\" && left >= 2) {
      p++
      if (pattern[p] === c) match = true
    } else if (pattern[p] === "]") {
      break
    } else if (left <= 0) {
      // An open class runs to the end of the pattern.
      p--
      break
    } else if (left >= 3 && pattern[p + 1] === "-") {
      let lo = pattern.charCodeAt(p)
      let hi = pattern.charCodeAt(p + 2)
      if (lo > hi) [lo, hi] = [hi, lo]
      const code = c.charCodeAt(0)
      if (code >= lo && code <= hi) match = true
      p += 2
    } else if (pattern[p] === c) {
      match = true
    }
    p++
  }
  return { match: negated ? !match : match, end: p }
}

interface Cursor {
  /** Set once a `*` has tried every suffix: longer prefixes of `text` cannot match either. */
  skipLonger: boolean
}

const matchFrom = (pattern: string, p0: number, text: string, t0: number, cursor: Cursor): boolean => {
  let p = p0
  let t = t0
  while (p < pattern.length && t < text.length) {
    const ch = pattern[p]
    if (ch === "*") {
      while (pattern[p + 1] === "*") p++
      if (p === pattern.length - 1) return true
      for (; t < text.length; t++) {
        if (matchFrom(pattern, p + 1, text, t, cursor)) return true
        if (cursor.skipLonger) return false
      }
      cursor.skipLonger = true
      return false
    } else if (ch === "?") {
      t++
    } else if (ch === "[") {
      const { end, match } = matchClass(pattern, p + 1, text[t] ?? "")
      if (!match) return false
      p = end
      t++
    } else {
      if (ch === "\\" && pattern.length - p >= 2) p++
      if (pattern[p] !== text[t]) return false
      t++
    }
    p++
    if (t === text.length) {
      while (pattern[p] === "*") p++
      break
    }
  }
  return p >= pattern.length && t === text.length
}

/** Whether `text` matches the Redis glob `pattern`. */
export const matchGlob = (pattern: string, text: string): boolean =>
  matchFrom(pattern, 0, text, 0, { skipLonger: false })
