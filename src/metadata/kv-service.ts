// The metadata KV service of one node: reads on any member (linearizable through ReadIndex unless
// stale), writes with preconditions on the leader, the server's status report, and their RPC handlers.
// Invariants: only a member serves and only the leader proposes; every refusal carries a leader hint.
import { nodeId as toNodeId } from "../ids/index.ts";
import type { FabricServer } from "../net/index.ts";
import { CairnError, isCairnError } from "../observability/errors.ts";
import { checkKey, checkValue, kvFailure, listOptions, type Consistency, type MetadataListOptions, type MetadataListPage } from "./api.ts";
import { asVersion, type KvCommand, type Precondition, type Version, type VersionedValue } from "./kv.ts";
import type { MetadataMembership } from "./membership.ts";
import { MetadataMetrics } from "./metrics.ts";
import type { Counter } from "../observability/metrics.ts";
import { freeDiskBytes } from "./raft-storage.ts";
import { GetRpc, ListRpc, StatusRpc, WriteBatchRpc, WriteRpc, type WriteRequestWire } from "./rpc.ts";
import type { MetadataServerContext, MetadataServerDeps, MetadataServerStatus } from "./server-context.ts";

/** What the KV service asks of membership: may this node serve, and where a refused client should go. */
type ServingGate = Pick<MetadataMembership, "state" | "nodeId" | "memberDriver" | "leaderDriver" | "leaderHint">;

export class MetadataKvService {
  private readonly deps: MetadataServerDeps;
  private readonly reads: Counter<"consistency"> | undefined;

  constructor(
    private readonly ctx: MetadataServerContext,
    private readonly membership: ServingGate,
  ) {
    this.deps = ctx.deps;
    this.reads = ctx.deps.registry === undefined ? undefined : MetadataMetrics.for(ctx.deps.registry).reads;
  }

  /** Serve a read on this node (a member). Linearizable unless `stale`. */
  async read(key: string, consistency: Consistency): Promise<VersionedValue | undefined> {
    const driver = this.membership.memberDriver();
    if (consistency === "linearizable") await driver.linearizableBarrier(this.deps.requestTimeoutMs);
    this.reads?.inc({ consistency });
    return driver.sm.kv.get(key);
  }

  async list(options: MetadataListOptions): Promise<MetadataListPage> {
    const o = listOptions(options);
    const driver = this.membership.memberDriver();
    if (o.consistency === "linearizable") await driver.linearizableBarrier(this.deps.requestTimeoutMs);
    const page = driver.sm.kv.list({ prefix: o.prefix, ...(o.after !== undefined ? { after: o.after } : {}), limit: o.limit });
    return { keys: page.entries, next: page.next };
  }

  private async writeFromWire(req: WriteRequestWire): Promise<Version> {
    checkKey(req.key);
    if (req.op === "put") checkValue(req.key, req.value);
    const precondition: Precondition =
      req.precondition.kind === "matches-version" ? { kind: "matches-version", version: asVersion(req.precondition.version) } : req.precondition;
    const cmd: KvCommand = req.op === "put" ? { op: "put", key: req.key, value: req.value, precondition } : { op: "delete", key: req.key, precondition };
    return await this.write(req.requestId, cmd);
  }

  /** Serve a write on this node; only the leader accepts (others refuse with a leader hint). */
  async write(requestId: string, cmd: KvCommand): Promise<Version> {
    const driver = this.membership.leaderDriver();
    const outcome = await driver.propose({ t: "kv", id: requestId, cmd }, this.deps.requestTimeoutMs).catch((e: unknown) => {
      if (isCairnError(e, "METADATA_UNAVAILABLE")) throw this.withHint(e);
      throw e;
    });
    if (outcome.kind !== "kv") throw new Error("a KV proposal applied as something else");
    if (!outcome.result.ok) throw kvFailure(cmd.key, cmd.op, outcome.result);
    return outcome.result.version;
  }

  status(): MetadataServerStatus {
    const driver = this.ctx.driver();
    const s = driver?.status();
    const storage = this.ctx.storage;
    const snapshotIndex = storage.mirror.snapshot().metadata.index;
    const selfId = this.membership.nodeId;
    return {
      node: selfId !== undefined ? toNodeId(selfId) : (driver ? toNodeId(driver.id) : null),
      state: this.membership.state,
      raft: s
        ? {
            role: s.role,
            term: s.term,
            leader: s.leader ? toNodeId(s.leader) : null,
            commitIndex: s.commit,
            appliedIndex: driver!.applied,
            firstIndex: s.firstIndex,
            lastIndex: s.lastIndex,
            logLength: Math.max(0, s.lastIndex - s.firstIndex + 1),
            snapshotIndex,
            voters: s.confState.voters.map(toNodeId),
            learners: s.confState.learners.map(toNodeId),
          }
        : null,
      storage: {
        storageId: storage.identity?.storageId ?? null,
        sizeBytes: storage.sizeBytes(),
        integrityOk: this.ctx.integrity().ok,
        integrityDetail: this.ctx.integrity().detail,
        integrityCheckedAtMs: this.ctx.integrity().checkedAtMs,
        freeDiskBytes: freeDiskBytes(storage.path),
      },
    };
  }

  private withHint(e: CairnError): CairnError {
    return new CairnError("METADATA_UNAVAILABLE", e.message, { ...e.details, leaderHint: this.membership.leaderHint() ?? null });
  }

  registerHandlers(server: FabricServer): void {
    server.register(GetRpc, async (req) => {
      checkKey(req.key);
      const v = await this.read(req.key, req.consistency);
      return v === undefined ? { found: false, version: 0, value: null } : { found: true, version: v.version, value: v.value };
    });
    server.register(ListRpc, async (req) =>
      this.list({ prefix: req.prefix, ...(req.after !== null ? { after: req.after } : {}), limit: req.limit, consistency: req.consistency }),
    );
    server.register(WriteRpc, async (req) => ({ version: await this.writeFromWire(req) }));
    // Writes forwarded together by a non-leader: proposed in one turn, so they share one Ready and one
    // fsync; each keeps its own outcome. An error that is not a CairnError is a bug: logged, and that
    // write's outcome is reported as unknown (it may have been proposed), never as a failure.
    server.register(WriteBatchRpc, async (req) => ({
      results: await Promise.all(
        req.writes.map((w) =>
          this.writeFromWire(w).then(
            (version) => ({ ok: true as const, version }),
            (e: unknown) => {
              if (e instanceof CairnError) return { ok: false as const, problem: e.toProblem() };
              this.deps.log.error({ err: e, key: w.key }, "bug: a batched metadata write failed with an unexpected error");
              const unknown = new CairnError("METADATA_INDETERMINATE", `the leader failed unexpectedly while handling the write: ${e instanceof Error ? e.message : String(e)}`);
              return { ok: false as const, problem: unknown.toProblem() };
            },
          ),
        ),
      ),
    }));
    server.register(StatusRpc, async () => this.status());
  }
}
