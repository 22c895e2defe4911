// Bootstrap of partition stores: a processor about to start on a node without local state imports
// the partition's latest snapshot first (then replays the log after it); a processor stopped because
// its log is trimmed past its applied LSN is taken down, replaced by the newest snapshot if that
// covers the gap, else by a copy of the store of a peer holding the partition (peer-transfer.ts) if
// that covers it, and started again by the next reconcile. With neither, the processor stays
// stopped, its reason naming both causes and the fix (CAIRN-SNAPSHOT-0010).
// Invariants: a store is replaced only while no processor has it open; a store below the gap's end
// is never installed (records between would be missing); a peer's copy is verified before it is.
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { ERRORS } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import { importStore, type SnapshotRepository } from "../snapshot/index.ts";
import { installStore, pullStore } from "./peer-transfer.ts";
import type { PartitionProcessor } from "./processor.ts";
import type { FetchStoreChunk, FetchStoreRequest } from "./rpc.ts";

/** A node that holds the partition (per the placement), as a source of its store. */
export interface StorePeer {
  readonly node: string;
  readonly fetch: (req: FetchStoreRequest) => Promise<FetchStoreChunk>;
}

export interface BootstrapDeps {
  readonly repository: SnapshotRepository | undefined;
  readonly storePath: (partition: number) => string;
  readonly logger: Logger;
  readonly nowMs: () => number;
  /** Least time between two bootstrap attempts of one stopped partition. */
  readonly retryMs: number;
  /** The other nodes the placement gives the partition (followers first: spare the leader). */
  readonly peers: (partition: number) => Promise<StorePeer[]>;
  /** Chunk size asked of a peer (snapshots.peer-transfer-chunk-bytes). */
  readonly chunkBytes: number;
}

export class PartitionBootstrap {
  private readonly running = new Map<number, Promise<void>>();
  /** Partitions whose missing store was looked for in the repository once (found or not). */
  private readonly triedFresh = new Set<number>();
  private readonly lastAttemptMs = new Map<number, number>();

  constructor(private readonly deps: BootstrapDeps) {}

  /**
   * Whether the partition must wait for its processor: an import runs, or has just been started
   * because the node holds no store for it and a repository is configured.
   */
  holdsBack(partition: number): boolean {
    if (this.running.has(partition)) return true;
    const repository = this.deps.repository;
    if (repository === undefined || this.triedFresh.has(partition) || existsSync(this.deps.storePath(partition))) return false;
    this.triedFresh.add(partition);
    this.run(partition, async () => {
      const imported = await this.importLatest(repository, partition, 0);
      if (imported === undefined) this.deps.logger.info({ partition }, `no snapshot of partition ${partition} in ${repository.description}: replaying its log from the start`);
    });
    return true;
  }

  /**
   * For a processor stopped by a trim gap: takes it down through `detach` and imports a snapshot
   * covering the gap (the next reconcile starts a processor on it), or explains why it cannot.
   */
  recover(p: PartitionProcessor, detach: () => Promise<void>): void {
    const gap = p.trimGap;
    const partition = p.partition;
    if (gap === undefined || this.running.has(partition)) return;
    if (this.deps.nowMs() - (this.lastAttemptMs.get(partition) ?? -Infinity) < this.deps.retryMs) return;
    this.lastAttemptMs.set(partition, this.deps.nowMs());
    const status = p.status();
    const repository = this.deps.repository;
    const cause = `the log of partition ${partition} is trimmed up to LSN ${gap.to}, past this store's applied LSN ${status.appliedLsn}`;
    this.run(partition, async () => {
      const missing: string[] = [];
      if (repository === undefined) missing.push('snapshots.repository is "none" on this node');
      else {
        const latest = await repository.latest(partition);
        if (latest !== undefined && latest.lsn >= gap.to) {
          this.deps.logger.warn({ partition, gap, appliedLsn: status.appliedLsn, snapshotLsn: latest.lsn }, `${cause}: bootstrapping it from the snapshot at LSN ${latest.lsn}`);
          await detach();
          await this.importLatest(repository, partition, gap.to);
          return;
        }
        missing.push(`${repository.description} holds ${latest === undefined ? "no snapshot of it" : `its newest snapshot at LSN ${latest.lsn} only`}`);
      }
      const fromPeer = await this.copyFromPeer(partition, gap.to, cause);
      if (fromPeer.installed) {
        try {
          await detach();
          await installStore(fromPeer.tempPath, this.deps.storePath(partition));
        } finally {
          await rm(fromPeer.tempPath, { force: true });
        }
        this.deps.logger.info({ partition, lsn: fromPeer.lsn, node: fromPeer.node, bytes: fromPeer.sizeBytes }, `partition ${partition} bootstrapped from node ${fromPeer.node}'s store at LSN ${fromPeer.lsn}`);
        return;
      }
      missing.push(fromPeer.why);
      p.explainStop(`${cause}, and ${missing.join(", and ")} (${ERRORS.SNAPSHOT_BOOTSTRAP_IMPOSSIBLE.code}): ${ERRORS.SNAPSHOT_BOOTSTRAP_IMPOSSIBLE.hint}`);
    });
  }

  /**
   * Tries the partition's peers one after the other for a verified copy of its store at or past
   * `minLsn`, staged next to the store; says why when none had one.
   */
  private async copyFromPeer(
    partition: number,
    minLsn: number,
    cause: string,
  ): Promise<{ installed: true; tempPath: string; lsn: number; node: string; sizeBytes: number } | { installed: false; why: string }> {
    const peers = await this.deps.peers(partition);
    if (peers.length === 0) return { installed: false, why: `no other node holds partition ${partition} to copy its store from` };
    const failures: string[] = [];
    for (const peer of peers) {
      const tempPath = `${this.deps.storePath(partition)}.from-${peer.node}`;
      try {
        this.deps.logger.warn({ partition, peer: peer.node, minLsn }, `${cause}: copying its store from node ${peer.node}`);
        const pulled = await pullStore({ partition, minLsn, tempPath, chunkBytes: this.deps.chunkBytes, fetch: peer.fetch });
        return { installed: true, tempPath, ...pulled };
      } catch (e) {
        failures.push(`${peer.node}: ${(e as Error).message}`);
      }
    }
    return { installed: false, why: `no peer could provide a store covering LSN ${minLsn} (${failures.join("; ")})` };
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.running.values());
  }

  /** Imports the latest snapshot if its LSN is at least `minLsn`; its LSN, or undefined when none fits. */
  private async importLatest(repository: SnapshotRepository, partition: number, minLsn: number): Promise<number | undefined> {
    const latest = await repository.latest(partition);
    if (latest === undefined || latest.lsn < minLsn) return undefined;
    const meta = await repository.metadata(partition, latest.lsn, latest.id);
    if (meta === undefined) return undefined;
    await importStore(repository, meta, this.deps.storePath(partition));
    this.deps.logger.info({ partition, lsn: meta.lsn, id: meta.id, bytes: meta.sizeBytes, node: meta.node }, `partition ${partition} bootstrapped from the snapshot at LSN ${meta.lsn}`);
    return meta.lsn;
  }

  private run(partition: number, body: () => Promise<void>): void {
    const job = body()
      .catch((e: unknown) => this.deps.logger.warn({ err: e, partition }, `bootstrapping partition ${partition} from a snapshot failed; retrying later`))
      .finally(() => this.running.delete(partition));
    this.running.set(partition, job);
  }
}
