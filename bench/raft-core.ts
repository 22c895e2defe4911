// Throughput of the pure Raft core: proposals committed per second through a 3-node cluster held in
// memory (MemoryStorage, messages handed over synchronously, no encoding, no I/O), for batch sizes
// 1, 16 and 256 (proposals made between two Ready cycles). The loop is closed: propose a batch, drive
// Ready/step until the leader has applied it, repeat. Ratios are against batch size 1 in the same run.
// A second column passes every message through encodeMessage/decodeMessage (the wire cost).
//   flock /tmp/cairn-bench.lock node_modules/.bin/bun bench/raft-core.ts [--seconds 2] [--trials 3]
// Writes bench/results/raft-core.json.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import type { Index, Message, RaftId } from "../src/raft/index.ts";
import { MemoryStorage, RaftNode, Xoshiro128, bootstrapPersistedState, decodeMessage, encodeMessage } from "../src/raft/index.ts";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "2" },
    trials: { type: "string", default: "3" },
    quick: { type: "boolean", default: false },
  },
});
const SECONDS = args.quick ? 0.3 : Number(args.seconds);
const TRIALS = args.quick ? 1 : Number(args.trials);
const BATCHES = [1, 16, 256];
const PAYLOAD_BYTES = 64;
const COMPACT_EVERY_ENTRIES = 20_000;

interface Member {
  node: RaftNode;
  storage: MemoryStorage;
  applied: number;
  lastSnapshot: number;
}

class InMemoryCluster {
  readonly members = new Map<RaftId, Member>();
  messages = 0;
  private queue: Message[] = [];

  constructor(private readonly wire: boolean) {
    const ids = [1, 2, 3] as RaftId[];
    const persisted = bootstrapPersistedState(ids);
    for (const id of ids) {
      const storage = MemoryStorage.fromPersistedState(persisted);
      const node = new RaftNode({
        config: { id, electionTimeoutTicks: 10, maxInflightMsgs: 256, maxUncommittedEntriesBytes: 1 << 30 },
        storage,
        random: new Xoshiro128(id),
      });
      this.members.set(id, { node, storage, applied: 0, lastSnapshot: 0 });
    }
    const leader = this.members.get(1 as RaftId)!;
    for (let k = 0; k < 100 && leader.node.inspect.role() !== "leader"; k++) {
      leader.node.tick();
      this.drive();
    }
    if (leader.node.inspect.role() !== "leader") throw new Error("no leader");
  }

  get leader(): Member {
    return this.members.get(1 as RaftId)!;
  }

  private handleReady(m: Member): void {
    const rd = m.node.ready();
    if (rd.snapshot !== null) m.storage.applySnapshot(rd.snapshot);
    m.storage.append(rd.entries);
    if (rd.hardState !== null) m.storage.setHardState(rd.hardState);
    for (const msg of rd.messages) this.queue.push(this.wire ? decodeMessage(encodeMessage(msg)) : msg);
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    if (last !== undefined) m.applied = last.index;
    m.node.advance();
    if (m.applied - m.lastSnapshot >= COMPACT_EVERY_ENTRIES) {
      m.storage.createSnapshot(m.applied as Index, m.node.appliedConfState(), new Uint8Array(0));
      m.storage.compact(m.applied as Index);
      m.lastSnapshot = m.applied;
    }
  }

  /** Ready/step until nothing moves. */
  drive(): void {
    for (;;) {
      let busy = false;
      for (const m of this.members.values()) {
        if (m.node.hasReady()) {
          busy = true;
          this.handleReady(m);
        }
      }
      if (this.queue.length > 0) {
        busy = true;
        const batch = this.queue;
        this.queue = [];
        this.messages += batch.length;
        for (const msg of batch) this.members.get(msg.to)!.node.step(msg);
      }
      if (!busy) return;
    }
  }
}

interface Trial {
  proposalsPerSec: number;
  rounds: number;
  messagesPerProposal: number;
}

function trial(batch: number, wire: boolean, seconds: number): Trial {
  const c = new InMemoryCluster(wire);
  const leader = c.leader;
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(7);
  let proposals = 0;
  let rounds = 0;
  const messagesBefore = c.messages;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  while (performance.now() < deadline) {
    let last = 0;
    for (let k = 0; k < batch; k++) {
      const r = leader.node.propose(payload);
      if (!r.ok) throw new Error(`proposal refused: ${r.reason}`);
      last = r.lastIndex;
    }
    c.drive();
    if (leader.applied < last) throw new Error("batch not applied after the cluster went quiet");
    proposals += batch;
    rounds++;
  }
  const elapsed = (performance.now() - started) / 1000;
  return { proposalsPerSec: proposals / elapsed, rounds, messagesPerProposal: (c.messages - messagesBefore) / proposals };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function measure(batch: number, wire: boolean): Trial {
  trial(batch, wire, Math.min(0.3, SECONDS)); // warm up the JIT
  const trials: Trial[] = [];
  for (let k = 0; k < TRIALS; k++) trials.push(trial(batch, wire, SECONDS));
  const best = median(trials.map((t) => t.proposalsPerSec));
  return trials.find((t) => t.proposalsPerSec === best)!;
}

function main(): void {
  const loadBefore = os.loadavg()[0]!;
  const rows = BATCHES.map((batch) => ({ batch, core: measure(batch, false), wire: measure(batch, true) }));
  const base = rows[0]!;
  const results = rows.map((r) => ({
    batchSize: r.batch,
    proposalsPerSec: Math.round(r.core.proposalsPerSec),
    ratioVsBatch1: r.core.proposalsPerSec / base.core.proposalsPerSec,
    messagesPerProposal: r.core.messagesPerProposal,
    withCodecProposalsPerSec: Math.round(r.wire.proposalsPerSec),
    withCodecRatioVsBatch1: r.wire.proposalsPerSec / base.wire.proposalsPerSec,
  }));

  const fmt = (n: number): string => n.toLocaleString("en-US", { maximumFractionDigits: 0 });
  console.log(`raft core, 3 nodes in memory, ${PAYLOAD_BYTES}-byte proposals, ${SECONDS}s × ${TRIALS} trials (median)`);
  console.log("batch | proposals/s | vs batch 1 | msgs/proposal | with codec: proposals/s | vs batch 1");
  console.log("------|-------------|------------|---------------|-------------------------|-----------");
  for (const r of results) {
    console.log(
      `${String(r.batchSize).padStart(5)} | ${fmt(r.proposalsPerSec).padStart(11)} | ${r.ratioVsBatch1.toFixed(2).padStart(9)}x | ${r.messagesPerProposal.toFixed(2).padStart(13)} | ${fmt(r.withCodecProposalsPerSec).padStart(23)} | ${r.withCodecRatioVsBatch1.toFixed(2).padStart(8)}x`,
    );
  }
  const loadAfter = os.loadavg()[0]!;
  console.log(`load average (1 min) before/after: ${loadBefore.toFixed(2)} / ${loadAfter.toFixed(2)} on ${os.cpus().length} CPUs`);

  const out = join(dirname(new URL(import.meta.url).pathname), "results", "raft-core.json");
  mkdirSync(dirname(out), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(dirname(out), "..", "..", "package.json"), "utf8")) as { version?: string };
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        benchmark: "raft-core",
        description: "proposals committed per second through a 3-node in-memory Raft cluster (closed loop: propose a batch, drive until applied)",
        cairnVersion: pkg.version ?? null,
        runtime: `bun ${Bun.version}`,
        date: new Date().toISOString(),
        machine: { cpus: os.cpus().length, loadAverage1mBefore: loadBefore, loadAverage1mAfter: loadAfter },
        settings: { payloadBytes: PAYLOAD_BYTES, secondsPerTrial: SECONDS, trials: TRIALS, statistic: "median" },
        results,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${out}`);
}

main();
