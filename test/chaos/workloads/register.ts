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

/**
 * The keys of a register workload: a few in use at once, each retired after `opsPerKey` operations;
 * the highest version seen per key (for compare-and-set guesses) and every key ever used (final reads).
 */
export class RegisterKeys {
  private readonly slots: Slot[] = [];
  readonly used: string[] = [];
  private readonly lastVersion = new Map<string, number>();
  private nextKey = 0;
  private nextValueId = 0;

  constructor(
    private readonly name: (n: number) => string,
    count: number,
    private readonly opsPerKey: number,
  ) {
    for (let i = 0; i < count; i++) this.slots.push(this.fresh());
  }

  private fresh(): Slot {
    const key = this.name(this.nextKey++);
    this.used.push(key);
    return { key, ops: 0 };
  }

  /** A key for the next operation (retiring it when it has had its share). */
  pick(client: ClientState): string {
    const i = client.rng.int(0, this.slots.length - 1);
    const slot = this.slots[i]!;
    if (++slot.ops >= this.opsPerKey) this.slots[i] = this.fresh();
    return slot.key;
  }

  /** A unique value for a write. */
  nextValue(): number {
    return this.nextValueId++;
  }

  saw(key: string, version: number): void {
    if (version > (this.lastVersion.get(key) ?? 0)) this.lastVersion.set(key, version);
  }

  /** Mostly the latest version seen, sometimes an older one (a CAS that should fail). */
  expectedVersion(client: ClientState, key: string): number {
    const known = this.lastVersion.get(key) ?? 0;
    return client.rng.chance(0.75) ? Math.max(1, known) : Math.max(1, known - client.rng.int(1, 2));
  }
}

export class RegisterWorkload implements Workload {
  readonly name = "register";
  readonly defaultClients: number;
  private keys!: RegisterKeys;

  constructor(private readonly options: RegisterOptions = {}) {
    this.defaultClients = options.clients ?? 4;
  }

  async setup(ctx: WorkloadContext): Promise<void> {
    this.keys = new RegisterKeys((n) => `chaos/${ctx.runId}/reg/${n}`, this.options.keys ?? 3, this.options.opsPerKey ?? 120);
  }

  async step(ctx: WorkloadContext, client: ClientState, node: Endpoint): Promise<CompleteEvent> {
    const key = this.keys.pick(client);
    const roll = client.rng.float();
    if (roll < 0.45) return this.read(ctx, client.process, key, node, "register");
    const value = this.keys.nextValue();
    if (roll < 0.65) {
      const op = ctx.history.invoke(client.process, this.name, "write", key, { value }, node.name);
      const r = await request(node.admin, "PUT", keyPath(key), { body: value, timeoutMs: ctx.requestTimeoutMs });
      if (r.kind === "ok") this.keys.saw(key, (r.body as { version: number }).version);
      return complete(op, r, (b) => ({ version: (b as { version: number }).version }));
    }
    const expectedVersion = this.keys.expectedVersion(client, key);
    const op = ctx.history.invoke(client.process, this.name, "cas", key, { expectedVersion, value }, node.name);
    const r = await request(node.admin, "PUT", keyPath(key), {
      body: value,
      headers: { "if-match": String(expectedVersion) },
      timeoutMs: ctx.requestTimeoutMs,
    });
    return casCompletion(op, r, key, this.keys);
  }

  private async read(ctx: WorkloadContext, process: number, key: string, node: Endpoint, workload: string): Promise<CompleteEvent> {
    const op = ctx.history.invoke(process, workload, "read", key, null, node.name);
    const r = await request(node.admin, "GET", `${keyPath(key)}?consistency=linearizable`, { timeoutMs: ctx.requestTimeoutMs });
    if (r.kind === "ok") {
      const b = r.body as { value: unknown; version: number };
      this.keys.saw(key, b.version);
      return op.ok({ found: true, value: b.value, version: b.version });
    }
    if (r.kind === "fail" && r.status === 404 && r.code === "CAIRN-METADATA-0001") return op.ok({ found: false });
    return complete(op, r, () => null);
  }

  async finalReads(ctx: WorkloadContext): Promise<void> {
    const process = ctx.history.newProcess();
    for (const key of this.keys.used) {
      for (const node of ctx.endpoints()) {
        await retrying(5, async () => (await this.read(ctx, process, key, node, this.name)).type === "ok");
      }
    }
  }

  check(ops: readonly Operation[]): CheckOutcome {
    const c = checkRegisterOps(ops, this.name, "keys", this.options.bounds);
    return { workload: this.name, verdict: c.verdict, summary: `${c.summary} in ${c.elapsedMs} ms`, details: c.details };
  }
}

/** The register checker over one workload's operations: verdict, a one-line summary, per-key details. */
export function checkRegisterOps(ops: readonly Operation[], workload: string, noun: string, bounds: CheckBounds | undefined) {
  const mine = ops.filter((o) => o.workload === workload);
  const r = checkRegisters(mine, bounds);
  const bad = r.parts.filter((p) => p.verdict !== "ok");
  return {
    verdict: r.verdict,
    summary:
      `${r.parts.length} ${noun}, ${mine.length} ops (${countStatuses(mine)}); ${r.verdict}` +
      (bad.length > 0 ? `: ${bad.map((p) => `${p.part} ${p.verdict}${p.reason ? ` (${p.reason})` : ""}`).join(", ")}` : ""),
    elapsedMs: Math.round(r.elapsedMs),
    details: { parts: r.parts.map((p) => (p.verdict === "ok" ? { part: p.part, verdict: p.verdict, ops: p.ops, steps: p.steps } : p)) },
  };
}

/** A compare-and-set's completion: ok with its version, 412 as a failure with the current version. */
export function casCompletion(op: { ok(v?: unknown): CompleteEvent; fail(e: string, v?: unknown): CompleteEvent; info(e: string): CompleteEvent }, r: Outcome, key: string, keys: RegisterKeys): CompleteEvent {
  if (r.kind === "ok") keys.saw(key, (r.body as { version: number }).version);
  if (r.kind === "fail" && r.status === 412) {
    const currentVersion = (r.body as { currentVersion?: number }).currentVersion;
    if (typeof currentVersion === "number") keys.saw(key, currentVersion);
    return op.fail(r.code, typeof currentVersion === "number" ? { currentVersion } : null);
  }
  return complete(op, r, (b) => ({ version: (b as { version: number }).version }));
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
