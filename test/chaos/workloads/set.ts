// A grow-only set kept in one metadata key (Jepsen's set-mds): `add` is read-modify-write with
// If-Match (retried on conflict within one operation), `read` is a linearizable read. Elements are
// unique integers. An add whose write was indeterminate re-reads before retrying: if the element is
// there, the add happened; if not, the retry's If-Match makes a late landing of the first attempt
// impossible to combine with it, so an element is never added twice by a correct server.
import { request, keyPath } from "../client.ts";
import type { CompleteEvent, Operation } from "../history.ts";
import { checkSet } from "../checker/set.ts";
import { retrying, type CheckOutcome, type ClientState, type Endpoint, type Workload, type WorkloadContext } from "./types.ts";
import { countStatuses } from "./register.ts";

export interface SetOptions {
  readonly clients?: number;
  /** Share of operations that are reads. */
  readonly readShare?: number;
  /** Read-modify-write attempts per add. */
  readonly attempts?: number;
}

export class SetWorkload implements Workload {
  readonly name = "set";
  readonly defaultClients: number;
  private key = "";
  private next = 0;
  /** Adds whose element showed up although every attempt was reported as certainly not applied. */
  private readonly lyingFailures: Array<{ element: number; opId: number; codes: string[] }> = [];

  constructor(private readonly options: SetOptions = {}) {
    this.defaultClients = options.clients ?? 3;
  }

  async setup(ctx: WorkloadContext): Promise<void> {
    this.key = `chaos/${ctx.runId}/set`;
    const created = await retrying(50, async () => {
      for (const node of ctx.endpoints()) {
        const r = await request(node.admin, "PUT", keyPath(this.key), {
          body: [],
          headers: { "if-none-match": "*" },
          timeoutMs: ctx.requestTimeoutMs,
        });
        if (r.kind === "ok" || (r.kind === "fail" && r.status === 412)) return true;
      }
      return false;
    });
    if (!created) throw new Error(`set workload: could not create ${this.key}`);
  }

  async step(ctx: WorkloadContext, client: ClientState, node: Endpoint): Promise<CompleteEvent> {
    if (client.rng.chance(this.options.readShare ?? 0.3)) return this.read(ctx, client.process, node);
    const element = this.next++;
    const op = ctx.history.invoke(client.process, this.name, "add", this.key, element, node.name);
    let uncertain = false;
    const codes: string[] = [];
    for (let attempt = 0; attempt < (this.options.attempts ?? 4); attempt++) {
      const r = await request(node.admin, "GET", `${keyPath(this.key)}?consistency=linearizable`, { timeoutMs: ctx.requestTimeoutMs });
      if (r.kind !== "ok") {
        codes.push(`read:${r.code}`);
        await Bun.sleep(client.rng.int(20, 100));
        continue;
      }
      const body = r.body as { value: number[]; version: number };
      if (body.value.includes(element)) {
        if (!uncertain) this.lyingFailures.push({ element, opId: op.id, codes });
        return op.ok();
      }
      const w = await request(node.admin, "PUT", keyPath(this.key), {
        body: [...body.value, element],
        headers: { "if-match": String(body.version) },
        timeoutMs: ctx.requestTimeoutMs,
      });
      if (w.kind === "ok") return op.ok();
      codes.push(w.code);
      if (w.kind === "info") uncertain = true;
      else if (w.status !== 412) await Bun.sleep(client.rng.int(20, 100));
    }
    return uncertain ? op.info(codes.join(",")) : op.fail(codes.join(","));
  }

  private async read(ctx: WorkloadContext, process: number, node: Endpoint): Promise<CompleteEvent> {
    const op = ctx.history.invoke(process, this.name, "read", this.key, null, node.name);
    const r = await request(node.admin, "GET", `${keyPath(this.key)}?consistency=linearizable`, { timeoutMs: ctx.requestTimeoutMs });
    if (r.kind === "ok") return op.ok((r.body as { value: number[] }).value);
    return r.kind === "fail" ? op.fail(r.code) : op.info(r.code);
  }

  async finalReads(ctx: WorkloadContext): Promise<void> {
    const process = ctx.history.newProcess();
    for (const node of ctx.endpoints()) {
      await retrying(10, async () => (await this.read(ctx, process, node)).type === "ok");
    }
  }

  check(ops: readonly Operation[]): CheckOutcome {
    const mine = ops.filter((o) => o.workload === this.name);
    const r = checkSet(mine);
    const lying = this.lyingFailures.length;
    const valid = r.valid && lying === 0;
    return {
      workload: this.name,
      verdict: valid ? "ok" : "illegal",
      summary:
        `${r.attempted} adds (${r.acknowledged} acknowledged), ${r.reads} reads, ${mine.length} ops (${countStatuses(mine)}); ` +
        `${r.presentAtEnd} acknowledged in the last read; ${r.anomalies.length} anomalies` +
        (lying > 0 ? `; ${lying} adds applied although reported as certainly failed` : ""),
      details: { ...r, lyingFailures: this.lyingFailures },
    };
  }
}
