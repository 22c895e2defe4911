// Storage faults for the chaos harness, both needing root:
//   FsyncFailure  strace attached to a node process (all its threads) makes every fsync/fdatasync (or
//                 only those on given files) fail with EIO until it is detached; the calls it failed
//                 are counted from its output.
//   TmpfsHolder   a long-lived `sleep` owning a private mount namespace in which a size-limited tmpfs is
//                 mounted over one node's data directory. The node is started inside that namespace
//                 (`nsenter -t <holder> -m`), so its data survives restarts of the node; the host's
//                 mounts are never touched, and the tmpfs disappears with the last process inside.
//                 fill() writes a ballast file until the tmpfs is full, drain() deletes it.
// Every process started here is tracked (node-process.ts) and stopped by PID.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import type { Subprocess } from "bun";
import { track } from "./node-process.ts";

const STRACE = "/usr/bin/strace";
const BALLAST = ".chaos-ballast";

/** Why a storage nemesis cannot run here, or null when it can. */
export function storageFaultUnavailable(kind: "fsync-error" | "disk-full"): string | null {
  if (process.getuid?.() !== 0) return `${kind} needs root`;
  if (kind === "fsync-error") return existsSync(STRACE) ? null : `${kind} needs ${STRACE}`;
  const probe = Bun.spawnSync(["unshare", "--mount", "--propagation", "private", "--", "true"], { stdout: "ignore", stderr: "pipe" });
  return probe.exitCode === 0 ? null : `${kind} needs \`unshare --mount\` (${probe.stderr.toString().trim()})`;
}

/** The PID tracing `pid`, 0 when none (from /proc/<pid>/status); undefined once it has exited. */
function tracerPid(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    if (/^State:\s+[ZX]/m.test(status)) return undefined;
    const m = /^TracerPid:\s+(\d+)/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export class FsyncFailure {
  private constructor(
    private readonly proc: Subprocess,
    private readonly outFile: string,
  ) {}

  /**
   * Attaches to every thread of `pid`; resolves once the main thread is traced. With `paths`, only
   * the calls on those files fail (strace -P), the others go through.
   */
  static async start(pid: number, outFile: string, paths: readonly string[] = []): Promise<FsyncFailure> {
    const only = paths.flatMap((p) => ["-P", p]);
    const proc = track(
      Bun.spawn([STRACE, "-f", "-qq", "-p", String(pid), ...only, "-e", "trace=fsync,fdatasync", "--inject=fsync,fdatasync:error=EIO", "-o", outFile], {
        stdin: "ignore",
        stdout: "ignore",
        stderr: "pipe",
      }),
    );
    const fault = new FsyncFailure(proc, outFile);
    const deadline = Date.now() + 5_000;
    for (;;) {
      const tracer = tracerPid(pid);
      // Attached; or the process is already gone, ended by the first failed call (strace then exits too).
      if (tracer === proc.pid || tracer === undefined) break;
      if (proc.exitCode !== null || Date.now() > deadline) {
        await fault.stop();
        const err = proc.stderr instanceof ReadableStream ? (await new Response(proc.stderr).text()).trim() : "";
        throw new Error(`strace did not attach to ${pid}${err ? `: ${err}` : ""}`);
      }
      await Bun.sleep(20);
    }
    return fault;
  }

  /** Detaches (the process goes on with working fsyncs); returns how many calls were failed. */
  async stop(): Promise<number> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGINT"); // strace detaches from every tracee and exits
      const exited = await Promise.race([this.proc.exited.then(() => true), Bun.sleep(5_000).then(() => false)]);
      if (!exited) {
        this.proc.kill("SIGKILL"); // the kernel detaches the tracees of a dead tracer
        await this.proc.exited;
      }
    }
    return this.injected();
  }

  injected(): number {
    try {
      return readFileSync(this.outFile, "utf8").split("\n").filter((l) => l.includes("(INJECTED)")).length;
    } catch {
      return 0;
    }
  }
}

export class TmpfsHolder {
  private constructor(
    private readonly holder: Subprocess,
    readonly dir: string,
    readonly sizeBytes: number,
  ) {}

  /** Creates the namespace and mounts a tmpfs of `sizeBytes` over `dir` in it. */
  static async start(dir: string, sizeBytes: number): Promise<TmpfsHolder> {
    mkdirSync(dir, { recursive: true });
    const script = `mount -t tmpfs -o size=${sizeBytes},mode=0755 tmpfs "$0" && echo mounted && exec sleep infinity`;
    const proc = track(
      Bun.spawn(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, dir], { stdin: "ignore", stdout: "pipe", stderr: "pipe" }),
    );
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    const first = await Promise.race([reader.read(), Bun.sleep(10_000).then(() => undefined)]);
    reader.releaseLock();
    if (first === undefined || first.done || !new TextDecoder().decode(first.value).includes("mounted")) {
      proc.kill("SIGKILL");
      await proc.exited;
      const err = (await new Response(proc.stderr as ReadableStream).text()).trim();
      throw new Error(`could not mount a tmpfs over ${dir} in a private mount namespace${err ? `: ${err}` : ""}`);
    }
    return new TmpfsHolder(proc, dir, sizeBytes);
  }

  get pid(): number {
    return this.holder.pid;
  }

  /** The command prefix that runs a program inside the namespace (nsenter execs it: same PID). */
  prefix(): string[] {
    return ["nsenter", "-t", String(this.holder.pid), "-m", "--"];
  }

  private async inside(script: string): Promise<{ code: number; out: string }> {
    const p = Bun.spawn([...this.prefix(), "sh", "-c", script, this.dir], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
    const code = await p.exited;
    return { code, out: (out + err).trim() };
  }

  /** Free bytes on the tmpfs. */
  async freeBytes(): Promise<number> {
    const r = await this.inside(`stat -f -c '%a %S' "$0"`);
    const [blocks, size] = r.out.split(/\s+/).map(Number);
    if (r.code !== 0 || blocks === undefined || size === undefined) throw new Error(`stat -f failed: ${r.out}`);
    return blocks * size;
  }

  /** Writes a ballast file until the tmpfs is full; returns its size. */
  async fill(): Promise<number> {
    // cat stops at ENOSPC (exit 1): that is the point.
    await this.inside(`cat /dev/zero > "$0/${BALLAST}" 2>/dev/null; true`);
    const r = await this.inside(`stat -c %s "$0/${BALLAST}"`);
    return Number(r.out) || 0;
  }

  async drain(): Promise<void> {
    const r = await this.inside(`rm -f "$0/${BALLAST}"`);
    if (r.code !== 0) throw new Error(`could not delete the ballast: ${r.out}`);
  }

  /**
   * Copies the tmpfs's contents (ballast excluded) to the directory it hides, so the data directory
   * can be read from outside the namespace once the holder is gone (artifacts).
   */
  async exportContents(): Promise<void> {
    const q = `'${this.dir.replace(/'/g, `'\\''`)}'`;
    const p = Bun.spawn(["sh", "-c", `${this.prefix().join(" ")} tar -C ${q} --exclude=./${BALLAST} -cf - . | tar -C ${q} -xf -`], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    const err = await new Response(p.stderr).text();
    if ((await p.exited) !== 0) throw new Error(`copying the tmpfs out failed: ${err.trim()}`);
  }

  /** Kills the holder; the tmpfs goes away with the last process in the namespace. */
  async stop(): Promise<void> {
    if (this.holder.exitCode === null && this.holder.signalCode === null) this.holder.kill("SIGKILL");
    await this.holder.exited;
  }
}
