// Faults and their schedule. A fault starts, holds for a seeded random time and is healed; faults come
// one at a time after a fault-free warm-up, separated by seeded random gaps, and the timeline of every
// start and stop is recorded (times on the history's clock, so both can be read side by side).
//   kill        SIGKILL a node (the leader half of the time), restart it on heal
//   pause       SIGSTOP a node (the leader half of the time), SIGCONT on heal
//   isolate     cut every link to and from one node
//   split       cut the cluster into a majority and a minority, both directions
//   asymmetric  one node can send but not receive, or receive but not send (the leader half of the time)
//   ring        (5 nodes) each node reaches only its two neighbours: majorities that overlap, no clique
//   delay       every link delayed by 50–300 ms with jitter
//   reset       one node's connections reset, and new ones refused, for the duration
import type { ChaosCluster } from "./cluster.ts";
import { DROP, RESET, PASS, type LinkMode } from "./net/fault-proxy.ts";
import type { Rng } from "./rng.ts";

export const NEMESES = ["kill", "pause", "isolate", "split", "asymmetric", "ring", "delay", "reset"] as const;
export type NemesisKind = (typeof NEMESES)[number];

export function parseNemeses(list: string): NemesisKind[] {
  const out: NemesisKind[] = [];
  for (const raw of list.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    if (raw === "partition") out.push("isolate", "split", "asymmetric");
    else if (raw === "all") out.push(...NEMESES);
    else if ((NEMESES as readonly string[]).includes(raw)) out.push(raw as NemesisKind);
    else throw new Error(`unknown nemesis "${raw}" (known: ${NEMESES.join(", ")}, partition, all)`);
  }
  return [...new Set(out)];
}

export interface TimelineEntry {
  readonly time: number;
  readonly event: "start" | "stop" | "note";
  readonly nemesis: string;
  readonly targets: readonly string[];
  readonly detail: string;
}

export interface ScheduleOptions {
  readonly nemeses: readonly NemesisKind[];
  readonly warmupMs: number;
  /** Faults are started until this long after the schedule began (the last one is then healed). */
  readonly faultPhaseMs: number;
  readonly holdMs: readonly [number, number];
  readonly gapMs: readonly [number, number];
}

interface ActiveFault {
  readonly nemesis: NemesisKind;
  readonly targets: readonly string[];
  heal(): Promise<void>;
}

export class Nemesis {
  readonly timeline: TimelineEntry[] = [];

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly rng: Rng,
    private readonly now: () => number,
    private readonly log: (line: string) => void = () => {},
  ) {}

  note(nemesis: string, detail: string, targets: readonly string[] = []): void {
    this.timeline.push({ time: this.now(), event: "note", nemesis, targets, detail });
  }

  /** Runs the schedule; resolves after the last fault is healed. `stopped` ends it early. */
  async run(options: ScheduleOptions, stopped: () => boolean): Promise<void> {
    const begin = this.now();
    await sleepUnless(options.warmupMs, stopped);
    if (options.nemeses.length === 0) return;
    while (!stopped() && this.now() - begin < options.warmupMs + options.faultPhaseMs) {
      const kind = this.rng.pick(options.nemeses);
      const fault = await this.start(kind);
      const hold = this.rng.int(options.holdMs[0], options.holdMs[1]);
      await sleepUnless(hold, stopped);
      await this.stop(fault);
      await sleepUnless(this.rng.int(options.gapMs[0], options.gapMs[1]), stopped);
    }
  }

  private record(event: "start" | "stop", fault: { nemesis: string; targets: readonly string[] }, detail: string): void {
    const entry: TimelineEntry = { time: this.now(), event, nemesis: fault.nemesis, targets: fault.targets, detail };
    this.timeline.push(entry);
    this.log(`nemesis ${event} ${fault.nemesis} [${fault.targets.join(",")}] ${detail} at ${Math.round(entry.time)} ms`);
  }

  private async stop(fault: ActiveFault): Promise<void> {
    try {
      await fault.heal();
      this.record("stop", fault, "healed");
    } catch (e) {
      this.record("stop", fault, `heal failed: ${(e as Error).message}`);
    }
  }

  /** A target: the current leader with probability `leaderBias` (if one answers), else any running node. */
  private async target(leaderBias: number): Promise<string> {
    if (this.rng.chance(leaderBias)) {
      const leader = await this.cluster.leader();
      if (leader !== undefined) return leader.name;
    }
    const candidates = this.cluster.running().filter((n) => !n.paused);
    return this.rng.pick(candidates.length > 0 ? candidates : this.cluster.nodes).name;
  }

  private names(): string[] {
    return this.cluster.nodes.map((n) => n.name);
  }

  async start(kind: NemesisKind): Promise<ActiveFault> {
    const proxy = this.cluster.proxy;
    const setLinks = (pairs: ReadonlyArray<readonly [string, string]>, mode: LinkMode) => {
      for (const [a, b] of pairs) proxy.setLink(a, b, mode);
    };
    const restore = (pairs: ReadonlyArray<readonly [string, string]>) => async () => setLinks(pairs, PASS);
    let fault: ActiveFault;
    let detail = "";
    switch (kind) {
      case "kill": {
        const t = await this.target(0.5);
        await this.cluster.kill(t);
        fault = { nemesis: kind, targets: [t], heal: () => this.cluster.restart(t) };
        detail = "SIGKILL";
        break;
      }
      case "pause": {
        const t = await this.target(0.5);
        this.cluster.pause(t);
        fault = { nemesis: kind, targets: [t], heal: async () => this.cluster.resume(t) };
        detail = "SIGSTOP";
        break;
      }
      case "isolate": {
        const t = await this.target(0.5);
        const pairs = this.names()
          .filter((x) => x !== t)
          .flatMap((x) => [[t, x] as const, [x, t] as const]);
        setLinks(pairs, DROP);
        fault = { nemesis: kind, targets: [t], heal: restore(pairs) };
        detail = "all links to and from it dropped";
        break;
      }
      case "split": {
        const shuffled = this.rng.shuffle(this.names());
        const minority = shuffled.slice(0, Math.floor((shuffled.length - 1) / 2));
        const majority = shuffled.slice(minority.length);
        const pairs = minority.flatMap((a) => majority.flatMap((b) => [[a, b] as const, [b, a] as const]));
        setLinks(pairs, DROP);
        fault = { nemesis: kind, targets: minority, heal: restore(pairs) };
        detail = `minority {${minority.join(",")}} | majority {${majority.join(",")}}`;
        break;
      }
      case "asymmetric": {
        const t = await this.target(0.5);
        const outbound = this.rng.chance(0.5);
        const pairs = this.names()
          .filter((x) => x !== t)
          .map((x) => (outbound ? ([t, x] as const) : ([x, t] as const)));
        setLinks(pairs, DROP);
        fault = { nemesis: kind, targets: [t], heal: restore(pairs) };
        detail = outbound ? "it cannot send (receives everything)" : "it cannot receive (sends everything)";
        break;
      }
      case "ring": {
        const order = this.rng.shuffle(this.names());
        const n = order.length;
        const pairs: Array<readonly [string, string]> = [];
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            const d = Math.min((i - j + n) % n, (j - i + n) % n);
            if (d > 1) pairs.push([order[i]!, order[j]!]);
          }
        }
        setLinks(pairs, DROP);
        fault = { nemesis: kind, targets: order, heal: restore(pairs) };
        detail = n < 5 ? "ring of fewer than 5 nodes: every pair is adjacent, nothing cut" : `ring ${order.join("-")}-${order[0]}`;
        break;
      }
      case "delay": {
        const ms = this.rng.int(50, 300);
        const jitterMs = this.rng.int(0, ms);
        const names = this.names();
        const pairs = names.flatMap((a) => names.filter((b) => b !== a).map((b) => [a, b] as const));
        setLinks(pairs, { kind: "delay", ms, jitterMs });
        fault = { nemesis: kind, targets: names, heal: restore(pairs) };
        detail = `${ms} ms + up to ${jitterMs} ms jitter on every link`;
        break;
      }
      case "reset": {
        const t = await this.target(0.5);
        const pairs = this.names()
          .filter((x) => x !== t)
          .flatMap((x) => [[t, x] as const, [x, t] as const]);
        setLinks(pairs, RESET);
        fault = { nemesis: kind, targets: [t], heal: restore(pairs) };
        detail = "connections reset and refused";
        break;
      }
    }
    this.record("start", fault, detail);
    return fault;
  }
}

async function sleepUnless(ms: number, stopped: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!stopped() && performance.now() < until) await Bun.sleep(Math.min(100, until - performance.now()));
}
