// The worker's node-to-node RPCs (service "worker"): read an object and mutate an object on the node
// that leads its partition (the ingress of any node forwards to it). The handler refuses with
// CAIRN-PARTITION-0001 when it does not lead the partition: nothing was done, the caller may retry.
// Also: status, snapshot (export and publish) and fetch-store (a store copied to a bootstrapping peer).
import { Type, type Static } from "@sinclair/typebox";
import { defineRpc } from "../net/index.ts";

const Op = Type.Union([
  Type.Object({ op: Type.Literal("set"), name: Type.String(), value: Type.Uint8Array(), contentType: Type.String() }),
  Type.Object({ op: Type.Literal("delete"), name: Type.String() }),
  Type.Object({ op: Type.Literal("clear") }),
]);

export const ReadRequest = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  service: Type.String(),
  key: Type.String(),
  /** One entry, or the whole object when null. */
  name: Type.Union([Type.String(), Type.Null()]),
});
export const ObjectAnswer = Type.Object({
  version: Type.Integer({ minimum: 0 }),
  entries: Type.Array(Type.Object({ name: Type.String(), value: Type.Uint8Array(), contentType: Type.String() })),
});

export const MutateRequest = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  service: Type.String(),
  key: Type.String(),
  ops: Type.Array(Op),
  expectedVersion: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  idempotency: Type.Union([Type.Object({ key: Type.String(), requestHash: Type.String() }), Type.Null()]),
  /** How long the caller waits (the handler gives up on the proposal after it). */
  timeoutMs: Type.Integer({ minimum: 1 }),
});
export const MutateAnswer = Type.Union([
  Type.Object({ status: Type.Literal("applied"), version: Type.Integer({ minimum: 0 }) }),
  Type.Object({ status: Type.Literal("version-mismatch"), currentVersion: Type.Integer({ minimum: 0 }) }),
  Type.Object({ status: Type.Literal("idempotency-conflict") }),
]);

export const StatusRequest = Type.Object({}, { additionalProperties: false });
export const ProcessorStatusSchema = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  role: Type.Union([Type.Literal("follower"), Type.Literal("candidate"), Type.Literal("leader")]),
  epoch: Type.Integer({ minimum: 0 }),
  appliedLsn: Type.Integer({ minimum: 0 }),
  durableLsn: Type.Integer({ minimum: 0 }),
  tailLsn: Type.Integer({ minimum: 0 }),
  leaderEpoch: Type.Integer({ minimum: 0 }),
  leaderNode: Type.Union([Type.String(), Type.Null()]),
  stopped: Type.Union([Type.String(), Type.Null()]),
});
export const StatusAnswer = Type.Object({ processors: Type.Array(ProcessorStatusSchema) });

/** Snapshot the partition this node leads: export, upload, publish (snapshot/create.ts). */
export const SnapshotRequest = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  /** The controller's job (for the logs). */
  jobId: Type.String(),
  /** How long the caller waits; the export is abandoned (and cleaned up) after it. */
  timeoutMs: Type.Integer({ minimum: 1 }),
});
export const SnapshotAnswer = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  id: Type.String(),
  lsn: Type.Integer({ minimum: 0 }),
  sizeBytes: Type.Integer({ minimum: 0 }),
  path: Type.String(),
  uploaded: Type.Boolean(),
  oldestRetainedLsn: Type.Integer({ minimum: 0 }),
  node: Type.String(),
});

/**
 * One chunk of a partition store copied to a peer that bootstraps without a covering snapshot
 * (peer-transfer.ts). The first request of a transfer (offset 0) exports the store as of this node's
 * applied LSN; every chunk of one transfer comes from that one export.
 */
export const FetchStoreRequest = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  /** Chosen by the requesting node; names one export on the answering node. */
  transfer: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }),
  offset: Type.Integer({ minimum: 0 }),
  maxBytes: Type.Integer({ minimum: 1 }),
});
export const FetchStoreChunk = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  node: Type.String(),
  /** The applied LSN the exported store is exactly as of. */
  lsn: Type.Integer({ minimum: 0 }),
  sizeBytes: Type.Integer({ minimum: 0 }),
  /** `sha256:<hex>` of the whole exported store. */
  checksum: Type.String(),
  offset: Type.Integer({ minimum: 0 }),
  data: Type.Uint8Array(),
});

export type ReadRequest = Static<typeof ReadRequest>;
export type FetchStoreRequest = Static<typeof FetchStoreRequest>;
export type FetchStoreChunk = Static<typeof FetchStoreChunk>;
export type SnapshotRequest = Static<typeof SnapshotRequest>;
export type SnapshotAnswer = Static<typeof SnapshotAnswer>;
export type ObjectAnswer = Static<typeof ObjectAnswer>;
export type MutateRequest = Static<typeof MutateRequest>;
export type MutateAnswer = Static<typeof MutateAnswer>;

export const WORKER_RPCS = {
  read: defineRpc({ service: "worker", method: "read", request: ReadRequest, response: ObjectAnswer }),
  mutate: defineRpc({ service: "worker", method: "mutate", request: MutateRequest, response: MutateAnswer }),
  status: defineRpc({ service: "worker", method: "status", request: StatusRequest, response: StatusAnswer }),
  snapshot: defineRpc({ service: "worker", method: "snapshot", request: SnapshotRequest, response: SnapshotAnswer }),
  fetchStore: defineRpc({ service: "worker", method: "fetch-store", request: FetchStoreRequest, response: FetchStoreChunk }),
};
