// One run of a metadata benchmark: every process it starts (tracked by PID and stopped whatever
// happens, Ctrl-C included), the anomalies it notes, its CPU meter, and the start-up both
// benchmarks share: machine facts, idle CPU, a 3-node `cairn dev` and (optionally) a 3-member etcd
// in a temp dir, which is removed afterwards only when the run went through without anomalies.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CairnCluster } from "./cairn.ts";
import type { Cluster } from "./cluster.ts";
import { EtcdCluster } from "./etcd.ts";
import { cairnSource, ensureEtcd, fsyncProbe, machineInfo } from "./machine.ts";
import { ProcessRegistry, stopOnExitAndSignals } from "./procs.ts";
import { CpuMeter, type CpuUsage } from "./procstat.ts";
import { Anomalies } from "./report.ts";

export interface Startup {
  baseDir: string;
  /** etcd's version; undefined when etcd does not run. */
  version: string | undefined;
  source: ReturnType<typeof cairnSource>;
  fsync: ReturnType<typeof fsyncProbe>;
  cpuBeforeStart: CpuUsage;
  cairn: CairnCluster;
  etcd: EtcdCluster | undefined;
  clusters: Cluster[];
}

export class BenchSession {
  readonly registry = new ProcessRegistry();
  readonly anomalies = new Anomalies();
  // Marked at phase boundaries and right before every kill (a killed process's jiffies are lost).
  readonly cpuMeter = new CpuMeter(process.pid, (pid) => this.registry.groupOf(pid));
  private cairn: CairnCluster | undefined;
  private etcd: EtcdCluster | undefined;

  constructor() {
    stopOnExitAndSignals(this.registry, () => this.stopEverything());
  }

  readonly anomaly = (text: string): void => this.anomalies.note(text);

  /** `cairn dev` first (it stops the nodes it started), then etcd, then whatever is left. */
  async stopEverything(): Promise<void> {
    await this.cairn?.stop().catch(() => undefined);
    await this.etcd?.stop().catch(() => undefined);
    await this.registry.stopAll(10_000);
  }

  /**
   * Starts the clusters in a new temp dir named `tmpPrefix…`, runs `body`, then stops every
   * process; the dir is kept (and named) when the body failed, noted anomalies, or `keep` is set.
   */
  async run(opts: { tmpPrefix: string; withEtcd: boolean; keep: boolean }, body: (s: Startup) => Promise<void>): Promise<void> {
    const baseDir = mkdtempSync(join(tmpdir(), opts.tmpPrefix));
    let ok = false;
    try {
      await body(await this.start(baseDir, opts.withEtcd));
      ok = true;
    } finally {
      await this.stopEverything();
      if (ok && this.anomalies.list.length === 0 && !opts.keep) rmSync(baseDir, { recursive: true, force: true });
      else console.error(`logs and data kept in ${baseDir}`);
    }
  }

  /** The opening fields of a results file. */
  resultsHead(benchmark: string, startedMs: number, s: Startup) {
    return {
      benchmark,
      date: new Date().toISOString(),
      runtimeSeconds: Math.round((performance.now() - startedMs) / 1000),
      machine: machineInfo({ etcd: s.version ?? null, source: s.source, fsync100BytesMs: s.fsync }),
    };
  }

  /** The anomalies after the tables, then the results file bench/results/<fileName>. */
  finishReport(fileName: string, results: unknown): void {
    if (this.anomalies.list.length > 0) console.log(`\nanomalies:\n${this.anomalies.list.map((a) => `- ${a}`).join("\n")}`);
    const dir = join(import.meta.dir, "../results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, fileName), JSON.stringify(results, null, 2) + "\n");
    console.log(`\nwrote bench/results/${fileName}`);
  }

  private async start(baseDir: string, withEtcd: boolean): Promise<Startup> {
    const version = withEtcd ? ensureEtcd(this.anomaly) : undefined;
    const source = cairnSource();
    const fsync = fsyncProbe(baseDir);
    const idle0 = this.cpuMeter.mark();
    await Bun.sleep(1000);
    const cpuBeforeStart = this.cpuMeter.since(idle0);
    console.error(`background CPU before start: ${cpuBeforeStart.otherPct}% of the machine; fsync p50 ${fsync.p50Ms} ms`);

    console.error("starting cairn dev (3 nodes)…");
    const cairn = await CairnCluster.start(this.registry, join(baseDir, "cairn"), 120_000);
    this.cairn = cairn;
    await cairn.waitHealthy(60_000);
    if (version !== undefined) {
      console.error(`starting etcd ${version} (3 members)…`);
      mkdirSync(join(baseDir, "etcd"), { recursive: true });
      this.etcd = await EtcdCluster.start(this.registry, join(baseDir, "etcd"), 60_000);
    }
    const etcd = this.etcd;
    return { baseDir, version, source, fsync, cpuBeforeStart, cairn, etcd, clusters: etcd ? [cairn, etcd] : [cairn] };
  }
}
