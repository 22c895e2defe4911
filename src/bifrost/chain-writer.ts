// Writes the `logs` metadata document. Every log's chain lives in that one key, so concurrent chain
// changes (many logs reconfigured at once) would fight over its version: the writer queues them and
// applies every queued change in one read-modify-write with compare-and-set (If-Match on the
// version it read). A lost race re-reads and re-applies the pure mutations; each change succeeds or
// fails on its own (a conditional mutation that no longer applies fails with LOG_CHAIN_CONFLICT).
//
// Invariants: a document is written only with matches-version of the version it was computed from;
// a change is reported done only after the write that contains it is acknowledged; changes are
// applied in the order they were queued.
import type { MetadataApi } from "../metadata/api.ts";
import { matchesVersion, type Version } from "../metadata/kv.ts";
import { CairnError, isCairnError } from "../observability/errors.ts";
import { LOGS_KEY, findLog, parseLogsDocument, type LogChain, type LogsDocument } from "./chain.ts";
import type { LogId } from "../ids/index.ts";

export type ChainMutation = (log: LogChain, doc: LogsDocument) => LogChain;

interface Command {
  readonly log: LogId;
  readonly mutate: ChainMutation;
  resolve(chain: LogChain): void;
  reject(error: unknown): void;
}

export interface ChainWriterOptions {
  /** Changes applied in one write. */
  readonly maxBatch: number;
  /** Read-modify-write rounds before the queued changes fail with LOG_CHAIN_CONFLICT. */
  readonly maxAttempts: number;
}

export const CHAIN_WRITER_DEFAULTS: ChainWriterOptions = { maxBatch: 256, maxAttempts: 20 };

export class ChainWriter {
  private readonly queue: Command[] = [];
  private running = false;
  private readonly options: ChainWriterOptions;

  constructor(
    private readonly metadata: () => MetadataApi,
    /** Called with every document this writer wrote (keeps the caller's cache current). */
    private readonly onWritten: (doc: LogsDocument, version: Version) => void,
    options: Partial<ChainWriterOptions> = {},
  ) {
    this.options = { ...CHAIN_WRITER_DEFAULTS, ...options };
  }

  /** Applies `mutate` to the current chain of `log` and writes it; resolves with the chain as written. */
  update(log: LogId, mutate: ChainMutation): Promise<LogChain> {
    return new Promise<LogChain>((resolve, reject) => {
      this.queue.push({ log, mutate, resolve, reject });
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatch);
        await this.apply(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async apply(batch: Command[]): Promise<void> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.options.maxAttempts; attempt++) {
      let api: MetadataApi;
      let current: { doc: LogsDocument; version: Version };
      try {
        api = this.metadata();
        current = await readLogs(api);
      } catch (e) {
        for (const c of batch) c.reject(e);
        return;
      }
      let doc = current.doc;
      const outcomes: Array<{ ok: true; chain: LogChain } | { ok: false; error: unknown }> = [];
      for (const c of batch) {
        const before = findLog(doc, c.log);
        if (before === undefined) {
          outcomes.push({ ok: false, error: new CairnError("LOG_UNKNOWN_LOG", `no log ${c.log}`, { log: c.log }) });
          continue;
        }
        try {
          const after = c.mutate(before, doc);
          if (after !== before) doc = { ...doc, logs: doc.logs.map((l) => (l.id === c.log ? after : l)) };
          outcomes.push({ ok: true, chain: after });
        } catch (e) {
          outcomes.push({ ok: false, error: e });
        }
      }
      const settle = () => batch.forEach((c, i) => {
        const o = outcomes[i]!;
        if (o.ok) c.resolve(o.chain);
        else c.reject(o.error);
      });
      if (doc === current.doc) return settle();
      try {
        const version = await api.put(LOGS_KEY, doc, matchesVersion(current.version));
        this.onWritten(doc, version);
        return settle();
      } catch (e) {
        lastError = e;
        // Lost the race, or the outcome is unknown: re-read and apply again (the mutations are
        // conditional, so one that already landed now fails as a conflict or does nothing).
        if (isCairnError(e, "METADATA_VERSION_MISMATCH") || isCairnError(e, "METADATA_INDETERMINATE")) {
          await Bun.sleep(Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random() / 2));
          continue;
        }
        for (const c of batch) c.reject(e);
        return;
      }
    }
    const error = new CairnError("LOG_CHAIN_CONFLICT", `the logs document kept changing: ${(lastError as Error | undefined)?.message ?? ""}`);
    for (const c of batch) c.reject(error);
  }
}

/** Reads and validates the `logs` document (linearizable). */
export async function readLogs(api: MetadataApi, consistency: "linearizable" | "stale" = "linearizable"): Promise<{ doc: LogsDocument; version: Version }> {
  const v = await api.get(LOGS_KEY, { consistency });
  if (v === undefined) throw new CairnError("LOG_CHAIN_INVALID", `the '${LOGS_KEY}' metadata key is missing (provisioning writes it)`);
  return { doc: parseLogsDocument(v.value), version: v.version };
}
