/**
 * `GET /download/{name}`: a file of the upstream, streamed through without being buffered.
 *
 * @since 0.1.0
 */
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Schema from "effect/Schema"
import * as ApiError from "../ApiError.js"

/**
 * A file name: letters, digits, `.`, `_` and `-`, not starting with a dot (no path tricks).
 *
 * @since 0.1.0
 * @category schemas
 */
export const FileName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
    message: () => "must be 1 to 128 of A-Z, a-z, 0-9, '.', '_', '-', not starting with '.'"
  })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export class FilesApi extends HttpApiGroup.make("files")
  .add(
    HttpApiEndpoint.get("download", "/download/:name")
      .setPath(Schema.Struct({ name: FileName }))
      .addSuccess(HttpApiSchema.Uint8Array({ contentType: "application/octet-stream" }))
      .annotate(OpenApi.Summary, "Stream an upstream file, without buffering it")
  )
  .addError(ApiError.UpstreamError)
{}
