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
  /** What stopped it: its store failed, its log is trimmed past it, or a record it cannot apply (absent: running, or an older node). */
  stoppedBy: Type.Optional(Type.Union([Type.Literal("store"), Type.Literal("trim-gap"), Type.Literal("record")])),
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

// ---- durable invocations (invoker/): the ingress and other partitions reach a partition's leader ----

const Result = Type.Union([
  Type.Object({ value: Type.Uint8Array() }),
  Type.Object({ failure: Type.Object({ code: Type.Integer(), message: Type.String(), metadata: Type.Array(Type.Object({ key: Type.String(), value: Type.String() })) }) }),
]);

export const InvokeRpcRequest = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  invocationId: Type.String(),
  service: Type.String(),
  handler: Type.String(),
  key: Type.Union([Type.String(), Type.Null()]),
  input: Type.Uint8Array(),
  headers: Type.Array(Type.Tuple([Type.String(), Type.String()])),
  idempotencyKey: Type.Union([Type.String(), Type.Null()]),
  mode: Type.Union([Type.Literal("call"), Type.Literal("send")]),
  delayMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  /** How long the caller waits (a call answers `pending` after it). */
  timeoutMs: Type.Integer({ minimum: 1 }),
});
export const InvokeRpcAnswer = Type.Union([
  Type.Object({ status: Type.Literal("completed"), invocationId: Type.String(), result: Result, idempotencyExpiresAtMs: Type.Union([Type.Integer(), Type.Null()]) }),
  Type.Object({ status: Type.Union([Type.Literal("accepted"), Type.Literal("previously-accepted")]), invocationId: Type.String(), executionTimeMs: Type.Union([Type.Integer(), Type.Null()]) }),
  Type.Object({ status: Type.Literal("pending"), invocationId: Type.String() }),
  Type.Object({ status: Type.Literal("workflow-already-invoked"), invocationId: Type.String() }),
]);
export const AttachRpcRequest = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  invocationId: Type.String(),
  /** False: answer at once (output); true: wait for the result up to timeoutMs (attach). */
  wait: Type.Boolean(),
  timeoutMs: Type.Integer({ minimum: 1 }),
});
export const AttachRpcAnswer = Type.Union([
  Type.Object({ status: Type.Literal("completed"), invocationId: Type.String(), result: Result }),
  Type.Object({ status: Type.Literal("not-ready"), invocationId: Type.String() }),
  Type.Object({ status: Type.Literal("not-found") }),
]);
export const SignalRpcRequest = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  invocationId: Type.String(),
  signal: Type.Union([Type.Object({ index: Type.Integer({ minimum: 1 }) }), Type.Object({ name: Type.String() })]),
  result: Result,
  timeoutMs: Type.Integer({ minimum: 1 }),
});
export const ControlRpcRequest = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  invocationId: Type.String(),
  action: Type.Union([Type.Literal("cancel"), Type.Literal("kill"), Type.Literal("purge"), Type.Literal("resume")]),
  timeoutMs: Type.Integer({ minimum: 1 }),
});
export const ControlRpcAnswer = Type.Object({ invocationId: Type.String(), status: Type.String() });
export const DeliverRpcRequest = Type.Object({
  partition: Type.Integer({ minimum: 0 }),
  /** Records in envelope encoding, in the sender's outbox order. */
  records: Type.Array(Type.Uint8Array(), { maxItems: 1000 }),
  timeoutMs: Type.Integer({ minimum: 1 }),
});
export const InvocationSummary = Type.Object({
  id: Type.String(),
  partition: Type.Integer({ minimum: 0 }),
  service: Type.String(),
  handler: Type.String(),
  key: Type.Union([Type.String(), Type.Null()]),
  status: Type.String(),
  idempotencyKey: Type.Union([Type.String(), Type.Null()]),
  createdAtMs: Type.Integer(),
  modifiedAtMs: Type.Integer(),
  attempts: Type.Integer({ minimum: 0 }),
  retryCount: Type.Integer({ minimum: 0 }),
  journalLength: Type.Integer({ minimum: 0 }),
  lastError: Type.Union([Type.String(), Type.Null()]),
  nextRetryAtMs: Type.Union([Type.Integer(), Type.Null()]),
  completedAtMs: Type.Union([Type.Integer(), Type.Null()]),
  result: Type.Union([Type.Object({ ok: Type.Literal(true), valueBytes: Type.Integer({ minimum: 0 }) }), Type.Object({ ok: Type.Literal(false), code: Type.Integer(), message: Type.String() }), Type.Null()]),
});
export const ListInvocationsRequest = Type.Object({
  service: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([Type.String(), Type.Null()]),
  limit: Type.Integer({ minimum: 1, maximum: 10_000 }),
});
export const ListInvocationsAnswer = Type.Object({
  invocations: Type.Array(InvocationSummary),
  counts: Type.Record(Type.String(), Type.Integer()),
  /** The partitions the answering node led (the list covers exactly these). */
  partitions: Type.Array(Type.Integer({ minimum: 0 })),
});
/** One invocation's summary, asked of its partition's leader (null: unknown, or its retention ran out). */
export const DescribeInvocationRequest = Type.Object({ partition: Type.Integer({ minimum: 0 }), invocationId: Type.String() });
export const DescribeInvocationAnswer = Type.Object({ invocation: Type.Union([InvocationSummary, Type.Null()]) });

export type InvokeRpcRequest = Static<typeof InvokeRpcRequest>;
export type InvokeRpcAnswer = Static<typeof InvokeRpcAnswer>;
export type AttachRpcRequest = Static<typeof AttachRpcRequest>;
export type AttachRpcAnswer = Static<typeof AttachRpcAnswer>;
export type SignalRpcRequest = Static<typeof SignalRpcRequest>;
export type ControlRpcRequest = Static<typeof ControlRpcRequest>;
export type ControlRpcAnswer = Static<typeof ControlRpcAnswer>;
export type DeliverRpcRequest = Static<typeof DeliverRpcRequest>;
export type InvocationSummary = Static<typeof InvocationSummary>;
export type ListInvocationsRequest = Static<typeof ListInvocationsRequest>;
export type ListInvocationsAnswer = Static<typeof ListInvocationsAnswer>;
export type DescribeInvocationRequest = Static<typeof DescribeInvocationRequest>;
export type DescribeInvocationAnswer = Static<typeof DescribeInvocationAnswer>;

export const INVOCATION_RPCS = {
  invoke: defineRpc({ service: "worker", method: "invoke", request: InvokeRpcRequest, response: InvokeRpcAnswer }),
  attach: defineRpc({ service: "worker", method: "attach", request: AttachRpcRequest, response: AttachRpcAnswer }),
  signal: defineRpc({ service: "worker", method: "signal", request: SignalRpcRequest, response: Type.Object({}) }),
  control: defineRpc({ service: "worker", method: "control", request: ControlRpcRequest, response: ControlRpcAnswer }),
  deliver: defineRpc({ service: "worker", method: "deliver", request: DeliverRpcRequest, response: Type.Object({}) }),
  list: defineRpc({ service: "worker", method: "invocations", request: ListInvocationsRequest, response: ListInvocationsAnswer }),
  describe: defineRpc({ service: "worker", method: "describe-invocation", request: DescribeInvocationRequest, response: DescribeInvocationAnswer }),
};
