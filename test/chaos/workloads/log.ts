// Appends and reads on one log (bifrost's promise as a black box): unique payloads appended from many
// clients, reads from random LSNs, and after the final heal a full scan from every node. The log is
// not a partition log: setup adds log CHAOS_LOG_ID to the `logs` metadata document (compare-and-set
// through the metadata route), so raw records never reach a partition processor, which rightly stops
// on records it cannot decode, and the workload runs beside workers. Everything that depends on the
// HTTP shape of the log routes is in `HttpLogApi`; the workload runs only when openapi/cairn.json has
// the routes. Records that are not this run's still count for LSN order and contiguity, not as phantoms.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { keyPath, request } from "../client.ts";
import type { CompleteEvent, Operation } from "../history.ts";
import { checkLog, type LogReadOutput, type LogRecord, type TrimGap } from "../checker/log.ts";
import { REPO_ROOT } from "../node-process.ts";
import { retrying, type CheckOutcome, type ClientState, type Endpoint, type Workload, type WorkloadContext } from "./types.ts";
import { countStatuses } from "./register.ts";

export const LOG_RECORDS_PATH = "/v1/logs/{log}/records";

/** The chaos log: far above any partition id the harness provisions (4 partitions, logs 0..3). */
export const CHAOS_LOG_ID = 1000;
/** How long setup waits for the log controller to give the new log its first segment. */
const LOG_CREATE_TIMEOUT_MS = 60_000;

/**
 * Adds log `id` (an empty chain: the log controller adds its first segment) to the `logs` document by
 * compare-and-set through any node's metadata route, then waits until the log has a segment. A log
 * already there is left as it is (a retried write that applied).
 */
export async function createLog(ctx: WorkloadContext, id: number): Promise<void> {
  const deadline = Date.now() + LOG_CREATE_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    for (const node of ctx.endpoints()) {
      const r = await request(node.admin, "GET", `${keyPath("logs")}?consistency=linearizable`, { timeoutMs: ctx.requestTimeoutMs });
      if (r.kind !== "ok") {
        last = `read logs: ${r.code}`;
        continue;
      }
      const entry = r.body as { version: number; value: { logs: Array<{ id: number; segments: unknown[] }> } };
      const existing = entry.value.logs.find((l) => l.id === id);
      if (existing !== undefined) {
        if (existing.segments.length > 0) return;
        last = `log ${id} has no segment yet`;
        await Bun.sleep(200);
        continue;
      }
      const doc = { ...entry.value, logs: [...entry.value.logs, { id, trimPoint: 0, segments: [] }] };
      const w = await request(node.admin, "PUT", keyPath("logs"), { body: doc, headers: { "if-match": String(entry.version) }, timeoutMs: ctx.requestTimeoutMs });
      if (w.kind === "ok") ctx.log(`log ${id} added to the logs document (version ${(w.body as { version: number }).version})`);
      else last = `write logs: ${w.code}`;
    }
    await Bun.sleep(200);
  }
  throw new Error(`log ${id} was not created within ${LOG_CREATE_TIMEOUT_MS} ms (${last})`);
}

/** What the log workload needs from a node. */
export interface LogApi {
  append(node: Endpoint, log: string, payload: string, timeoutMs: number): Promise<{ kind: "ok"; lsn: number } | { kind: "fail" | "info"; code: string }>;
  read(node: Endpoint, log: string, fromLsn: number, timeoutMs: number): Promise<({ kind: "ok"; nextLsn: number } & LogReadOutput) | { kind: "fail" | "info"; code: string }>;
}

/**
 * The admin API's log routes (src/admin/api/log-routes.ts):
 *   POST /v1/logs/{log}/records {"records": ["<utf8>"]}  → 200 {"log", "firstLsn", "lastLsn", "count"}
 *   GET  /v1/logs/{log}/records?from=<lsn>               → 200 {"entries": [{"kind": "record", "lsn", "data", "encoding"} |
 *                                                          {"kind": "trim-gap", "fromLsn", "toLsn"}], "nextLsn", "tailLsn", "trimPoint"}
 */
export class HttpLogApi implements LogApi {
  async append(node: Endpoint, log: string, payload: string, timeoutMs: number) {
    const r = await request(node.admin, "POST", `/v1/logs/${encodeURIComponent(log)}/records`, { body: { records: [payload] }, timeoutMs });
    if (r.kind === "ok") return { kind: "ok" as const, lsn: (r.body as { firstLsn: number }).firstLsn };
    return { kind: r.kind, code: r.code };
  }

  async read(node: Endpoint, log: string, fromLsn: number, timeoutMs: number) {
    const r = await request(node.admin, "GET", `/v1/logs/${encodeURIComponent(log)}/records?from=${fromLsn}`, { timeoutMs });
    if (r.kind !== "ok") return { kind: r.kind, code: r.code };
    type Entry = { kind: "record"; lsn: number; data: string; encoding: string } | { kind: "trim-gap"; fromLsn: number; toLsn: number };
    const b = r.body as { entries: Entry[]; nextLsn: number; tailLsn: number };
    const records: LogRecord[] = [];
    const trimGaps: TrimGap[] = [];
    for (const e of b.entries) {
      if (e.kind === "record") records.push({ lsn: e.lsn, payload: e.encoding === "utf8" ? e.data : `base64:${e.data}` });
      else trimGaps.push({ from: e.fromLsn, to: e.toLsn });
    }
    return { kind: "ok" as const, records, trimGaps, tail: b.tailLsn, nextLsn: b.nextLsn };
  }
}

/** Whether the admin API documents the log record routes (so the workload can run). */
export function logRoutesAvailable(specPath = join(REPO_ROOT, "openapi/cairn.json")): boolean {
  try {
    const spec = JSON.parse(readFileSync(specPath, "utf8")) as { paths?: Record<string, Record<string, unknown>> };
    const route = spec.paths?.[LOG_RECORDS_PATH];
    return route !== undefined && "post" in route && "get" in route;
  } catch {
    return false;
  }
}

export class LogWorkload implements Workload {
  readonly name = "log";
  readonly defaultClients: number;
  private log = "";
  private next = 0;
  private highestAcked = 0;

  private prefix = "";

  constructor(
    private readonly api: LogApi = new HttpLogApi(),
    private readonly options: { clients?: number; log?: string } = {},
  ) {
    this.defaultClients = options.clients ?? 4;
  }

  async setup(ctx: WorkloadContext): Promise<void> {
    this.log = this.options.log ?? String(CHAOS_LOG_ID);
    this.prefix = `${ctx.runId}-`;
    if (this.options.log === undefined) await createLog(ctx, CHAOS_LOG_ID);
  }

  async step(ctx: WorkloadContext, client: ClientState, node: Endpoint): Promise<CompleteEvent> {
    if (client.rng.chance(0.25)) {
      const from = Math.max(1, this.highestAcked - client.rng.int(0, 20));
      return this.read(ctx, client.process, node, from, false);
    }
    const payload = `${this.prefix}${this.next++}`;
    const op = ctx.history.invoke(client.process, this.name, "append", this.log, { payload }, node.name);
    const r = await this.api.append(node, this.log, payload, ctx.requestTimeoutMs);
    if (r.kind === "ok") {
      this.highestAcked = Math.max(this.highestAcked, r.lsn);
      return op.ok({ lsn: r.lsn });
    }
    return r.kind === "fail" ? op.fail(r.code) : op.info(r.code);
  }

  private async read(ctx: WorkloadContext, process: number, node: Endpoint, from: number, final: boolean): Promise<CompleteEvent> {
    const op = ctx.history.invoke(process, this.name, "read", this.log, { from, ...(final ? { final } : {}) }, node.name);
    if (!final) {
      const r = await this.api.read(node, this.log, from, ctx.requestTimeoutMs);
      if (r.kind === "ok") return op.ok({ records: r.records, ...(r.trimGaps ? { trimGaps: r.trimGaps } : {}), ...(r.tail !== undefined ? { tail: r.tail } : {}) });
      return r.kind === "fail" ? op.fail(r.code) : op.info(r.code);
    }
    // A full scan: page until the tail the first page reported.
    const records: LogRecord[] = [];
    const trimGaps: TrimGap[] = [];
    let next = from;
    let tail: number | undefined;
    for (let pages = 0; pages < 100_000; pages++) {
      const r = await this.api.read(node, this.log, next, ctx.requestTimeoutMs);
      if (r.kind !== "ok") return r.kind === "fail" ? op.fail(r.code) : op.info(r.code);
      records.push(...r.records);
      trimGaps.push(...(r.trimGaps ?? []));
      tail ??= r.tail;
      if (r.nextLsn <= next || (tail !== undefined && r.nextLsn >= tail)) break;
      next = r.nextLsn;
    }
    return op.ok({ records, trimGaps, ...(tail !== undefined ? { tail } : {}) });
  }

  async finalReads(ctx: WorkloadContext): Promise<void> {
    const process = ctx.history.newProcess();
    for (const node of ctx.endpoints()) {
      await retrying(10, async () => (await this.read(ctx, process, node, 1, true)).type === "ok");
    }
  }

  check(ops: readonly Operation[]): CheckOutcome {
    const mine = ops.filter((o) => o.workload === this.name);
    const r = checkLog(mine, { isOurs: (payload) => payload.startsWith(this.prefix) });
    return {
      workload: this.name,
      verdict: r.valid ? "ok" : "illegal",
      summary: `${r.appends} appends (${r.acknowledged} acknowledged), ${r.reads} reads (${r.finalReads} final), ${mine.length} ops (${countStatuses(mine)}); ${r.anomalies.length} anomalies`,
      details: r,
    };
  }
}
