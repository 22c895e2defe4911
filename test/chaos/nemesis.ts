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
//   fsync-error every fsync/fdatasync of one node fails with EIO (strace --inject), then strace detaches;
//               half the time only those on the log-server's store
//   disk-full   the node whose data directory is a size-limited tmpfs gets it filled by a ballast file
//   membership  a metadata member is removed (never below a majority of the cluster's size), re-added on heal
//   refuse      one node (never the metadata leader, whose log controller watches) has its fabric port
//               refuse every connection while its process lives: the log controller's refused-means-dead
//               rule must fire (its log line naming the node is looked for on heal); a run that
//               scheduled it and never saw the rule fire fails (see refuseEffects)
// The last three need root; a node they make exit is restarted on heal (see cluster.ts).
import { join } from "node:path";
import type { ChaosCluster } from "./cluster.ts";
import { DROP, RESET, PASS, type LinkMode } from "./net/fault-proxy.ts";
import type { Rng } from "./rng.ts";

/** The log-server's record store in a data directory (src/logserver), with its write-ahead log. */
const LOG_SERVER_STORE_FILES = ["logserver.sqlite", "logserver.sqlite-wal"] as const;

export const NEMESES = ["kill", "pause", "isolate", "split", "asymmetric", "ring", "delay", "reset", "fsync-error", "disk-full", "membership", "refuse"] as const;

/** Longest a `refuse` fault stays past its hold, waiting for the log controller's verdict. */
const REFUSE_VERDICT_WAIT_MS = 10_000;

/** What the log controller logs when refused connections prove a node dead (src/admin/controller/log-controller.ts). */
const REFUSED_DEAD_MESSAGE = "log-server node refuses connections (its process is gone): the log controller acts now";

/** Whether a node's log text holds the controller's refused-means-dead verdict on `nodeId`. */
export function refusedDeadVerdict(logText: string, nodeId: string): boolean {
  for (const line of logText.split("\n")) {
    if (!line.includes(REFUSED_DEAD_MESSAGE)) continue;
    try {
      if ((JSON.parse(line) as { node?: unknown }).node === nodeId) return true;
    } catch {
      if (line.includes(nodeId)) return true; // a pretty-printed log
    }
  }
  return false;
}
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
  /** Undoes the fault; may say what it found. */
  heal(): Promise<string | void>;
}

export class Nemesis {
  readonly timeline: TimelineEntry[] = [];
  private fsyncFaults = 0;
  /** `refuse` faults started on a node, and those during which a log controller declared it dead by refusals. */
  readonly refuseEffects = { scheduled: 0, tookEffect: 0 };

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly rng: Rng,
    private readonly now: () => number,
    private readonly log: (line: string) => void = () => {},
    /** Where strace writes the calls it failed. */
    private readonly workDir: string = "/tmp",
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
      const detail = await fault.heal();
      this.record("stop", fault, typeof detail === "string" ? `healed: ${detail}` : "healed");
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

  /** Waits until the node's own metadata server reports `standby`; returns the last state it reported. */
  private async ownMetadataState(name: string, timeoutMs: number): Promise<string | undefined> {
    const deadline = performance.now() + timeoutMs;
    let last: string | undefined;
    do {
      last = await this.cluster.ownMetadataState(name);
      if (last === "standby") return last;
      await Bun.sleep(200);
    } while (performance.now() < deadline);
    return last;
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
      case "fsync-error": {
        // Half the time only the log-server's store fails: the metadata raft store, whose failed
        // persist ends the process at once, keeps working, so the log-server's handling is what shows.
        // Then, half the time, the node of log 0's sequencer (which stores each batch on its own
        // log-server first) is the target.
        const onlyLogStore = this.rng.chance(0.5);
        const sequencer = onlyLogStore && this.rng.chance(0.5) ? await this.cluster.logSequencerNode(0) : undefined;
        const t = sequencer !== undefined && this.cluster.running().some((n) => n.name === sequencer && !n.paused) ? sequencer : await this.target(0.5);
        const out = join(this.workDir, `${t}-fsync-${++this.fsyncFaults}.strace`);
        await this.cluster.failFsync(t, out, onlyLogStore ? LOG_SERVER_STORE_FILES : []);
        fault = {
          nemesis: kind,
          targets: [t],
          heal: () => this.cluster.healFsync(t),
        };
        detail =
          `fsync and fdatasync fail with EIO ${onlyLogStore ? `on the log-server store only (${LOG_SERVER_STORE_FILES.join(", ")})` : "on every file"}` +
          (t === sequencer ? " (the node of log 0's sequencer)" : "");
        break;
      }
      case "disk-full": {
        const n = this.cluster.diskLimitedNode();
        if (n === undefined) {
          fault = { nemesis: kind, targets: [], heal: async () => {} };
          detail = "no node has a size-limited data directory: nothing done";
          break;
        }
        const ballast = await this.cluster.fillDisk(n.name);
        fault = { nemesis: kind, targets: [n.name], heal: () => this.cluster.drainDisk(n.name) };
        detail = `data directory filled by a ${Math.round(ballast / 2 ** 20)} MiB ballast file`;
        break;
      }
      case "membership": {
        const servers = await this.cluster.metadataServers();
        const members = (servers ?? []).filter((s) => s.state === "member").map((s) => s.name);
        const majority = Math.floor(this.cluster.nodes.length / 2) + 1;
        if (servers === undefined || members.length - 1 < majority) {
          fault = { nemesis: kind, targets: [], heal: async () => {} };
          detail = servers === undefined ? "no node listed the metadata servers: nothing removed" : `only ${members.length} members (${members.join(",")}): nothing removed`;
          break;
        }
        let t = await this.target(0.5);
        if (!members.includes(t)) t = this.rng.pick(members);
        const removed = await this.cluster.changeMembership(t, "remove");
        // Even an unanswered removal may have happened: the heal re-adds whatever is standby then.
        this.cluster.removedMetadataServers.add(t);
        const state = await this.cluster.waitMetadataState(t, ["standby"], removed.ok ? 5_000 : 1_000);
        const own = state === "standby" ? await this.ownMetadataState(t, 5_000) : undefined;
        fault = {
          nemesis: kind,
          targets: [t],
          heal: async () => {
            const before = (await this.cluster.metadataServers())?.find((s) => s.name === t)?.state;
            if (before !== "standby") {
              this.cluster.removedMetadataServers.delete(t);
              return `not re-added: it is ${before ?? "unknown"}`;
            }
            const added = await this.cluster.changeMembership(t, "add");
            if (added.ok) this.cluster.removedMetadataServers.delete(t);
            return `add: ${added.answer}`;
          },
        };
        detail = `remove: ${removed.answer}; nodes configuration says ${state ?? "?"}, the node says ${own ?? "?"}`;
        break;
      }
      case "refuse": {
        const leader = await this.cluster.leader();
        const candidates = this.cluster.running().filter((n) => !n.paused && n.name !== leader?.name);
        if (leader === undefined || candidates.length === 0) {
          fault = { nemesis: kind, targets: [], heal: async () => {} };
          detail = leader === undefined ? "no metadata leader answered (its log controller would watch): nothing done" : "no running node besides the leader: nothing done";
          break;
        }
        const t = this.rng.pick(candidates).name;
        const id = await this.cluster.nodeId(t);
        const marks = this.cluster.logMarks();
        const reset = await this.cluster.refuseConnections(t);
        this.refuseEffects.scheduled++;
        fault = {
          nemesis: kind,
          targets: [t],
          heal: async () => {
            // On a busy machine the controller may need longer than the hold to see two refusals
            // spread over refused-dead-ms: keep refusing until its verdict is in a log, up to a cap
            // (a verdict that never comes still fails the run).
            const verdict = () => (id === undefined ? [] : this.cluster.logsSince(marks).filter((l) => refusedDeadVerdict(l.text, id)));
            const capAt = performance.now() + REFUSE_VERDICT_WAIT_MS;
            while (verdict().length === 0 && performance.now() < capAt) await Bun.sleep(100);
            await this.cluster.acceptConnections(t);
            const by = verdict();
            if (by.length > 0) this.refuseEffects.tookEffect++;
            return by.length > 0
              ? `took effect: the log controller on ${by.map((b) => b.node).join(",")} declared ${id} dead by refused connections`
              : `NO EFFECT: no log controller declared ${id ?? t} dead by refused connections`;
          },
        };
        detail = `its fabric port refuses every connection (${reset} open connection${reset === 1 ? "" : "s"} reset) while the process runs (${id ?? "id unknown"}; leader ${leader.name})`;
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
