import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { STATUS_CODES } from "node:http"

/**
 * Every non-2xx answer is `application/problem+json` (RFC 9457): `type`, `title`, `status`,
 * `detail`, plus the members the route's own error carries (`_tag`, `error`, `message`, …) as
 * extension members, and `errors` (field paths) for a body or a parameter that did not decode.
 * A rejected value appears at most as a short preview, and never for a field that holds a
 * secret. Unknown routes, wrong methods and failures no route answered get the same shape.
 * Each carries the request's id as `requestId` (the `x-request-id` response header).
 */

/** Fields whose values never appear in an error, even as a preview. */
const secretField = /pass(word)?|secret|token|api[-_]?key|authorization|credential/i

const previewLength = 40

/**
 * A problem+json body (RFC 9457) for answers written outside the app: the Node server's own
 * client errors and the `503` before the app's handler is attached.
 *
 * @internal
 */
export const problemBody = (status: number, detail: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ type: "about:blank", title: STATUS_CODES[status] ?? "Error", status, detail, ...extra })

/** An issue message with its rejected value bounded, or dropped for a secret field. */
const redactIssue = (path: ReadonlyArray<unknown>, message: string): string => {
  const at = message.search(/,? ?actual /)
  if (at === -1) return message.slice(0, 300)
  const head = message.slice(0, at).slice(0, 300)
  if (path.some((key) => secretField.test(String(key)))) return head
  const actual = message.slice(at).replace(/^,? ?actual /, "")
  return `${head}, actual ${actual.length > previewLength ? `${actual.slice(0, previewLength)}…` : actual}`
}

interface Issue {
  readonly path: ReadonlyArray<unknown>
  readonly message: string
}

const isIssue = (u: unknown): u is Issue =>
  typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" && "path" in u &&
  Array.isArray(u.path)

/** The members of a JSON error body as the problem's extensions, decode issues made safe. */
const extensions = (body: Record<string, unknown>): Record<string, unknown> => {
  if (!Array.isArray(body.issues)) return body
  const issues = body.issues.filter(isIssue).slice(0, 50).map((issue) => ({
    path: issue.path,
    message: redactIssue(issue.path, issue.message)
  }))
  const errors = issues.map((issue) => ({ pointer: `/${issue.path.map(String).join("/")}`, detail: issue.message }))
  const message = issues.map((issue) => `${issue.path.map(String).join(".") || "(body)"}: ${issue.message}`).join("; ")
  return { ...body, issues, errors, message }
}

const readJson = (response: HttpServerResponse.HttpServerResponse): Record<string, unknown> => {
  const body = response.body
  if (body._tag !== "Uint8Array" || !(body.contentType ?? "").includes("json")) return {}
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(body.body))
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? parsed as Record<string, unknown>
      : {}
  } catch {
    return {}
  }
}

/**
 * The problem+json form of an error response; a success, a problem already, or a streamed body
 * passes as it is.
 *
 * @internal
 */
export const toProblem = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  if (response.status < 400 || response.body._tag === "Stream") return response
  // The request id the access log has (set by `observability/Access` before this runs).
  const requestId = response.headers["x-request-id"]
  const tagged = requestId === undefined ? {} : { requestId }
  const contentType = response.body._tag === "Empty" ? undefined : response.body.contentType
  if ((contentType ?? "").startsWith("application/problem+json")) {
    if (requestId === undefined) return response
    const body = JSON.stringify({ ...readJson(response), ...tagged })
    return HttpServerResponse.setBody(response, HttpBody.text(body, "application/problem+json"))
  }
  const title = STATUS_CODES[response.status] ?? "Error"
  const members = extensions(readJson(response))
  const detail = typeof members.message === "string" && members.message !== "" ? members.message : title
  const problem = { type: "about:blank", title, status: response.status, detail, ...members, ...tagged }
  return HttpServerResponse.setBody(response, HttpBody.text(JSON.stringify(problem), "application/problem+json"))
}
