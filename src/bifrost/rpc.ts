// Bifrost's node-to-node RPCs (service "bifrost"): forward an append to the node that sequences the
// log's tail segment, ask a sequencer for its committed tail, and ping a node (the log controller's
// liveness check, which also reports the node's generation). `BifrostPeers` is the caller's side;
// the fabric implements it here, in-process tests with direct calls.
import { Type, type Static } from "@sinclair/typebox";
import { defineRpc, type FabricClient } from "../net/index.ts";
import { CairnError, ERRORS } from "../observability/errors.ts";
import { MAX_LOGLET_OFFSET, type NodeId } from "../ids/index.ts";

const U32 = Type.Integer({ minimum: 0, maximum: 2 ** 32 - 1 });
const LsnSchema = Type.Integer({ minimum: 0 });
const Offset = Type.Integer({ minimum: 0, maximum: MAX_LOGLET_OFFSET + 1 });

export const AppendRequestSchema = Type.Object(
  {
    log: U32,
    /** The tail segment the sender believes in; the sequencer refuses (retry) if it is not its segment. */
    segment: U32,
    payloads: Type.Array(Type.Uint8Array(), { minItems: 1 }),
  },
  { additionalProperties: false },
);
export const AppendResponseSchema = Type.Object({
  /**
   * ok: durable, at LSNs [first, last]. retry: none of the records is in the log (the segment is
   * sealed or not this node's): look at the chain again and resend. indeterminate: the records may
   * or may not be in the log.
   */
  status: Type.Union([Type.Literal("ok"), Type.Literal("retry"), Type.Literal("indeterminate")]),
  first: LsnSchema,
  last: LsnSchema,
  reason: Type.String(),
});

export const TailRequestSchema = Type.Object(
  {
    log: U32,
    segment: U32,
    /**
     * A long poll (an idle follower's): answer once the committed tail is past this offset, the
     * segment is sealed, or `waitMs` (at most MAX_TAIL_WAIT_MS) has passed, instead of at once.
     */
    waitAbove: Type.Optional(U32),
    waitMs: Type.Optional(U32),
  },
  { additionalProperties: false },
);
/** Longest wait of a `tail` long poll: well inside the fabric's default request deadline (5 s). */
export const MAX_TAIL_WAIT_MS = 3_000;
export const TailResponseSchema = Type.Object({
  /** not-sequencer: this node (at this generation) does not sequence that segment. */
  status: Type.Union([Type.Literal("ok"), Type.Literal("not-sequencer")]),
  /** First uncommitted offset of the segment's loglet. */
  committedTail: Offset,
  sealed: Type.Boolean(),
});

export const PingRequestSchema = Type.Object({}, { additionalProperties: false });
export const PingResponseSchema = Type.Object({
  node: Type.Union([Type.String(), Type.Null()]),
  generation: Type.Integer({ minimum: 0 }),
  /** false: this node's log-server store refuses writes (a write failed; it takes writes again after a restart). */
  storeWritable: Type.Optional(Type.Boolean()),
  /** true: this node's log-server store is in data-loss mode (came back empty): its copies of older segments are gone. */
  storeRecovering: Type.Optional(Type.Boolean()),
  /** When the answering process started (Unix ms): cluster status shows each node's uptime. */
  startedAtMs: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Partitions whose processor on this node stopped (absent: none): the partition controller then asks for their status. */
  stoppedPartitions: Type.Optional(Type.Array(Type.Integer({ minimum: 0 }))),
});

export type AppendRequest = Static<typeof AppendRequestSchema>;
export type AppendResponse = Static<typeof AppendResponseSchema>;
export type TailRequest = Static<typeof TailRequestSchema>;
export type TailResponse = Static<typeof TailResponseSchema>;
export type PingResponse = Static<typeof PingResponseSchema>;

export const BIFROST_RPCS = {
  append: defineRpc({ service: "bifrost", method: "append", request: AppendRequestSchema, response: AppendResponseSchema }),
  tail: defineRpc({ service: "bifrost", method: "tail", request: TailRequestSchema, response: TailResponseSchema }),
  ping: defineRpc({ service: "bifrost", method: "ping", request: PingRequestSchema, response: PingResponseSchema }),
} as const;

/** How bifrost reaches other nodes' bifrost. */
export interface BifrostPeers {
  append(to: NodeId, request: AppendRequest, signal: AbortSignal): Promise<AppendResponse>;
  tail(to: NodeId, request: TailRequest, signal: AbortSignal): Promise<TailResponse>;
  ping(to: NodeId, signal: AbortSignal): Promise<PingResponse>;
  /** False when the node is known unreachable right now (a send would certainly fail before arriving). */
  mayReach(to: NodeId): boolean;
}

/**
 * Whether a failed fabric call certainly never reached the peer: the connection could not be opened,
 * the peer was in reconnect backoff, or no stream could be opened. (The fabric reports these as
 * NET_UNREACHABLE like a connection lost mid-call, so this reads its messages; keep them in sync
 * with net/peer.ts.) Anything else may have been delivered.
 */
export function neverSent(error: unknown): boolean {
  if (!(error instanceof CairnError) || error.code !== ERRORS.NET_UNREACHABLE.code) return false;
  return error.details.sent === false;
}

export function fabricBifrostPeers(client: FabricClient, addressOf: (node: NodeId) => string | undefined): BifrostPeers {
  const address = (to: NodeId): string => {
    const a = addressOf(to);
    if (a === undefined) throw new CairnError("NET_UNREACHABLE", `no fabric address known for node ${to}`, { node: to, sent: false });
    return a;
  };
  return {
    append: (to, request, signal) => client.call(address(to), BIFROST_RPCS.append, request, { signal, deadlineMs: 60_000 }),
    tail: (to, request, signal) => client.call(address(to), BIFROST_RPCS.tail, request, { signal }),
    ping: (to, signal) => client.call(address(to), BIFROST_RPCS.ping, {}, { signal }),
    mayReach: (to) => {
      const a = addressOf(to);
      if (a === undefined) return false;
      const s = client.peerStatus(a);
      // In reconnect backoff: the client fails calls at once without sending them.
      return s === null || s.connected || s.retryInMs === 0;
    },
  };
}
