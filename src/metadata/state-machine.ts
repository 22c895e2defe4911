// The replicated metadata state machine: what every member applies, in log order, from the Raft
// log. Normal entries carry KV commands (or the provisioning batch); membership-change entries also
// rewrite the nodes configuration (auto-join → member on promotion, member → standby on removal), so
// every replica reaches the same `nodes_config` at the same index. Pure and deterministic.
import type { ConfChangeEntry, Entry } from "../raft/index.ts";
import { KvStateMachine, DOES_NOT_EXIST, asVersion, matchesVersion, type KvCommand, type KvResult, type KvSnapshot } from "./kv.ts";
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

export interface MetadataSnapshotData {
  readonly formatVersion: 1;
  readonly kv: KvSnapshot;
  /** Recently applied request ids with their results (oldest first), for exactly-once retries. */
  readonly recent?: Array<[string, KvResult]>;
}

/** How many request ids the state machine remembers; a retry older than this is applied again. */
export const DEDUP_WINDOW = 10_000;

export class MetadataStateMachine {
  kv = new KvStateMachine();
  /** Results of recently applied KV requests by id: a retried request gets its first result. */
  private recent = new Map<string, KvResult>();
  /** Notes about entries applied in an unexpected state (never fatal: every replica does the same). */
  readonly anomalies: string[] = [];

  apply(entry: Entry): ApplyOutcome {
    if (entry.kind === "confChange") return this.applyMembership(entry);
    const cmd = decodeCommand(entry.data);
    if (cmd === undefined) return { kind: "noop" };
    if (cmd.t === "kv") {
      const seen = this.recent.get(cmd.id);
      if (seen !== undefined) return { kind: "kv", id: cmd.id, result: seen };
      const result = this.kv.apply(cmd.cmd);
      this.recent.set(cmd.id, result);
      if (this.recent.size > DEDUP_WINDOW) this.recent.delete(this.recent.keys().next().value!);
      return { kind: "kv", id: cmd.id, result };
    }
    if (cmd.t === "import") return { kind: "import", id: cmd.id, ok: this.applyImport(cmd) };
    return { kind: "provision", id: cmd.id, ok: this.applyProvision(cmd.docs) };
  }

  nodesConfig(): { config: NodesConfiguration; version: number } | undefined {
    const v = this.kv.get(KEYS.nodesConfig);
    return v === undefined ? undefined : { config: v.value as NodesConfiguration, version: v.version };
  }

  snapshot(): Uint8Array {
    const data: MetadataSnapshotData = { formatVersion: 1, kv: this.kv.snapshot(), recent: [...this.recent] };
    return encoder.encode(JSON.stringify(data));
  }

  restore(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) {
      this.kv = new KvStateMachine();
      this.recent = new Map();
      return;
    }
    const data = JSON.parse(decoder.decode(bytes)) as MetadataSnapshotData;
    this.kv = KvStateMachine.fromSnapshot(data.kv);
    this.recent = new Map(data.recent ?? []);
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
    if (this.kv.snapshot().entries.length > 0) return false;
    this.kv = KvStateMachine.fromSnapshot(cmd.snapshot);
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
