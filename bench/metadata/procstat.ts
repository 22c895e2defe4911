// CPU accounting from /proc for the metadata benchmark: how busy the whole machine was during a
// phase, how much of that was this benchmark's own process tree (grouped: bench client, cairn,
// etcd), how much was the kernel's own work (interrupts, softirqs, kernel threads such as the ext4
// journal: partly caused by our fsyncs and loopback traffic), and so how much was other user-space
// work on the machine (background load from other users). A process's jiffies between the last
// sample and its death are lost, so the meter is marked right before every kill. Also one
// process's own CPU and resident memory, read from its /proc files.
import { readdirSync, readFileSync } from "node:fs";

interface ProcEntry {
  pid: number;
  ppid: number;
  jiffies: number;
}

export interface CpuSample {
  atMs: number;
  machineBusyJiffies: number;
  machineStealJiffies: number;
  machineIrqJiffies: number;
  machineTotalJiffies: number;
  /** Keyed by `pid:starttime`, so a reused pid is not mistaken for the same process. */
  procs: Map<string, ProcEntry>;
}

export interface CpuUsage {
  seconds: number;
  /** Busy share of the whole machine (all cores = 100). */
  machineBusyPct: number;
  stealPct: number;
  /** This benchmark's process tree (client + clusters). */
  oursPct: number;
  /** Interrupts, softirqs and kernel threads (ext4 journal, writeback, ...), whoever caused them. */
  kernelPct: number;
  /** Other user-space work: machine busy minus ours minus kernel (never below 0). */
  otherPct: number;
  byGroupPct: Record<string, number>;
}

function readMachine(): { busy: number; steal: number; irq: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  return { busy: user + nice + system + irq + softirq, steal, irq: irq + softirq, total };
}

function readProcs(): Map<string, ProcEntry> {
  const out = new Map<string, ProcEntry>();
  for (const name of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(name)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // Exited while we looked.
    }
    const f = statFields(text);
    out.set(`${name}:${f.starttime}`, { pid: Number(name), ppid: f.ppid, jiffies: f.jiffies });
  }
  return out;
}

/** The fields we use from /proc/<pid>/stat text. */
function statFields(text: string): { ppid: number; jiffies: number; starttime: string } {
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(rest[1]), jiffies: Number(rest[11]) + Number(rest[12]), starttime: rest[19] ?? "0" };
}

/** Jiffies per second of /proc's utime and stime (USER_HZ, 100 on every Linux we run on). */
export const JIFFIES_PER_SECOND = 100;

/** User + system CPU a live process has used, in jiffies; undefined once it is gone. */
export function processCpuJiffies(pid: number): number | undefined {
  try {
    return statFields(readFileSync(`/proc/${pid}/stat`, "utf8")).jiffies;
  } catch {
    return undefined;
  }
}

/** Resident set size of a live process (VmRSS of /proc/<pid>/status), in bytes; undefined once gone. */
export function processRssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+([0-9]+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function sampleCpu(): CpuSample {
  const m = readMachine();
  return {
    atMs: performance.now(),
    machineBusyJiffies: m.busy,
    machineStealJiffies: m.steal,
    machineIrqJiffies: m.irq,
    machineTotalJiffies: m.total,
    procs: readProcs(),
  };
}

interface Jiffies {
  ms: number;
  total: number;
  busy: number;
  steal: number;
  ours: number;
  kernel: number;
  byGroup: Record<string, number>;
}

const ZERO: Jiffies = { ms: 0, total: 0, busy: 0, steal: 0, ours: 0, kernel: 0, byGroup: {} };
const KTHREADD_PID = 2;

/**
 * Jiffies between two samples. `group(pid)` names the group of a process of ours (walking up from
 * it to the first pid it knows), or undefined for processes outside our tree.
 */
function jiffiesBetween(a: CpuSample, b: CpuSample, rootPid: number, group: (pid: number) => string | undefined): Jiffies {
  const parentOf = new Map<number, number>();
  for (const p of b.procs.values()) parentOf.set(p.pid, p.ppid);
  for (const p of a.procs.values()) if (!parentOf.has(p.pid)) parentOf.set(p.pid, p.ppid);
  const classify = (pid: number): string | undefined => {
    let cur: number | undefined = pid;
    for (let depth = 0; cur !== undefined && cur > 1 && depth < 64; depth++) {
      const g = group(cur);
      if (g !== undefined) return g;
      if (cur === rootPid) return "bench";
      cur = parentOf.get(cur);
    }
    return undefined;
  };
  const byGroup: Record<string, number> = {};
  let ours = 0;
  let kernelThreads = 0;
  for (const [key, pb] of b.procs) {
    if (pb.pid === KTHREADD_PID || pb.ppid === KTHREADD_PID) {
      kernelThreads += pb.jiffies - (a.procs.get(key)?.jiffies ?? 0);
      continue;
    }
    const g = classify(pb.pid);
    if (g === undefined) continue;
    // A process born since `a` counts from zero; one that died since `a` is lost (so the meter
    // takes a sample right before every kill).
    const delta = pb.jiffies - (a.procs.get(key)?.jiffies ?? 0);
    ours += delta;
    byGroup[g] = (byGroup[g] ?? 0) + delta;
  }
  return {
    ms: b.atMs - a.atMs,
    total: b.machineTotalJiffies - a.machineTotalJiffies,
    busy: b.machineBusyJiffies - a.machineBusyJiffies,
    steal: b.machineStealJiffies - a.machineStealJiffies,
    ours,
    kernel: kernelThreads + (b.machineIrqJiffies - a.machineIrqJiffies),
    byGroup,
  };
}

function add(x: Jiffies, y: Jiffies, sign: 1 | -1): Jiffies {
  const byGroup: Record<string, number> = { ...x.byGroup };
  for (const [g, j] of Object.entries(y.byGroup)) byGroup[g] = (byGroup[g] ?? 0) + sign * j;
  return { ms: x.ms + sign * y.ms, total: x.total + sign * y.total, busy: x.busy + sign * y.busy, steal: x.steal + sign * y.steal, ours: x.ours + sign * y.ours, kernel: x.kernel + sign * y.kernel, byGroup };
}

/**
 * A running account of CPU since the meter started, sampled at every mark(). Marking right before
 * a process is killed keeps its jiffies in the account.
 */
export class CpuMeter {
  private last = sampleCpu();
  private acc: Jiffies = ZERO;

  constructor(
    private readonly rootPid: number,
    private readonly group: (pid: number) => string | undefined,
  ) {}

  mark(): Jiffies {
    const s = sampleCpu();
    this.acc = add(this.acc, jiffiesBetween(this.last, s, this.rootPid, this.group), 1);
    this.last = s;
    return this.acc;
  }

  /** Usage since an earlier mark(). */
  since(earlier: Jiffies): CpuUsage {
    const d = add(this.mark(), earlier, -1);
    const total = Math.max(1, d.total);
    const pct = (j: number) => Math.round((1000 * j) / total) / 10;
    const byGroupPct: Record<string, number> = {};
    for (const [g, j] of Object.entries(d.byGroup)) if (j > 0) byGroupPct[g] = pct(j);
    return {
      seconds: Math.round(d.ms) / 1000,
      machineBusyPct: pct(d.busy),
      stealPct: pct(d.steal),
      oursPct: pct(d.ours),
      kernelPct: pct(d.kernel),
      otherPct: pct(Math.max(0, d.busy - d.ours - d.kernel)),
      byGroupPct,
    };
  }
}
