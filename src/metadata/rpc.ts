// The metadata server's methods on the peer fabric. Raft traffic, KV requests (served by members:
// writes by the leader, linearizable reads by any member through ReadIndex), joining, removal and
// status. Refusals carry `leaderHint` ({id, address}) so a client can go straight to the leader.
import { Type, type Static } from "@sinclair/typebox";
import { defineRpc } from "../net/index.ts";

const Precondition = Type.Union([
  Type.Object({ kind: Type.Literal("none") }),
  Type.Object({ kind: Type.Literal("does-not-exist") }),
  Type.Object({ kind: Type.Literal("matches-version"), version: Type.Integer({ minimum: 1 }) }),
]);

const Consistency = Type.Union([Type.Literal("linearizable"), Type.Literal("stale")]);

export const RaftMessagesRpc = defineRpc({
  service: "metadata-server",
  method: "raft",
  request: Type.Object({ from: Type.Integer({ minimum: 1 }), messages: Type.Array(Type.Uint8Array(), { maxItems: 65_536 }) }),
  /** Messages the receiver produced for the sender while handling these (its answers), if any. */
  response: Type.Object({ messages: Type.Array(Type.Uint8Array(), { maxItems: 65_536 }) }),
});

export const GetRpc = defineRpc({
  service: "metadata-server",
  method: "get",
  request: Type.Object({ key: Type.String({ maxLength: 256 }), consistency: Consistency }),
  response: Type.Object({ found: Type.Boolean(), version: Type.Integer({ minimum: 0 }), value: Type.Unknown() }),
});

export const ListRpc = defineRpc({
  service: "metadata-server",
  method: "list",
  request: Type.Object({
    prefix: Type.String({ maxLength: 256 }),
    after: Type.Union([Type.String({ maxLength: 256 }), Type.Null()]),
    limit: Type.Integer({ minimum: 1, maximum: 10_000 }),
    consistency: Consistency,
  }),
  response: Type.Object({
    keys: Type.Array(Type.Object({ key: Type.String(), version: Type.Integer({ minimum: 1 }) }), { maxItems: 10_000 }),
    next: Type.Union([Type.String(), Type.Null()]),
  }),
});

const WriteRequest = Type.Object({
  /** Unique per attempt: matches the applied entry to this request. */
  requestId: Type.String({ maxLength: 64 }),
  op: Type.Union([Type.Literal("put"), Type.Literal("delete")]),
  key: Type.String({ maxLength: 256 }),
  value: Type.Unknown(),
  precondition: Precondition,
});
export type WriteRequestWire = Static<typeof WriteRequest>;

export const WriteRpc = defineRpc({
  service: "metadata-server",
  method: "write",
  request: WriteRequest,
  response: Type.Object({ version: Type.Integer({ minimum: 1 }) }),
});

/** Most writes one batch call carries (a non-leader forwards the writes of one turn together). */
export const MAX_WRITE_BATCH = 256;

/**
 * Several independent writes in one call: each is handled as WriteRpc would handle it and has its own
 * outcome, in request order (a version, or the problem WriteRpc would have answered with).
 */
export const WriteBatchRpc = defineRpc({
  service: "metadata-server",
  method: "write-batch",
  request: Type.Object({ writes: Type.Array(WriteRequest, { minItems: 1, maxItems: MAX_WRITE_BATCH }) }),
  response: Type.Object({
    results: Type.Array(
      Type.Union([
        Type.Object({ ok: Type.Literal(true), version: Type.Integer({ minimum: 1 }) }),
        Type.Object({ ok: Type.Literal(false), problem: Type.Unknown() }),
      ]),
      { maxItems: MAX_WRITE_BATCH },
    ),
  }),
});

export const JoinRpc = defineRpc({
  service: "metadata-server",
  method: "join",
  request: Type.Object({ nodeId: Type.Integer({ minimum: 1 }), storageId: Type.String({ maxLength: 64 }) }),
  response: Type.Object({ status: Type.Union([Type.Literal("learner"), Type.Literal("member")]) }),
});

export const RemoveRpc = defineRpc({
  service: "metadata-server",
  method: "remove",
  request: Type.Object({ nodeId: Type.Integer({ minimum: 1 }) }),
  response: Type.Object({}),
});

export const MetadataServerStatusSchema = Type.Object(
  {
    node: Type.Union([Type.String(), Type.Null()], { description: "N<id> of the answering node, null before it registered." }),
    state: Type.Union(
      [
        Type.Literal("awaiting-provisioning"),
        Type.Literal("standby"),
        Type.Literal("joining"),
        Type.Literal("member"),
        Type.Literal("storage-mismatch"),
        Type.Literal("stopped"),
      ],
      { description: "This node's metadata-server state." },
    ),
    raft: Type.Union([
      Type.Object({
        role: Type.String(),
        term: Type.Integer(),
        leader: Type.Union([Type.String(), Type.Null()]),
        commitIndex: Type.Integer(),
        appliedIndex: Type.Integer(),
        firstIndex: Type.Integer(),
        lastIndex: Type.Integer(),
        logLength: Type.Integer(),
        snapshotIndex: Type.Integer(),
        voters: Type.Array(Type.String()),
        learners: Type.Array(Type.String()),
      }),
      Type.Null(),
    ]),
    storage: Type.Object({
      storageId: Type.Union([Type.String(), Type.Null()]),
      sizeBytes: Type.Integer(),
      integrityOk: Type.Boolean(),
      integrityDetail: Type.String({ description: "What the last quick_check reported (\"ok\" when sound)." }),
      integrityCheckedAtMs: Type.Integer({ description: "When the last integrity check ran (Unix ms): at start, then every metadata-server.integrity-check-interval-ms." }),
      freeDiskBytes: Type.Integer(),
    }),
  },
  { description: "The metadata server of one node." },
);

export const StatusRpc = defineRpc({
  service: "metadata-server",
  method: "status",
  request: Type.Object({}),
  response: MetadataServerStatusSchema,
});

/** One page of a member's store for a member installing a snapshot (snapshot-transfer.ts). */
export const SnapshotChunkRpc = defineRpc({
  service: "metadata-server",
  method: "snapshot-chunk",
  request: Type.Object({
    transfer: Type.String({ minLength: 1, maxLength: 128 }),
    table: Type.Union([Type.Literal("kv"), Type.Literal("requests")]),
    after: Type.Union([Type.String({ maxLength: 1024 }), Type.Null()]),
    maxBytes: Type.Integer({ minimum: 1024, maximum: 8 * 1024 * 1024 }),
  }),
  response: Type.Object({
    appliedIndex: Type.Integer({ minimum: 0 }),
    versionFloor: Type.Integer({ minimum: 0 }),
    rows: Type.Array(Type.Tuple([Type.String(), Type.Integer(), Type.String()]), { maxItems: 100_000 }),
    next: Type.Union([Type.String(), Type.Null()]),
  }),
});
