// Runs SQLite's quick_check on a database in a Worker thread, on its own read-only connection, so a
// large metadata store is checked without blocking the node's event loop. Started per check by
// integrity.ts; answers one message with the result and exits.
import { Database } from "bun:sqlite";

declare const self: Worker;

self.onmessage = (event: MessageEvent<{ path: string }>) => {
  const started = performance.now();
  let result: { ok: boolean; detail: string; durationMs: number };
  try {
    const db = new Database(event.data.path, { readonly: true });
    try {
      const rows = db.query<{ quick_check: string }, []>("PRAGMA quick_check").all();
      const detail = rows.map((r) => r.quick_check).join("; ");
      result = { ok: detail === "ok", detail, durationMs: performance.now() - started };
    } finally {
      db.close();
    }
  } catch (e) {
    result = { ok: false, detail: (e as Error).message, durationMs: performance.now() - started };
  }
  postMessage(result);
};
