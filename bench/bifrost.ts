// Append throughput and latency of bifrost in one process: three nodes, each with its own SQLite
// record store (synchronous=FULL, fsync per group commit), connected by direct calls instead of the
// fabric (so this measures the sequencer, the r-of-n quorum and group commit, not the network).
// 1 KiB records, one record per append, clients each keeping one append in flight on one log,
// appending through the sequencer's node. Replication 1 (nodeset of one) against replication 2
// (nodeset of three, acknowledged at two copies), at concurrency 1, 16 and 64; each cell is the
// median of its rounds, and the two settings alternate round by round.
// Run alone on the machine: flock /tmp/cairn-bench.lock bun bench/bifrost.ts [--seconds 1.5] [--rounds 3]
import { numArg } from "./args.ts";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { logId, nodeId } from "../src/ids/index.ts";
import { TestCluster } from "../test/bifrost/harness.ts";

const SECONDS = numArg("seconds", 1.5);
const ROUNDS = numArg("rounds", 3);
const WARMUP_MS = 300;
const RECORD_BYTES = 1024;
const CONCURRENCY = [1, 16, 64];
const REPLICATION = [1, 2];

interface Cell {
  replication: number;
  concurrency: number;
  records: number;
  recordsPerSecond: number;
  latencyMsP50: number;
  latencyMsP99: number;
  latencyMsMax: number;
  roundsRecordsPerSecond?: number[];
}

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;
const pct = (s: number[], p: number) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!);

async function measure(replication: number, concurrency: number): Promise<Cell> {
  const dir = mkdtempSync(join(tmpdir(), "cairn-bench-bifrost-"));
  const cluster = new TestCluster(dir, 3, replication, [1], { maxInflightBatches: 256, maxQueuedAppends: 4096, appendTimeoutMs: 30_000 }, true);
  const log = logId(1);
  await cluster.node(1).bifrost.reconfigure(log, { sequencer: nodeId(1) }, { reason: "bench" });
  const bifrost = cluster.node(1).bifrost;
  const payload = new Uint8Array(RECORD_BYTES).map((_, i) => (i * 31) & 0xff);
  let measuring = false;
  let stop = false;
  let records = 0;
  const latencies: number[] = [];
  const client = async () => {
    while (!stop) {
      const t = performance.now();
      await bifrost.append(log, [payload]);
      if (measuring) {
        records++;
        latencies.push(performance.now() - t);
      }
    }
  };
  const clients = Array.from({ length: concurrency }, () => client());
  await Bun.sleep(WARMUP_MS);
  measuring = true;
  const t0 = performance.now();
  await Bun.sleep(SECONDS * 1000);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(clients);
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    replication,
    concurrency,
    records,
    recordsPerSecond: Math.round(records / seconds),
    latencyMsP50: round(pct(latencies, 50), 3),
    latencyMsP99: round(pct(latencies, 99), 3),
    latencyMsMax: round(latencies.at(-1) ?? 0, 3),
  };
}

const cells: Cell[] = [];
for (const concurrency of CONCURRENCY) {
  const rounds = new Map<number, Cell[]>(REPLICATION.map((r) => [r, []]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const r of REPLICATION) {
      const cell = await measure(r, concurrency);
      rounds.get(r)!.push(cell);
      console.error(`round ${i + 1}: r=${r} concurrency ${concurrency}: ${cell.recordsPerSecond} records/s`);
    }
  }
  for (const r of REPLICATION) {
    const sorted = [...rounds.get(r)!].sort((a, b) => a.recordsPerSecond - b.recordsPerSecond);
    cells.push({ ...sorted[Math.floor(sorted.length / 2)]!, roundsRecordsPerSecond: rounds.get(r)!.map((c) => c.recordsPerSecond) });
  }
}

console.log(`\nbifrost appends in one process, 1 KiB records, synchronous=FULL, median of ${ROUNDS} rounds of ${SECONDS} s (${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, Bun ${Bun.version})\n`);
console.log("| concurrency | r=1 rec/s | r=1 p50 / p99 ms | r=2 of 3 rec/s | r=2 p50 / p99 ms |");
console.log("|---|---|---|---|---|");
for (const c of CONCURRENCY) {
  const a = cells.find((x) => x.concurrency === c && x.replication === 1)!;
  const b = cells.find((x) => x.concurrency === c && x.replication === 2)!;
  console.log(`| ${c} | ${a.recordsPerSecond} | ${a.latencyMsP50} / ${a.latencyMsP99} | ${b.recordsPerSecond} | ${b.latencyMsP50} / ${b.latencyMsP99} |`);
}
mkdirSync(join(import.meta.dir, "results"), { recursive: true });
writeFileSync(
  join(import.meta.dir, "results/bifrost.json"),
  JSON.stringify(
    { benchmark: "bifrost-append", date: new Date().toISOString(), bun: Bun.version, cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, recordBytes: RECORD_BYTES, secondsPerRound: SECONDS, rounds: ROUNDS, cells },
    null,
    2,
  ) + "\n",
);
console.log("\nwrote bench/results/bifrost.json");
