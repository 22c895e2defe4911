// The log-server record store's checkpointer thread: its own connection to the store file, on which
// it runs a PASSIVE WAL checkpoint each time the store asks, so copying WAL pages into the file and
// the two fsyncs SQLite does around that (WAL before, file after) never block the node's event loop.
// A PASSIVE checkpoint takes no lock a writer needs: the store keeps committing meanwhile.
import { Database } from "bun:sqlite";

declare const self: Worker;

export type CheckpointRequest = { kind: "open"; path: string; sync: boolean } | { kind: "checkpoint" } | { kind: "close" };
export type CheckpointAnswer =
  | { kind: "opened" }
  | { kind: "checkpointed"; busy: number; logFrames: number; checkpointedFrames: number; durationMs: number }
  | { kind: "failed"; error: string }
  | { kind: "closed" };

let db: Database | undefined;

self.onmessage = (event: MessageEvent<CheckpointRequest>) => {
  const m = event.data;
  const answer = (a: CheckpointAnswer) => postMessage(a);
  try {
    if (m.kind === "open") {
      db = new Database(m.path, { create: false });
      // NORMAL: the checkpoint syncs the WAL before copying and the file after (crash safety of the
      // copy); the store's own commits are synced by the store.
      db.run(`PRAGMA synchronous = ${m.sync ? "NORMAL" : "OFF"}`);
      db.run("PRAGMA wal_autocheckpoint = 0");
      answer({ kind: "opened" });
    } else if (m.kind === "checkpoint") {
      if (db === undefined) throw new Error("the checkpointer has no open store");
      const started = performance.now();
      const r = db.query<{ busy: number; log: number; checkpointed: number }, []>("PRAGMA wal_checkpoint(PASSIVE)").get();
      answer({ kind: "checkpointed", busy: r?.busy ?? 1, logFrames: r?.log ?? -1, checkpointedFrames: r?.checkpointed ?? -1, durationMs: performance.now() - started });
    } else {
      db?.close();
      db = undefined;
      answer({ kind: "closed" });
    }
  } catch (e) {
    answer({ kind: "failed", error: e instanceof Error ? e.message : String(e) });
  }
};
