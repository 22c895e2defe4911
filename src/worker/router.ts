// Routes object requests to the node that leads the object's partition: the partition from the key
// hash and the partition table, the leader from pp_epoch/<p> (cached; re-read when the node named
// there refuses or cannot be reached), the call over the fabric or straight to this node's worker.
// Invariants: a request is retried only where retrying cannot apply a write twice (the leader
// refused before proposing, the request never left this node, or it carries an idempotency key);
// no request waits past its deadline: then it fails with CAIRN-PARTITION-0002 and a retry hint.
import type { NodeId } from "../ids/index.ts";
import type { MetadataApi } from "../metadata/api.ts";
import type { FabricClient, RpcDefinition } from "../net/index.ts";
import type { Static, TSchema } from "@sinclair/typebox";
import { CairnError, isCairnError } from "../observability/errors.ts";
import { partitionOfObject } from "./key-hash.ts";
import { partitionForKey } from "./partition-table.ts";
import type { PartitionTable } from "./partition-table.ts";
import { epochKey, type EpochRecord } from "./placement.ts";
import { WORKER_RPCS, type MutateAnswer, type MutateRequest, type ObjectAnswer, type ReadRequest } from "./rpc.ts";
import type { WorkerRole } from "./role.ts";

export interface StateRouterDeps {
  readonly metadata: () => MetadataApi | undefined;
  readonly fabricClient: FabricClient;
  readonly addressOf: (id: NodeId) => string | undefined;
  readonly self: () => NodeId | undefined;
  /** This node's worker, when it runs one (calls to itself skip the fabric). */
  readonly localWorker: () => WorkerRole | undefined;
}

/** How long a cached leader is trusted before it is read again. */
const LEADER_CACHE_MS = 1_000;
const RETRY_BACKOFF_INITIAL_MS = 20;
/** Short: while a partition fails over, the first retry after its new leader is ready wins. */
const RETRY_BACKOFF_MAX_MS = 100;
/** The Retry-After a client gets when no leader answered in time. */
export const RETRY_AFTER_SECONDS = 1;

export class StateRouter {
  private table: PartitionTable | undefined;
  private readonly leaders = new Map<number, { record: EpochRecord | undefined; readMs: number }>();

  constructor(private readonly deps: StateRouterDeps) {}

  async partitionOf(service: string, key: string): Promise<number> {
    this.table ??= await this.readTable();
    return partitionOfObject(this.table, service, key);
  }

  read(req: ReadRequest, deadlineMs: number): Promise<ObjectAnswer> {
    return this.withLeader(req.partition, deadlineMs, false, (worker, address, budgetMs) =>
      worker !== undefined ? worker.read(req) : this.deps.fabricClient.call(address, WORKER_RPCS.read, req, { deadlineMs: budgetMs }),
    );
  }

  mutate(req: Omit<MutateRequest, "timeoutMs">, deadlineMs: number): Promise<MutateAnswer> {
    return this.withLeader(req.partition, deadlineMs, req.idempotency !== null, (worker, address, budgetMs) => {
      const full = { ...req, timeoutMs: Math.max(1, budgetMs) };
      return worker !== undefined ? worker.mutate(full) : this.deps.fabricClient.call(address, WORKER_RPCS.mutate, full, { deadlineMs: budgetMs });
    });
  }

  /**
   * One RPC on the partition's leader: `local` on this node's worker when it leads, else `rpc` over
   * the fabric with `request(budgetMs)` (retries as withLeader allows; `idempotent` widens them).
   */
  onLeader<Req extends TSchema, Res extends TSchema>(
    partition: number,
    deadlineMs: number,
    idempotent: boolean,
    rpc: RpcDefinition<Req, Res>,
    request: (budgetMs: number) => Static<Req>,
    local: (worker: WorkerRole, req: Static<Req>) => Promise<Static<Res>>,
  ): Promise<Static<Res>> {
    return this.withLeader(partition, deadlineMs, idempotent, (worker, address, budgetMs) => {
      const req = request(budgetMs);
      return worker !== undefined ? local(worker, req) : this.deps.fabricClient.call(address, rpc, req, { deadlineMs: budgetMs });
    });
  }

  /** The partition owning a 64-bit partition key. */
  async partitionOfKey(key: bigint): Promise<number> {
    this.table ??= await this.readTable();
    return partitionForKey(this.table, key);
  }

  /**
   * Calls `call` on the partition's leader (this node's worker directly, or over the fabric), retrying
   * where it is safe until `deadlineMs` (see `retryable`).
   */
  async withLeader<T>(
    partition: number,
    deadlineMs: number,
    idempotent: boolean,
    call: (local: WorkerRole | undefined, address: string, budgetMs: number) => Promise<T>,
  ): Promise<T> {
    let backoffMs = RETRY_BACKOFF_INITIAL_MS;
    let last: unknown;
    for (let attempt = 0; ; attempt++) {
      const budgetMs = deadlineMs - Date.now();
      if (budgetMs <= 0) break;
      try {
        const leader = await this.leaderOf(partition, attempt > 0);
        if (leader !== undefined) {
          const local = leader.node === this.deps.self() ? this.deps.localWorker() : undefined;
          const address = this.deps.addressOf(leader.node as NodeId);
          if (local !== undefined || address !== undefined) return await call(local, address ?? "", budgetMs);
        }
      } catch (e) {
        last = e;
        if (!retryable(e, idempotent)) throw e;
      }
      await Bun.sleep(Math.min(backoffMs, Math.max(0, deadlineMs - Date.now())));
      backoffMs = Math.min(RETRY_BACKOFF_MAX_MS, backoffMs * 2);
    }
    if (isCairnError(last, "PARTITION_WRITE_INDETERMINATE")) throw last;
    throw new CairnError("PARTITION_UNAVAILABLE", `partition ${partition} has no leader that answered in time${last instanceof Error ? ` (last: ${last.message})` : ""}`, {
      partition,
      retryAfterSeconds: RETRY_AFTER_SECONDS,
    });
  }

  private async leaderOf(partition: number, refresh: boolean): Promise<EpochRecord | undefined> {
    const cached = this.leaders.get(partition);
    if (!refresh && cached !== undefined && cached.record !== undefined && Date.now() - cached.readMs < LEADER_CACHE_MS) return cached.record;
    const api = this.requireMetadata();
    const v = await api.get(epochKey(partition), { consistency: "stale" });
    const record = v?.value as EpochRecord | undefined;
    this.leaders.set(partition, { record, readMs: Date.now() });
    return record;
  }

  private async readTable(): Promise<PartitionTable> {
    const v = await this.requireMetadata().get("partition_table", { consistency: "stale" });
    if (v === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster has no partition table yet");
    return v.value as PartitionTable;
  }

  private requireMetadata(): MetadataApi {
    const api = this.deps.metadata();
    if (api === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "this node does not know the metadata cluster yet");
    return api;
  }
}

/** Whether a failed call may be made again without risking a second application. */
function retryable(e: unknown, idempotent: boolean): boolean {
  if (isCairnError(e, "PARTITION_NOT_LEADER") || isCairnError(e, "PARTITION_UNAVAILABLE") || isCairnError(e, "CLUSTER_NOT_PROVISIONED")) return true;
  if (isCairnError(e, "NET_UNREACHABLE") && e.details.sent === false) return true;
  if (isCairnError(e, "NET_OVERLOADED")) return true;
  // Metadata unavailable while finding the leader: nothing was sent.
  if (isCairnError(e) && e.code.startsWith("CAIRN-METADATA-")) return true;
  // The write may have applied: only a request with an idempotency key can be sent again safely.
  return idempotent && (isCairnError(e, "PARTITION_WRITE_INDETERMINATE") || isCairnError(e, "NET_UNREACHABLE") || isCairnError(e, "NET_DEADLINE_EXCEEDED"));
}
