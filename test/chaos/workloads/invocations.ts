// Durable invocations under faults: the real Restate SDK fixture (test/fixtures/sdk-services.ts) runs as
// its own process, registered with the cluster; clients call `Counter/{key}/add` with 1 on a handful of
// keys, each increment with its own Idempotency-Key, retried with that key through any node until it is
// answered. Checked: per key, every answer is unique (each increment counted exactly once and answered
// with its own count), the final `Counter/{key}/get` from every node equals the acknowledged increments,
// and no increment is left unanswered after the quiet period.
import { request, type Outcome } from "../client.ts";
import type { CompleteEvent, Operation } from "../history.ts";
import { startSdkProcess, type SdkProcess } from "../sdk-process.ts";
import { countStatuses } from "./register.ts";
import { checkCounters, type CounterIncrement } from "../checker/counters.ts";
import type { CheckOutcome, ClientState, Endpoint, Workload, WorkloadContext } from "./types.ts";

export interface InvocationsOptions {
  readonly keys?: number;
  readonly clients?: number;
  /** How long a client keeps retrying one increment before leaving it to the final reads. */
  readonly answerWithinMs?: number;
  /** How long the final reads keep retrying increments still unanswered (the cluster is healed by then). */
  readonly finalAnswerWithinMs?: number;
}

/** Pause between two attempts of one increment (another node each time). */
const RETRY_PAUSE_MS = 200;
const REGISTER_TIMEOUT_MS = 60_000;

/** A CounterIncrement as the workload fills it in. */
interface Increment extends CounterIncrement {
  attempts: number;
  answer: number | null;
}

export class InvocationsWorkload implements Workload {
  readonly name = "invocations";
  readonly defaultClients: number;
  private keys: string[] = [];
  private next = 0;
  private sdk: SdkProcess | undefined;
  private readonly increments: Increment[] = [];
  /** Final `get` per key per node (null: never answered). */
  private readonly finals = new Map<string, Map<string, number | null>>();
  /** Answers that were not a count (a bug to report, not to retry). */
  private readonly oddAnswers: string[] = [];

  constructor(private readonly options: InvocationsOptions = {}) {
    this.defaultClients = options.clients ?? 4;
  }

  async setup(ctx: WorkloadContext): Promise<void> {
    this.keys = Array.from({ length: this.options.keys ?? 4 }, (_, i) => `${ctx.runId}-c${i}`);
    this.sdk = await startSdkProcess();
    ctx.log(`SDK services (pid ${this.sdk.pid}) at ${this.sdk.uri}`);
    const deadline = Date.now() + REGISTER_TIMEOUT_MS;
    let last = "";
    for (let i = 0; ; i++) {
      if (Date.now() > deadline) throw new Error(`the SDK deployment was not registered within ${REGISTER_TIMEOUT_MS} ms (${last})`);
      const node = ctx.endpoints()[i % ctx.endpoints().length]!;
      const r = await request(node.admin, "POST", "/deployments", { body: { uri: this.sdk.uri }, timeoutMs: ctx.requestTimeoutMs * 4 });
      if (r.kind === "ok") break;
      last = `${node.name}: ${r.code}`;
      await Bun.sleep(RETRY_PAUSE_MS);
    }
    // Every node's registry has the Counter before the clients start (a client does not wait).
    for (const node of ctx.endpoints()) {
      for (;;) {
        if (Date.now() > deadline) throw new Error(`${node.name} does not know the Counter service (${last})`);
        const r = await request(node.admin, "GET", "/services/Counter", { timeoutMs: ctx.requestTimeoutMs });
        if (r.kind === "ok") break;
        last = `${node.name} /services/Counter: ${r.code}`;
        await Bun.sleep(RETRY_PAUSE_MS);
      }
    }
    ctx.log(`SDK deployment registered; counters ${this.keys.join(", ")}`);
  }

  async step(ctx: WorkloadContext, client: ClientState, node: Endpoint): Promise<CompleteEvent> {
    const inc: Increment = { key: client.rng.pick(this.keys), idempotencyKey: `${ctx.runId}-inv-${this.next++}`, attempts: 0, answer: null };
    this.increments.push(inc);
    const op = ctx.history.invoke(client.process, this.name, "add", inc.key, { idempotencyKey: inc.idempotencyKey }, node.name);
    const last = await this.answer(ctx, inc, node, () => client.rng.pick(ctx.endpoints()), this.options.answerWithinMs ?? 60_000);
    if (inc.answer !== null) return op.ok({ count: inc.answer, attempts: inc.attempts });
    return op.info(last);
  }

  /** Calls the increment (same Idempotency-Key every time) until it is answered with a count or time is up. */
  private async answer(ctx: WorkloadContext, inc: Increment, first: Endpoint, another: () => Endpoint, withinMs: number): Promise<string> {
    const deadline = Date.now() + withinMs;
    let target = first;
    let last = "no attempt";
    while (inc.answer === null && Date.now() < deadline) {
      inc.attempts++;
      const r: Outcome = await request(target.ingress, "POST", `/Counter/${encodeURIComponent(inc.key)}/add`, {
        body: 1,
        headers: { "idempotency-key": inc.idempotencyKey },
        timeoutMs: ctx.requestTimeoutMs,
      });
      if (r.kind === "ok") {
        if (typeof r.body === "number" && Number.isSafeInteger(r.body)) inc.answer = r.body;
        else this.oddAnswers.push(`${inc.idempotencyKey}: ${JSON.stringify(r.body)}`);
        break;
      }
      last = `${target.name}: ${r.status ?? "-"} ${r.code}`;
      target = another();
      await Bun.sleep(RETRY_PAUSE_MS);
    }
    return last;
  }

  async finalReads(ctx: WorkloadContext): Promise<void> {
    const nodes = ctx.endpoints();
    let i = 0;
    // Increments a client gave up on: the same key again, now that the cluster is healed.
    const within = this.options.finalAnswerWithinMs ?? 60_000;
    const process = ctx.history.newProcess();
    for (const inc of this.increments.filter((x) => x.answer === null)) {
      const op = ctx.history.invoke(process, this.name, "add", inc.key, { idempotencyKey: inc.idempotencyKey, final: true }, nodes[0]!.name);
      const last = await this.answer(ctx, inc, nodes[0]!, () => nodes[i++ % nodes.length]!, within);
      if (inc.answer !== null) op.ok({ count: inc.answer, attempts: inc.attempts });
      else op.info(last);
    }
    for (const key of this.keys) {
      const perNode = new Map<string, number | null>();
      for (const node of nodes) {
        perNode.set(node.name, null);
        const op = ctx.history.invoke(process, this.name, "get", key, null, node.name);
        const deadline = Date.now() + 30_000;
        let r: Outcome | undefined;
        while (Date.now() < deadline) {
          r = await request(node.ingress, "POST", `/Counter/${encodeURIComponent(key)}/get`, { headers: { "content-type": "application/json" }, timeoutMs: ctx.requestTimeoutMs });
          if (r.kind === "ok") break;
          await Bun.sleep(RETRY_PAUSE_MS);
        }
        if (r?.kind === "ok" && typeof r.body === "number") {
          perNode.set(node.name, r.body);
          op.ok({ count: r.body });
        } else op.info(r === undefined ? "no attempt" : r.kind === "ok" ? `not a count: ${JSON.stringify(r.body)}` : `${r.status ?? "-"} ${r.code}`);
      }
      this.finals.set(key, perNode);
    }
  }

  async stop(): Promise<void> {
    await this.sdk?.stop();
  }

  check(ops: readonly Operation[]): CheckOutcome {
    const mine = ops.filter((o) => o.workload === this.name);
    const r = checkCounters({ keys: this.keys, increments: this.increments, finals: this.finals });
    const anomalies = [...this.oddAnswers.map((a) => `an answer that is not a count: ${a}`), ...r.anomalies];
    return {
      workload: this.name,
      verdict: anomalies.length === 0 ? "ok" : "illegal",
      summary:
        `${this.increments.length} increments on ${this.keys.length} counters (${r.acknowledged} acknowledged, ${r.retried} after a retry, ${r.unanswered} unanswered), ` +
        `${mine.length} ops (${countStatuses(mine)}); final counts ${this.keys.map((k) => r.perKey[k]?.acknowledged ?? 0).join("/")}; ${anomalies.length} anomalies`,
      details: { ...r, anomalies },
    };
  }
}
