// Every schema of the admin API, registered once as a named model so the OpenAPI document has
// `components.schemas` entries (and generated clients get named types). Routes refer to them by name.
import { Elysia } from "elysia";
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { ConfigSchema } from "../../config/index.ts";
import { NODE_STATES, ROLES, StringEnum } from "../../ids/index.ts";
import { MetadataServerStatusSchema } from "../../metadata/rpc.ts";

export const Problem = Type.Object(
  {
    type: Type.String({ description: "A URI naming the error code." }),
    title: Type.String({ description: "What went wrong, in general terms." }),
    status: Type.Integer({ description: "The HTTP status code." }),
    code: Type.String({ description: "Stable cairn error code, `CAIRN-<AREA>-<NNNN>` (see docs/errors.md).", examples: ["CAIRN-API-0001"] }),
    detail: Type.String({ description: "What went wrong in this request." }),
    hint: Type.String({ description: "What to do about it." }),
  },
  { additionalProperties: true, description: "An RFC 9457 problem document with cairn's error code and hint." },
);
export type ProblemBody = Static<typeof Problem>;

export const Health = Type.Object({ status: Type.Literal("ok") }, { description: "The process is alive." });
export const Readiness = Type.Object(
  {
    ready: Type.Boolean(),
    state: Type.String({ description: "The node lifecycle state." }),
    reasons: Type.Array(Type.String(), { description: "Why the node is not ready (empty when ready)." }),
  },
  { description: "Whether the node serves its roles." },
);

export const Version = Type.Object(
  {
    version: Type.String({ examples: ["0.1.0"] }),
    commit: Type.String({ description: "Git commit the binary was built from; `dev` when run from source." }),
    runtime: Type.String({ examples: ["bun 1.4.5"] }),
  },
  { description: "Build identity of the cairn binary." },
);

export const NodeInfo = Type.Object(
  {
    name: Type.String({ description: "The node's unique name." }),
    id: Type.Union([Type.String({ pattern: "^N[0-9]+$" }), Type.Null()], {
      description: "The id assigned when the node registered with the cluster (`N<id>`); null before.",
    }),
    generation: Type.Integer({ minimum: 1, description: "Grows on every start of this node." }),
    cluster: Type.Object({
      name: Type.String(),
      fingerprint: Type.Union([Type.String(), Type.Null()], { description: "Null until the cluster is provisioned." }),
    }),
    roles: Type.Array(StringEnum(ROLES)),
    lifecycle: Type.Object({
      state: StringEnum(NODE_STATES),
      reason: Type.String(),
      sinceMs: Type.Integer({ description: "When the node entered this state (Unix ms)." }),
    }),
    addresses: Type.Object({
      admin: Type.String({ description: "Admin API URL." }),
      fabric: Type.String({ description: "Peer fabric address (HTTP/2 cleartext)." }),
      ingress: Type.Union([Type.String(), Type.Null()]),
    }),
    dataDir: Type.String(),
    pid: Type.Integer(),
    startedAtMs: Type.Integer(),
    version: Type.String(),
  },
  { description: "Identity, roles and lifecycle of one node." },
);

export const MetadataEntry = Type.Object(
  {
    key: Type.String(),
    version: Type.Integer({ minimum: 1, description: "Assigned by the store: previous version + 1." }),
    value: Type.Unknown({ description: "The stored JSON document." }),
  },
  { description: "A metadata key with its value and version." },
);

export const MetadataVersion = Type.Object(
  {
    key: Type.String(),
    version: Type.Integer({ minimum: 1 }),
  },
  { description: "A metadata key and its version." },
);

export const MetadataKeyList = Type.Object(
  {
    keys: Type.Array(MetadataVersion),
    next: Type.Union([Type.String(), Type.Null()], { description: "Cursor of the next page (pass as `after`); null on the last page." }),
  },
  { description: "One page of metadata keys with their versions, sorted by key." },
);

export const ClusterInfo = Type.Object(
  {
    name: Type.String(),
    fingerprint: Type.String({ description: "Random id chosen at provisioning; peers of another cluster are refused." }),
    provisionedAtMs: Type.Integer(),
    numPartitions: Type.Integer({ minimum: 1 }),
    replication: Type.Integer({ minimum: 1, description: "Default replication of logs and partitions (the current setting)." }),
    settings: Type.Optional(
      Type.Object({
        replication: Type.Integer({ minimum: 1 }),
        nodesetSize: Type.Integer({ minimum: 0 }),
      }, { description: "Settings changed after provisioning (`PATCH /v1/cluster/config`); absent until the first change." }),
    ),
  },
  { description: "The cluster's identity and provisioning settings." },
);

export const ProvisionRequest = Type.Object(
  {
    numPartitions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: "Fixed for the cluster's lifetime. Default 8." })),
    replication: Type.Optional(Type.Integer({ minimum: 1, maximum: 9, description: "Default replication of logs and partitions. Default: what the cluster's size allows (1 for one or two log-server nodes, 2 for three or four, 3 from five); at provisioning only the provisioning node is registered, so 1, as before." })),
  },
  { description: "Parameters of a new cluster.", additionalProperties: false },
);

/**
 * Make every object schema closed unless it says otherwise. Elysia closes response objects itself
 * when an app first uses them (mutating the shared schema); doing it up front keeps the published
 * document the same whether or not an app has run.
 */
export function closed<T extends Record<string, TSchema>>(models: T): T {
  const visit = (s: TSchema): void => {
    if (s.type === "object" && s.properties !== undefined) {
      if (s.additionalProperties === undefined) (s as { additionalProperties?: boolean }).additionalProperties = false;
      for (const p of Object.values(s.properties as Record<string, TSchema>)) visit(p);
    }
    if (s.type === "array" && s.items !== undefined) visit(s.items as TSchema);
    for (const k of ["anyOf", "allOf", "oneOf"] as const) for (const sub of (s[k] as TSchema[] | undefined) ?? []) visit(sub);
  };
  for (const s of Object.values(models)) visit(s);
  return models;
}

export const MetadataServerList = Type.Object(
  {
    servers: Type.Array(
      Type.Object({
        node: Type.String(),
        name: Type.String(),
        fabricAddress: Type.String(),
        state: StringEnum(["auto-join", "member", "standby"] as const, { description: "State in the nodes configuration." }),
        status: Type.Union([MetadataServerStatusSchema, Type.Null()], { description: "The node's own report; null for standby nodes or when unreachable." }),
        error: Type.Union([Type.String(), Type.Null()], { description: "Why the status could not be had." }),
      }),
    ),
  },
  { description: "Every node with the metadata-server role." },
);

export const models = new Elysia({ name: "admin-models" }).model(closed({
  MetadataServerStatus: MetadataServerStatusSchema,
  MetadataServerList,
  ClusterInfo,
  ProvisionRequest,
  MetadataEntry,
  MetadataVersion,
  MetadataKeyList,
  Problem,
  Health,
  Readiness,
  Version,
  NodeInfo,
  Config: ConfigSchema,
}));
