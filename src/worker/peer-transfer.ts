// Copying a partition store between nodes when no snapshot repository covers a gap. The source
// exports its store once per transfer (snapshot/export.ts: a Worker thread, as of one applied LSN)
// and serves it in chunks of at most `chunkBytes`; the export is deleted after its last chunk or
// after `idleTimeoutMs` without a request. The sink downloads every chunk of one export into a
// temporary file, checks size and checksum, and only then renames it over the store: a transfer cut
// short never leaves a partial store in place, and every chunk must carry the same LSN and checksum.
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { CairnError, invariant } from "../observability/errors.ts";
import { exportStore, fileChecksum, type ExportOptions, type ExportResult } from "../snapshot/index.ts";
import type { FetchStoreChunk, FetchStoreRequest } from "./rpc.ts";
import { APPLIED_LSN_QUERY } from "./store.ts";

export interface StoreTransferLimits {
  /** Largest chunk served per request (the sink's maxBytes is clipped to it). */
  readonly chunkBytes: number;
  /** An export no request touched this long is deleted. */
  readonly idleTimeoutMs: number;
  /** Most exports kept for peers at once. */
  readonly maxOpen: number;
}

export const DEFAULT_STORE_TRANSFER_LIMITS: StoreTransferLimits = { chunkBytes: 1_048_576, idleTimeoutMs: 30_000, maxOpen: 2 };

interface OpenExport {
  readonly path: string;
  readonly ready: Promise<ExportResult>;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** The source side: answers `worker/fetch-store` from exports of this node's partition stores. */
export class StoreTransferSource {
  private readonly open = new Map<string, OpenExport>();

  constructor(
    private readonly deps: {
      readonly scratchDir: string;
      readonly limits: StoreTransferLimits;
      /** The path of this node's store of `partition` while a healthy processor runs on it. */
      readonly storeOf: (partition: number) => string | undefined;
      readonly node: () => string;
      /** How the store is copied (default DEFAULT_EXPORT_OPTIONS: the snapshot's export). */
      readonly exportOptions?: ExportOptions;
    },
  ) {}

  get exportsOpen(): number {
    return this.open.size;
  }

  async chunk(req: FetchStoreRequest): Promise<FetchStoreChunk> {
    const key = `${req.partition}-${req.transfer}`;
    let t = this.open.get(key);
    if (t === undefined) {
      if (req.offset !== 0) throw this.refuse(req, `transfer ${req.transfer} is not open here (it expired after ${this.deps.limits.idleTimeoutMs} ms idle, or another node serves it)`);
      if (this.open.size >= this.deps.limits.maxOpen) throw this.refuse(req, `it already serves ${this.open.size} store transfers (snapshots.peer-transfer-max-open)`);
      const storePath = this.deps.storeOf(req.partition);
      if (storePath === undefined) throw this.refuse(req, `it runs no healthy processor of partition ${req.partition}`);
      mkdirSync(this.deps.scratchDir, { recursive: true });
      const path = join(this.deps.scratchDir, `peer-p${req.partition}-${req.transfer}.sqlite`);
      const opened: OpenExport = { path, ready: exportStore(storePath, path, APPLIED_LSN_QUERY, undefined, this.deps.exportOptions), timer: undefined };
      t = opened;
      this.open.set(key, opened);
      opened.ready.catch(() => this.finish(key));
    }
    this.touch(key, t);
    const exported = await t.ready;
    if (req.offset > exported.sizeBytes) throw this.refuse(req, `offset ${req.offset} is past the end of the ${exported.sizeBytes}-byte export`);
    const length = Math.min(req.maxBytes, this.deps.limits.chunkBytes, exported.sizeBytes - req.offset);
    const data = new Uint8Array(await Bun.file(t.path).slice(req.offset, req.offset + length).arrayBuffer());
    invariant(data.byteLength === length, "an export file shrank while it was served");
    if (req.offset + length >= exported.sizeBytes) await this.finish(key);
    return { partition: req.partition, node: this.deps.node(), lsn: exported.lsn, sizeBytes: exported.sizeBytes, checksum: exported.checksum, offset: req.offset, data };
  }

  /** Deletes every export (the node stops). */
  async close(): Promise<void> {
    await Promise.all([...this.open.keys()].map((key) => this.finish(key)));
  }

  private touch(key: string, t: OpenExport): void {
    if (t.timer !== undefined) clearTimeout(t.timer);
    // A sink that went away must not leave a copy of the store on this disk.
    t.timer = setTimeout(() => void this.finish(key), this.deps.limits.idleTimeoutMs);
    t.timer.unref?.();
  }

  private async finish(key: string): Promise<void> {
    const t = this.open.get(key);
    if (t === undefined) return;
    this.open.delete(key);
    if (t.timer !== undefined) clearTimeout(t.timer);
    // An export still running writes its file when it ends: remove it after that.
    await t.ready.catch(() => {});
    await rm(t.path, { force: true });
  }

  private refuse(req: FetchStoreRequest, why: string): CairnError {
    return new CairnError("SNAPSHOT_PEER_TRANSFER", `node ${this.deps.node()} cannot copy partition ${req.partition}'s store: ${why}`, { partition: req.partition });
  }
}

export interface PulledStore {
  readonly lsn: number;
  readonly sizeBytes: number;
  readonly node: string;
}

/**
 * The sink side: copies one export of `partition`'s store from a peer into `tempPath` and checks it.
 * Fails, removing `tempPath`, when the peer's store is below `minLsn` (it would not cover the gap),
 * when chunks disagree, or when size or checksum differ. `installStore` then moves it into place.
 */
export async function pullStore(args: {
  readonly partition: number;
  readonly minLsn: number;
  readonly tempPath: string;
  readonly chunkBytes: number;
  readonly fetch: (req: FetchStoreRequest) => Promise<FetchStoreChunk>;
}): Promise<PulledStore> {
  const transfer = randomBytes(8).toString("hex");
  const file = await open(args.tempPath, "w");
  let complete = false;
  try {
    let first: FetchStoreChunk | undefined;
    let offset = 0;
    for (;;) {
      const chunk = await args.fetch({ partition: args.partition, transfer, offset, maxBytes: args.chunkBytes });
      first ??= chunk;
      if (chunk.lsn !== first.lsn || chunk.checksum !== first.checksum || chunk.sizeBytes !== first.sizeBytes || chunk.offset !== offset) {
        throw new CairnError("SNAPSHOT_PEER_TRANSFER", `node ${chunk.node} changed partition ${args.partition}'s export in the middle of transfer ${transfer}`);
      }
      if (first.lsn < args.minLsn) {
        throw new CairnError("SNAPSHOT_PEER_TRANSFER", `node ${first.node} holds partition ${args.partition} only up to LSN ${first.lsn}, below the trim point ${args.minLsn}`);
      }
      if (chunk.data.byteLength === 0 && offset < first.sizeBytes) throw new CairnError("SNAPSHOT_PEER_TRANSFER", `node ${chunk.node} sent an empty chunk at offset ${offset}`);
      await file.write(chunk.data, 0, chunk.data.byteLength, offset);
      offset += chunk.data.byteLength;
      if (offset >= first.sizeBytes) break;
    }
    await file.sync();
    await file.close();
    const actual = await fileChecksum(args.tempPath);
    if (actual.sizeBytes !== first.sizeBytes || actual.checksum !== first.checksum) {
      throw new CairnError(
        "SNAPSHOT_CHECKSUM_MISMATCH",
        `partition ${args.partition}'s store copied from node ${first.node} is ${actual.sizeBytes} bytes with ${actual.checksum}, the node said ${first.sizeBytes} bytes with ${first.checksum}`,
        { partition: args.partition },
      );
    }
    complete = true;
    return { lsn: first.lsn, sizeBytes: first.sizeBytes, node: first.node };
  } finally {
    await file.close().catch(() => {});
    if (!complete) await rm(args.tempPath, { force: true });
  }
}

/** Moves a verified store copy over `targetPath` (which no one may have open), dropping its old WAL. */
export async function installStore(tempPath: string, targetPath: string): Promise<void> {
  for (const suffix of ["-wal", "-shm"]) await rm(targetPath + suffix, { force: true });
  await rename(tempPath, targetPath);
}
