import * as Either from "effect/Either"
import { XMLParser, XMLValidator } from "fast-xml-parser"

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  parseTagValue: false,
  parseAttributeValue: false,
  // keep entity expansion off: a hostile upstream must not make us expand entities
  processEntities: false
})

/**
 * Parses a well-formed XML document into plain objects; values stay strings so the
 * caller's Schema decides their types. Malformed input is a `Left` with the reason.
 *
 * @internal
 */
export const parseXml = (text: string): Either.Either<unknown, string> => {
  const valid = XMLValidator.validate(text)
  if (valid !== true) return Either.left(`${valid.err.msg} (line ${valid.err.line})`)
  try {
    return Either.right(parser.parse(text) as unknown)
  } catch (cause) {
    return Either.left(cause instanceof Error ? cause.message : String(cause))
  }
}
