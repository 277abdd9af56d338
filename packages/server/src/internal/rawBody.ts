import { Webhooks } from "@liaison/core"
import * as Effect from "effect/Effect"
import type * as http from "node:http"

/**
 * Reads a request body into memory, at most `maxBytes`. Past the limit it fails with
 * `PayloadTooLarge` and stops keeping what arrives, without destroying the socket, so the 413
 * still reaches the client (Node discards the rest of the body once the response ends). The
 * platform's own bounded reader destroys the request instead, and the client gets no answer.
 *
 * @internal
 */
export const readRawBody = (
  incoming: http.IncomingMessage,
  maxBytes: number
): Effect.Effect<Uint8Array, Webhooks.PayloadTooLarge | Webhooks.InvalidPayload> =>
  Effect.async((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const cleanup = () => {
      incoming.off("data", onData)
      incoming.off("end", onEnd)
      incoming.off("error", onError)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBytes) return void chunks.push(chunk)
      cleanup()
      resume(Effect.fail(new Webhooks.PayloadTooLarge({ maxBytes })))
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(new Uint8Array(Buffer.concat(chunks))))
    }
    const onError = () => {
      cleanup()
      resume(Effect.fail(new Webhooks.InvalidPayload({ reason: "the body could not be read" })))
    }
    incoming.on("data", onData)
    incoming.once("end", onEnd)
    incoming.once("error", onError)
    return Effect.sync(cleanup)
  })
