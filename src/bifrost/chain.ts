// The `logs` metadata document and the pure operations on a log's chain of segments. A log is a
// chain of segments in LSN order; each segment is one loglet (local or replicated) starting at its
// base LSN. Every segment but the last is sealed, with the LSN one past its last record recorded as
// `sealedTail` (= the next segment's base LSN). The document changes only by compare-and-set
// (chain-writer.ts); the functions here compute the next document or refuse.
//
// Invariants (checkLog): segment indexes strictly grow; base LSNs never decrease; every segment but
// the last is sealed and its sealed tail is the next segment's base; a sealed tail is ≥ the
// segment's base; the trim point is below the log's known end (never checked against the live tail,
// which only the loglet knows). A sealed tail, once recorded, never changes.
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { CairnError, invariant } from "../observability/errors.ts";
import type { ReplicatedLogletParams } from "./replicated/params.ts";
import {
  LSN_OLDEST,
  asLogletId,
  formatGenerationalNodeId,
  logId as toLogId,
  logletId,
  lsn,
  nodeId,
  parseGenerationalNodeId,
  segmentIndex,
  type GenerationalNodeId,
  type LogId,
  type Lsn,
  type NodeId,
  type SegmentIndex,
} from "../ids/index.ts";

export const LOGS_KEY = "logs";

export const LOGLET_KINDS = ["local", "replicated"] as const;
export type LogletKind = (typeof LOGLET_KINDS)[number];

const NodeIdText = Type.String({ pattern: "^N(0|[1-9][0-9]*)$", description: "A node id, `N<id>`." });

export const SegmentParamsSchema = Type.Object(
  {
    loglet: Type.String({ pattern: "^(0|[1-9][0-9]*)_(0|[1-9][0-9]*)$", description: "Loglet id `<log>_<segment index>`." }),
    sequencer: Type.String({
      pattern: "^N(0|[1-9][0-9]*):(0|[1-9][0-9]*)$",
      description: "The only node (at this generation, `N<id>:<generation>`) that may append to the segment.",
    }),
    nodeset: Type.Array(NodeIdText, { minItems: 1, description: "Log-servers that hold the segment's records." }),
    replication: Type.Integer({ minimum: 1, description: "Copies of every record (r); an append is acknowledged once r log-servers stored it." }),
  },
  { additionalProperties: false },
);

export const SegmentSchema = Type.Object(
  {
    index: Type.Integer({ minimum: 0, description: "Position in the chain; only grows." }),
    baseLsn: Type.Integer({ minimum: 1, description: "LSN of the segment's first record (offset 1)." }),
    kind: Type.Union([Type.Literal("local"), Type.Literal("replicated")], {
      description: "`replicated`: a sequencer and a nodeset of log-servers. `local`: one node's record store (nodeset of one, r = 1).",
    }),
    params: SegmentParamsSchema,
    sealedTail: Type.Optional(
      Type.Integer({ minimum: 1, description: "Set once the segment is sealed: the LSN one past its last record (the next segment's base LSN)." }),
    ),
    sealedBy: Type.Optional(
      Type.Union([Type.Literal("operator"), Type.Literal("reconfiguration")], {
        description:
          "Who sealed the segment: `operator` (POST /v1/logs/{log}/seal: it stays the tail until an operator reconfigures the log) or `reconfiguration` (the first step of adding the next segment: when that step was cut off, the log controller adds the segment). Absent on segments sealed by older versions.",
      }),
    ),
    placement: Type.Union([Type.Literal("auto"), Type.Literal("manual")], {
      description: "`auto`: the log controller chose the nodeset and may move the log to a better one. `manual`: an operator chose it; the controller never moves it.",
    }),
    createdAtMs: Type.Integer({ description: "When the segment was added (Unix ms)." }),
  },
  { additionalProperties: false },
);

export const LogChainSchema = Type.Object(
  {
    id: Type.Integer({ minimum: 0, description: "Log id (one log per partition: the partition id)." }),
    trimPoint: Type.Integer({ minimum: 0, description: "Last trimmed LSN (inclusive); 0 = never trimmed. Reads at or below it report a trim gap." }),
    segments: Type.Array(SegmentSchema, { description: "The chain in LSN order; the last segment takes appends unless it is sealed." }),
  },
  { additionalProperties: false },
);

export const LogsDocumentSchema = Type.Object(
  {
    defaultReplication: Type.Integer({ minimum: 1, description: "Replication of new segments unless a reconfiguration says otherwise." }),
    logs: Type.Array(LogChainSchema),
  },
  { additionalProperties: false, description: "The `logs` metadata key: every log's chain of segments." },
);

export type SegmentParamsDoc = Static<typeof SegmentParamsSchema>;
export type Segment = Static<typeof SegmentSchema>;
export type LogChain = Static<typeof LogChainSchema>;
export type LogsDocument = Static<typeof LogsDocumentSchema>;

const checker = TypeCompiler.Compile(LogsDocumentSchema);

/** Validates a stored `logs` value (it crossed a trust boundary: the metadata store, an operator's put). */
export function parseLogsDocument(value: unknown): LogsDocument {
  value = withDefaults(value);
  if (!checker.Check(value)) {
    const first = checker.Errors(value).First();
    throw new CairnError("LOG_CHAIN_INVALID", `the '${LOGS_KEY}' metadata document is invalid at ${first?.path || "/"}: ${first?.message ?? "schema mismatch"}`, {
      path: first?.path ?? "/",
    });
  }
  const doc = value as LogsDocument;
  for (const log of doc.logs) {
    const problem = chainProblem(log);
    if (problem !== undefined) throw new CairnError("LOG_CHAIN_INVALID", `log ${log.id}: ${problem}`, { log: log.id });
  }
  return doc;
}

/** Documents written before trim points existed (provisioning's first shape) lack `trimPoint`. */
function withDefaults(value: unknown): unknown {
  if (typeof value !== "object" || value === null || !Array.isArray((value as { logs?: unknown }).logs)) return value;
  const logs = (value as { logs: unknown[] }).logs.map((l) =>
    typeof l === "object" && l !== null && !("trimPoint" in l) ? { ...l, trimPoint: 0 } : l,
  );
  return { ...value, logs };
}

/** Why a chain breaks the invariants, or undefined. */
export function chainProblem(log: LogChain): string | undefined {
  for (let i = 0; i < log.segments.length; i++) {
    const s = log.segments[i]!;
    const next = log.segments[i + 1];
    if (s.params.loglet !== logletId(log.id as LogId, s.index as SegmentIndex)) return `segment ${s.index} names loglet ${s.params.loglet}`;
    if (parseGenerationalNodeId(s.params.sequencer) === undefined) return `segment ${s.index} has sequencer "${s.params.sequencer}"`;
    if (s.params.replication > s.params.nodeset.length) return `segment ${s.index}: replication ${s.params.replication} > nodeset size ${s.params.nodeset.length}`;
    if (new Set(s.params.nodeset).size !== s.params.nodeset.length) return `segment ${s.index}: duplicate nodeset members`;
    if (s.sealedTail !== undefined && s.sealedTail < s.baseLsn) return `segment ${s.index}: sealed tail ${s.sealedTail} below base ${s.baseLsn}`;
    if (next !== undefined) {
      if (next.index <= s.index) return `segment indexes must grow (${s.index} then ${next.index})`;
      if (s.sealedTail === undefined) return `segment ${s.index} is followed by segment ${next.index} but not sealed`;
      if (next.baseLsn !== s.sealedTail) return `segment ${next.index} starts at ${next.baseLsn}, but segment ${s.index} was sealed at ${s.sealedTail}`;
    }
  }
  return undefined;
}

export function checkLog(log: LogChain): void {
  const problem = chainProblem(log);
  invariant(problem === undefined, () => `log ${log.id}: ${problem}`);
}

export function findLog(doc: LogsDocument, id: LogId): LogChain | undefined {
  return doc.logs.find((l) => l.id === id);
}

export function requireLog(doc: LogsDocument, id: LogId): LogChain {
  const log = findLog(doc, id);
  if (log === undefined) {
    throw new CairnError("LOG_UNKNOWN_LOG", `no log ${id} (the cluster has logs ${describeIds(doc)})`, { log: id });
  }
  return log;
}

function describeIds(doc: LogsDocument): string {
  const ids = doc.logs.map((l) => l.id).sort((a, b) => a - b);
  if (ids.length === 0) return "none";
  return ids.length > 8 ? `${ids.slice(0, 8).join(", ")}, …` : ids.join(", ");
}

export function tailSegment(log: LogChain): Segment | undefined {
  return log.segments[log.segments.length - 1];
}

/** The replicated-loglet parameters a segment stands for (local segments included: nodeset of one). */
export function segmentParams(s: Segment): ReplicatedLogletParams {
  const sequencer = parseGenerationalNodeId(s.params.sequencer);
  invariant(sequencer !== undefined, () => `segment ${s.index}: bad sequencer ${s.params.sequencer}`);
  return {
    loglet: asLogletId(s.params.loglet),
    sequencer,
    nodeset: s.params.nodeset.map((n) => nodeId(n)),
    replication: s.params.replication,
  };
}

export function segmentSequencer(s: Segment): GenerationalNodeId {
  const g = parseGenerationalNodeId(s.params.sequencer);
  invariant(g !== undefined, () => `segment ${s.index}: bad sequencer ${s.params.sequencer}`);
  return g;
}

/** Where an LSN lives in the chain. */
export type LsnLocation =
  /** Before the first remaining segment (its segments were trimmed away): a trim gap up to `to`. */
  | { readonly kind: "trimmed"; readonly to: Lsn }
  /** In this segment; `end` is the exclusive end when the segment is sealed. */
  | { readonly kind: "segment"; readonly segment: Segment; readonly end: Lsn | undefined }
  /** The chain has no segment yet. */
  | { readonly kind: "empty" };

export function locate(log: LogChain, at: Lsn): LsnLocation {
  const first = log.segments[0];
  if (first === undefined) return { kind: "empty" };
  if (at < first.baseLsn) return { kind: "trimmed", to: lsn(first.baseLsn - 1) };
  for (let i = log.segments.length - 1; i >= 0; i--) {
    const s = log.segments[i]!;
    if (at >= s.baseLsn) {
      const end = s.sealedTail === undefined ? undefined : lsn(s.sealedTail);
      return { kind: "segment", segment: s, end };
    }
  }
  invariant(false, "unreachable: at ≥ first base");
}

// ---- chain mutations: pure, each returns the new chain or throws ----------------------------------

export interface NewSegment {
  readonly kind: LogletKind;
  readonly sequencer: GenerationalNodeId;
  readonly nodeset: readonly NodeId[];
  readonly replication: number;
  readonly placement: "auto" | "manual";
}

function buildSegment(log: LogChain, index: number, baseLsn: number, s: NewSegment, nowMs: number): Segment {
  if (s.kind === "local") invariant(s.nodeset.length === 1 && s.replication === 1, "a local segment has a nodeset of one and r = 1");
  if (s.replication > s.nodeset.length || s.replication < 1) {
    throw new CairnError("LOG_INVALID_RECONFIGURATION", `replication ${s.replication} needs at least that many log-servers; the nodeset has ${s.nodeset.length}`, {
      log: log.id,
    });
  }
  return {
    index: segmentIndex(index),
    baseLsn,
    kind: s.kind,
    params: {
      loglet: logletId(toLogId(log.id), segmentIndex(index)),
      sequencer: formatGenerationalNodeId(s.sequencer),
      nodeset: [...s.nodeset],
      replication: s.replication,
    },
    placement: s.placement,
    createdAtMs: nowMs,
  };
}

/** Adds the first segment of an empty chain (at the LSN after the trim point). */
export function withFirstSegment(log: LogChain, s: NewSegment, nowMs: number): LogChain {
  if (log.segments.length > 0) throw chainConflict(log, "it already has a segment");
  const next = { ...log, segments: [buildSegment(log, 0, Math.max(LSN_OLDEST, log.trimPoint + 1), s, nowMs)] };
  checkLog(next);
  return next;
}

/**
 * Records the sealed tail of the tail segment `index`. Idempotent: if that segment is already sealed,
 * the recorded tail wins (different recoveries may find different valid tails; the chain keeps one).
 */
export function withSealedTail(log: LogChain, index: number, tail: Lsn, by?: "operator" | "reconfiguration"): LogChain {
  const last = tailSegment(log);
  const target = log.segments.find((s) => s.index === index);
  if (target === undefined) throw chainConflict(log, `segment ${index} is no longer in the chain`);
  if (target.sealedTail !== undefined) return log;
  invariant(last === target, "only the tail segment can be unsealed");
  invariant(tail >= target.baseLsn, () => `sealed tail ${tail} below the segment base ${target.baseLsn}`);
  const next = { ...log, segments: [...log.segments.slice(0, -1), { ...target, sealedTail: tail, ...(by !== undefined ? { sealedBy: by } : {}) }] };
  checkLog(next);
  return next;
}

/** Appends a segment after the sealed tail segment `afterIndex` (conditional: the chain must still end there). */
export function withNewSegment(log: LogChain, afterIndex: number, s: NewSegment, nowMs: number): LogChain {
  const last = tailSegment(log);
  if (last === undefined || last.index !== afterIndex) throw chainConflict(log, `its tail segment is ${last?.index ?? "none"}, not ${afterIndex}`);
  if (last.sealedTail === undefined) throw chainConflict(log, `segment ${afterIndex} is not sealed`);
  const next = { ...log, segments: [...log.segments, buildSegment(log, afterIndex + 1, last.sealedTail, s, nowMs)] };
  checkLog(next);
  return next;
}

/**
 * Moves the trim point up to `upTo` (never down) and drops segments whose records are all trimmed,
 * except the tail segment (appends continue there).
 */
export function withTrimPoint(log: LogChain, upTo: Lsn): LogChain {
  if (upTo <= log.trimPoint) return log;
  const keep = log.segments.filter((s, i) => i === log.segments.length - 1 || s.sealedTail === undefined || s.sealedTail - 1 > upTo);
  const next = { ...log, trimPoint: upTo, segments: keep };
  checkLog(next);
  return next;
}

function chainConflict(log: LogChain, why: string): CairnError {
  return new CairnError("LOG_CHAIN_CONFLICT", `the chain of log ${log.id} changed meanwhile: ${why}`, { log: log.id });
}

/** The document provisioning writes: one empty chain per log. */
export function initialLogsDocument(logIds: readonly number[], defaultReplication: number): LogsDocument {
  return { defaultReplication, logs: logIds.map((id) => ({ id, trimPoint: 0, segments: [] })) };
}

/** The same nodeset, member by member (what a re-replication's compare-and-set expects). */
export function sameNodeset(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/**
 * Re-replication's nodeset change of a sealed segment (compare-and-set by content): `index` must still
 * be sealed with the nodeset `expectNodeset`. The new nodeset keeps the members whose copies survive
 * and adds the ones that received full copies; call only once every record is durable on those.
 */
export function withSegmentNodeset(log: LogChain, index: number, expectNodeset: readonly string[], nodeset: readonly NodeId[], replication: number): LogChain {
  const target = log.segments.find((s) => s.index === index);
  if (target === undefined) throw chainConflict(log, `segment ${index} is no longer in the chain`);
  if (target.sealedTail === undefined) throw chainConflict(log, `segment ${index} is not sealed`);
  const current = target.params.nodeset;
  if (!sameNodeset(current, expectNodeset)) {
    throw chainConflict(log, `segment ${index} has nodeset ${current.join(",")}, not ${expectNodeset.join(",")}`);
  }
  invariant(nodeset.length > 0 && new Set(nodeset).size === nodeset.length, "a nodeset of distinct members");
  const segment: Segment = { ...target, kind: "replicated", params: { ...target.params, nodeset: [...nodeset], replication } };
  const next = { ...log, segments: log.segments.map((s) => (s.index === index ? segment : s)) };
  checkLog(next);
  return next;
}

/**
 * Loglets whose nodeset names `node` and that may hold records it should have: open segments, and
 * sealed ones with records above the log's trim point (an empty sealed segment holds nothing).
 */
export function segmentsNaming(doc: LogsDocument, node: NodeId): string[] {
  const out: string[] = [];
  for (const log of doc.logs) {
    for (const s of log.segments) {
      if (!s.params.nodeset.includes(node)) continue;
      const empty = s.sealedTail !== undefined && s.sealedTail <= Math.max(s.baseLsn, log.trimPoint + 1);
      if (!empty) out.push(s.params.loglet);
    }
  }
  return out;
}
