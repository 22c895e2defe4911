// The worker's invocation RPCs on a partition leader: start an invocation (and wait for its result,
// bounded), attach to one or read its output, signal one (awakeables, named signals), cancel/kill/
// resume/purge one, accept records another partition's outbox sends, and list invocations.
// Invariants: every change goes through the partition's log (a proposal the leader applies), so an
// answer never reports what a deposed leader decided alone; a waiting request is bounded by its
// timeout and the leader's `call-wait-ms`.
import { CairnError } from "../../observability/errors.ts";
import type { InvokerSettings as InvokerConfig } from "./model.ts";
import type { PartitionProcessor } from "../processor.ts";
import type {
  AttachRpcAnswer,
  AttachRpcRequest,
  ControlRpcAnswer,
  ControlRpcRequest,
  DeliverRpcRequest,
  InvocationSummary,
  InvokeRpcAnswer,
  InvokeRpcRequest,
  ListInvocationsAnswer,
  DescribeInvocationAnswer,
  DescribeInvocationRequest,
  ListInvocationsRequest,
  SignalRpcRequest,
} from "../rpc.ts";
import type { SchemaSource } from "./model.ts";
import type { ResultValue } from "./records.ts";
import { decodeDeliverable, resolveTarget, type PartitionInvoker } from "./invoker.ts";
import { MessageType } from "./protocol/index.ts";
import { inputFrame, notificationFrame, resultToProtocol } from "./state-machine.ts";
import type { InvocationRow, InvocationStatus } from "./tables.ts";
import { INVOCATION_STATUSES } from "./tables.ts";

export interface InvocationServiceDeps {
  /** The leading processor of a partition, ready to answer (gate passed), or a NOT_LEADER error. */
  readonly leader: (partition: number) => Promise<PartitionProcessor>;
  readonly invoker: (partition: number) => PartitionInvoker | undefined;
  /** Partitions this node leads now. */
  readonly leadingPartitions: () => PartitionProcessor[];
  readonly schema: SchemaSource;
  readonly config: InvokerConfig;
  readonly nowMs: () => number;
}

export class InvocationService {
  constructor(private readonly deps: InvocationServiceDeps) {}

  async invoke(req: InvokeRpcRequest): Promise<InvokeRpcAnswer> {
    const p = await this.deps.leader(req.partition);
    const resolved = resolveTarget(await this.deps.schema.get(), req.service, req.handler, req.key, req.idempotencyKey !== null, this.deps.config);
    const known = "unknown" in resolved ? resolveTarget(await this.deps.schema.get(true), req.service, req.handler, req.key, req.idempotencyKey !== null, this.deps.config) : resolved;
    if ("unknown" in known) throw new CairnError("INVOKE_SERVICE_NOT_FOUND", known.unknown, { service: req.service, handler: req.handler });
    const invoker = this.requireInvoker(req.partition);
    const waitMs = waitBudgetMs(req.timeoutMs, this.deps.config["call-wait-ms"]);
    const waiter = req.mode === "call" ? invoker.waitFor(req.invocationId, waitMs) : undefined;
    try {
      const executeAtMs = req.delayMs !== null && req.delayMs > 0 ? this.deps.nowMs() + req.delayMs : null;
      // A call without an idempotency key can run its first attempt before it is recorded: a client
      // that gets no answer (this node fails meanwhile) never had it accepted. For an object the
      // state machine keeps the outcome only if nothing ran on the object meanwhile.
      const speculate =
        this.deps.config["first-attempt-before-record"] &&
        req.mode === "call" &&
        req.idempotencyKey === null &&
        executeAtMs === null &&
        (known.target.serviceType === "service" || (known.target.serviceType === "virtual-object" && known.target.handlerType !== "workflow"));
      const firstAttempt = speculate
        ? await invoker.firstAttempt(
            {
              id: req.invocationId,
              status: "ready",
              target: known.target,
              idempotencyKey: null,
              createdMs: this.deps.nowMs(),
              modifiedMs: this.deps.nowMs(),
              executeAtMs: null,
              attempts: 0,
              retryCount: 0,
              lastEntryMs: this.deps.nowMs(),
              nextRetryMs: null,
              journalLength: 1,
              commandCount: 1,
              awaiting: null,
              sinks: [],
              lastError: null,
              completedMs: null,
              retentionMs: known.retentionMs,
              result: null,
            },
            inputFrame(req.input, req.headers).frame,
          )
        : undefined;
      const outcome = await p.propose(
        {
          ...(firstAttempt === undefined ? {} : { firstAttempt }),
          kind: "invoke",
          invocationId: req.invocationId,
          target: known.target,
          input: req.input,
          headers: req.headers,
          idempotencyKey: req.idempotencyKey,
          executeAtMs,
          caller: null,
          retentionMs: known.retentionMs,
          source: null,
        },
        AbortSignal.timeout(req.timeoutMs),
      );
      if (outcome.status !== "invocation") throw new CairnError("PARTITION_NOT_LEADER", `partition ${req.partition}: the invocation was not accepted (${outcome.status})`, { partition: req.partition });
      const row = p.store.invocations.get(req.invocationId);
      const expires = (r: InvocationRow | undefined) => (r !== undefined && r.idempotencyKey !== null && r.completedMs !== null ? r.completedMs + r.retentionMs : null);
      if (req.mode === "send") {
        return { status: outcome.previously ? "previously-accepted" : "accepted", invocationId: req.invocationId, executionTimeMs: executeAtMs };
      }
      if (outcome.previously && known.target.handlerType === "workflow") return { status: "workflow-already-invoked", invocationId: req.invocationId };
      if (row?.status === "completed" && row.result !== null) {
        return { status: "completed", invocationId: req.invocationId, result: toRpcResult(row.result), idempotencyExpiresAtMs: expires(row) };
      }
      const result = await waiter!.promise;
      if (result === undefined) return { status: "pending", invocationId: req.invocationId };
      return { status: "completed", invocationId: req.invocationId, result: toRpcResult(result), idempotencyExpiresAtMs: expires(p.store.invocations.get(req.invocationId)) };
    } finally {
      waiter?.cancel();
    }
  }

  async attach(req: AttachRpcRequest): Promise<AttachRpcAnswer> {
    const p = await this.deps.leader(req.partition);
    const invoker = this.requireInvoker(req.partition);
    const waiter = req.wait ? invoker.waitFor(req.invocationId, waitBudgetMs(req.timeoutMs, this.deps.config["call-wait-ms"])) : undefined;
    try {
      const row = p.store.invocations.get(req.invocationId);
      if (row === undefined) return { status: "not-found" };
      if (row.status === "completed" && row.result !== null) return { status: "completed", invocationId: row.id, result: toRpcResult(row.result) };
      if (waiter === undefined) return { status: "not-ready", invocationId: row.id };
      const result = await waiter.promise;
      return result === undefined ? { status: "not-ready", invocationId: row.id } : { status: "completed", invocationId: row.id, result: toRpcResult(result) };
    } finally {
      waiter?.cancel();
    }
  }

  async signal(req: SignalRpcRequest): Promise<Record<string, never>> {
    const p = await this.deps.leader(req.partition);
    const id = "index" in req.signal ? { signalId: req.signal.index } : { signalName: req.signal.name };
    const result = "value" in req.result ? { value: req.result.value } : { failure: req.result.failure };
    const frame = notificationFrame(MessageType.Signal, id, resultToProtocol(result)).frame;
    await p.propose({ kind: "invocation-notify", invocationId: req.invocationId, frame, source: null }, AbortSignal.timeout(req.timeoutMs));
    return {};
  }

  async control(req: ControlRpcRequest): Promise<ControlRpcAnswer> {
    const p = await this.deps.leader(req.partition);
    if (p.store.invocations.get(req.invocationId) === undefined) {
      throw new CairnError("INVOKE_INVOCATION_NOT_FOUND", `no invocation ${req.invocationId} (unknown, or its retention ran out)`, { invocationId: req.invocationId });
    }
    const outcome = await p.propose({ kind: "invocation-control", invocationId: req.invocationId, action: req.action, source: null }, AbortSignal.timeout(req.timeoutMs));
    return { invocationId: req.invocationId, status: outcome.status === "invocation" ? outcome.state : "unchanged" };
  }

  /** Records another partition's outbox sends, proposed here in order (each applies once, by source seq). */
  async deliver(req: DeliverRpcRequest): Promise<Record<string, never>> {
    const p = await this.deps.leader(req.partition);
    for (const bytes of req.records) {
      const record = decodeDeliverable(bytes);
      if (record === undefined) throw new CairnError("NET_BAD_REQUEST", "a delivered record is not an invocation record this build knows");
      await p.propose(record, AbortSignal.timeout(req.timeoutMs));
    }
    return {};
  }

  list(req: ListInvocationsRequest): ListInvocationsAnswer {
    const status = req.status !== null && INVOCATION_STATUSES.includes(req.status as InvocationStatus) ? (req.status as InvocationStatus) : null;
    const invocations: InvocationSummary[] = [];
    const counts: Record<string, number> = {};
    const partitions: number[] = [];
    for (const p of this.deps.leadingPartitions()) {
      partitions.push(p.partition);
      const tables = p.store.invocations;
      for (const [k, n] of Object.entries(tables.countByStatus())) counts[k] = (counts[k] ?? 0) + n;
      for (const row of tables.list(req.service, status, req.limit)) invocations.push(summary(p.partition, row));
    }
    invocations.sort((a, b) => b.createdAtMs - a.createdAtMs);
    return { invocations: invocations.slice(0, req.limit), counts, partitions };
  }

  /** The summary of one invocation of a partition this node leads (null when it has no row). */
  async describe(req: DescribeInvocationRequest): Promise<DescribeInvocationAnswer> {
    const p = await this.deps.leader(req.partition);
    const row = p.store.invocations.get(req.invocationId);
    return { invocation: row === undefined ? null : summary(p.partition, row) };
  }

  private requireInvoker(partition: number): PartitionInvoker {
    const i = this.deps.invoker(partition);
    if (i === undefined || i.stopped) throw new CairnError("PARTITION_NOT_LEADER", `this node does not lead partition ${partition}`, { partition });
    return i;
  }
}

/** Answer `pending` a little before the caller's deadline, so the answer reaches it in time. */
function waitBudgetMs(timeoutMs: number, maxMs: number): number {
  return Math.max(1, Math.min(maxMs, timeoutMs - Math.min(500, Math.floor(timeoutMs / 5))));
}

type RpcResult = { value: Uint8Array } | { failure: { code: number; message: string; metadata: Array<{ key: string; value: string }> } };

function toRpcResult(r: ResultValue): RpcResult {
  return "value" in r ? { value: r.value } : { failure: { code: r.failure.code, message: r.failure.message, metadata: r.failure.metadata.map((m) => ({ ...m })) } };
}

export function summary(partition: number, row: InvocationRow): InvocationSummary {
  const r = row.result;
  return {
    id: row.id,
    partition,
    service: row.target.service,
    handler: row.target.handler,
    key: row.target.key,
    status: row.status,
    idempotencyKey: row.idempotencyKey,
    createdAtMs: row.createdMs,
    modifiedAtMs: row.modifiedMs,
    attempts: row.attempts,
    retryCount: row.retryCount,
    journalLength: row.journalLength,
    lastError: row.lastError,
    nextRetryAtMs: row.nextRetryMs,
    completedAtMs: row.completedMs,
    result: r === null ? null : "value" in r ? { ok: true, valueBytes: r.value.length } : { ok: false, code: r.failure.code, message: r.failure.message },
  };
}
