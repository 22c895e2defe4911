// Every schema of the admin API, registered once as a named model so the OpenAPI document has
// `components.schemas` entries (and generated clients get named types). Routes refer to them by name.
import { Elysia } from "elysia";
import { Type, type Static } from "@sinclair/typebox";
import { ConfigSchema, ROLES, StringEnum } from "../../config/index.ts";
import { NODE_STATES } from "../../node/lifecycle.ts";

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

export const models = new Elysia({ name: "admin-models" }).model({
  Problem,
  Health,
  Readiness,
  Version,
  NodeInfo,
  Config: ConfigSchema,
});
