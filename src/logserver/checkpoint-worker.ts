// The log-server record store's checkpointer thread: its own connection to the store file, on which
// it runs a PASSIVE WAL checkpoint each time the store asks, so copying WAL pages into the file and
// the two fsyncs SQLite does around that (WAL before, file after) never block the node's event loop.
// A PASSIVE checkpoint takes no lock a writer needs: the store keeps committing meanwhile. It also
// answers bulk range reads (re-replication's source windows) as one packed, transferred buffer, so
// reading a MiB of records does not block the event loop either; the store clips every read to
// what it has published (durable), so this connection's view never shows more than the store's.
import { Database } from "bun:sqlite";

declare const self: Worker;

export type CheckpointRequest =
  | { kind: "open"; path: string; sync: boolean }
  | { kind: "checkpoint" }
  | { kind: "read"; loglet: string; from: number; to: number; byteBudget: number; maxRecords: number }
  | { kind: "close" };
export type CheckpointAnswer =
  | { kind: "opened" }
  | { kind: "checkpointed"; busy: number; logFrames: number; checkpointedFrames: number; durationMs: number }
  | { kind: "failed"; error: string }
  /** Records `offsets[i]` with payload `data[starts[i] .. starts[i + 1])`; `next`: where a next read starts. */
  | { kind: "records"; offsets: Float64Array; starts: Uint32Array; data: ArrayBuffer; next: number }
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
    } else if (m.kind === "read") {
      if (db === undefined) throw new Error("the checkpointer has no open store");
      const rows = db
        .query<{ record_offset: number; payload: Uint8Array }, [string, number, number]>(
          "SELECT record_offset, payload FROM records WHERE loglet_id = ? AND record_offset BETWEEN ? AND ? ORDER BY record_offset",
        )
        .iterate(m.loglet, m.from, m.to);
      const offsets: number[] = [];
      const payloads: Uint8Array[] = [];
      let bytes = 0;
      let next = m.to + 1;
      // The same budget rule as the store's own read: at least one record, then within the budget.
      for (const row of rows) {
        if (offsets.length > 0 && (bytes + row.payload.byteLength > m.byteBudget || offsets.length >= m.maxRecords)) {
          next = row.record_offset;
          break;
        }
        offsets.push(row.record_offset);
        payloads.push(row.payload);
        bytes += row.payload.byteLength;
      }
      const buffer = new ArrayBuffer(bytes);
      const data = new Uint8Array(buffer);
      const starts = new Uint32Array(payloads.length + 1);
      let at = 0;
      payloads.forEach((p, i) => {
        starts[i] = at;
        data.set(p, at);
        at += p.byteLength;
      });
      starts[payloads.length] = at;
      const offsetsBuffer = new ArrayBuffer(offsets.length * 8);
      const packedOffsets = new Float64Array(offsetsBuffer);
      packedOffsets.set(offsets);
      const startsBuffer = starts.buffer as ArrayBuffer;
      const answer: CheckpointAnswer = { kind: "records", offsets: packedOffsets, starts, data: buffer, next };
      postMessage(answer, [offsetsBuffer, startsBuffer, buffer]);
      return;
    } else {
      db?.close();
      db = undefined;
      answer({ kind: "closed" });
    }
  } catch (e) {
    answer({ kind: "failed", error: e instanceof Error ? e.message : String(e) });
  }
};
