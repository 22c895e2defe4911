// What operators do to durable invocations through the admin API: list them cluster-wide (every worker
// answers for the partitions it leads; merged, one row per id, newest first), describe one and act on
// one (cancel, kill, resume, purge) on its partition's leader. Read-only except for `control`, which
// sends one record through the partition log; a silent worker leaves the list partial, never stalls it.
import type { NodeId } from "../../ids/index.ts";
import type { MetadataApi } from "../../metadata/api.ts";
import type { FabricClient } from "../../net/index.ts";
import { CairnError } from "../../observability/errors.ts";
import {
  epochKey,
  INVOCATION_RPCS,
  parseInvocationId,
  partitionKeyOfInvocation,
  type EpochRecord,
  type InvocationStatus,
  type InvocationSummary,
  type ListInvocationsAnswer,
  type PartitionTable,
  type StateRouter,
  type WorkerRole,
} from "../../worker/index.ts";

export type InvocationAction = "cancel" | "kill" | "resume" | "purge";

export interface InvocationListFilter {
  readonly service: string | null;
  readonly status: InvocationStatus | null;
  readonly limit: number;
}

export interface InvocationList {
  readonly invocations: InvocationSummary[];
  /** Invocations by status, summed over the workers that answered (all services). */
  readonly counts: Record<string, number>;
  /** Workers that did not answer in time: their partitions' invocations are missing. */
  readonly unreachable: string[];
  /** Partitions no worker answered for as their leader (their invocations are missing). */
  readonly missingPartitions: number[];
}

export interface ControlOutcome {
  readonly id: string;
  readonly action: InvocationAction;
  /** The status before the action (as the leader described it). */
  readonly previousStatus: string;
  /** The status right after the action applied (`gone` once purged). */
  readonly status: string;
}

export interface InvocationOperationsDeps {
  readonly router: StateRouter;
  readonly metadata: () => MetadataApi | undefined;
  readonly fabricClient: FabricClient;
  /** Refresh the node directory, then every node with the worker role. */
  readonly workers: () => Promise<ReadonlyArray<{ readonly id: NodeId; readonly fabricAddress: string }>>;
  readonly self: () => NodeId | undefined;
  readonly localWorker: () => WorkerRole | undefined;
  /** How long a list may take, asking again while a partition has no leader (a slower worker is reported unreachable). */
  readonly listDeadlineMs: number;
  /** How long a describe or an action may take, finding the partition's leader included. */
  readonly requestDeadlineMs: number;
}

/** The metadata key of the partition table (written at provisioning). */
const PARTITION_TABLE_KEY = "partition_table";
/** Pause before asking the workers again while a partition has no leader answering. */
const LIST_RETRY_PAUSE_MS = 100;

/** Which states each action can change; anything else is refused with a conflict (nothing is sent). */
const ACTS_ON: Record<InvocationAction, (status: string) => boolean> = {
  cancel: (s) => s !== "completed",
  kill: (s) => s !== "completed",
  resume: (s) => s === "paused" || s === "backing-off",
  purge: (s) => s === "completed",
};

export class InvocationOperations {
  constructor(private readonly deps: InvocationOperationsDeps) {}

  /**
   * Asks every worker for the partitions it leads, again (briefly paused) while some partition had no
   * leader answering (a leadership moving), until the list budget runs out; then names what is missing.
   */
  async list(filter: InvocationListFilter): Promise<InvocationList> {
    const deadlineMs = Date.now() + this.deps.listDeadlineMs;
    const partitions = await this.partitionIds();
    for (;;) {
      const round = await this.listOnce(filter, deadlineMs);
      const missingPartitions = partitions.filter((p) => !round.covered.has(p));
      if (missingPartitions.length === 0 || Date.now() + LIST_RETRY_PAUSE_MS >= deadlineMs) {
        return { invocations: round.invocations, counts: round.counts, unreachable: round.unreachable, missingPartitions };
      }
      await Bun.sleep(LIST_RETRY_PAUSE_MS);
    }
  }

  private async listOnce(filter: InvocationListFilter, deadlineMs: number) {
    const request = { service: filter.service, status: filter.status, limit: filter.limit };
    const workers = await this.deps.workers();
    const answers = await Promise.all(
      workers.map(async (n): Promise<{ node: string; answer: ListInvocationsAnswer | undefined }> => {
        const local = n.id === this.deps.self() ? this.deps.localWorker()?.invocations : undefined;
        if (local !== undefined) return { node: n.id, answer: local.list(request) };
        const budgetMs = Math.max(1, deadlineMs - Date.now());
        const answer = await this.deps.fabricClient.call(n.fabricAddress, INVOCATION_RPCS.list, request, { deadlineMs: budgetMs }).catch(() => undefined);
        return { node: n.id, answer };
      }),
    );
    const answered = answers.flatMap((a) => (a.answer === undefined ? [] : [{ node: a.node, answer: a.answer }]));
    // Two nodes answering for one partition (a leadership moved while we asked): the epoch holder wins.
    const contested = contestedPartitions(answered);
    const leaders = new Map<number, string>();
    await Promise.all(
      [...contested].map(async (p) => {
        const epoch = (await this.deps.metadata()?.get(epochKey(p), { consistency: "stale" }).catch(() => undefined))?.value as EpochRecord | undefined;
        if (epoch !== undefined) leaders.set(p, epoch.node);
      }),
    );
    const merged = mergeInvocationLists(answered, filter.limit, leaders);
    const unreachable = answers.filter((a) => a.answer === undefined).map((a) => a.node);
    return { ...merged, unreachable };
  }

  private async partitionIds(): Promise<number[]> {
    const table = (await this.requireMetadata().get(PARTITION_TABLE_KEY, { consistency: "stale" }))?.value as PartitionTable | undefined;
    if (table === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "the cluster has no partition table yet");
    return table.partitions.map((p) => p.id);
  }

  private requireMetadata(): MetadataApi {
    const api = this.deps.metadata();
    if (api === undefined) throw new CairnError("CLUSTER_NOT_PROVISIONED", "this node does not know the metadata cluster yet");
    return api;
  }

  async describe(id: string): Promise<InvocationSummary> {
    const partition = await this.partitionOf(id);
    const answer = await this.deps.router.onLeader(
      partition,
      Date.now() + this.deps.requestDeadlineMs,
      true,
      INVOCATION_RPCS.describe,
      () => ({ partition, invocationId: id }),
      (worker, req) => requireService(worker).describe(req),
    );
    if (answer.invocation === null) throw notFound(id);
    return answer.invocation;
  }

  async control(id: string, action: InvocationAction): Promise<ControlOutcome> {
    const before = await this.describe(id);
    if (!ACTS_ON[action](before.status)) {
      throw new CairnError("INVOKE_ACTION_NOT_APPLICABLE", `cannot ${action} invocation ${id}: it is ${before.status}`, { invocationId: id, action, status: before.status });
    }
    const deadlineMs = Date.now() + this.deps.requestDeadlineMs;
    // Every action is idempotent on the leader (a second cancel signal after the first is ignored by
    // the SDK's cancellation; kill, resume and purge of an already changed invocation do nothing).
    const answer = await this.deps.router.onLeader(
      before.partition,
      deadlineMs,
      true,
      INVOCATION_RPCS.control,
      (budgetMs) => ({ partition: before.partition, invocationId: id, action, timeoutMs: Math.max(1, budgetMs) }),
      (worker, req) => requireService(worker).control(req),
    );
    return { id, action, previousStatus: before.status, status: answer.status };
  }

  private async partitionOf(id: string): Promise<number> {
    const bytes = parseInvocationId(id);
    if (bytes === undefined) throw new CairnError("INVOKE_BAD_INVOCATION_ID", `${JSON.stringify(id)} is not an invocation id (inv_1…)`, { invocationId: id });
    return this.deps.router.partitionOfKey(partitionKeyOfInvocation(bytes));
  }
}

export interface WorkerListAnswer {
  readonly node: string;
  readonly answer: ListInvocationsAnswer;
}

/** Partitions more than one worker answered for. */
export function contestedPartitions(answers: readonly WorkerListAnswer[]): Set<number> {
  const seen = new Set<number>();
  const twice = new Set<number>();
  for (const { answer } of answers) {
    for (const p of answer.partitions) (seen.has(p) ? twice : seen).add(p);
  }
  return twice;
}

/**
 * Merges the workers' lists (pure): one row per id, newest first (ties by id), at most `limit`.
 * Where several workers answered for a partition, a row comes from the node `leaders` names for it,
 * else from the worker whose copy was modified last. Counts are summed per worker (they are not split
 * by partition), so a contested partition's invocations may be counted twice for that moment.
 */
export function mergeInvocationLists(answers: readonly WorkerListAnswer[], limit: number, leaders: ReadonlyMap<number, string>): { invocations: InvocationSummary[]; counts: Record<string, number>; covered: Set<number> } {
  const byId = new Map<string, { node: string; row: InvocationSummary }>();
  const counts: Record<string, number> = {};
  const covered = new Set<number>();
  for (const { node, answer } of answers) {
    for (const p of answer.partitions) covered.add(p);
    for (const [status, n] of Object.entries(answer.counts)) counts[status] = (counts[status] ?? 0) + n;
    for (const row of answer.invocations) {
      const seen = byId.get(row.id);
      if (seen === undefined || preferred({ node, row }, seen, leaders.get(row.partition))) byId.set(row.id, { node, row });
    }
  }
  const invocations = [...byId.values()].map((x) => x.row).sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { invocations: invocations.slice(0, limit), counts, covered };
}

function preferred(candidate: { node: string; row: InvocationSummary }, current: { node: string; row: InvocationSummary }, leader: string | undefined): boolean {
  if (leader !== undefined && (candidate.node === leader) !== (current.node === leader)) return candidate.node === leader;
  return candidate.row.modifiedAtMs > current.row.modifiedAtMs;
}

function requireService(worker: WorkerRole) {
  const s = worker.invocations;
  if (s === undefined) throw new CairnError("PARTITION_NOT_LEADER", "this node's worker runs no invocations");
  return s;
}

function notFound(id: string): CairnError {
  return new CairnError("INVOKE_INVOCATION_NOT_FOUND", `no invocation ${id} (unknown, or its retention ran out)`, { invocationId: id });
}
