// CAS registers on the metadata KV (Jepsen's register-mds): reads (linearizable), unconditional writes
// and compare-and-set via If-Match on a few independent keys at a time. Every written value is unique.
// A key is retired after `opsPerKey` operations and replaced by a fresh one, which keeps each part of
// the linearizability search small (the search is exponential in the concurrency of one key).
import { request, keyPath, type Outcome } from "../client.ts";
import type { CompleteEvent, Operation } from "../history.ts";
import { checkRegisters } from "../checker/register.ts";
import type { CheckBounds } from "../checker/linearizable.ts";
import { retrying, type CheckOutcome, type ClientState, type Endpoint, type Workload, type WorkloadContext } from "./types.ts";

export interface RegisterOptions {
  /** Keys in use at once. */
  readonly keys?: number;
  readonly opsPerKey?: number;
  readonly clients?: number;
  readonly bounds?: CheckBounds;
}

interface Slot {
  key: string;
  ops: number;
}

export class RegisterWorkload implements Workload {
  readonly name = "register";
  readonly defaultClients: number;
  private readonly slots: Slot[] = [];
  private readonly used: string[] = [];
  private readonly lastVersion = new Map<string, number>();
  private nextKey = 0;
  private nextValue = 0;

  constructor(private readonly options: RegisterOptions = {}) {
    this.defaultClients = options.clients ?? 4;
  }

  async setup(ctx: WorkloadContext): Promise<void> {
    for (let i = 0; i < (this.options.keys ?? 3); i++) this.slots.push(this.freshSlot(ctx));
  }

  private freshSlot(ctx: WorkloadContext): Slot {
    const key = `chaos/${ctx.runId}/reg/${this.nextKey++}`;
    this.used.push(key);
    return { key, ops: 0 };
  }

  async step(ctx: WorkloadContext, client: ClientState, node: Endpoint): Promise<CompleteEvent> {
    const i = client.rng.int(0, this.slots.length - 1);
    const slot = this.slots[i]!;
    if (++slot.ops >= (this.options.opsPerKey ?? 120)) this.slots[i] = this.freshSlot(ctx);
    const key = slot.key;
    const roll = client.rng.float();
    if (roll < 0.45) return this.read(ctx, client.process, key, node, "register");
    const value = this.nextValue++;
    if (roll < 0.65) {
      const op = ctx.history.invoke(client.process, this.name, "write", key, { value }, node.name);
      const r = await request(node.admin, "PUT", keyPath(key), { body: value, timeoutMs: ctx.requestTimeoutMs });
      if (r.kind === "ok") this.saw(key, (r.body as { version: number }).version);
      return complete(op, r, (b) => ({ version: (b as { version: number }).version }));
    }
    const known = this.lastVersion.get(key) ?? 0;
    const expectedVersion = client.rng.chance(0.75) ? Math.max(1, known) : Math.max(1, known - client.rng.int(1, 2));
    const op = ctx.history.invoke(client.process, this.name, "cas", key, { expectedVersion, value }, node.name);
    const r = await request(node.admin, "PUT", keyPath(key), {
      body: value,
      headers: { "if-match": String(expectedVersion) },
      timeoutMs: ctx.requestTimeoutMs,
    });
    if (r.kind === "ok") this.saw(key, (r.body as { version: number }).version);
    if (r.kind === "fail" && r.status === 412) {
      const currentVersion = (r.body as { currentVersion?: number }).currentVersion;
      if (typeof currentVersion === "number") this.saw(key, currentVersion);
      return op.fail(r.code, typeof currentVersion === "number" ? { currentVersion } : null);
    }
    return complete(op, r, (b) => ({ version: (b as { version: number }).version }));
  }

  private async read(ctx: WorkloadContext, process: number, key: string, node: Endpoint, workload: string): Promise<CompleteEvent> {
    const op = ctx.history.invoke(process, workload, "read", key, null, node.name);
    const r = await request(node.admin, "GET", `${keyPath(key)}?consistency=linearizable`, { timeoutMs: ctx.requestTimeoutMs });
    if (r.kind === "ok") {
      const b = r.body as { value: unknown; version: number };
      this.saw(key, b.version);
      return op.ok({ found: true, value: b.value, version: b.version });
    }
    if (r.kind === "fail" && r.status === 404 && r.code === "CAIRN-METADATA-0001") return op.ok({ found: false });
    return complete(op, r, () => null);
  }

  private saw(key: string, version: number): void {
    if (version > (this.lastVersion.get(key) ?? 0)) this.lastVersion.set(key, version);
  }

  async finalReads(ctx: WorkloadContext): Promise<void> {
    const process = ctx.history.newProcess();
    for (const key of this.used) {
      for (const node of ctx.endpoints()) {
        await retrying(5, async () => (await this.read(ctx, process, key, node, this.name)).type === "ok");
      }
    }
  }

  check(ops: readonly Operation[]): CheckOutcome {
    const mine = ops.filter((o) => o.workload === this.name);
    const r = checkRegisters(mine, this.options.bounds);
    const bad = r.parts.filter((p) => p.verdict !== "ok");
    const counts = countStatuses(mine);
    return {
      workload: this.name,
      verdict: r.verdict,
      summary:
        `${r.parts.length} keys, ${mine.length} ops (${counts}); ${r.verdict}` +
        (bad.length > 0 ? `: ${bad.map((p) => `${p.part} ${p.verdict}${p.reason ? ` (${p.reason})` : ""}`).join(", ")}` : "") +
        ` in ${Math.round(r.elapsedMs)} ms`,
      details: { parts: r.parts.map((p) => (p.verdict === "ok" ? { part: p.part, verdict: p.verdict, ops: p.ops, steps: p.steps } : p)) },
    };
  }
}

/** Records an outcome as the operation's completion, with `okValue` extracting the result. */
export function complete(op: { ok(v?: unknown): CompleteEvent; fail(e: string, v?: unknown): CompleteEvent; info(e: string): CompleteEvent }, r: Outcome, okValue: (body: unknown) => unknown): CompleteEvent {
  if (r.kind === "ok") return op.ok(okValue(r.body));
  if (r.kind === "fail") return op.fail(r.code);
  return op.info(r.code);
}

export function countStatuses(ops: readonly Operation[]): string {
  const c = { ok: 0, fail: 0, info: 0 };
  for (const o of ops) c[o.status]++;
  return `${c.ok} ok, ${c.fail} fail, ${c.info} info`;
}
