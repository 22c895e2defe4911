// Metadata routes: read, list, and conditionally write the metadata store from any node. Versions
// travel as ETags; `If-Match: <version>` and `If-None-Match: *` are the preconditions.
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { CairnError } from "../../observability/errors.ts";
import { DOES_NOT_EXIST, NONE, asVersion, matchesVersion, type Precondition } from "../../metadata/kv.ts";
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, checkValue, type MetadataApi } from "../../metadata/api.ts";
import { models } from "./models.ts";
import type { AdminDeps } from "./deps.ts";

// Built per app: Elysia normalises the schema objects it is given, so they must not be shared.
function schemas() {
  const Consistency = t.Optional(
    t.Union([t.Literal("linearizable"), t.Literal("stale")], {
      description: "linearizable (default): reflects every write acknowledged before the read; stale: this node's local copy.",
    }),
  );

  const KeyParams = t.Object({ key: t.String({ description: "The key, URL-encoded (`pp_epoch%2F3`)." }) });

  const ConditionalHeaders = t.Object({
    "if-match": t.Optional(t.String({ description: "Write only if the key is at this version." })),
    "if-none-match": t.Optional(t.String({ description: "`*`: write only if the key does not exist." })),
  });
  return { Consistency, KeyParams, ConditionalHeaders };
}

/** Parse If-Match / If-None-Match into a precondition (400 for anything else). */
export function preconditionFrom(headers: { "if-match"?: string; "if-none-match"?: string }): Precondition {
  const ifMatch = headers["if-match"]?.trim();
  const ifNoneMatch = headers["if-none-match"]?.trim();
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    throw new CairnError("METADATA_INVALID_PRECONDITION", "send either If-Match or If-None-Match, not both");
  }
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== "*") throw new CairnError("METADATA_INVALID_PRECONDITION", `If-None-Match must be '*', got '${ifNoneMatch}'`);
    return DOES_NOT_EXIST;
  }
  if (ifMatch !== undefined) {
    const m = /^(?:W\/)?"?([0-9]{1,15})"?$/.exec(ifMatch);
    if (!m || Number(m[1]) < 1) {
      throw new CairnError("METADATA_INVALID_PRECONDITION", `If-Match must be a version number >= 1, got '${ifMatch}'`);
    }
    return matchesVersion(asVersion(Number(m[1])));
  }
  return NONE;
}

export function metadataRoutes(deps: AdminDeps) {
  const store = (): MetadataApi => {
    const m = deps.metadata();
    if (m === undefined) {
      throw new CairnError("CLUSTER_NOT_PROVISIONED", "the metadata store is not available until the cluster is provisioned");
    }
    return m;
  };
  const errors = { 400: "Problem", 503: "Problem", 504: "Problem" } as const;
  const { Consistency, KeyParams, ConditionalHeaders } = schemas();
  return new Elysia({ name: "metadata-routes" })
    .use(models)
    .get(
      "/v1/metadata",
      async ({ query }) =>
        store().list({
          prefix: query.prefix ?? "",
          ...(query.after !== undefined ? { after: query.after } : {}),
          ...(query.limit !== undefined ? { limit: query.limit } : {}),
          consistency: query.consistency ?? "linearizable",
        }),
      {
        query: t.Object({
          prefix: t.Optional(t.String({ description: "Only keys starting with this." })),
          after: t.Optional(t.String({ description: "Cursor: list keys after this one (the `next` of the previous page)." })),
          limit: t.Optional(t.Number({ multipleOf: 1, minimum: 1, maximum: MAX_LIST_LIMIT, description: `Keys per page (default ${DEFAULT_LIST_LIMIT}).` })),
          consistency: Consistency,
        }),
        response: { 200: "MetadataKeyList", ...errors },
        detail: {
          operationId: "listMetadata",
          tags: ["metadata"],
          summary: "List metadata keys and their versions, one page at a time",
          description: "Keys in order. When `next` is not null, pass it as `after` to get the next page.",
        },
      },
    )
    .get(
      "/v1/metadata/:key",
      async ({ params, query, set }) => {
        const v = await store().get(params.key, { consistency: query.consistency ?? "linearizable" });
        if (v === undefined) throw new CairnError("METADATA_NOT_FOUND", `no metadata key '${params.key}'`, { key: params.key });
        set.headers.etag = `"${v.version}"`;
        return { key: params.key, version: v.version, value: v.value };
      },
      {
        params: KeyParams,
        query: t.Object({ consistency: Consistency }),
        response: { 200: "MetadataEntry", 404: "Problem", ...errors },
        detail: { operationId: "getMetadata", tags: ["metadata"], summary: "Read one metadata key (value and version)" },
      },
    )
    .put(
      "/v1/metadata/:key",
      async ({ params, body, headers, set, request }) => {
        const precondition = preconditionFrom(headers);
        checkValue(params.key, body ?? null);
        const size = Number(request.headers.get("content-length") ?? JSON.stringify(body ?? null).length);
        if (size > deps.maxMetadataValueBytes) {
          throw new CairnError(
            "METADATA_VALUE_TOO_LARGE",
            `value of ${size} bytes exceeds metadata-server.max-value-bytes (${deps.maxMetadataValueBytes})`,
            { key: params.key },
          );
        }
        const version = await store().put(params.key, body ?? null, precondition);
        set.headers.etag = `"${version}"`;
        return { key: params.key, version };
      },
      {
        parse: "json",
        params: KeyParams,
        headers: ConditionalHeaders,
        body: Type.Unknown({ description: "Any JSON document." }),
        response: { 200: "MetadataVersion", 404: "Problem", 412: "Problem", 413: "Problem", ...errors },
        detail: {
          operationId: "putMetadata",
          tags: ["metadata"],
          summary: "Write a metadata key (optionally conditional)",
          description:
            "The body is the new JSON value. If-Match: <version> writes only at that version; If-None-Match: * only if the key does not exist. 412 carries `currentVersion`.",
        },
      },
    )
    .delete(
      "/v1/metadata/:key",
      async ({ params, headers }) => ({ key: params.key, version: await store().delete(params.key, preconditionFrom(headers)) }),
      {
        params: KeyParams,
        headers: ConditionalHeaders,
        response: { 200: "MetadataVersion", 404: "Problem", 412: "Problem", ...errors },
        detail: { operationId: "deleteMetadata", tags: ["metadata"], summary: "Delete a metadata key (optionally conditional)" },
      },
    );
}
