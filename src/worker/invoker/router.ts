// The ingress's way to durable invocations (InvocationClient): picks an invocation's id and partition
// (keyed targets live in their object's partition; an idempotency key or a workflow run derives the
// id from a seed, so a retry finds the same invocation), and sends the request to that partition's
// leader through the StateRouter, waiting in bounded steps for results.
// Invariants: every request is safe to send again: an invocation's id is chosen once per request
// (derived from the idempotency key or workflow key, else random) and a partition admits an id once;
// attach and output change nothing.
import { CairnError } from "../../observability/errors.ts";
import { partitionKeyOf, xxh64 } from "../key-hash.ts";
import type { StateRouter } from "../router.ts";
import { INVOCATION_RPCS, type AttachRpcAnswer } from "../rpc.ts";
import { derivedInvocationId, formatInvocationId, parseAwakeableId, parseInvocationId, partitionKeyOfInvocation, randomInvocationId } from "./ids.ts";
import type { AttachTarget, InvocationClient, InvocationResult, InvokeAnswer, InvokeRequest, OutputAnswer, SchemaSource } from "./model.ts";

import { idempotentSeed, workflowSeed } from "./seeds.ts";

export interface InvocationRouterDeps {
  readonly state: StateRouter;
  readonly schema: SchemaSource;
}

export class InvocationRouter implements InvocationClient {
  constructor(private readonly deps: InvocationRouterDeps) {}

  async invoke(req: InvokeRequest, deadlineMs: number): Promise<InvokeAnswer> {
    const { service, handler, key } = req.target;
    const registry = await this.deps.schema.get();
    const s = registry.services.find((x) => x.name === service);
    const isWorkflowRun = s?.ty === "workflow" && key !== null && (s.handlers.find((h) => h.name === handler)?.ty ?? "workflow") === "workflow";
    let id: Uint8Array;
    if (isWorkflowRun) id = derivedInvocationId(partitionKeyOf(service, key), workflowSeed(service, key));
    else if (req.idempotencyKey !== null) {
      const seed = idempotentSeed(service, key, handler, req.idempotencyKey);
      id = derivedInvocationId(key !== null ? partitionKeyOf(service, key) : xxh64(seed), seed);
    } else id = randomInvocationId(key !== null ? partitionKeyOf(service, key) : xxh64(crypto.getRandomValues(new Uint8Array(8))));
    const invocationId = formatInvocationId(id);
    const partition = await this.deps.state.partitionOfKey(partitionKeyOfInvocation(id));
    // The id is fixed before the first try, and a partition admits an id once (a second invoke of
    // it attaches to the first): sending it again after a lost answer cannot start a second one.
    const idempotent = true;
    const answer = await this.deps.state.onLeader(
      partition,
      deadlineMs,
      idempotent,
      INVOCATION_RPCS.invoke,
      (budgetMs) => ({
        partition,
        invocationId,
        service,
        handler,
        key,
        input: req.input,
        headers: req.headers.map(([k, v]) => [k, v] as [string, string]),
        idempotencyKey: req.idempotencyKey,
        mode: req.mode,
        delayMs: req.delayMs,
        timeoutMs: Math.max(1, budgetMs),
      }),
      (worker, r) => this.local(worker).invoke(r),
    );
    if (answer.status === "completed") return { ...answer, result: fromRpcResult(answer.result) };
    return answer;
  }

  async attach(target: AttachTarget, deadlineMs: number): Promise<OutputAnswer> {
    return this.attachOrOutput(target, deadlineMs, true);
  }

  async output(target: AttachTarget, deadlineMs: number): Promise<OutputAnswer> {
    return this.attachOrOutput(target, deadlineMs, false);
  }

  async resolveAwakeable(awakeableId: string, result: InvocationResult, deadlineMs: number): Promise<void> {
    const a = parseAwakeableId(awakeableId);
    if (a === undefined) throw new CairnError("INVOKE_BAD_AWAKEABLE_ID", `${JSON.stringify(awakeableId)} is not an awakeable id (sign_1…)`, {});
    const partition = await this.deps.state.partitionOfKey(partitionKeyOfInvocation(a.invocationId));
    const invocationId = formatInvocationId(a.invocationId);
    const rpcResult = result.kind === "value" ? { value: result.value } : { failure: { code: result.code, message: result.message, metadata: result.metadata.map((m) => ({ ...m })) } };
    await this.deps.state.onLeader(
      partition,
      deadlineMs,
      false,
      INVOCATION_RPCS.signal,
      (budgetMs) => ({ partition, invocationId, signal: { index: a.signalIndex }, result: rpcResult, timeoutMs: Math.max(1, budgetMs) }),
      (worker, r) => this.local(worker).signal(r),
    );
  }

  /** The invocation id an attach target names (undefined: a malformed id). */
  async idOf(target: AttachTarget): Promise<Uint8Array | undefined> {
    switch (target.kind) {
      case "id":
        return parseInvocationId(target.invocationId);
      case "workflow":
        return derivedInvocationId(partitionKeyOf(target.service, target.key), workflowSeed(target.service, target.key));
      case "idempotent": {
        const seed = idempotentSeed(target.service, target.key, target.handler, target.idempotencyKey);
        return derivedInvocationId(target.key !== null ? partitionKeyOf(target.service, target.key) : xxh64(seed), seed);
      }
    }
  }

  private async attachOrOutput(target: AttachTarget, deadlineMs: number, wait: boolean): Promise<OutputAnswer> {
    const id = await this.idOf(target);
    if (id === undefined) return { status: "not-found" };
    const invocationId = formatInvocationId(id);
    const partition = await this.deps.state.partitionOfKey(partitionKeyOfInvocation(id));
    const answer: AttachRpcAnswer = await this.deps.state.onLeader(
      partition,
      deadlineMs,
      true,
      INVOCATION_RPCS.attach,
      (budgetMs) => ({ partition, invocationId, wait, timeoutMs: Math.max(1, budgetMs) }),
      (worker, r) => this.local(worker).attach(r),
    );
    if (answer.status === "completed") return { ...answer, result: fromRpcResult(answer.result) };
    return answer;
  }

  private local(worker: import("../role.ts").WorkerRole) {
    const s = worker.invocations;
    if (s === undefined) throw new CairnError("PARTITION_NOT_LEADER", "this node's worker runs no invocations");
    return s;
  }
}

function fromRpcResult(r: { value: Uint8Array } | { failure: { code: number; message: string; metadata: Array<{ key: string; value: string }> } }): InvocationResult {
  return "value" in r ? { kind: "value", value: r.value } : { kind: "failure", code: r.failure.code, message: r.failure.message, metadata: r.failure.metadata };
}
