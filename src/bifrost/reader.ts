// Reads a log: walks the chain from an LSN up to the tail found when the read starts, reading each
// segment's loglet from its replicas (this node's first), across segment boundaries.
// Invariants: a read never returns past the tail; LSNs at or below the trim point, or trimmed inside
// a loglet, come back as trim-gap entries, never skipped silently.
import { locate, segmentParams } from "./chain.ts";
import type { ChainView } from "./chain-view.ts";
import type { BifrostContext } from "./context.ts";
import { readLoglet } from "./replicated/driver.ts";
import type { TailFinder } from "./tail.ts";
import { LSN_OLDEST, lsn, lsnToOffset, offsetToLsn, type LogId, type Lsn } from "../ids/index.ts";

export type LogReadEntry =
  | { readonly kind: "record"; readonly lsn: Lsn; readonly payload: Uint8Array }
  /** LSNs [from, to] were trimmed: the reader skips them knowingly. */
  | { readonly kind: "trim-gap"; readonly from: Lsn; readonly to: Lsn };

export interface LogReadResult {
  readonly entries: LogReadEntry[];
  /** Where the next read starts. */
  readonly nextLsn: Lsn;
  /** The log's tail when the read started (first LSN not yet written). */
  readonly tailLsn: Lsn;
  readonly trimPoint: Lsn;
}

export class Reader {
  constructor(
    private readonly ctx: BifrostContext,
    private readonly view: ChainView,
    private readonly tails: TailFinder,
  ) {}

  /**
   * Reads committed records from `from` on (up to `limit` entries, never past the tail), crossing
   * segments. LSNs at or below the trim point come back as one trim gap, never skipped silently.
   * `fresh: false` starts from this node's cached chain instead of a linearizable read of it: a
   * tailing reader that polls often (a partition processor) then costs the metadata cluster nothing;
   * a segment added since shows up once the cache refreshes (or a seal makes the tail re-read it).
   */
  async read(log: LogId, from: Lsn, options: { limit?: number; signal?: AbortSignal; fresh?: boolean } = {}): Promise<LogReadResult> {
    const maxReadRecords = this.ctx.deps.options.maxReadRecords;
    const limit = Math.max(1, Math.min(options.limit ?? maxReadRecords, maxReadRecords));
    const { chain, tail } = await this.tails.chainTail(await this.view.chain(log, options.fresh ?? true), options.signal);
    const entries: LogReadEntry[] = [];
    let cursor: number = Math.max(LSN_OLDEST, from);
    const self = this.ctx.deps.self().id;
    while (entries.length < limit && cursor < tail.tailLsn) {
      if (cursor <= chain.trimPoint) {
        const to = Math.min(chain.trimPoint, tail.tailLsn - 1);
        entries.push({ kind: "trim-gap", from: lsn(cursor), to: lsn(to) });
        cursor = to + 1;
        continue;
      }
      const where = locate(chain, lsn(cursor));
      if (where.kind === "empty") break;
      if (where.kind === "trimmed") {
        entries.push({ kind: "trim-gap", from: lsn(cursor), to: where.to });
        cursor = where.to + 1;
        continue;
      }
      const seg = where.segment;
      const end = where.end ?? tail.tailLsn;
      if (cursor >= end) break;
      const to = Math.min(end, cursor + (limit - entries.length));
      const base = lsn(seg.baseLsn);
      const got = await readLoglet(
        segmentParams(seg),
        this.ctx.deps.transport,
        lsnToOffset(base, lsn(cursor)),
        lsnToOffset(base, lsn(to)),
        { tickMs: this.ctx.deps.options.tickMs, ...(self ? { preferred: self } : {}), random: this.ctx.random },
        options.signal,
      );
      for (const e of got) {
        if (e.kind === "record") entries.push({ kind: "record", lsn: offsetToLsn(base, e.offset), payload: e.payload });
        else entries.push({ kind: "trim-gap", from: offsetToLsn(base, e.from), to: offsetToLsn(base, e.to) });
      }
      cursor = to;
    }
    return { entries, nextLsn: lsn(cursor), tailLsn: tail.tailLsn, trimPoint: lsn(chain.trimPoint) };
  }
}
