/**
 * The fake SendGrid mail send as one pure transition per request, checked and answered the way
 * https://api.sendgrid.com does (https://www.twilio.com/docs/sendgrid/api-reference/mail-send,
 * …/mail-send/errors, …/limitations):
 *
 * - `Authorization: Bearer SG.<id>.<secret>`; missing → 401 `authorization required`, malformed or
 *   unknown → 401 `The provided authorization grant is invalid, expired, or revoked`;
 * - `Content-Type: application/json` (else 415), a body of at most 30 MiB (else 413), JSON (else 400);
 * - the payload rules, each a 400 `{ errors: [{ message, field, help }] }` with SendGrid's wording:
 *   1 to 1000 personalizations, each with a `to`; valid addresses; 1000 recipients in all; an address
 *   at most once across to/cc/bcc; `from`; `subject` (unless every personalization has one);
 *   `content` with non-empty values, `text/plain` first then `text/html`; attachments in base64 with
 *   a filename (`content_id` when inline); at most 10 unique categories of up to 255 characters;
 *   `custom_args` under 10,000 bytes; `send_at` at most 72 hours ahead; no reserved headers;
 * - 202 with an `X-Message-Id` (the message goes to the outbox), or, in sandbox mode
 *   (`mail_settings.sandbox_mode.enable`), 200 and nothing sent;
 * - the Cancel Scheduled Sends API (…/cancel-scheduled-sends): `POST /v3/mail/batch` (201
 *   `{ batch_id }`), `GET /v3/mail/batch/{id}`, `POST /v3/user/scheduled_sends`
 *   `{ batch_id, status: pause | cancel }` (201; at most 10 at a time), `GET` the list,
 *   `DELETE /v3/user/scheduled_sends/{id}` (204, resumed).
 */
import type * as HttpServerError from "@effect/platform/HttpServerError"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Delivered, FakeSendGridOptions } from "../SendGrid.js"
import type { Answer, RecordedRequest, Served } from "./serve.js"
import { randomId, serve } from "./serve.js"

interface ErrorEntry {
  readonly message: string
  readonly field: string | null
  readonly help: string | null
}

const helpUrl = (field: string) =>
  `http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.${field.replace(/\.\d+/g, "")}`

const entry = (message: string, field: string | null): ErrorEntry => ({
  message,
  field,
  help: field === null ? null : helpUrl(field)
})

const errors = (status: number, ...entries: ReadonlyArray<ErrorEntry>): Answer => ({
  status,
  body: { errors: entries }
})

const keyShape = /^SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}$/
const emailShape = /^[^\s@<>,;"()[\]]+@[^\s@<>,;"()[\]]+\.[^\s@<>,;"()[\]]+$/
const base64Shape = /^[A-Za-z0-9+/]+={0,2}$/
const reservedHeaders = [
  "x-sg-id",
  "x-sg-eid",
  "received",
  "dkim-signature",
  "content-type",
  "content-transfer-encoding",
  "to",
  "from",
  "subject",
  "reply-to",
  "cc",
  "bcc"
]

type Json = Readonly<Record<string, unknown>>

const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)
const isNonEmptyString = (u: unknown): u is string => typeof u === "string" && u.length > 0

/** Checks one address object; `kind` is `to`, `cc`, `bcc`, `from` or `reply_to`. */
const checkAddress = (value: unknown, field: string, kind: string): ErrorEntry | undefined => {
  if (!isObject(value) || typeof value.email !== "string") {
    return entry(
      `Each ${kind} object must at least have an email address and may also contain a name. e.g. ` +
        `{"email": "example@example.com"} or {"email": "example@example.com", "name": "Example Recipient"}`,
      field
    )
  }
  if (!emailShape.test(value.email)) return entry("Does not contain a valid address.", `${field}.email`)
  if (value.name !== undefined && (typeof value.name !== "string" || /[;,]/.test(value.name))) {
    return entry(
      "The to.name, cc.name, and bcc.name personalizations cannot include either the ; or , characters.",
      `${field}.name`
    )
  }
  return undefined
}

/** The personalization rules; returns the first broken one. */
const checkPersonalizations = (value: unknown, nowMillis: number): ErrorEntry | undefined => {
  if (!Array.isArray(value)) {
    return entry(
      "The personalizations field is required and must have at least one personalization.",
      "personalizations"
    )
  }
  if (value.length === 0) return entry("You must have at least one personalization.", "personalizations")
  if (value.length > 1000) {
    return entry(
      `The personalization block is limited to 1000 personalizations per API request. You have provided ${value.length} ` +
        "personalizations. Please consider splitting this into multiple requests and resending your request.",
      "personalizations"
    )
  }
  // Every address once across the request: `seen` ends up holding every recipient.
  const seen = new Set<string>()
  for (const [index, personalization] of value.entries()) {
    const problem = checkPersonalization(personalization, `personalizations.${index}`, seen, nowMillis)
    if (problem !== undefined) return problem
  }
  if (seen.size > 1000) {
    return entry("There is a limit of 1000 total recipients (to + cc + bcc) per request.", "personalizations")
  }
  return undefined
}

/** One personalization: its recipients (each added to `seen`, a repeat refused), `send_at`, `custom_args`. */
const checkPersonalization = (
  personalization: unknown,
  at: string,
  seen: Set<string>,
  nowMillis: number
): ErrorEntry | undefined => {
  if (!isObject(personalization) || !Array.isArray(personalization.to) || personalization.to.length === 0) {
    return entry("The to parameter is required for all personalization objects.", `${at}.to`)
  }
  for (const kind of ["to", "cc", "bcc"] as const) {
    const list = personalization[kind]
    if (list === undefined) continue
    if (!Array.isArray(list)) return entry(`The ${kind} parameter must be an array.`, `${at}.${kind}`)
    for (const [position, address] of list.entries()) {
      const problem = checkAddress(address, `${at}.${kind}.${position}`, kind)
      if (problem !== undefined) return problem
      const email = String(address.email).toLowerCase()
      if (seen.has(email)) {
        return entry(
          "Each email address in the personalization block should be unique between to, cc, and bcc. We found " +
            `the first duplicate instance of [${email}] in the ${at}.${kind} field.`,
          `${at}.${kind}`
        )
      }
      seen.add(email)
    }
  }
  return checkSendAt(personalization.send_at, `${at}.send_at`, nowMillis) ??
    checkCustomArgs(personalization.custom_args, `${at}.custom_args`)
}

const checkSendAt = (value: unknown, field: string, nowMillis: number): ErrorEntry | undefined => {
  if (value === undefined) return undefined
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return entry("The send_at parameter must be a unix timestamp (an integer).", field)
  }
  if (value * 1000 - nowMillis > 72 * 3600 * 1000) {
    return entry("The send_at parameter cannot be scheduled more than 72 hours in advance.", field)
  }
  return undefined
}

const checkCustomArgs = (value: unknown, field: string): ErrorEntry | undefined => {
  if (value === undefined) return undefined
  if (!isObject(value) || !Object.values(value).every((arg) => typeof arg === "string")) {
    return entry("The custom_args field must be an object of string values.", field)
  }
  if (Buffer.byteLength(JSON.stringify(value)) >= 10_000) {
    return entry("The custom_args field must be less than 10000 bytes.", field)
  }
  return undefined
}

const checkContent = (value: unknown, template: boolean): ErrorEntry | undefined => {
  if (value === undefined && template) return undefined
  if (!Array.isArray(value) || value.length === 0) {
    return entry(
      "Unless a valid template_id is provided, the content parameter is required. There must be at least one " +
        "defined content block. We typically suggest both text/plain and text/html blocks are included, but only " +
        "one block is required.",
      "content"
    )
  }
  for (const [index, block] of value.entries()) {
    if (!isObject(block) || !isNonEmptyString(block.type)) {
      return entry("The content type must be a string at least one character in length.", `content.${index}.type`)
    }
    if (!isNonEmptyString(block.value)) {
      return entry("The content value must be a string at least one character in length.", `content.${index}.value`)
    }
  }
  const types = value.map((block) => (block as Json).type as string)
  const rank = (type: string) => type === "text/plain" ? 0 : type === "text/html" ? 1 : 2
  const ordered = types.every((type, index) => index === 0 || rank(types[index - 1] as string) <= rank(type))
  const once = ["text/plain", "text/html"].every((type) => types.filter((t) => t === type).length <= 1)
  if (!once) return entry("If present, text/plain and text/html may only be provided once.", "content")
  if (!ordered) {
    return entry(
      "If present, text/plain must be first, followed by text/html, followed by any other content.",
      "content"
    )
  }
  return undefined
}

const checkAttachments = (value: unknown): ErrorEntry | undefined => {
  if (value === undefined) return undefined
  if (!Array.isArray(value)) return entry("The attachments parameter must be an array.", "attachments")
  for (const [index, attachment] of value.entries()) {
    const at = `attachments.${index}`
    if (!isObject(attachment)) return entry("Each attachment must be an object.", at)
    const content = attachment.content
    if (!isNonEmptyString(content) || !base64Shape.test(content) || content.length % 4 !== 0) {
      return entry("The attachment content must be base64 encoded.", `${at}.content`)
    }
    if (!isNonEmptyString(attachment.filename)) {
      return entry("The attachment filename parameter is required.", `${at}.filename`)
    }
    const disposition = attachment.disposition
    if (disposition !== undefined && disposition !== "inline" && disposition !== "attachment") {
      return entry(
        "The disposition of your attachment can be either \"inline\" or \"attachment\".",
        `${at}.disposition`
      )
    }
    if (disposition === "inline" && !isNonEmptyString(attachment.content_id)) {
      return entry("The content_id parameter is required if the disposition is set to \"inline\".", `${at}.content_id`)
    }
  }
  return undefined
}

const checkCategories = (value: unknown): ErrorEntry | undefined => {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || !value.every((category) => typeof category === "string")) {
    return entry("The categories parameter must be an array of strings.", "categories")
  }
  if (value.length > 10) return entry("You may not have more than 10 categories per request.", "categories")
  if (value.some((category: string) => category.length > 255)) {
    return entry("A category cannot be more than 255 characters.", "categories")
  }
  if (new Set(value).size !== value.length) return entry("The categories must be unique.", "categories")
  return undefined
}

const checkHeaders = (value: unknown): ErrorEntry | undefined => {
  if (value === undefined) return undefined
  if (!isObject(value)) return entry("The headers parameter must be an object.", "headers")
  const reserved = Object.keys(value).find((name) => reservedHeaders.includes(name.toLowerCase()))
  return reserved === undefined ? undefined : entry(
    `The header ${reserved} is reserved and cannot be set: x-sg-id, x-sg-eid, received, dkim-signature, ` +
      "Content-Type, Content-Transfer-Encoding, To, From, Subject, Reply-To, CC, BCC.",
    "headers"
  )
}

/** Every payload rule, in SendGrid's order; the first broken one. */
const checkPayload = (payload: Json, nowMillis: number): ErrorEntry | undefined => {
  const personalizations = payload.personalizations
  const template = isNonEmptyString(payload.template_id)
  const everyHasSubject = Array.isArray(personalizations) && personalizations.length > 0 &&
    personalizations.every((personalization) => isObject(personalization) && isNonEmptyString(personalization.subject))
  return checkPersonalizations(personalizations, nowMillis) ??
    (payload.from === undefined
      ? entry(
        "The from object must be provided for every email send. It is an object that requires the email " +
          "parameter, but may also contain a name parameter.",
        "from"
      )
      : checkAddress(payload.from, "from", "from")) ??
    (payload.reply_to === undefined ? undefined : checkAddress(payload.reply_to, "reply_to", "reply_to")) ??
    (payload.reply_to !== undefined && payload.reply_to_list !== undefined
      ? entry("The reply_to and reply_to_list properties are mutually exclusive.", "reply_to_list")
      : undefined) ??
    (!isNonEmptyString(payload.subject) && !everyHasSubject && !template
      ? entry(
        "The subject is required. You can get around this requirement if you use a template with a subject " +
          "defined or if every personalization has a subject defined.",
        "subject"
      )
      : undefined) ??
    checkContent(payload.content, template) ??
    checkAttachments(payload.attachments) ??
    checkCategories(payload.categories) ??
    checkCustomArgs(payload.custom_args, "custom_args") ??
    checkSendAt(payload.send_at, "send_at", nowMillis) ??
    checkHeaders(payload.headers)
}

const isSandbox = (payload: Json): boolean => {
  const settings = payload.mail_settings
  if (!isObject(settings) || !isObject(settings.sandbox_mode)) return false
  return settings.sandbox_mode.enable === true
}

/** A batch's scheduled-send status: none yet, paused or cancelled. @internal */
export type BatchStatus = "scheduled" | "pause" | "cancel"

/** The fake's state: the messages accepted with 202 (oldest first) and the batch ids. @internal */
export interface State {
  readonly outbox: ReadonlyArray<Delivered>
  readonly batches: ReadonlyMap<string, BatchStatus>
}

/** What a transition needs from outside. @internal */
export interface Env {
  /** The time, for `send_at`: read only for a request that gets that far. */
  readonly now: () => number
  readonly randomId: (length: number) => string
}

/** The bearer key, checked before anything else. */
const unauthorized = (request: RecordedRequest, expectedKey: string | undefined): Answer | undefined => {
  const authorization = request.headers.authorization
  if (authorization === undefined || authorization === "") {
    return errors(401, entry("authorization required", null))
  }
  const key = /^Bearer (.+)$/i.exec(authorization)?.[1]?.trim() ?? ""
  return !keyShape.test(key) || (expectedKey !== undefined && key !== expectedKey)
    ? errors(401, entry("The provided authorization grant is invalid, expired, or revoked", null))
    : undefined
}

const notJson = (request: RecordedRequest): Answer | undefined => {
  const contentType = (request.headers["content-type"] ?? "").split(";", 1)[0]?.trim().toLowerCase()
  return contentType === "application/json"
    ? undefined
    : errors(415, entry("Content-Type should be application/json.", null))
}

const parseJson = (text: string): Json | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return isObject(value) ? value : undefined
  } catch {
    return undefined
  }
}

type Transition = readonly [Answer, State]

/** `POST /v3/mail/send`. */
const mailSend = (state: State, request: RecordedRequest, env: Env): Transition => {
  const refused = notJson(request)
  if (refused !== undefined) return [refused, state]
  const payload = parseJson(request.body)
  if (payload === undefined) return [errors(400, entry("Bad Request", null)), state]
  const problem = checkPayload(payload, env.now())
  if (problem !== undefined) return [errors(400, problem), state]
  if (isSandbox(payload)) return [{ status: 200 }, state]
  const messageId = env.randomId(22)
  return [
    { status: 202, headers: { "x-message-id": messageId } },
    { ...state, outbox: [...state.outbox, { messageId, payload }] }
  ]
}

const invalidBatch = (batchId: unknown): Answer =>
  errors(400, entry(`invalid batch id: ${String(batchId)}`, "batch_id"))

/** `POST /v3/user/scheduled_sends` `{ batch_id, status: "pause" | "cancel" }`. */
const scheduleStatus = (state: State, request: RecordedRequest): Transition => {
  const refused = notJson(request)
  if (refused !== undefined) return [refused, state]
  const body = parseJson(request.body)
  if (body === undefined) return [errors(400, entry("Bad Request", null)), state]
  const batchId = body.batch_id
  if (typeof batchId !== "string" || !state.batches.has(batchId)) return [invalidBatch(batchId), state]
  if (body.status !== "pause" && body.status !== "cancel") {
    return [errors(400, entry("status must be either pause or cancel", "status")), state]
  }
  if (state.batches.get(batchId) !== "scheduled") {
    return [errors(400, entry("batch id already has a status: update or delete it", "batch_id")), state]
  }
  const active = [...state.batches.values()].filter((status) => status !== "scheduled").length
  if (active >= 10) {
    return [errors(400, entry("max limit reached: at most 10 paused or cancelled batches", null)), state]
  }
  return [
    { status: 201, body: { batch_id: batchId, status: body.status } },
    { ...state, batches: new Map([...state.batches, [batchId, body.status]]) }
  ]
}

/** The batch routes: create and validate an id; pause, cancel, list and resume scheduled sends. */
const batchRoutes = (state: State, request: RecordedRequest, env: Env): Transition | undefined => {
  const { method, path } = request
  if (method === "POST" && path === "/v3/mail/batch") {
    const batchId = env.randomId(32)
    return [{ status: 201, body: { batch_id: batchId } }, {
      ...state,
      batches: new Map([...state.batches, [batchId, "scheduled"]])
    }]
  }
  const id = decodeURIComponent(/^\/v3\/(?:mail\/batch|user\/scheduled_sends)\/([^/]+)$/.exec(path)?.[1] ?? "")
  if (method === "GET" && path.startsWith("/v3/mail/batch/")) {
    return [state.batches.has(id) ? { status: 200, body: { batch_id: id } } : invalidBatch(id), state]
  }
  if (method === "POST" && path === "/v3/user/scheduled_sends") return scheduleStatus(state, request)
  if (method === "GET" && path === "/v3/user/scheduled_sends") {
    const listed = [...state.batches].filter(([, status]) => status !== "scheduled")
    return [{ status: 200, body: listed.map(([batchId, status]) => ({ batch_id: batchId, status })) }, state]
  }
  if (method === "DELETE" && path.startsWith("/v3/user/scheduled_sends/")) {
    const status = state.batches.get(id)
    return status === undefined || status === "scheduled"
      ? [errors(404, entry("not found", null)), state]
      : [{ status: 204 }, { ...state, batches: new Map([...state.batches, [id, "scheduled"]]) }]
  }
  return undefined
}

/**
 * One request: its answer and the next state.
 *
 * @internal
 */
export const transition = (
  state: State,
  request: RecordedRequest,
  env: Env,
  expectedKey: string | undefined
): Transition => {
  const denied = unauthorized(request, expectedKey)
  if (denied !== undefined) return [denied, state]
  if (request.path === "/v3/mail/send") {
    return request.method === "POST"
      ? mailSend(state, request, env)
      : [errors(405, entry("method not allowed", null)), state]
  }
  return batchRoutes(state, request, env) ?? [errors(404, entry("not found", null)), state]
}

/**
 * The fake for the life of the scope.
 *
 * @internal
 */
export const serveSendGrid = (
  options: FakeSendGridOptions
): Effect.Effect<Served<State>, HttpServerError.ServeError, Scope.Scope> => {
  const env: Env = { now: options.now ?? Date.now, randomId }
  return serve<State>({
    host: options.host,
    port: options.port,
    maxBodyBytes: 30 * 1024 * 1024,
    tooLarge: errors(413, entry("content too large", null)),
    commonHeaders: () => ({}),
    initial: { outbox: [], batches: new Map() },
    transition: (state, request) => transition(state, request, env, options.apiKey)
  })
}
