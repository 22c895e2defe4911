// `cairn ctl invocations list|describe|cancel|kill|resume|purge`: durable invocations of the whole
// cluster through any node's admin API (/v1/invocations). The list says when it is partial (a worker
// silent, a partition without a leader); an action the invocation's status does not allow exits 5.
import { Command } from "commander";
import type { components, paths } from "../../../openapi/cairn.d.ts";
import { adminClient, call, type CtlGlobals } from "./client.ts";
import { duration, table } from "./format.ts";
import type { CtlHelpers } from "./logs.ts";

type Invocation = components["schemas"]["Invocation"];
type ActionResult = components["schemas"]["InvocationActionResult"];
type Action = ActionResult["action"];
type StatusFilter = NonNullable<NonNullable<paths["/v1/invocations"]["get"]["parameters"]["query"]>["status"]>;

/** `Service/handler` or `Object/key/handler`, as Restate's tools show a target. */
export function target(i: Pick<Invocation, "service" | "handler" | "key">): string {
  return i.key === null ? `${i.service}/${i.handler}` : `${i.service}/${i.key}/${i.handler}`;
}

function ago(ms: number, nowMs: number): string {
  const d = Math.max(0, nowMs - ms);
  return d < 1000 ? `${d}ms ago` : `${duration(d)} ago`;
}

function outcome(i: Invocation): string {
  if (i.result === null) return i.lastError ?? "";
  return i.result.ok ? `ok (${i.result.valueBytes} bytes)` : `failed ${i.result.code}: ${i.result.message}`;
}

function listView(r: components["schemas"]["InvocationList"], nowMs: number): string {
  const rows =
    r.invocations.length === 0
      ? "(no invocations)\n"
      : table([
          ["ID", "TARGET", "STATUS", "ATTEMPTS", "JOURNAL", "CREATED", "OUTCOME"],
          ...r.invocations.map((i) => [i.id, target(i), i.status, i.attempts, i.journalLength, ago(i.createdAtMs, nowMs), outcome(i)]),
        ]);
  const counts = Object.entries(r.counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([s, n]) => `${s} ${n}`)
    .join(", ");
  const partial = [
    r.unreachable.length > 0 ? `workers not answering: ${r.unreachable.join(", ")}` : "",
    r.missingPartitions.length > 0 ? `partitions without a leader answering: ${r.missingPartitions.join(", ")}` : "",
  ].filter((x) => x !== "");
  return rows + `counts: ${counts || "(none)"}\n` + (partial.length > 0 ? `partial list: ${partial.join("; ")}\n` : "");
}

function describeView(i: Invocation, nowMs: number): string {
  const at = (ms: number | null) => (ms === null ? "-" : `${new Date(ms).toISOString()} (${ago(ms, nowMs)})`);
  const lines: Array<[string, string | number]> = [
    ["id", i.id],
    ["target", target(i)],
    ["status", i.status],
    ["partition", i.partition],
    ["idempotency key", i.idempotencyKey ?? "-"],
    ["created", at(i.createdAtMs)],
    ["modified", at(i.modifiedAtMs)],
    ["attempts", i.attempts],
    ["retries since progress", i.retryCount],
    ["journal entries", i.journalLength],
    ["next retry", at(i.nextRetryAtMs)],
    ["last error", i.lastError ?? "-"],
    ["completed", at(i.completedAtMs)],
    ["outcome", i.result === null ? "-" : outcome(i)],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}\n`).join("");
}

const DONE: Record<Action, string> = {
  cancel: "Cancellation sent to",
  kill: "Killed",
  resume: "Resumed",
  purge: "Purged",
};

function actionView(r: ActionResult): string {
  const after = r.action === "cancel" && r.status !== "completed" ? "; it completes once the handler has handled the cancellation" : "";
  return `${DONE[r.action]} ${r.id} (was ${r.previousStatus}, now ${r.status})${after}.\n`;
}

function actionCommand(h: CtlHelpers, action: Action, description: string): Command {
  return new Command(action)
    .argument("<id>", "the invocation id (inv_1…)")
    .description(description)
    .action(
      h.action(async (g: CtlGlobals, [id]) => {
        const client = adminClient(g);
        const r = await call(g, () => client.POST(`/v1/invocations/{id}/${action}`, { params: { path: { id: id! } } }));
        h.print(g, r, () => actionView(r));
      }),
    );
}

export function invocationsCommand(h: CtlHelpers): Command {
  const cmd = new Command("invocations").description("Durable invocations of Restate SDK services: list, describe, cancel, kill, resume, purge");
  cmd
    .command("list")
    .description("Invocations of the whole cluster, newest first, with counts by status")
    .option("--service <name>", "only invocations of this service")
    .option("--status <status>", "only this status: scheduled, inboxed, ready, suspended, backing-off, paused or completed")
    .option("--limit <n>", "most rows (1-10000)", "100")
    .action(
      h.action<{ service?: string; status?: string; limit: string }>(async (g, _args, opts) => {
        const limit = h.intArg("--limit", opts.limit);
        // The node validates the status (422, exit 5, with the statuses it takes).
        const query = { limit, ...(opts.service !== undefined ? { service: opts.service } : {}), ...(opts.status !== undefined ? { status: opts.status as StatusFilter } : {}) };
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/invocations", { params: { query } }));
        h.print(g, r, () => listView(r, Date.now()));
      }),
    );
  cmd
    .command("describe <id>")
    .description("One invocation: target, status, attempts, journal length, last error, outcome")
    .action(
      h.action(async (g, [id]) => {
        const client = adminClient(g);
        const r = await call(g, () => client.GET("/v1/invocations/{id}", { params: { path: { id: id! } } }));
        h.print(g, r, () => describeView(r, Date.now()));
      }),
    );
  cmd.addCommand(actionCommand(h, "cancel", "Cancel an invocation: the handler is told and may compensate; its callers get its outcome (by default 409 Cancelled)"));
  cmd.addCommand(actionCommand(h, "kill", "Kill an invocation at once (no more user code runs); its callers get 409 killed"));
  cmd.addCommand(actionCommand(h, "resume", "Retry a paused or backing-off invocation now"));
  cmd.addCommand(actionCommand(h, "purge", "Forget a completed invocation (its result and idempotency key) before its retention runs out"));
  return cmd;
}
