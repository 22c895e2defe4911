// The metadata client every node uses, with or without the metadata-server role. It finds the
// leader (following hints), spreads reads over members, and retries until a deadline. Writes carry
// one request id across every attempt and the state machine deduplicates them, so a retry after a
// lost answer cannot apply twice. When the deadline passes and an attempt may have reached a leader,
// the outcome is reported as METADATA_INDETERMINATE, never as a failure.
import { problemValueToError, type FabricClient } from "../net/index.ts";
import { CairnError, isCairnError } from "../observability/errors.ts";
import type { Logger } from "../observability/log.ts";
import type { Consistency, MetadataApi, MetadataListOptions, MetadataListPage } from "./api.ts";
import { checkKey, checkValue, kvFailure, listOptions } from "./api.ts";
import { asVersion, type KvCommand, type Precondition, type Version, type VersionedValue } from "./kv.ts";
import type { NodesConfiguration } from "./nodes-config.ts";
import { GetRpc, ListRpc, MAX_WRITE_BATCH, WriteBatchRpc, WriteRpc, type WriteRequestWire } from "./rpc.ts";
import type { LeaderHint, MetadataServer } from "./server.ts";

export interface MetadataClientOptions {
  fabric: FabricClient;
  /** Fabric addresses to try when no member is known yet (`metadata-client.addresses`). */
  seeds: readonly string[];
  /** This node's own metadata server, called without the network when it is a member. */
  local?: MetadataServer;
  requestTimeoutMs: number;
  log: Logger;
  /** Unique prefix for request ids (node name and generation). */
  requestIdPrefix: () => string;
  random?: () => number;
}

/** Fisher–Yates: spreads reads evenly over the members. */
function shuffle<T>(xs: T[], random: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Errors after which another member may still answer. */
function isRetryable(e: unknown): boolean {
  return (
    isCairnError(e, "METADATA_UNAVAILABLE") ||
    isCairnError(e, "METADATA_NOT_MEMBER") ||
    isCairnError(e, "METADATA_INDETERMINATE") ||
    isCairnError(e, "NET_UNREACHABLE") ||
    isCairnError(e, "NET_DEADLINE_EXCEEDED") ||
    isCairnError(e, "NET_OVERLOADED") ||
    isCairnError(e, "NET_SHUTTING_DOWN") ||
    isCairnError(e, "NET_REMOTE_ERROR") ||
    isCairnError(e, "NET_CLUSTER_MISMATCH") // a seed of another cluster, or an unprovisioned node
  );
}

/** Errors that prove the request was not applied anywhere. */
function provesNotApplied(e: unknown): boolean {
  return (
    (isCairnError(e, "METADATA_UNAVAILABLE") && (e.details.notLeader === true || e.details.reason === "notLeader" || e.details.retryable === true)) ||
    isCairnError(e, "METADATA_NOT_MEMBER") ||
    isCairnError(e, "NET_OVERLOADED") ||
    isCairnError(e, "NET_CLUSTER_MISMATCH") ||
    (isCairnError(e, "NET_UNREACHABLE") && e.details.sent === false)
  );
}

function hintOf(e: unknown): LeaderHint | undefined {
  if (!(e instanceof CairnError)) return undefined;
  const h = e.details.leaderHint as LeaderHint | null | undefined;
  return h && typeof h.address === "string" ? h : undefined;
}

export class MetadataClient implements MetadataApi {
  private members: string[] = [];
  private leader: LeaderHint | undefined;
  private counter = 0;
  private readonly random: () => number;
  /** Writes for remote members waiting for the end of this turn, by member address. */
  private readonly forwards = new Map<string, Array<{ write: WriteRequestWire; resolve: (version: number) => void; reject: (e: unknown) => void }>>();
  private forwardScheduled = false;
  private readonly forwardsInFlight = new Map<string, number>();

  constructor(private readonly options: MetadataClientOptions) {
    this.random = options.random ?? Math.random;
  }

  /** Learn the current members (from any nodes configuration this node sees). */
  updateMembers(config: NodesConfiguration): void {
    this.members = config.nodes.filter((n) => n.metadataServer.state === "member").map((n) => n.fabricAddress);
    if (this.leader && !config.nodes.some((n) => n.id === this.leader!.id && n.metadataServer.state === "member")) this.leader = undefined;
  }

  leaderHint(): LeaderHint | undefined {
    return this.options.local?.leaderHint() ?? this.leader;
  }

  /** The leader learned from hints (not asking this node's own server). */
  knownLeader(): LeaderHint | undefined {
    return this.leader;
  }

  /**
   * Read a key. `remoteFirst` asks other members before this node's own replica: a node that was
   * removed from the metadata cluster stops receiving the log, so its replica cannot tell it so.
   */
  async get(key: string, options: { consistency?: Consistency; remoteFirst?: boolean } = {}): Promise<VersionedValue | undefined> {
    checkKey(key);
    const consistency = options.consistency ?? "linearizable";
    return this.withRetries(options.remoteFirst ? "remote-read" : "read", async (target) => {
      if (target === "local") return await this.options.local!.read(key, consistency);
      const r = await this.options.fabric.call(target, GetRpc, { key, consistency }, { deadlineMs: this.options.requestTimeoutMs });
      return r.found ? { value: r.value, version: asVersion(r.version) } : undefined;
    });
  }

  async list(options: MetadataListOptions = {}): Promise<MetadataListPage> {
    const o = listOptions(options);
    return this.withRetries("read", async (target) => {
      if (target === "local") return await this.options.local!.list(o);
      const req = { prefix: o.prefix, after: o.after ?? null, limit: o.limit, consistency: o.consistency };
      const r = await this.options.fabric.call(target, ListRpc, req, { deadlineMs: this.options.requestTimeoutMs });
      return { keys: r.keys.map((k) => ({ key: k.key, version: asVersion(k.version) })), next: r.next };
    });
  }

  put(key: string, value: unknown, precondition: Precondition): Promise<Version> {
    checkKey(key);
    checkValue(key, value);
    return this.write({ op: "put", key, value, precondition });
  }

  delete(key: string, precondition: Precondition): Promise<Version> {
    checkKey(key);
    return this.write({ op: "delete", key, precondition });
  }

  private async write(cmd: KvCommand): Promise<Version> {
    const requestId = `${this.options.requestIdPrefix()}:${++this.counter}`;
    return this.withRetries("write", async (target) => {
      if (target === "local") return await this.options.local!.write(requestId, cmd);
      return asVersion(
        await this.forward(target, {
          requestId,
          op: cmd.op,
          key: cmd.key,
          value: cmd.op === "put" ? cmd.value : null,
          precondition: cmd.precondition.kind === "matches-version" ? { kind: "matches-version", version: cmd.precondition.version } : cmd.precondition,
        }),
      );
    }).catch((e: unknown) => {
      // A precondition failure that comes back from a peer keeps its code; re-map for the message.
      if (isCairnError(e, "METADATA_VERSION_MISMATCH") || isCairnError(e, "METADATA_EXISTS") || isCairnError(e, "METADATA_NOT_FOUND")) {
        const currentVersion = Number(e.details.currentVersion ?? 0);
        const reason = isCairnError(e, "METADATA_EXISTS") ? "exists" : isCairnError(e, "METADATA_NOT_FOUND") ? "not-found" : "version-mismatch";
        throw kvFailure(cmd.key, cmd.op, { ok: false, reason, currentVersion: asVersion(currentVersion) });
      }
      throw e;
    });
  }

  /**
   * Sends a write to a remote member. While calls to that member are in flight, writes sent to it in
   * the same turn of the event loop travel in one WriteBatchRpc (a node that is not the leader
   * forwards its clients' writes, and they arrive together); each still gets its own outcome, as
   * WriteRpc would give it. A call that fails as a whole fails every write in it with the same
   * error, as separate calls would.
   */
  private forward(target: string, write: WriteRequestWire): Promise<number> {
    // Nothing in flight to or waiting for that member: go at once (a lone write pays no extra turn);
    // otherwise join the writes that wait for the end of this turn.
    if (!this.forwards.has(target) && !this.forwardsInFlight.has(target)) {
      return this.trackForward(target, this.options.fabric.call(target, WriteRpc, write, { deadlineMs: this.options.requestTimeoutMs })).then((r) => r.version);
    }
    return new Promise<number>((resolve, reject) => {
      let queue = this.forwards.get(target);
      if (queue === undefined) this.forwards.set(target, (queue = []));
      queue.push({ write, resolve, reject });
      if (this.forwardScheduled) return;
      this.forwardScheduled = true;
      // After this turn's I/O callbacks: every write that arrived meanwhile joins.
      setImmediate(() => this.flushForwards());
    });
  }

  private flushForwards(): void {
    this.forwardScheduled = false;
    const pending = [...this.forwards];
    this.forwards.clear();
    const options = { deadlineMs: this.options.requestTimeoutMs };
    for (const [target, queue] of pending) {
      for (let at = 0; at < queue.length; at += MAX_WRITE_BATCH) {
        const batch = queue.slice(at, at + MAX_WRITE_BATCH);
        if (batch.length === 1) {
          const only = batch[0]!;
          this.trackForward(target, this.options.fabric.call(target, WriteRpc, only.write, options)).then((r) => only.resolve(r.version), only.reject);
          continue;
        }
        this.trackForward(target, this.options.fabric.call(target, WriteBatchRpc, { writes: batch.map((b) => b.write) }, options)).then(
          (r) => {
            if (r.results.length !== batch.length) {
              const e = new CairnError("NET_REMOTE_ERROR", `${target} answered ${r.results.length} outcomes for ${batch.length} writes`, { peer: target });
              for (const b of batch) b.reject(e);
              return;
            }
            r.results.forEach((result, k) => {
              const b = batch[k]!;
              if (result.ok) b.resolve(result.version);
              else {
                const status = (result.problem as { status?: unknown } | null)?.status;
                b.reject(problemValueToError(typeof status === "number" ? status : 500, result.problem, target));
              }
            });
          },
          (e: unknown) => {
            for (const b of batch) b.reject(e);
          },
        );
      }
    }
  }

  /** Counts the forwarding calls in flight to `target` while `call` runs. */
  private trackForward<T>(target: string, call: Promise<T>): Promise<T> {
    this.forwardsInFlight.set(target, (this.forwardsInFlight.get(target) ?? 0) + 1);
    return call.finally(() => {
      const left = (this.forwardsInFlight.get(target) ?? 1) - 1;
      if (left === 0) this.forwardsInFlight.delete(target);
      else this.forwardsInFlight.set(target, left);
    });
  }

  /** Run an operation on the leader (membership changes): tries the hinted leader first. */
  onLeader<T>(attempt: (target: string | "local") => Promise<T>): Promise<T> {
    return this.withRetries("write", attempt);
  }

  /** Where to send the next attempt, best first. */
  private targets(kind: "read" | "remote-read" | "write"): Array<string | "local"> {
    const local = this.options.local;
    const localMember = local !== undefined && local.state === "member";
    const out: Array<string | "local"> = [];
    const hint = this.leaderHint();
    if (kind === "write") {
      if (localMember && local.isLeader()) out.push("local");
      else if (hint) out.push(hint.address);
    } else if (localMember && kind === "read") {
      // A remote-first read asks the others first: this replica is the one that may be behind.
      out.push("local");
    }
    const others = shuffle([...this.members], this.random);
    for (const a of [...others, ...this.options.seeds]) if (!out.includes(a)) out.push(a);
    if (localMember && !out.includes("local")) out.push("local");
    return out;
  }

  private async withRetries<T>(kind: "read" | "remote-read" | "write", attempt: (target: string | "local") => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.options.requestTimeoutMs;
    let mayHaveApplied = false;
    let last: unknown;
    let backoffMs = 25;
    while (Date.now() < deadline) {
      const targets = this.targets(kind);
      if (targets.length === 0) {
        throw new CairnError("METADATA_UNAVAILABLE", "no metadata server is known: configure metadata-client.addresses, or provision the cluster");
      }
      for (let i = 0; i < targets.length && Date.now() < deadline; i++) {
        const target = targets[i]!;
        try {
          return await attempt(target);
        } catch (e) {
          if (!isRetryable(e)) throw e;
          last = e;
          if (kind === "write" && !provesNotApplied(e)) mayHaveApplied = true;
          const hint = hintOf(e);
          if (hint !== undefined && hint.address !== target) {
            this.leader = hint;
            if (kind === "write") {
              targets.splice(i + 1, 0, hint.address);
            }
          }
        }
      }
      await Bun.sleep(Math.min(backoffMs, Math.max(0, deadline - Date.now())));
      backoffMs = Math.min(backoffMs * 2, 500);
    }
    if (kind === "write" && mayHaveApplied) {
      throw new CairnError("METADATA_INDETERMINATE", `the write's outcome is unknown: ${(last as Error | undefined)?.message ?? "no answer"}`);
    }
    throw new CairnError("METADATA_UNAVAILABLE", `the metadata cluster did not answer in time: ${(last as Error | undefined)?.message ?? "no answer"}`);
  }
}
