// This node's view of the `logs` metadata document: a cache refreshed in the background and on demand,
// and the compare-and-set writer whose writes it adopts at once.
// Invariants: the cache only moves to newer versions and each adopted document goes to `onAdopted`; a
// linearizable read reflects every chain change acknowledged before its caller asked.
import type { MetadataApi } from "../metadata/api.ts";
import type { Version } from "../metadata/kv.ts";
import { CairnError } from "../observability/errors.ts";
import { requireLog, type LogChain, type LogsDocument } from "./chain.ts";
import { ChainWriter, readLogs, type ChainMutation } from "./chain-writer.ts";
import type { BifrostContext } from "./context.ts";
import type { LogId } from "../ids/index.ts";

export class ChainView {
  private cache: { doc: LogsDocument; version: Version } | undefined;
  private readonly refreshing = new Map<"linearizable" | "stale", Promise<{ doc: LogsDocument; version: Version }>>();
  /** Linearizable reads of the logs document, shared only among callers that arrived before they began. */
  private readonly freshReads = new FreshReads(() =>
    readLogs(this.api(), "linearizable").then((r) => {
      this.adopt(r.doc, r.version);
      return this.cache!;
    }),
  );
  private readonly writer: ChainWriter;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly ctx: BifrostContext,
    private readonly onAdopted: (doc: LogsDocument) => void,
  ) {
    this.writer = new ChainWriter(() => this.api(), (doc, version) => this.adopt(doc, version));
  }

  /** Starts the background chain refresh (keeps this node's view of every chain current). */
  start(): void {
    if (this.timer || this.ctx.stopped) return;
    this.timer = setInterval(() => {
      if (this.ctx.deps.metadata() === undefined) return;
      this.logsDocument(true, "stale").catch((e: unknown) => this.ctx.deps.logger.debug({ err: e }, "refreshing the logs chain failed; will retry"));
    }, this.ctx.deps.options.chainRefreshIntervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private api(): MetadataApi {
    const api = this.ctx.deps.metadata();
    if (api === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "logs exist only once the cluster is provisioned");
    return api;
  }

  /**
   * The logs document: the cached copy unless `fresh` (then a linearizable read, or `consistency`).
   * A linearizable read never reuses a request that began before the caller did (it could miss a
   * chain change acknowledged in between: found by the chaos log checker, seed 4101); stale reads
   * share one request.
   */
  async logsDocument(fresh = false, consistency: "linearizable" | "stale" = "linearizable"): Promise<{ doc: LogsDocument; version: Version }> {
    if (!fresh && this.cache) return this.cache;
    if (consistency === "linearizable") return this.freshReads.get();
    let pending = this.refreshing.get(consistency);
    if (pending === undefined) {
      pending = readLogs(this.api(), consistency)
        .then((r) => {
          this.adopt(r.doc, r.version);
          return this.cache!;
        })
        .finally(() => this.refreshing.delete(consistency));
      this.refreshing.set(consistency, pending);
    }
    return pending;
  }

  async chain(log: LogId, fresh = false): Promise<LogChain> {
    return requireLog((await this.logsDocument(fresh)).doc, log);
  }

  /** The cached chain, read without the two awaits of chain() (every append reads it twice). */
  cachedChain(log: LogId): LogChain | undefined {
    return this.cache === undefined ? undefined : requireLog(this.cache.doc, log);
  }

  /** Changes the chain of `log` by compare-and-set; the written document is adopted before this resolves. */
  update(log: LogId, mutate: ChainMutation): Promise<LogChain> {
    return this.writer.update(log, mutate);
  }

  /** Takes a newer document. */
  private adopt(doc: LogsDocument, version: Version): void {
    if (this.cache && this.cache.version > version) return;
    this.cache = { doc, version };
    for (const log of doc.logs) this.ctx.metrics?.trimPoint.set({ log: String(log.id) }, log.trimPoint);
    this.onAdopted(doc);
  }
}

/**
 * Coalesces reads that must reflect everything completed before each caller began: a caller
 * arriving while a read is in flight waits for the next read, which starts after it arrived, and
 * shares that one with everyone else who arrived meanwhile.
 */
class FreshReads<T> {
  private inFlight: Promise<T> | undefined;
  private queued: Promise<T> | undefined;

  constructor(private readonly read: () => Promise<T>) {}

  get(): Promise<T> {
    if (this.inFlight === undefined) return this.start();
    this.queued ??= this.inFlight
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.queued = undefined;
        return this.start();
      });
    return this.queued;
  }

  private start(): Promise<T> {
    const p: Promise<T> = this.read().finally(() => {
      if (this.inFlight === p) this.inFlight = undefined;
    });
    this.inFlight = p;
    return p;
  }
}
