// The replicated metadata state machine: what every member applies, in log order, from the Raft
// log. Normal entries carry KV commands (or the provisioning batch); membership-change entries also
// rewrite the nodes configuration (auto-join → member on promotion, member → standby on removal), so
// every replica reaches the same `nodes_config` at the same index. Deterministic: its state is the
// SQLite store (kv-store.ts), written in one transaction per batch of entries with the applied index.
import type { Database, Statement } from "bun:sqlite";
import { invariant } from "../observability/errors.ts";
import type { ConfChangeEntry, Entry } from "../raft/index.ts";
import { DOES_NOT_EXIST, asVersion, matchesVersion, type KvCommand, type KvResult, type KvSnapshot } from "./kv.ts";
import type { SqliteKvStore } from "./kv-store.ts";
import { KEYS, type NodesConfiguration } from "./nodes-config.ts";
import { nextMetadataServerState } from "./server-state.ts";

/** A normal entry's payload. `id` lets the proposer match the applied entry to its request. */
export type MetadataCommand =
  | { readonly t: "kv"; readonly id: string; readonly cmd: KvCommand }
  /** Provisioning: every initial document in one entry, applied atomically (all or none). */
  | { readonly t: "provision"; readonly id: string; readonly docs: ReadonlyArray<readonly [string, unknown]> }
  /**
   * Migration from the local store: its whole state (every key with its version, deleted keys'
   * last versions too), applied atomically into an empty store. `member` names the migrating node,
   * whose storage id is recorded in nodes_config.
   */
  | {
      readonly t: "import";
      readonly id: string;
      readonly snapshot: KvSnapshot;
      readonly member: { readonly nodeId: number; readonly storageId: string };
    };

/** What a membership change entry carries in its context. */
export interface MemberContext {
  readonly storageId: string;
}

export type ApplyOutcome =
  | { readonly kind: "kv"; readonly id: string; readonly result: KvResult }
  | { readonly kind: "provision"; readonly id: string; readonly ok: boolean }
  | { readonly kind: "import"; readonly id: string; readonly ok: boolean }
  | { readonly kind: "membership"; readonly nodeId: number; readonly change: ConfChangeEntry["change"]["type"] }
  | { readonly kind: "noop" };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: MetadataCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export function decodeCommand(data: Uint8Array): MetadataCommand | undefined {
  if (data.byteLength === 0) return undefined; // a new leader's empty entry
  return JSON.parse(decoder.decode(data)) as MetadataCommand;
}

export function encodeMemberContext(ctx: MemberContext): Uint8Array {
  return encoder.encode(JSON.stringify(ctx));
}

export function decodeMemberContext(data: Uint8Array): MemberContext | undefined {
  if (data.byteLength === 0) return undefined;
  return JSON.parse(decoder.decode(data)) as MemberContext;
}

/** The snapshot data of format 1: the whole state, serialised (what nodes before the on-disk store sent). */
export interface LegacySnapshotData {
  readonly formatVersion: 1;
  readonly kv: KvSnapshot;
  /** Recently applied request ids with their results (oldest first), for exactly-once retries. */
  readonly recent?: Array<[string, KvResult]>;
}

/**
 * The snapshot data of format 2: a marker. The state is the store itself, so a snapshot costs nothing
 * to take; a follower that needs one streams the tables from a member (snapshot-transfer.ts).
 */
export const ON_DISK_SNAPSHOT_MARKER = encoder.encode(JSON.stringify({ formatVersion: 2, state: "on-disk" }));

/** Parses snapshot data: the legacy full state, or undefined for the on-disk marker (or none). */
export function legacySnapshotData(bytes: Uint8Array): LegacySnapshotData | undefined {
  if (bytes.byteLength === 0) return undefined;
  const data = JSON.parse(decoder.decode(bytes)) as { formatVersion: number };
  if (data.formatVersion === 2) return undefined;
  if (data.formatVersion !== 1) throw new Error(`unknown metadata snapshot format ${String(data.formatVersion)}`);
  return data as LegacySnapshotData;
}

/**
 * How many applied entries a request id is remembered for: a retry of a write applied more than this
 * many entries ago is applied again. Bounds the dedup table on disk, whatever the write rate.
 */
export const DEDUP_WINDOW = 10_000;
const PRUNE_EVERY_ENTRIES = 256;

export class MetadataStateMachine {
  private readonly qSeen: Statement<{ result: string }, [string]>;
  private readonly qRemember: Statement<unknown, [string, number, string]>;
  private readonly qForget: Statement<unknown, [number]>;
  /** Notes about entries applied in an unexpected state (never fatal: every replica does the same). */
  readonly anomalies: string[] = [];
  private lastPrunedIndex = 0;

  /** `db` is the store's database; every write happens in a transaction the caller holds. */
  constructor(
    readonly kv: SqliteKvStore,
    db: Database,
  ) {
    this.qSeen = db.query("SELECT result FROM kv_requests WHERE id = ?");
    this.qRemember = db.query("INSERT OR REPLACE INTO kv_requests (id, idx, result) VALUES (?1, ?2, ?3)");
    this.qForget = db.query("DELETE FROM kv_requests WHERE idx <= ?");
  }

  /** Last Raft index whose effects are in the store. */
  appliedIndex(): number {
    return this.kv.appliedIndex();
  }

  /**
   * Apply committed entries in log order and record the applied index, inside the caller's
   * transaction (the driver's, which also persists the Ready), so the store never holds an effect
   * without its index, or the index without its effect.
   */
  applyWithin(entries: readonly Entry[]): ApplyOutcome[] {
    if (entries.length === 0) return [];
    const outcomes = entries.map((e) => this.applyOne(e));
    const last = entries[entries.length - 1]!.index;
    this.kv.setAppliedIndex(last);
    // Forgetting old request ids in steps keeps a lookup off the path of most writes.
    if (last > DEDUP_WINDOW && last - this.lastPrunedIndex >= PRUNE_EVERY_ENTRIES) {
      this.qForget.run(last - DEDUP_WINDOW);
      this.lastPrunedIndex = last;
    }
    return outcomes;
  }

  /**
   * Replaces the state with a legacy (format 1) snapshot at `index` (an upgrade, or an old leader's
   * snapshot); call inside a transaction.
   */
  restoreLegacy(data: LegacySnapshotData, index: number): void {
    this.clearAll();
    this.importKv(data.kv);
    const recent = data.recent ?? [];
    recent.forEach(([id, result], i) => this.qRemember.run(id, index - (recent.length - i), JSON.stringify(result)));
    this.kv.setAppliedIndex(index);
  }

  private applyOne(entry: Entry): ApplyOutcome {
    if (entry.kind === "confChange") return this.applyMembership(entry);
    const cmd = decodeCommand(entry.data);
    if (cmd === undefined) return { kind: "noop" };
    if (cmd.t === "kv") {
      const seen = this.qSeen.get(cmd.id);
      if (seen !== null) return { kind: "kv", id: cmd.id, result: JSON.parse(seen.result) as KvResult };
      const result = this.kv.apply(cmd.cmd);
      this.qRemember.run(cmd.id, entry.index, JSON.stringify(result));
      return { kind: "kv", id: cmd.id, result };
    }
    if (cmd.t === "import") return { kind: "import", id: cmd.id, ok: this.applyImport(cmd) };
    return { kind: "provision", id: cmd.id, ok: this.applyProvision(cmd.docs) };
  }

  nodesConfig(): { config: NodesConfiguration; version: number } | undefined {
    const v = this.kv.get(KEYS.nodesConfig);
    return v === undefined ? undefined : { config: v.value as NodesConfiguration, version: v.version };
  }

  private clearAll(): void {
    this.kv.clear();
    this.qForget.run(Number.MAX_SAFE_INTEGER);
  }

  /** Every key with its version; deleted keys of a store that kept tombstones raise the floor. */
  private importKv(snapshot: KvSnapshot): void {
    invariant(snapshot.formatVersion === 1, () => `unknown KV snapshot format ${String(snapshot.formatVersion)}`);
    for (const e of snapshot.entries) {
      if (e.live) this.kv.restoreEntry(e.key, e.value, asVersion(e.version));
      else this.kv.raiseFloor(e.version);
    }
  }

  private applyProvision(docs: ReadonlyArray<readonly [string, unknown]>): boolean {
    // All or nothing: if any document exists already, the cluster was provisioned before.
    if (docs.some(([key]) => this.kv.getVersion(key) !== 0)) return false;
    for (const [key, value] of docs) {
      const r = this.kv.apply({ op: "put", key, value, precondition: DOES_NOT_EXIST });
      if (!r.ok) throw new Error(`provisioning entry failed on ${key} after the existence check`);
    }
    return true;
  }

  private applyImport(cmd: Extract<MetadataCommand, { t: "import" }>): boolean {
    // Only into an empty store: a second import (a retried migration) changes nothing.
    if (!this.kv.isEmpty()) return false;
    this.importKv(cmd.snapshot);
    const nc = this.nodesConfig();
    const me = nc?.config.nodes.find((n) => n.id === cmd.member.nodeId);
    if (nc !== undefined && me !== undefined) this.putNodesConfig(nc, me.id, "member", cmd.member.storageId);
    return true;
  }

  private applyMembership(entry: ConfChangeEntry): ApplyOutcome {
    const { type, nodeId } = entry.change;
    const outcome: ApplyOutcome = { kind: "membership", nodeId, change: type };
    const current = this.nodesConfig();
    // The founding entries of a cluster come before its nodes configuration exists.
    if (current === undefined) return outcome;
    const node = current.config.nodes.find((n) => n.id === nodeId);
    if (node === undefined) {
      this.anomalies.push(`index ${entry.index}: ${type} of N${nodeId}, which is not in the nodes configuration`);
      return outcome;
    }
    if (type === "addLearner") {
      // The joiner's storage id is recorded now; its state stays auto-join until promotion.
      const storageId = decodeMemberContext(entry.change.context)?.storageId ?? null;
      this.putNodesConfig(current, nodeId, node.metadataServer.state, storageId);
      return outcome;
    }
    const event = type === "addVoter" ? ({ kind: "promoted" } as const) : ({ kind: "removed" } as const);
    const from = node.metadataServer.state;
    if (event.kind === "promoted" && from === "member") return outcome; // founding member
    const to = nextMetadataServerState(from, event);
    if (to === undefined) {
      this.anomalies.push(`index ${entry.index}: ${type} of N${nodeId} in state ${from}; nodes configuration left as it was`);
      return outcome;
    }
    const storageId = event.kind === "promoted" ? (decodeMemberContext(entry.change.context)?.storageId ?? node.metadataServer.storageId) : null;
    this.putNodesConfig(current, nodeId, to, storageId);
    return outcome;
  }

  private putNodesConfig(
    current: { config: NodesConfiguration; version: number },
    nodeId: number,
    state: NodesConfiguration["nodes"][number]["metadataServer"]["state"],
    storageId: string | null,
  ): void {
    const updated: NodesConfiguration = {
      ...current.config,
      nodes: current.config.nodes.map((n) => (n.id === nodeId ? { ...n, metadataServer: { state, storageId } } : n)),
    };
    const r = this.kv.apply({ op: "put", key: KEYS.nodesConfig, value: updated, precondition: matchesVersion(asVersion(current.version)) });
    if (!r.ok) throw new Error("nodes_config changed under the state machine");
  }
}
