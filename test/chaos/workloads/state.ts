// Object state through the data plane (ingress on every node, forwarded to partition leaders):
// registers, one entry per object, read / written / compare-and-set via If-Match on the object
// version, checked for linearizability by the register checker (the data plane's versions follow
// the metadata KV's rules: first write is version 1, +1 per write, 412 with the current version);
// and a counter incremented by compare-and-set from every client, each increment carrying an
// Idempotency-Key and retried with it while its outcome is unknown. The counter must end exactly at
// the increments acknowledged, plus at most those whose outcome stayed unknown: an increment that
// applied but was answered 412 on its retry (idempotency broken) or applied twice shows as too high.
import { request, type Outcome } from "../client.ts";
import type { CompleteEvent, Operation } from "../history.ts";
import type { CheckBounds } from "../checker/linearizable.ts";
import { casCompletion, checkRegisterOps, complete, RegisterKeys } from "./register.ts";
import { retrying, type CheckOutcome, type ClientState, type Endpoint, type Workload, type WorkloadContext } from "./types.ts";

export interface StateOptions {
  readonly keys?: number;
  readonly opsPerKey?: number;
  readonly clients?: number;
  readonly bounds?: CheckBounds;
  /** Share of operations that increment the counter. */
  readonly counterShare?: number;
}

export const SERVICE = "chaos";
const ENTRY = "v";
/** Retries of an increment whose outcome is unknown, with the same Idempotency-Key. */
const INCREMENT_RETRIES = 8;

export class StateWorkload implements Workload {
  readonly name = "state";
  readonly defaultClients: number;
  private keys!: RegisterKeys;
  private nextIncrement = 0;
  private counterKey = "";
  private readonly tally = { acked: 0, ackedOnRetry: 0, refused: 0, unknown: 0 };
  private finalCounter: number | undefined;

  constructor(private readonly options: StateOptions = {}) {
    this.defaultClients = options.clients ?? 6;
  }

  async setup(ctx: WorkloadContext): Promise<void> {
    this.keys = new RegisterKeys((n) => `${ctx.runId}-reg-${n}`, this.options.keys ?? 4, this.options.opsPerKey ?? 100);
    this.counterKey = `${ctx.runId}-counter`;
  }

  async step(ctx: WorkloadContext, client: ClientState, node: Endpoint): Promise<CompleteEvent> {
    if (client.rng.float() < (this.options.counterShare ?? 0.2)) await this.increment(ctx, client, node);
    const key = this.keys.pick(client);
    const roll = client.rng.float();
    if (roll < 0.45) return this.read(ctx, client.process, key, node);
    const value = this.keys.nextValue();
    if (roll < 0.65) {
      const op = ctx.history.invoke(client.process, this.name, "write", key, { value }, node.name);
      const r = await request(node.ingress, "PUT", entryPath(key), { body: value, timeoutMs: ctx.requestTimeoutMs });
      if (r.kind === "ok") this.keys.saw(key, (r.body as { version: number }).version);
      return complete(op, r, (b) => ({ version: (b as { version: number }).version }));
    }
    const expectedVersion = this.keys.expectedVersion(client, key);
    const op = ctx.history.invoke(client.process, this.name, "cas", key, { expectedVersion, value }, node.name);
    const r = await request(node.ingress, "PUT", entryPath(key), { body: value, headers: { "if-match": String(expectedVersion) }, timeoutMs: ctx.requestTimeoutMs });
    return casCompletion(op, r, key, this.keys);
  }

  /** Read the counter, then write n + 1 if the object is still at that version (Idempotency-Key, retried while unknown). */
  private async increment(ctx: WorkloadContext, client: ClientState, node: Endpoint): Promise<void> {
    const read = await request(node.ingress, "GET", objectPath(this.counterKey), { timeoutMs: ctx.requestTimeoutMs });
    let version = 0;
    let n = 0;
    if (read.kind === "ok") {
      const b = read.body as { version: number; entries: Array<{ name: string; data: string }> };
      version = b.version;
      n = Number(b.entries.find((e) => e.name === ENTRY)?.data ?? "0");
    } else if (!(read.kind === "fail" && read.status === 404)) return;
    const id = `${ctx.runId}-incr-${this.nextIncrement++}`;
    let target = node;
    let earlierUnknown = false;
    for (let attempt = 0; attempt <= INCREMENT_RETRIES; attempt++) {
      const r: Outcome = await request(target.ingress, "PUT", entryPath(this.counterKey), {
        body: n + 1,
        headers: { "if-match": String(version), "idempotency-key": id },
        timeoutMs: ctx.requestTimeoutMs,
      });
      if (r.kind === "ok") {
        this.tally.acked++;
        if (attempt > 0) this.tally.ackedOnRetry++;
        return;
      }
      // 412 (another client won) and 422 come from the partition's core after it looked the key up, so
      // they speak for every attempt with this key. Any other refusal (503: no leader right now, the
      // retry fenced) speaks only for this attempt: after an earlier unknown outcome, that earlier one
      // may still have applied, so it stays unknown and is retried.
      if (r.kind === "fail" && (!earlierUnknown || r.status === 412 || r.status === 422)) {
        this.tally.refused++;
        return;
      }
      earlierUnknown = true;
      // Unknown outcome: the same request with the same key, maybe through another node.
      target = client.rng.pick(ctx.endpoints());
      await Bun.sleep(200);
    }
    this.tally.unknown++;
  }

  private async read(ctx: WorkloadContext, process: number, key: string, node: Endpoint): Promise<CompleteEvent> {
    const op = ctx.history.invoke(process, this.name, "read", key, null, node.name);
    const r = await request(node.ingress, "GET", objectPath(key), { timeoutMs: ctx.requestTimeoutMs });
    if (r.kind === "ok") {
      const b = r.body as { version: number; entries: Array<{ name: string; data: string }> };
      this.keys.saw(key, b.version);
      const entry = b.entries.find((e) => e.name === ENTRY);
      return op.ok({ found: true, value: entry === undefined ? null : JSON.parse(entry.data), version: b.version });
    }
    if (r.kind === "fail" && r.status === 404 && r.code === "CAIRN-STATE-0001") return op.ok({ found: false });
    return complete(op, r, () => null);
  }

  async finalReads(ctx: WorkloadContext): Promise<void> {
    const process = ctx.history.newProcess();
    for (const key of this.keys.used) {
      for (const node of ctx.endpoints()) {
        await retrying(5, async () => (await this.read(ctx, process, key, node)).type === "ok");
      }
    }
    for (const node of ctx.endpoints()) {
      await retrying(10, async () => {
        const r = await request(node.ingress, "GET", `${objectPath(this.counterKey)}`, { timeoutMs: ctx.requestTimeoutMs });
        if (r.kind === "fail" && r.status === 404) this.finalCounter = 0;
        if (r.kind !== "ok") return r.kind === "fail" && r.status === 404;
        const b = r.body as { entries: Array<{ name: string; data: string }> };
        const n = Number(b.entries.find((e) => e.name === ENTRY)?.data ?? "0");
        if (this.finalCounter !== undefined && this.finalCounter !== n) this.finalCounter = -1;
        else this.finalCounter = n;
        return true;
      });
    }
  }

  check(ops: readonly Operation[]): CheckOutcome {
    const c = checkRegisterOps(ops, this.name, "objects", this.options.bounds);
    const t = this.tally;
    const counter = this.finalCounter;
    const counterOk = counter !== undefined && counter >= t.acked && counter <= t.acked + t.unknown;
    return {
      workload: this.name,
      verdict: c.verdict !== "ok" ? c.verdict : counterOk ? "ok" : "illegal",
      summary:
        `${c.summary}; counter ${counter ?? "unread"} after ${t.acked} acknowledged increments (${t.ackedOnRetry} on an idempotent retry), ` +
        `${t.refused} refused, ${t.unknown} unknown: ${counterOk ? "ok" : counter === -1 ? "nodes disagree" : "WRONG"} in ${c.elapsedMs} ms`,
      details: { counter, tally: t, ...c.details },
    };
  }
}

function objectPath(key: string): string {
  return `/v1/objects/${SERVICE}/${encodeURIComponent(key)}/state`;
}

function entryPath(key: string): string {
  return `${objectPath(key)}/${ENTRY}`;
}
