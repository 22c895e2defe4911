// What a metadata benchmark records about where it ran: the machine, the cairn commit measured
// (others edit src/ while benchmarks run), fsync latency of the temp disk, and the etcd it compares
// against (installed from Debian by bench/setup-etcd.sh when missing).
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { VALUE_SIZE_BYTES, percentile, round } from "./load.ts";
import { etcdVersion } from "./etcd.ts";

const BENCH_DIR = join(import.meta.dir, "..");

export function fsyncProbe(dir: string): { p50Ms: number; p99Ms: number } {
  const path = join(dir, "fsync-probe");
  const fd = openSync(path, "w");
  const buf = Buffer.alloc(VALUE_SIZE_BYTES, 0x61);
  const samples: number[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      writeSync(fd, buf);
      fsyncSync(fd);
      samples.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  samples.sort((a, b) => a - b);
  return { p50Ms: round(percentile(samples, 50), 3), p99Ms: round(percentile(samples, 99), 3) };
}

/** Which cairn was measured: others edit src/ while benchmarks run, so the commit matters. */
export function cairnSource(): { commit: string | null; srcDirty: boolean | null } {
  const repo = join(BENCH_DIR, "..");
  const head = Bun.spawnSync(["git", "rev-parse", "HEAD"], { cwd: repo, stdout: "pipe", stderr: "ignore" });
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--", "src"], { cwd: repo, stdout: "pipe", stderr: "ignore" });
  return {
    commit: head.exitCode === 0 ? head.stdout.toString().trim() : null,
    srcDirty: dirty.exitCode === 0 ? dirty.stdout.toString().trim().length > 0 : null,
  };
}

/** etcd's version, installing it first when missing; undefined (and `problem` told) when it cannot run. */
export function ensureEtcd(problem: (text: string) => void): string | undefined {
  if (Bun.which("etcd") === null) {
    console.error("etcd is missing: running bench/setup-etcd.sh");
    const r = Bun.spawnSync(["bash", join(BENCH_DIR, "setup-etcd.sh")], { stdout: "inherit", stderr: "inherit", stdin: "ignore" });
    if (r.exitCode !== 0) {
      problem(`bench/setup-etcd.sh failed (exit ${r.exitCode}); running cairn alone`);
      return undefined;
    }
  }
  return etcdVersion();
}

export function cpuModel(): string {
  return cpus()[0]?.model ?? "unknown";
}

/** The `machine` section of a results file. */
export function machineInfo(extra: { etcd: string | null; source: ReturnType<typeof cairnSource>; fsync100BytesMs: ReturnType<typeof fsyncProbe> }) {
  return {
    cpu: cpuModel(),
    cores: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    bun: Bun.version,
    etcd: extra.etcd,
    cairnCommit: extra.source.commit,
    cairnSrcDirty: extra.source.srcDirty,
    tmpdir: tmpdir(),
    fsync100BytesMs: extra.fsync100BytesMs,
  };
}
