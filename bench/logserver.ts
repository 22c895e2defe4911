// Store throughput of the log-server's SQLite record store: 1 KiB records, synchronous=FULL (fsync
// per transaction), clients each keeping one single-record store in flight on one loglet (offsets
// from a shared counter, like a pipelining sequencer). Group commit (the store's default) against
// a baseline of one transaction per record (the same store with maxBatchRecords = 1), at
// concurrency 1, 16 and 256, in the same run. Prints a table, writes bench/results/logserver.json.
//
// The two modes alternate in short rounds and each cell reports the median round, so a burst of
// disk contention from other processes hits both modes alike rather than one whole cell.
// Run alone on the machine: flock /tmp/cairn-bench.lock bun bench/logserver.ts [--seconds 1.5] [--rounds 3]
import { numArg } from "./args.ts";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { asLogletId, generationalNodeId, logletOffset } from "../src/ids/index.ts";
import { LogStore } from "../src/logserver/index.ts";

const SECONDS = numArg("seconds", 1.5);
const ROUNDS = numArg("rounds", 3);
const WARMUP_MS = 300;
const RECORD_BYTES = 1024;
const CONCURRENCY = [1, 16, 256];

interface Cell {
  mode: "group-commit" | "txn-per-record";
  concurrency: number;
  records: number;
  seconds: number;
  recordsPerSecond: number;
  mbPerSecond: number;
  transactions: number;
  recordsPerTransaction: number;
  latencyMsP50: number;
  latencyMsP99: number;
  latencyMsMax: number;
  /** Every round's throughput (the cell is the median round). */
  roundsRecordsPerSecond?: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(mode: Cell["mode"], concurrency: number): Promise<Cell> {
  const dir = mkdtempSync(join(tmpdir(), "cairn-bench-logserver-"));
  const store = LogStore.open({ path: join(dir, "store.sqlite"), sync: true, ...(mode === "txn-per-record" ? { maxBatchRecords: 1 } : {}) });
  const loglet = asLogletId("1_0");
  const sequencer = generationalNodeId(1, 1);
  const payload = new Uint8Array(RECORD_BYTES).map((_, i) => (i * 31) & 0xff);
  let nextOffset = 1;
  let measuring = false;
  let stop = false;
  let records = 0;
  const latencies: number[] = [];

  const client = async () => {
    while (!stop) {
      const offset = nextOffset++;
      const started = performance.now();
      const r = await store.store({ loglet, sequencer, firstOffset: logletOffset(offset), payloads: [payload], knownGlobalTail: logletOffset(1) });
      if (r.status !== "stored") throw new Error(`store answered ${r.status}`);
      if (measuring) {
        records++;
        latencies.push(performance.now() - started);
      }
    }
  };
  const clients = Array.from({ length: concurrency }, () => client());
  await Bun.sleep(WARMUP_MS);
  const txBefore = store.stats().transactions;
  measuring = true;
  const t0 = performance.now();
  await Bun.sleep(SECONDS * 1000);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const transactions = store.stats().transactions - txBefore;
  stop = true;
  await Promise.all(clients);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    mode,
    concurrency,
    records,
    seconds: round(seconds, 2),
    recordsPerSecond: Math.round(records / seconds),
    mbPerSecond: round((records * RECORD_BYTES) / seconds / 1e6, 1),
    transactions,
    recordsPerTransaction: round(records / Math.max(1, transactions), 1),
    latencyMsP50: round(percentile(latencies, 50), 3),
    latencyMsP99: round(percentile(latencies, 99), 3),
    latencyMsMax: round(latencies[latencies.length - 1] ?? 0, 3),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const cells: Cell[] = [];
for (const concurrency of CONCURRENCY) {
  const rounds: Record<Cell["mode"], Cell[]> = { "txn-per-record": [], "group-commit": [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of ["txn-per-record", "group-commit"] as const) {
      const cell = await measure(mode, concurrency);
      rounds[mode].push(cell);
      console.error(`round ${round + 1}: ${mode} at concurrency ${concurrency}: ${cell.recordsPerSecond} records/s`);
    }
  }
  for (const mode of ["txn-per-record", "group-commit"] as const) {
    const sorted = [...rounds[mode]].sort((a, b) => a.recordsPerSecond - b.recordsPerSecond);
    cells.push({ ...sorted[Math.floor(sorted.length / 2)]!, roundsRecordsPerSecond: rounds[mode].map((c) => c.recordsPerSecond) });
  }
}

const rows = CONCURRENCY.map((c) => {
  const base = cells.find((x) => x.concurrency === c && x.mode === "txn-per-record")!;
  const group = cells.find((x) => x.concurrency === c && x.mode === "group-commit")!;
  return { concurrency: c, base, group, ratio: round(group.recordsPerSecond / Math.max(1, base.recordsPerSecond), 2) };
});

const header = "| concurrency | 1 txn/record (rec/s) | group commit (rec/s) | ratio | group MB/s | records/txn | group p50 / p99 ms | baseline p50 / p99 ms |";
console.log(`\nlog store, 1 KiB records, synchronous=FULL, median of ${ROUNDS} rounds of ${SECONDS} s per cell (${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, Bun ${Bun.version})\n`);
console.log(header);
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.concurrency} | ${r.base.recordsPerSecond} | ${r.group.recordsPerSecond} | ${r.ratio}× | ${r.group.mbPerSecond} | ${r.group.recordsPerTransaction} | ${r.group.latencyMsP50} / ${r.group.latencyMsP99} | ${r.base.latencyMsP50} / ${r.base.latencyMsP99} |`,
  );
}

mkdirSync(join(import.meta.dir, "results"), { recursive: true });
const out = {
  benchmark: "logserver-store",
  date: new Date().toISOString(),
  bun: Bun.version,
  cpu: cpus()[0]?.model ?? "unknown",
  cores: cpus().length,
  recordBytes: RECORD_BYTES,
  synchronous: "FULL",
  secondsPerRound: SECONDS,
  rounds: ROUNDS,
  rows: rows.map((r) => ({ concurrency: r.concurrency, ratio: r.ratio, baseline: r.base, groupCommit: r.group })),
};
writeFileSync(join(import.meta.dir, "results/logserver.json"), JSON.stringify(out, null, 2) + "\n");
console.log("\nwrote bench/results/logserver.json");
