// One seeded run of re-replication (the CopyTask core, src/bifrost/replicated/copy.ts) in the loglet
// simulator's world: a sealed loglet whose records sit on one or two sources (each record on one of
// them, so the copy must fill one source's holes from the other) is copied onto 1–3 targets over a
// lossy, duplicating, reordering network while targets crash (losing unsynced writes) and restart;
// a failed copy is retried like the controller does. The moment a copy reports `done` is the moment
// the chain would record the new nodeset — so the checker then destroys every source and crashes
// every target, and requires every record, byte for byte, on every target. Same seed, same run.
import { CopyTask, SeededRandom, type CopyEvent } from "../../../src/bifrost/replicated/index.ts";
import { asLogletId, generationalNodeId, logletOffset, nodeId, type NodeId } from "../../../src/ids/index.ts";
import { CoreActor, SimServer, World } from "./world.ts";

export type CopyVariant = "correct" | "nodeset-before-durable";

/** A deliberately broken copy: counts a window as copied once its stores are sent, not answered. */
class CopyBeforeDurable extends CopyTask {
  protected override awaitStores(): boolean {
    return false;
  }
}

export interface CopySimResult {
  readonly seed: number;
  readonly variant: CopyVariant;
  readonly ok: boolean;
  readonly done: boolean;
  readonly attempts: number;
  readonly violations: string[];
  readonly trace: string[];
}

const LIMIT_MS = 60_000;

export function runCopySimulation(seed: number, variant: CopyVariant = "correct"): CopySimResult {
  const setup = new SeededRandom(seed ^ 0xc0b1);
  const sourceCount = 1 + setup.int(2);
  const targetCount = 1 + setup.int(3);
  const records = 5 + setup.int(150);
  const minDelay = 0.05 + setup.float() * 0.3;
  const world = new World(seed, {
    dropProbability: setup.float() * 0.02,
    duplicateProbability: setup.float() * 0.05,
    minDelayMs: minDelay,
    maxDelayMs: minDelay + 0.2 + setup.float() * 3,
    // Drawn apart from `setup`, so every other parameter of a seed stays as it was.
    refuseWhenDownProbability: new SeededRandom(seed ^ 0x7ef05e).float() < 0.5 ? 0 : 0.9,
  });
  const violations: string[] = [];
  const violate = (m: string) => {
    world.trace(`VIOLATION ${m}`);
    violations.push(m);
  };
  const diskMax = 0.3 + setup.float() * 3;
  const ids = Array.from({ length: sourceCount + targetCount }, (_, i) => nodeId(i + 1));
  const servers = new Map<NodeId, SimServer>(ids.map((id) => [id, new SimServer(id, world, [0.05, diskMax])]));
  const sources = ids.slice(0, sourceCount);
  const targets = ids.slice(sourceCount);
  const loglet = asLogletId("1_0");
  const sequencer = generationalNodeId(100, 1);
  const encoder = new TextEncoder();
  const payloads = new Map<number, string>();

  // The sealed loglet: each record durable on one source (holes on the other), then sealed.
  for (let o = 1; o <= records; o++) {
    const text = `s${seed}o${o}${"x".repeat(setup.int(40))}`;
    payloads.set(o, text);
    const on = sources[setup.int(sourceCount)]!;
    servers.get(on)!.state.store({ loglet, sequencer, firstOffset: logletOffset(o), payloads: [encoder.encode(text)], knownGlobalTail: logletOffset(records + 1) });
  }
  for (const s of sources) servers.get(s)!.state.seal({ loglet });

  const options = {
    batchRecords: 1 + setup.int(32),
    batchBytes: 20 + setup.int(400),
    bytesPerTick: 50 + setup.int(2000),
    requestTimeoutTicks: 20 + setup.int(40),
    storeBytes: 20 + setup.int(200),
    maxStoringWindows: 1 + setup.int(3),
  };
  world.trace(`seed ${seed} variant ${variant} sources ${sources} targets ${targets} records ${records} options ${JSON.stringify(options)}`);

  // Target crashes during the copy (their unsynced writes are lost), each back after a while.
  for (let i = setup.int(4); i > 0; i--) {
    const at = world.between(0, 80);
    const id = targets[world.random.int(targets.length)]!;
    const down = world.between(1, 30);
    world.schedule(at, () => {
      const s = servers.get(id)!;
      if (!s.up) return;
      s.crash();
      world.schedule(down, () => s.restart());
    });
  }

  let attempts = 0;
  let done = false;
  const attempt = () => {
    attempts++;
    const core =
      variant === "nodeset-before-durable"
        ? new CopyBeforeDurable({ loglet, sequencer, sources, targets, from: 1, end: records + 1 }, options)
        : new CopyTask({ loglet, sequencer, sources, targets, from: 1, end: records + 1 }, options);
    const actor: CoreActor<CopyEvent> = new CoreActor<CopyEvent>(`copy${attempts}`, core, world, servers, (e) => {
      if (e.kind === "progress") return;
      actor.kill();
      if (e.kind === "failed") {
        world.trace(`copy attempt ${attempts} failed: ${e.detail}`);
        if (attempts < 8) world.schedule(world.between(5, 20), attempt);
        else world.stop();
        return;
      }
      world.trace(`copy DONE (${e.copiedRecords} records): the chain would record the new nodeset now`);
      if (e.copiedRecords !== records) violate(`copy reported ${e.copiedRecords} records, the loglet has ${records}`);
      done = true;
      // The worst case right after the nodeset change: the old holders are gone for good, and every
      // target crashes before it flushes anything else.
      for (const s of sources) servers.get(s)!.wipe();
      for (const t of targets) servers.get(t)!.crash();
      world.stop();
    });
    actor.start();
  };
  attempt();
  world.run(LIMIT_MS);

  if (done) {
    const decoder = new TextDecoder();
    for (const t of targets) {
      const state = servers.get(t)!.state;
      const seen = new Map<number, string>();
      for (let from = 1; from <= records; ) {
        const r = state.getRecords({ loglet, from: logletOffset(from), to: logletOffset(records), byteBudget: 1 << 20 });
        for (const e of r.entries) if (e.kind === "data") seen.set(e.offset, decoder.decode(e.payload));
        if (r.nextOffset <= from) break;
        from = r.nextOffset;
      }
      for (let o = 1; o <= records; o++) {
        const got = seen.get(o);
        if (got === undefined) {
          violate(`record ${o} is not on target ${t} after the nodeset changed (the only copies left)`);
          break;
        }
        if (got !== payloads.get(o)) violate(`record ${o} on target ${t} differs from the original`);
      }
      if (!state.getLogletInfo({ loglet }).sealed) violate(`target ${t} did not seal the loglet (it would take normal stores)`);
    }
  }
  return { seed, variant, ok: violations.length === 0, done, attempts, violations, trace: world.traceTail().slice(-80) };
}
