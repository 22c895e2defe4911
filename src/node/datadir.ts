// The node's data directory: an exclusive lock (so two processes never share one), the cluster
// marker that pins the directory to one cluster, the node's generation (grows on every start) and
// the file where a node started on port 0 publishes its real addresses.
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync, ftruncateSync } from "node:fs";
import { dirname, join } from "node:path";
import { CairnError } from "../observability/errors.ts";

const LOCK_EX = 2;
const LOCK_NB = 4;

let libc: { flock: (fd: number, op: number) => number } | undefined;
function flock(fd: number, op: number): number {
  libc ??= dlopen("libc.so.6", { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } })
    .symbols as unknown as { flock: (fd: number, op: number) => number };
  return libc.flock(fd, op);
}

/** Write a file so that a crash leaves either the old or the new content, never a mix. */
export function writeFileAtomic(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dirname(path), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

function readJson(path: string): unknown | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CairnError("NODE_DATA_DIR_UNUSABLE", `cannot read ${path}: ${(e as Error).message}`, { path });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CairnError("NODE_MARKER_CORRUPT", `${path} is not valid JSON (damaged or written by something else)`, {
      path,
    });
  }
}

export interface ClusterMarker {
  clusterName: string;
  /** Set when the cluster is provisioned; null until then. */
  fingerprint: string | null;
  createdAtMs: number;
  cairnVersion: string;
}

export interface NodeState {
  generation: number;
}

export interface Addresses {
  /** The process that wrote the file (a reader can tell a stale file from its own node's). */
  pid: number;
  admin: string;
  fabric: string;
  ingress: string | null;
}

export const FILES = {
  lock: "LOCK",
  marker: "cluster-marker.json",
  node: "node.json",
  addresses: "addresses.json",
} as const;

export class DataDir {
  private lockFd: number | undefined;

  constructor(readonly path: string) {}

  /** Create the directory if needed and take the exclusive lock; fails if another process holds it. */
  open(): void {
    try {
      mkdirSync(this.path, { recursive: true });
    } catch (e) {
      throw new CairnError(
        "NODE_DATA_DIR_UNUSABLE",
        `cannot create data directory ${this.path}: ${(e as Error).message}`,
        { path: this.path },
      );
    }
    const lockPath = join(this.path, FILES.lock);
    let fd: number;
    try {
      fd = openSync(lockPath, "a+", 0o644);
    } catch (e) {
      throw new CairnError("NODE_DATA_DIR_UNUSABLE", `cannot open ${lockPath}: ${(e as Error).message}`, {
        path: lockPath,
      });
    }
    if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      closeSync(fd);
      const holder = readFileSync(lockPath, "utf8").trim() || "unknown";
      throw new CairnError(
        "NODE_DATA_DIR_LOCKED",
        `data directory ${this.path} is in use by another cairn process (pid ${holder})`,
        { path: this.path, pid: holder },
      );
    }
    // The kernel lock is the truth (released when the process dies); the PID is for the message.
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
    this.lockFd = fd;
  }

  /** Release the lock. Safe to call twice. */
  close(): void {
    if (this.lockFd !== undefined) {
      closeSync(this.lockFd);
      this.lockFd = undefined;
    }
  }

  file(name: string): string {
    return join(this.path, name);
  }

  readMarker(): ClusterMarker | undefined {
    const raw = readJson(this.file(FILES.marker));
    if (raw === undefined) return undefined;
    const m = raw as Partial<ClusterMarker>;
    if (typeof m.clusterName !== "string" || (m.fingerprint !== null && typeof m.fingerprint !== "string")) {
      throw new CairnError("NODE_MARKER_CORRUPT", `${this.file(FILES.marker)} lacks clusterName or fingerprint`, {
        path: this.file(FILES.marker),
      });
    }
    return m as ClusterMarker;
  }

  /**
   * Pin this directory to a cluster: the first start writes the marker; later starts must name the
   * same cluster (and, once provisioned, carry the same fingerprint).
   */
  checkOrWriteMarker(clusterName: string, cairnVersion: string, nowMs: number): ClusterMarker {
    const existing = this.readMarker();
    if (existing !== undefined) {
      if (existing.clusterName !== clusterName) {
        throw new CairnError(
          "NODE_CLUSTER_MISMATCH",
          `data directory ${this.path} belongs to cluster '${existing.clusterName}', but this node is configured for cluster '${clusterName}'`,
          { path: this.path, marker: existing.clusterName, configured: clusterName },
        );
      }
      return existing;
    }
    const marker: ClusterMarker = { clusterName, fingerprint: null, createdAtMs: nowMs, cairnVersion };
    writeFileAtomic(this.file(FILES.marker), JSON.stringify(marker, null, 2) + "\n");
    return marker;
  }

  /** Record the cluster fingerprint once the cluster is provisioned. It never changes afterwards. */
  pinFingerprint(fingerprint: string): void {
    const marker = this.readMarker();
    if (marker === undefined) throw new Error("pinFingerprint before the marker exists");
    if (marker.fingerprint !== null && marker.fingerprint !== fingerprint) {
      throw new CairnError(
        "NODE_CLUSTER_MISMATCH",
        `data directory ${this.path} belongs to cluster fingerprint ${marker.fingerprint}, not ${fingerprint}`,
        { path: this.path },
      );
    }
    writeFileAtomic(this.file(FILES.marker), JSON.stringify({ ...marker, fingerprint }, null, 2) + "\n");
  }

  /** Durably move the generation to at least `minimum`; returns the new one. */
  advanceGeneration(minimum: number): number {
    const raw = readJson(this.file(FILES.node)) as Partial<NodeState> | undefined;
    const generation = Math.max(raw?.generation ?? 0, minimum);
    writeFileAtomic(this.file(FILES.node), JSON.stringify({ ...raw, generation }, null, 2) + "\n");
    return generation;
  }

  /** Increment and durably store the node's generation; returns the new one. */
  bumpGeneration(): number {
    const raw = readJson(this.file(FILES.node)) as Partial<NodeState> | undefined;
    const previous = raw?.generation ?? 0;
    if (!Number.isSafeInteger(previous) || previous < 0) {
      throw new CairnError("NODE_MARKER_CORRUPT", `${this.file(FILES.node)} has an invalid generation`, {
        path: this.file(FILES.node),
      });
    }
    const generation = previous + 1;
    writeFileAtomic(this.file(FILES.node), JSON.stringify({ ...raw, generation }, null, 2) + "\n");
    return generation;
  }

  writeAddresses(addresses: Addresses): void {
    writeFileAtomic(this.file(FILES.addresses), JSON.stringify(addresses, null, 2) + "\n");
  }

  /** Used by tests and `cairn dev` to find a node started on port 0. */
  static readAddresses(path: string): Addresses | undefined {
    return readJson(join(path, FILES.addresses)) as Addresses | undefined;
  }
}

/** Remove a stale addresses file (so readers never see the previous run's ports). */
export function clearAddresses(dir: string): void {
  rmSync(join(dir, FILES.addresses), { force: true });
}
