// Placement of new segments, as pure functions: how many log-servers a nodeset gets, which ones,
// and which node sequences the segment. Deterministic for the same inputs (the spread is hashed on
// the log id), so every node proposing a segment for a log proposes the same one.
//
// Rules: a nodeset has r = 1 → 1 server, r ≥ 2 → 2r − 1 servers (the smallest size that survives the
// loss of r − 1 servers and still seals and repairs), unless configured; it prefers the previous
// segment's live members (less scatter), then spreads by a hash of the log id; the sequencer stays on
// its node while that node lives and otherwise goes to the live log-server sequencing fewest logs.
import { CairnError } from "../observability/errors.ts";
import type { GenerationalNodeId, NodeId } from "../ids/index.ts";

/** A live log-server node at its current generation. */
export interface Candidate {
  readonly id: NodeId;
  readonly generation: number;
}

/** Nodeset size for replication r: the configured size, or 1 for r = 1 and 2r − 1 otherwise. */
export function desiredNodesetSize(replication: number, configured = 0): number {
  if (configured > 0) return Math.max(configured, replication);
  return replication === 1 ? 1 : 2 * replication - 1;
}

/** FNV-1a over `text`: a stable spread, not a security property. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Picks a nodeset of up to `size` live log-servers (at least r), preferring `previous` members.
 * Throws LOG_WRITE_UNAVAILABLE when fewer than r log-servers are alive.
 */
export function chooseNodeset(args: {
  log: number;
  candidates: readonly Candidate[];
  replication: number;
  size: number;
  previous?: readonly NodeId[];
}): NodeId[] {
  const { candidates, replication } = args;
  if (candidates.length < replication) {
    throw new CairnError(
      "LOG_WRITE_UNAVAILABLE",
      `log ${args.log} needs ${replication} live log-servers for replication ${replication}, but only ${candidates.length} answer (${candidates.map((c) => c.id).join(", ") || "none"})`,
      { log: args.log, live: candidates.length, replication },
    );
  }
  const size = Math.min(Math.max(args.size, replication), candidates.length);
  const live = new Set(candidates.map((c) => c.id));
  const chosen: NodeId[] = [];
  for (const n of args.previous ?? []) if (live.has(n) && chosen.length < size && !chosen.includes(n)) chosen.push(n);
  const rest = candidates
    .map((c) => c.id)
    .filter((n) => !chosen.includes(n))
    .sort((a, b) => hash32(`${args.log}/${a}`) - hash32(`${args.log}/${b}`) || (a < b ? -1 : 1));
  for (const n of rest) {
    if (chosen.length >= size) break;
    chosen.push(n);
  }
  return chosen.sort(compareNodeIds);
}

/**
 * The sequencer of a new segment: `previous`'s node if it is alive (at its current generation),
 * otherwise the candidate sequencing the fewest logs (`load`: tail segments per node).
 */
export function chooseSequencer(args: {
  log: number;
  candidates: readonly Candidate[];
  previous?: GenerationalNodeId;
  load: ReadonlyMap<NodeId, number>;
  avoid?: NodeId;
}): GenerationalNodeId {
  const { candidates } = args;
  if (candidates.length === 0) throw new CairnError("LOG_WRITE_UNAVAILABLE", "no live log-server node can sequence the log");
  const keep = args.previous && args.previous.id !== args.avoid ? candidates.find((c) => c.id === args.previous!.id) : undefined;
  if (keep) return { id: keep.id, generation: keep.generation };
  const pool = candidates.filter((c) => c.id !== args.avoid);
  const from = pool.length > 0 ? pool : candidates;
  // Ties go by a hash of the log id, so logs placed at once (on the same view of the load) spread too.
  const rank = (c: Candidate) => hash32(`${args.log}/${c.id}`);
  const best = [...from].sort((a, b) => (args.load.get(a.id) ?? 0) - (args.load.get(b.id) ?? 0) || rank(a) - rank(b) || compareNodeIds(a.id, b.id))[0]!;
  return { id: best.id, generation: best.generation };
}

export function compareNodeIds(a: NodeId, b: NodeId): number {
  return Number(a.slice(1)) - Number(b.slice(1));
}
