// The metadata store's integrity as status reports it: checked when the storage opens, then again on a
// slow timer in a Worker thread (quick-check-worker.ts), never per status request. Status shows the
// last result and when it was taken.
import type { Logger } from "../observability/log.ts";

export interface IntegrityResult {
  ok: boolean;
  /** "ok", or what quick_check found. */
  detail: string;
  checkedAtMs: number;
  durationMs: number;
}

/**
 * Where the worker's module is. From source, beside this file. In the compiled binary every module is
 * bundled into one file at the root of its virtual file system, so a path relative to this module
 * points at the wrong place: the worker is an extra entry point (scripts/build.ts) kept at its path
 * under src/, which is the virtual root.
 */
function workerUrl(): string {
  const here = import.meta.url;
  if (here.includes("/$bunfs/") || here.includes("%24bunfs")) return "/$bunfs/root/metadata/quick-check-worker.ts";
  return new URL("./quick-check-worker.ts", here).href;
}

/** Runs quick_check on `path` off the event loop. */
export function quickCheckOffThread(path: string, timeoutMs = 10 * 60_000): Promise<Omit<IntegrityResult, "checkedAtMs"> & { failedToRun?: boolean }> {
  return new Promise((resolve) => {
    const worker = new Worker(workerUrl());
    const done = (r: Omit<IntegrityResult, "checkedAtMs"> & { failedToRun?: boolean }) => {
      clearTimeout(timer);
      worker.terminate();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, detail: `quick_check did not finish within ${timeoutMs} ms`, durationMs: timeoutMs }), timeoutMs);
    worker.onmessage = (e: MessageEvent<Omit<IntegrityResult, "checkedAtMs">>) => done(e.data);
    worker.onerror = (e) => done({ ok: false, detail: `quick_check worker failed: ${e.message}`, durationMs: 0, failedToRun: true });
    worker.postMessage({ path });
  });
}

/** Keeps the last integrity result of one store and refreshes it every `intervalMs`. */
export class IntegrityMonitor {
  private last: IntegrityResult;
  private timer: ReturnType<typeof setInterval> | undefined;
  private running = false;

  constructor(
    private readonly path: string,
    initial: IntegrityResult,
    private readonly log: Logger,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.last = initial;
  }

  get result(): IntegrityResult {
    return this.last;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.checkNow(), intervalMs);
    this.timer.unref?.();
  }

  async checkNow(): Promise<IntegrityResult> {
    if (this.running) return this.last;
    this.running = true;
    try {
      const { failedToRun, ...r } = await quickCheckOffThread(this.path);
      if (failedToRun === true) {
        // Not a verdict on the store: keep the last result and say why no new one exists.
        this.log.warn({ path: this.path, detail: r.detail }, "the metadata storage integrity check could not run");
        return this.last;
      }
      this.last = { ...r, checkedAtMs: this.nowMs() };
      if (!r.ok) this.log.error({ path: this.path, detail: r.detail }, "metadata storage failed its integrity check");
      return this.last;
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
