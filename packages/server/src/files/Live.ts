/**
 * The handler of `FilesApi.FilesApi`.
 *
 * @since 0.1.0
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Api } from "../Api.js"
import * as ApiError from "../ApiError.js"
import { Upstream } from "../users/Upstream.js"

/**
 * `GET /download/{name}` answers as soon as the upstream's headers arrive and passes the body
 * through chunk by chunk: nothing is buffered, and the upstream connection (held by the request's
 * scope) is released once the body is sent.
 *
 * @since 0.1.0
 * @category layers
 */
export const FilesLive: Layer.Layer<HttpApiGroup.ApiGroup<"liaison", "files">, never, Upstream> = HttpApiBuilder.group(
  Api,
  "files",
  (handlers) =>
    Effect.map(Upstream, (upstream) =>
      handlers.handle("download", ({ path }) =>
        upstream.download(path.name).pipe(
          Effect.map((file) =>
            HttpServerResponse.stream(
              file.stream.pipe(
                // The status is sent by now: all that is left is to cut the body short, and say why.
                Stream.tapError((error) => Effect.logWarning("download broke off", error.message))
              ),
              {
                contentType: file.contentType,
                ...Option.match(file.contentLength, {
                  onNone: () => ({}),
                  onSome: (contentLength) => ({ contentLength })
                })
              }
            )
          ),
          ApiError.mapUpstream
        )))
)
