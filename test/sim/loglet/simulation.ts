// One seeded run of the replicated loglet protocol: a sequencer appends batches to a nodeset of
// 3–5 log-servers over a lossy, reordering, duplicating network; log-servers crash (losing unsynced
// writes) and some lose their disk; the sequencer is lost mid-stream (or the loglet is sealed under
// a live sequencer); a recovery actor seals, finds the tail and repairs; a reader reads it all back.
// Then the checker verifies the log's guarantees. Same seed, same run.
//
// Checked: offsets dense and unique, commits in order; every committed record below every tail a
// recovery found (so nothing is committed past a seal); no committed record lost while fewer than r
// servers lost data; every offset below the tail has r copies after repair, all copies equal; the
// tail reads back completely, each offset once, in order, each committed payload exactly once.
import {
  SeededRandom,
  SequencerCore,
  TailRecovery,
  ReaderCore,
  type ReaderEvent,
  type RecoveryEvent,
  type RecoveryResult,
  type ReplicatedLogletParams,
  type SequencerEvent,
  type SequencerOptions,
  type RecoveryOptions,
} from "../../../src/bifrost/replicated/index.ts";
import { asLogletId, generationalNodeId, logletOffset, nodeId, type LogletOffset, type NodeId, type OffsetRange } from "../../../src/ids/index.ts";
import { CoreActor, SimServer, World } from "./world.ts";

export type Variant = "correct" | "ack-at-r-minus-1" | "find-tail-single-server";

/** A deliberately broken sequencer: commits with one copy too few. */
class AckAtRMinus1 extends SequencerCore {
  protected override commitQuorum(): number {
    return this.params.replication - 1;
  }
}

/** A deliberately broken recovery: trusts the digest of a single sealed server. */
class SingleServerRecovery extends TailRecovery {
  protected override evidenceQuorum(): number {
    return 1;
  }
}

export interface SimConfig {
  readonly n: number;
  readonly r: number;
  readonly spread: number | "flood" | "r";
  readonly maxInflightBatches: number;
  readonly batches: number;
  readonly mode: "lose-sequencer" | "seal-live-sequencer" | "quiet";
  readonly crashes: number;
  readonly wipes: number;
  readonly repairFromStart: boolean;
  readonly twoRecoveries: boolean;
  readonly drop: number;
  readonly duplicate: number;
}

export interface SimResult {
  readonly seed: number;
  readonly variant: Variant;
  readonly ok: boolean;
  readonly violations: string[];
  readonly config: SimConfig;
  readonly stats: {
    appended: number;
    committed: number;
    committedRecords: number;
    tails: number[];
    events: number;
    virtualMs: number;
    recoveryAttempts: number;
  };
  readonly trace: string[];
}

const LIMIT_MS = 30_000;

export function runLogletSimulation(seed: number, variant: Variant = "correct"): SimResult {
  const setup = new SeededRandom(seed ^ 0x5eed);
  const n = 3 + setup.int(3);
  const r = variant === "ack-at-r-minus-1" ? 2 + setup.int(n - 1) : 1 + setup.int(n);
  const spreadDraw = setup.float();
  const config: SimConfig = {
    n,
    r,
    spread: spreadDraw < 0.35 ? "flood" : spreadDraw < 0.7 ? "r" : r + setup.int(n - r + 1),
    maxInflightBatches: 1 + setup.int(16),
    batches: 20 + setup.int(60),
    mode: (["lose-sequencer", "lose-sequencer", "seal-live-sequencer", "quiet"] as const)[setup.int(4)]!,
    crashes: setup.int(5),
    wipes: setup.float() < 0.3 ? setup.int(r) : 0,
    repairFromStart: setup.float() < 0.5,
    twoRecoveries: setup.float() < 0.2,
    drop: setup.float() * 0.08,
    duplicate: setup.float() * 0.05,
  };
  const minDelay = 0.05 + setup.float() * 0.5;
  const world = new World(seed, {
    dropProbability: config.drop,
    duplicateProbability: config.duplicate,
    minDelayMs: minDelay,
    maxDelayMs: minDelay + 0.2 + setup.float() * 6,
    // Drawn apart from `setup`, so every other parameter of a seed stays as it was.
    refuseWhenDownProbability: new SeededRandom(seed ^ 0x7ef05e).float() < 0.5 ? 0 : 0.9,
  });
  const diskMax = 0.3 + setup.float() * 3;
  const violations: string[] = [];
  const violate = (msg: string) => {
    world.trace(`VIOLATION ${msg}`);
    violations.push(msg);
  };

  const nodes = Array.from({ length: n }, (_, i) => nodeId(i + 1));
  const servers = new Map<NodeId, SimServer>(nodes.map((id) => [id, new SimServer(id, world, [0.05, diskMax])]));
  const params: ReplicatedLogletParams = {
    loglet: asLogletId("1_0"),
    sequencer: generationalNodeId(100, 1),
    nodeset: nodes,
    replication: r,
  };
  world.trace(`seed ${seed} variant ${variant} config ${JSON.stringify(config)}`);

  // ---- the sequencer and its client ------------------------------------------------------------
  const seqOptions: Partial<SequencerOptions> = {
    spreadWidth: config.spread,
    maxInflightBatches: config.maxInflightBatches,
    storeTimeoutTicks: 10 + setup.int(20),
    hedgeTicks: setup.int(6),
  };
  const seqCore =
    variant === "ack-at-r-minus-1"
      ? new AckAtRMinus1(params, new SeededRandom(seed + 1), seqOptions)
      : new SequencerCore(params, new SeededRandom(seed + 1), seqOptions);
  const payloadAt = new Map<number, string>(); // offset → payload the sequencer assigned
  const committed: Array<{ first: number; last: number; at: number }> = [];
  let committedTail = 1;
  let sequencerSawSeal = false;
  let appended = 0;
  let workloadDone = false;
  const sequencer = new CoreActor<SequencerEvent>("seq", seqCore, world, servers, (e) => {
    switch (e.kind) {
      case "committed":
        world.trace(`COMMIT [${e.first}, ${e.last}]`);
        if (sequencerSawSeal) violate(`commit [${e.first}, ${e.last}] after the sequencer saw the loglet sealed`);
        if (e.first !== committedTail) violate(`commit [${e.first}, ${e.last}] out of order: expected ${committedTail}`);
        committedTail = e.last + 1;
        committed.push({ first: e.first, last: e.last, at: world.now });
        break;
      case "sealed":
        sequencerSawSeal = true;
        world.trace(`sequencer sees SEALED at committed tail ${e.committedTail}`);
        break;
      default:
        world.trace(`sequencer event ${JSON.stringify(e)}`);
    }
  });
  sequencer.start();

  const encoder = new TextEncoder();
  let nextBatch = 0;
  let lastAssigned = 0;
  const appendOne = () => {
    if (workloadDone || !sequencer.alive) return;
    if (nextBatch >= config.batches) {
      workloadDone = true;
      return;
    }
    const size = 1 + world.random.int(4);
    const texts = Array.from({ length: size }, (_, j) => `s${seed}b${nextBatch}r${j}`);
    const outcome = seqCore.append(texts.map((t) => encoder.encode(t)));
    if (outcome.ok) {
      if (outcome.first !== lastAssigned + 1) violate(`offsets not dense: batch starts at ${outcome.first} after ${lastAssigned}`);
      lastAssigned = outcome.last;
      texts.forEach((t, j) => {
        if (payloadAt.has(outcome.first + j)) violate(`offset ${outcome.first + j} assigned twice`);
        payloadAt.set(outcome.first + j, t);
      });
      appended++;
      nextBatch++;
      world.trace(`append b${nextBatch - 1} → [${outcome.first}, ${outcome.last}]`);
      sequencer.pump();
    } else if (outcome.reason !== "backpressure") {
      world.trace(`append refused: ${outcome.reason}`);
      workloadDone = true;
      return;
    }
    world.schedule(world.between(0.1, 2), appendOne);
  };
  world.schedule(0, appendOne);

  // ---- faults --------------------------------------------------------------------------------------
  const workloadMs = config.batches * 1.2;
  const recoveryAt = world.between(5, workloadMs);
  let lastRestartAt = 0;
  for (let i = 0; i < config.crashes; i++) {
    const at = world.between(0, workloadMs + 60);
    const down = world.between(1, 40);
    const id = nodes[world.random.int(n)]!;
    lastRestartAt = Math.max(lastRestartAt, at + down);
    world.schedule(at, () => {
      const s = servers.get(id)!;
      if (!s.up) return;
      s.crash();
      world.schedule(down, () => s.restart());
    });
  }
  // Fewer than r servers lose their disk, all before recovery starts (the guarantee is about those).
  const wipedIds = new Set<NodeId>();
  for (let i = 0; i < config.wipes; i++) {
    let id: NodeId;
    do id = nodes[world.random.int(n)]!;
    while (wipedIds.has(id));
    wipedIds.add(id);
    const at = world.between(0, recoveryAt);
    const down = world.between(1, 20);
    lastRestartAt = Math.max(lastRestartAt, at + down);
    world.schedule(at, () => {
      const s = servers.get(id)!;
      s.wipe();
      world.schedule(down, () => s.restart());
    });
  }

  // ---- recovery --------------------------------------------------------------------------------
  const results: RecoveryResult[] = [];
  let recoveryAttempts = 0;
  let recoveriesRunning = 0;
  const recoveryOptions: Partial<RecoveryOptions> = {
    requestTimeoutTicks: 15,
    maxAttemptsPerNode: 12,
    repairWindowRecords: 1 + setup.int(40),
    repairByteBudget: 64 + setup.int(2048),
    ...(config.repairFromStart ? { repairFrom: logletOffset(1) } : {}),
  };
  const startRecovery = (name: string) => {
    recoveryAttempts++;
    recoveriesRunning++;
    const core =
      variant === "find-tail-single-server"
        ? new SingleServerRecovery(params, new SeededRandom(world.random.int(2 ** 31)), recoveryOptions)
        : new TailRecovery(params, new SeededRandom(world.random.int(2 ** 31)), recoveryOptions);
    world.trace(`${name} starts (attempt ${recoveryAttempts})`);
    const actor: CoreActor<RecoveryEvent> = new CoreActor<RecoveryEvent>(name, core, world, servers, (e) => {
      actor.alive = false;
      recoveriesRunning--;
      if (e.kind === "done") {
        world.trace(`${name} DONE ${JSON.stringify(e.result)}`);
        results.push(e.result);
        if (recoveriesRunning === 0) startReader();
      } else {
        world.trace(`${name} failed in ${e.phase}: ${e.reason}`);
        if (recoveryAttempts < 40) world.schedule(20, () => startRecovery(name));
        else violate(`recovery never completed: ${e.reason}`);
      }
    });
    actor.start();
  };

  const beginRecovery = () => {
    startRecovery("rec1");
    if (config.twoRecoveries) world.schedule(world.between(0, 5), () => startRecovery("rec2"));
  };
  if (config.mode === "lose-sequencer") {
    world.schedule(recoveryAt, () => {
      sequencer.kill();
      world.schedule(world.between(0, 20), beginRecovery);
    });
  } else if (config.mode === "seal-live-sequencer") {
    world.schedule(recoveryAt, beginRecovery);
  } else {
    const waitQuiet = () => {
      if (workloadDone && seqCore.inflight().batches === 0) beginRecovery();
      else if (world.now > workloadMs + 2000) beginRecovery();
      else world.schedule(5, waitQuiet);
    };
    world.schedule(workloadMs, waitQuiet);
  }

  // ---- reading back ------------------------------------------------------------------------------
  const readBack: Array<{ offset: number; payload: string }> = [];
  let readDone = false;
  let readerStarted = false;
  const decoder = new TextDecoder();
  function startReader(): void {
    if (readerStarted) return;
    readerStarted = true;
    const tail = results[0]!.tail; // the first recovery's tail is the one the chain would record
    world.schedule(Math.max(0, lastRestartAt - world.now) + 5, () => {
      const reader = new ReaderCore(params, logletOffset(1), tail, new SeededRandom(seed + 7), { maxRounds: 20, requestTimeoutTicks: 15 });
      const actor: CoreActor<ReaderEvent> = new CoreActor<ReaderEvent>("reader", reader, world, servers, (e) => {
        if (e.kind === "record") readBack.push({ offset: e.offset, payload: decoder.decode(e.payload) });
        else if (e.kind === "trim-gap") violate(`unexpected trim gap [${e.from}, ${e.to}]`);
        else {
          actor.alive = false;
          if (e.kind === "failed") violate(`read back failed at ${e.at}: ${e.reason}`);
          readDone = true;
          // Let stragglers (a live sequencer's retries) run a little, then stop.
          world.schedule(50, () => world.stop());
        }
      });
      actor.start();
    });
  }

  const finished = world.run(LIMIT_MS);
  sequencer.alive = false;
  if (!finished || !readDone) violate(`run did not finish within ${LIMIT_MS} virtual ms (recoveries done: ${results.length}, read done: ${readDone})`);

  // ---- checks -------------------------------------------------------------------------------------
  const committedRecords = committed.reduce((s, c) => s + c.last - c.first + 1, 0);
  const lastCommitted = committedTail - 1;
  for (const res of results) {
    if (res.tail <= lastCommitted) violate(`find-tail ${res.tail} is not beyond committed offset ${lastCommitted}`);
    if (res.lost.length > 0) violate(`recovery reports lost committed offsets ${JSON.stringify(res.lost)}`);
    checkCopies(res.tail, res.repairFrom, res.underReplicated);
  }
  function checkCopies(tail: LogletOffset, repairFrom: LogletOffset, underReplicated: readonly OffsetRange[]): void {
    for (let o = 1; o < tail; o++) {
      const copies: string[] = [];
      for (const s of servers.values()) {
        const p = s.state.recordAt(params.loglet, o);
        if (p) copies.push(decoder.decode(p));
      }
      // A reported under-replicated offset needs one copy, unless it was committed (then its r copies exist).
      const reported = underReplicated.some((u) => u.from <= o && o <= u.to) && o > lastCommitted;
      const need = (o >= repairFrom || wipedIds.size === 0) && !reported ? r : 1;
      if (copies.length < need) {
        violate(`offset ${o} below tail ${tail} has ${copies.length} copies, needs ${need}${o <= lastCommitted ? " (committed)" : ""}`);
        return;
      }
      if (new Set(copies).size > 1) violate(`offset ${o} has different payloads on different servers`);
      const expected = payloadAt.get(o);
      if (expected !== undefined && copies[0] !== expected) violate(`offset ${o} holds ${copies[0]}, the sequencer assigned ${expected}`);
      if (expected === undefined) violate(`offset ${o} below the tail was never assigned by the sequencer`);
    }
  }
  if (readDone && results.length > 0) {
    const tail = results[0]!.tail;
    const offsets = readBack.map((e) => e.offset);
    const expectedOffsets = Array.from({ length: tail - 1 }, (_, i) => i + 1);
    if (offsets.join(",") !== expectedOffsets.join(",")) violate(`read back offsets ${summarize(offsets)}, expected 1..${tail - 1}`);
    const seen = new Map<string, number>();
    for (const e of readBack) {
      seen.set(e.payload, (seen.get(e.payload) ?? 0) + 1);
      if (payloadAt.get(e.offset) !== e.payload) violate(`read offset ${e.offset} = ${e.payload}, assigned ${payloadAt.get(e.offset)}`);
    }
    for (const c of committed) {
      for (let o = c.first; o <= c.last; o++) {
        const p = payloadAt.get(o)!;
        if (seen.get(p) !== 1) violate(`committed record ${p} at ${o} read ${seen.get(p) ?? 0} times`);
      }
    }
  }

  return {
    seed,
    variant,
    ok: violations.length === 0,
    violations,
    config,
    stats: {
      appended,
      committed: committed.length,
      committedRecords,
      tails: results.map((x) => x.tail),
      events: world.eventsRun,
      virtualMs: Math.round(world.now),
      recoveryAttempts,
    },
    trace: world.traceTail(),
  };
}

function summarize(xs: number[]): string {
  return xs.length > 20 ? `${xs.slice(0, 10).join(",")}…${xs.slice(-5).join(",")} (${xs.length})` : xs.join(",");
}

/** Prints a failing run so it can be replayed: `bun test/sim/loglet/run.ts --seed <seed>`. */
export function describeFailure(r: SimResult): string {
  return [
    `loglet simulation FAILED: seed ${r.seed} (variant ${r.variant})`,
    `replay: bun test/sim/loglet/run.ts --seed ${r.seed}${r.variant === "correct" ? "" : ` --variant ${r.variant}`}`,
    `config: ${JSON.stringify(r.config)}`,
    ...r.violations.map((v) => `violation: ${v}`),
    "trace (last lines):",
    ...r.trace,
  ].join("\n");
}
