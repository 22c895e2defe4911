// Runs the record store's WAL checkpoints on a Worker thread (checkpoint-worker.ts, its own SQLite
// connection), so the store's event loop never waits for a checkpoint's page copies and fsyncs (an
// 8 MiB checkpoint inside a commit blocked it 20-25 ms, and took half of a bulk copy's store time).
// One request at a time, answered in order. If the worker cannot start or fails, `failed` says why
// and the store checkpoints inline again (SQLite's wal_autocheckpoint): slower, never unsafe.
import type { CheckpointAnswer, CheckpointRequest } from "./checkpoint-worker.ts";

/**
 * Where the worker's module is. From source, beside this file; in the compiled binary it is an extra
 * entry point (scripts/build.ts) at its path under src/, the virtual file system's root.
 */
function workerUrl(): string {
  const here = import.meta.url;
  if (here.includes("/$bunfs/") || here.includes("%24bunfs")) return "/$bunfs/root/logserver/checkpoint-worker.ts";
  return new URL("./checkpoint-worker.ts", here).href;
}

export type CheckpointResult = Extract<CheckpointAnswer, { kind: "checkpointed" }>;

export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly waiting: Array<(a: CheckpointAnswer) => void> = [];
  private failure: string | undefined;
  private closed = false;

  /** Starts the thread and opens `path` on it (the store file must exist, in WAL mode). */
  constructor(path: string, sync: boolean) {
    this.worker = new Worker(workerUrl());
    this.worker.onmessage = (e: MessageEvent<CheckpointAnswer>) => this.waiting.shift()?.(e.data);
    this.worker.onerror = (e) => {
      this.failure ??= `checkpoint worker failed: ${e.message}`;
      for (const w of this.waiting.splice(0)) w({ kind: "failed", error: this.failure });
    };
    void this.ask({ kind: "open", path, sync }).then((a) => {
      if (a.kind === "failed") this.failure ??= `checkpoint worker cannot open ${path}: ${a.error}`;
    });
  }

  /** Why checkpoints cannot run here any more, if so. */
  get failed(): string | undefined {
    return this.failure;
  }

  /** One PASSIVE checkpoint (the WAL synced, its frames copied into the file, the file synced). */
  async checkpoint(): Promise<CheckpointResult> {
    const a = await this.ask({ kind: "checkpoint" });
    if (a.kind === "checkpointed") return a;
    const why = a.kind === "failed" ? a.error : `unexpected answer ${a.kind}`;
    this.failure ??= why;
    throw new Error(why);
  }

  /** Records of `loglet` in `[from, to]` within the budget, read on the thread (see checkpoint-worker.ts). */
  async read(loglet: string, from: number, to: number, byteBudget: number, maxRecords: number): Promise<{ offsets: number[]; payloads: Uint8Array[]; next: number }> {
    const a = await this.ask({ kind: "read", loglet, from, to, byteBudget, maxRecords });
    if (a.kind !== "records") throw new Error(a.kind === "failed" ? a.error : `unexpected answer ${a.kind}`);
    const payloads: Uint8Array[] = new Array(a.offsets.length);
    for (let i = 0; i < a.offsets.length; i++) payloads[i] = new Uint8Array(a.data, a.starts[i]!, a.starts[i + 1]! - a.starts[i]!);
    return { offsets: Array.from(a.offsets), payloads, next: a.next };
  }

  /** Closes the worker's connection (before the store's own, which then removes the WAL), then the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.failure === undefined) {
      await Promise.race([this.ask({ kind: "close" }), new Promise((r) => setTimeout(r, 10_000))]);
    }
    this.worker.terminate();
  }

  private ask(request: CheckpointRequest): Promise<CheckpointAnswer> {
    if (this.failure !== undefined && request.kind !== "close") return Promise.resolve({ kind: "failed", error: this.failure });
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.worker.postMessage(request);
    });
  }
}
