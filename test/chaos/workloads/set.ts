// A grow-only set kept in one metadata key (Jepsen's set-mds): `add` is read-modify-write with
// If-Match (retried on conflict within one operation), `read` is a linearizable read. Elements are
// unique integers. An add whose write was indeterminate re-reads before retrying: if the element is
// there, the add happened; if not, the retry's If-Match makes a late landing of the first attempt
// impossible to combine with it, so an element is never added twice by a correct server.
// With `addsPerKey`, element e goes to set key number floor(e / addsPerKey): long runs keep each set
// (one metadata value, rewritten whole by every add) and each check small; each key is checked alone.
import { request, keyPath } from "../client.ts";
import type { CompleteEvent, Operation } from "../history.ts";
import { checkSet, type SetResult } from "../checker/set.ts";
import { retrying, type CheckOutcome, type ClientState, type Endpoint, type Workload, type WorkloadContext } from "./types.ts";
import { countStatuses } from "./register.ts";

export interface SetOptions {
  readonly clients?: number;
  /** Share of operations that are reads. */
  readonly readShare?: number;
  /** Read-modify-write attempts per add. */
  readonly attempts?: number;
  /** Elements per set key (default: one key for the whole run). */
  readonly addsPerKey?: number;
}

export class SetWorkload implements Workload {
  readonly name = "set";
  readonly defaultClients: number;
  private prefix = "";
  private next = 0;
  /** Set key number → its creation (a key is created before any add goes to it). */
  private readonly created = new Map<number, Promise<void>>();
  /** Adds whose element showed up although every attempt was reported as certainly not applied. */
  private readonly lyingFailures: Array<{ element: number; opId: number; codes: string[] }> = [];

  constructor(private readonly options: SetOptions = {}) {
    this.defaultClients = options.clients ?? 3;
  }

  async setup(ctx: WorkloadContext): Promise<void> {
    this.prefix = `chaos/${ctx.runId}/set`;
    await this.ensureKey(ctx, 0, 50);
  }

  /** Key number `k`'s name (the first is the one-key workload's name, so short runs are unchanged). */
  private keyName(k: number): string {
    return k === 0 ? this.prefix : `${this.prefix}/${k}`;
  }

  private keyOf(element: number): number {
    return this.options.addsPerKey === undefined ? 0 : Math.floor(element / this.options.addsPerKey);
  }

  /**
   * Creates key `k` (an empty set) once, with If-None-Match, so a late copy of the creation wipes
   * nothing. Later keys are tried for as long as a fault may last: the adds to them wait for it.
   */
  private ensureKey(ctx: WorkloadContext, k: number, tries = 100): Promise<void> {
    let p = this.created.get(k);
    if (p === undefined) {
      const key = this.keyName(k);
      p = (async () => {
        const created = await retrying(tries, async () => {
          for (const node of ctx.endpoints()) {
            const r = await request(node.admin, "PUT", keyPath(key), { body: [], headers: { "if-none-match": "*" }, timeoutMs: ctx.requestTimeoutMs });
            if (r.kind === "ok" || (r.kind === "fail" && r.status === 412)) return true;
          }
          return false;
        });
        if (!created) throw new Error(`set workload: could not create ${key}`);
      })();
      this.created.set(k, p);
    }
    return p;
  }

  async step(ctx: WorkloadContext, client: ClientState, node: Endpoint): Promise<CompleteEvent> {
    if (client.rng.chance(this.options.readShare ?? 0.3)) {
      // The newest key (adds to it may still be under way).
      const k = this.keyOf(Math.max(0, this.next - 1));
      await this.ensureKey(ctx, k);
      return this.read(ctx, client.process, node, this.keyName(k));
    }
    const element = this.next++;
    await this.ensureKey(ctx, this.keyOf(element));
    const key = this.keyName(this.keyOf(element));
    const op = ctx.history.invoke(client.process, this.name, "add", key, element, node.name);
    let uncertain = false;
    const codes: string[] = [];
    for (let attempt = 0; attempt < (this.options.attempts ?? 4); attempt++) {
      const r = await request(node.admin, "GET", `${keyPath(key)}?consistency=linearizable`, { timeoutMs: ctx.requestTimeoutMs });
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
      const w = await request(node.admin, "PUT", keyPath(key), {
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

  private async read(ctx: WorkloadContext, process: number, node: Endpoint, key: string): Promise<CompleteEvent> {
    const op = ctx.history.invoke(process, this.name, "read", key, null, node.name);
    const r = await request(node.admin, "GET", `${keyPath(key)}?consistency=linearizable`, { timeoutMs: ctx.requestTimeoutMs });
    if (r.kind === "ok") return op.ok((r.body as { value: number[] }).value);
    return r.kind === "fail" ? op.fail(r.code) : op.info(r.code);
  }

  async finalReads(ctx: WorkloadContext): Promise<void> {
    const process = ctx.history.newProcess();
    for (const k of [...this.created.keys()].sort((a, b) => a - b)) {
      for (const node of ctx.endpoints()) {
        await retrying(10, async () => (await this.read(ctx, process, node, this.keyName(k))).type === "ok");
      }
    }
  }

  check(ops: readonly Operation[]): CheckOutcome {
    const mine = ops.filter((o) => o.workload === this.name);
    const r = checkSetsPerKey(mine);
    const lying = this.lyingFailures.length;
    const valid = r.valid && lying === 0;
    return {
      workload: this.name,
      verdict: valid ? "ok" : "illegal",
      summary:
        `${r.attempted} adds (${r.acknowledged} acknowledged)${r.keys > 1 ? ` in ${r.keys} sets` : ""}, ${r.reads} reads, ${mine.length} ops (${countStatuses(mine)}); ` +
        `${r.presentAtEnd} acknowledged in the last read; ${r.anomalies.length} anomalies` +
        (lying > 0 ? `; ${lying} adds applied although reported as certainly failed` : ""),
      details: { ...r, lyingFailures: this.lyingFailures },
    };
  }
}

/** Each key is its own set: checked alone, the results added up (presentAtEnd: each key's last read). */
export function checkSetsPerKey(ops: readonly Operation[]): SetResult & { keys: number } {
  const byKey = new Map<string, Operation[]>();
  for (const o of ops) {
    let list = byKey.get(o.key);
    if (list === undefined) byKey.set(o.key, (list = []));
    list.push(o);
  }
  const results = [...byKey.values()].map((k) => checkSet(k));
  return {
    keys: byKey.size,
    valid: results.every((r) => r.valid),
    anomalies: results.flatMap((r) => r.anomalies),
    attempted: sum(results.map((r) => r.attempted)),
    acknowledged: sum(results.map((r) => r.acknowledged)),
    reads: sum(results.map((r) => r.reads)),
    presentAtEnd: sum(results.map((r) => r.presentAtEnd)),
    neverRead: sum(results.map((r) => r.neverRead)),
  };
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
