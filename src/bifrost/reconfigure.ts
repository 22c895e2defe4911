// Seal and reconfiguration: seals a tail loglet (seal, find-tail, repair) and records its tail in the
// chain, then adds a new segment with the requested or chosen kind, replication, nodeset and sequencer.
// Invariants: every chain change is a compare-and-set on the `logs` key, so concurrent recoveries keep
// one sealed tail; a new segment starts at its predecessor's sealed tail, on live log-servers only.
import { CairnError, isCairnError } from "../observability/errors.ts";
import {
  segmentParams,
  segmentSequencer,
  tailSegment,
  withFirstSegment,
  withNewSegment,
  withSealedTail,
  type LogChain,
  type LogletKind,
  type LogsDocument,
  type NewSegment,
  type Segment,
} from "./chain.ts";
import type { ChainView } from "./chain-view.ts";
import type { BifrostContext } from "./context.ts";
import { chooseNodeset, chooseSequencer, desiredNodesetSize, type Candidate } from "./placement.ts";
import { recoverLoglet } from "./replicated/driver.ts";
import { lsn, offsetToLsn, type LogId, type NodeId } from "../ids/index.ts";

export interface ReconfigureRequest {
  readonly kind?: LogletKind;
  readonly replication?: number;
  readonly nodeset?: readonly NodeId[];
  /** Node to sequence the new segment (at its current generation). */
  readonly sequencer?: NodeId;
}

export interface ReconfigureContext {
  /** Why (logs, metrics): "operator", "sequencer-dead", ... */
  readonly reason: string;
  /** Live log-servers, when the caller knows them (the controller); otherwise they are pinged. */
  readonly candidates?: readonly Candidate[];
  /** Do not keep the sequencer on this node (it is dead or restarting). */
  readonly avoidSequencer?: NodeId;
  /** A concurrent extension of the same segment counts as success (controller); operators get a conflict. */
  readonly acceptConcurrent?: boolean;
  /** Only act if the tail segment is still this one (the controller decided on an older view). */
  readonly expectTailIndex?: number;
  /** Nodeset size of an automatic placement (the cluster's setting); default: bifrost.nodeset-size. */
  readonly nodesetSize?: number;
  readonly signal?: AbortSignal;
}

export class Reconfigurer {
  constructor(
    private readonly ctx: BifrostContext,
    private readonly view: ChainView,
  ) {}

  /** Seals the tail segment (seal, find its tail, repair) and records its tail. Appends then wait for a reconfiguration. */
  async seal(log: LogId, signal?: AbortSignal): Promise<LogChain> {
    const chain = await this.view.chain(log, true);
    const seg = tailSegment(chain);
    if (seg === undefined) throw new CairnError("LOG_WRITE_UNAVAILABLE", `log ${log} has no segment to seal yet`, { log });
    if (seg.sealedTail !== undefined) return chain;
    return this.sealSegment(log, seg, "operator", signal);
  }

  /**
   * Seals `seg` and records its tail, and who sealed it: an operator's seal stays the tail; a seal
   * that is the first step of a reconfiguration is finished by the log controller when the step that
   * adds the next segment never happened (say the metadata leader changed between the two writes).
   */
  private async sealSegment(log: LogId, seg: Segment, by: "operator" | "reconfiguration", signal?: AbortSignal): Promise<LogChain> {
    const params = segmentParams(seg);
    const started = performance.now();
    const result = await recoverLoglet(params, this.ctx.deps.transport, { tickMs: this.ctx.deps.options.tickMs, random: this.ctx.random }, signal);
    const tail = offsetToLsn(lsn(seg.baseLsn), result.tail);
    if (result.lost.length > 0) {
      this.ctx.deps.logger.error({ log, loglet: params.loglet, lost: result.lost }, "committed records of the loglet are on no answering log-server");
    }
    if (result.underReplicated.length > 0) {
      this.ctx.deps.logger.warn(
        { log, loglet: params.loglet, underReplicated: result.underReplicated, replication: params.replication, nodeset: params.nodeset },
        "sealed with records on fewer than r log-servers: every other nodeset member that lacks them is unreachable; they stay readable but one more lost server may lose them (a nodeset larger than r avoids this)",
      );
    }
    const chain = await this.view.update(log, (l) => withSealedTail(l, seg.index, tail, by));
    this.ctx.deps.logger.info(
      { log, segment: seg.index, sealedTail: chain.segments.find((s) => s.index === seg.index)?.sealedTail, repaired: result.copiesWritten, ms: Math.round(performance.now() - started) },
      "sealed segment",
    );
    return chain;
  }

  /**
   * Seals the tail segment if needed and adds a new one at its sealed tail, with the requested (or
   * chosen) kind, replication, nodeset and sequencer. On an empty chain, adds the first segment.
   */
  async reconfigure(log: LogId, request: ReconfigureRequest, context: ReconfigureContext): Promise<LogChain> {
    let chain = await this.view.chain(log, true);
    let seg = tailSegment(chain);
    if (context.expectTailIndex !== undefined && (seg?.index ?? -1) !== context.expectTailIndex) return chain;
    if (seg !== undefined && seg.sealedTail === undefined) {
      chain = await this.sealSegment(log, seg, "reconfiguration", context.signal);
      seg = tailSegment(chain);
    }
    const doc = (await this.view.logsDocument()).doc;
    const planned = await this.planSegment(chain, seg, doc, request, context);
    const now = this.ctx.nowMs();
    try {
      const after = await this.view.update(log, (l) => (seg === undefined ? withFirstSegment(l, planned, now) : withNewSegment(l, seg.index, planned, now)));
      this.ctx.metrics?.reconfigurations.inc({ log: String(log), reason: context.reason });
      const added = tailSegment(after)!;
      this.ctx.deps.logger.info(
        { log, reason: context.reason, segment: added.index, baseLsn: added.baseLsn, kind: added.kind, sequencer: added.params.sequencer, nodeset: added.params.nodeset, replication: added.params.replication },
        "log reconfigured",
      );
      return after;
    } catch (e) {
      if (context.acceptConcurrent && isCairnError(e, "LOG_CHAIN_CONFLICT")) return this.view.chain(log, true);
      throw e;
    }
  }

  private async planSegment(
    chain: LogChain,
    previous: Segment | undefined,
    doc: LogsDocument,
    request: ReconfigureRequest,
    context: ReconfigureContext,
  ): Promise<NewSegment> {
    const candidates = context.candidates ?? (await this.ctx.deps.placer.candidates(context.signal));
    // A first segment of a single-node cluster with replication 1 is local (DESIGN §5): there is
    // nothing to replicate to, and the local loglet skips the replication machinery.
    const singleNode = previous === undefined && doc.defaultReplication === 1 && candidates.length === 1;
    const kind = request.kind ?? previous?.kind ?? (singleNode ? "local" : this.ctx.deps.options.defaultProvider);
    const live = new Map(candidates.map((c) => [c.id, c]));
    const requireLive = (n: NodeId, what: string): Candidate => {
      const c = live.get(n);
      if (c === undefined) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", `${what} ${n} is not a live log-server node (live: ${[...live.keys()].join(", ") || "none"})`, {
          log: chain.id,
          node: n,
        });
      }
      return c;
    };
    const load = new Map<NodeId, number>();
    for (const l of doc.logs) {
      const t = tailSegment(l);
      if (t && t.sealedTail === undefined && l.id !== chain.id) {
        const s = segmentSequencer(t);
        load.set(s.id, (load.get(s.id) ?? 0) + 1);
      }
    }
    const previousSequencer = previous ? segmentSequencer(previous) : undefined;
    if (kind === "local") {
      if (request.replication !== undefined && request.replication !== 1) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", "a local segment has exactly one copy (replication 1)", { log: chain.id });
      }
      if (request.nodeset !== undefined && request.nodeset.length !== 1) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", "a local segment lives on exactly one node: give a nodeset of one", { log: chain.id });
      }
      const node = request.nodeset?.[0] ?? request.sequencer;
      const sequencer = node !== undefined
        ? requireLive(node, "node")
        : chooseSequencer({ log: chain.id, candidates, load, ...(previousSequencer ? { previous: previousSequencer } : {}), ...(context.avoidSequencer ? { avoid: context.avoidSequencer } : {}) });
      return { kind, sequencer: { id: sequencer.id, generation: sequencer.generation }, nodeset: [sequencer.id], replication: 1, placement: node !== undefined ? "manual" : "auto" };
    }
    const replication = request.replication ?? (previous?.kind === "replicated" ? previous.params.replication : doc.defaultReplication);
    let nodeset: NodeId[];
    if (request.nodeset !== undefined) {
      if (new Set(request.nodeset).size !== request.nodeset.length) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", "the nodeset names a node twice", { log: chain.id });
      }
      for (const n of request.nodeset) requireLive(n, "nodeset member");
      if (replication > request.nodeset.length) {
        throw new CairnError("LOG_INVALID_RECONFIGURATION", `replication ${replication} needs a nodeset of at least ${replication} nodes, got ${request.nodeset.length}`, {
          log: chain.id,
        });
      }
      nodeset = [...request.nodeset];
    } else {
      const keepManual = previous?.placement === "manual" && previous.kind === "replicated" && request.replication === undefined;
      nodeset = chooseNodeset({
        log: chain.id,
        candidates,
        replication,
        size: keepManual ? previous.params.nodeset.length : desiredNodesetSize(replication, context.nodesetSize ?? this.ctx.deps.options.nodesetSize),
        ...(previous ? { previous: previous.params.nodeset as NodeId[] } : {}),
      });
    }
    const sequencer = request.sequencer !== undefined
      ? requireLive(request.sequencer, "sequencer")
      : chooseSequencer({ log: chain.id, candidates, load, ...(previousSequencer ? { previous: previousSequencer } : {}), ...(context.avoidSequencer ? { avoid: context.avoidSequencer } : {}) });
    const manual = request.nodeset !== undefined || (previous?.placement === "manual" && request.replication === undefined && request.kind === undefined);
    return { kind, sequencer: { id: sequencer.id, generation: sequencer.generation }, nodeset, replication, placement: manual ? "manual" : "auto" };
  }
}
