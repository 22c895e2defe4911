// `bun scripts/chaos-recheck.ts <artifacts dir>`: checks a kept chaos run's history again (the
// .chaos/<time>-seed<N>/ directory a failing or --keep run leaves) with the checkers that need only
// the history: register, set, log and the state workload's registers. The invocations checker and the
// state workload's counter need the run's in-memory bookkeeping and are not re-checked. Prints each
// verdict, and the time and peak RSS of the checking (Linux's VmHWM, reset after loading the history).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pairOperations, parseJsonl, type Operation } from "../test/chaos/history.ts";
import { checkLog } from "../test/chaos/checker/log.ts";
import type { CheckBounds } from "../test/chaos/checker/linearizable.ts";
import { checkRegisterOps } from "../test/chaos/workloads/register.ts";
import { checkSetsPerKey } from "../test/chaos/workloads/set.ts";
import { peakRss, resetPeakRss } from "../test/chaos/runner.ts";
import { describeWriteGaps, stateWriteGaps } from "../test/chaos/checker/availability.ts";

const dir = Bun.argv[2];
if (dir === undefined) {
  process.stderr.write("usage: bun scripts/chaos-recheck.ts <.chaos/<time>-seed<N> directory>\n");
  process.exit(2);
}
const mib = (b: number | null) => (b === null ? "unknown" : `${Math.round(b / 2 ** 20)} MiB`);
const options = JSON.parse(readFileSync(join(dir, "options.json"), "utf8")) as { checkBounds?: CheckBounds };
const t0 = performance.now();
const ops = pairOperations(parseJsonl(readFileSync(join(dir, "history.jsonl"), "utf8")));
Bun.gc(true);
process.stdout.write(`loaded ${ops.length} operations in ${((performance.now() - t0) / 1000).toFixed(1)} s; RSS ${mib(process.memoryUsage.rss())}\n`);

/** The log workload's own payloads share the run's prefix (`<runId>-<n>`); others count for order only. */
function ourPrefix(log: readonly Operation[]): string {
  const first = log.find((o) => o.f === "append");
  const payload = (first?.input as { payload?: string } | undefined)?.payload ?? "";
  return payload.replace(/\d+$/, "");
}

const checks: Array<[string, () => { verdict: string; summary: string }]> = [
  ["register", () => checkRegisterOps(ops, "register", "keys", options.checkBounds)],
  ["state (registers)", () => checkRegisterOps(ops, "state", "objects", options.checkBounds)],
  [
    "set",
    () => {
      const r = checkSetsPerKey(ops.filter((o) => o.workload === "set"));
      return { verdict: r.valid ? "ok" : "illegal", summary: `${r.attempted} adds in ${r.keys} sets, ${r.reads} reads; ${r.anomalies.length} anomalies` };
    },
  ],
  [
    "log",
    () => {
      const mine = ops.filter((o) => o.workload === "log");
      const prefix = ourPrefix(mine);
      const r = checkLog(mine, { isOurs: (p) => p.startsWith(prefix) });
      return { verdict: r.valid ? "ok" : "illegal", summary: `${r.appends} appends, ${r.reads} reads (${r.finalReads} final); ${r.anomalies.length} anomalies` };
    },
  ],
];
let worst = "ok";
let peak = 0;
const started = performance.now();
resetPeakRss();
for (const [name, run] of checks) {
  // What one checker left behind is garbage for the next: collected here, not stacked in the peak.
  Bun.gc(true);
  const c0 = performance.now();
  const r = run();
  const p = peakRss();
  peak = Math.max(peak, p ?? 0);
  process.stdout.write(`${name}: ${r.verdict} — ${r.summary} (${((performance.now() - c0) / 1000).toFixed(1)} s, peak ${mib(p)})\n`);
  if (r.verdict !== "ok") worst = r.verdict;
}
process.stdout.write(`checking: ${((performance.now() - started) / 1000).toFixed(1)} s, peak ${mib(peak)} RSS\n`);
const gaps = stateWriteGaps(ops);
if (gaps.length > 0) process.stdout.write(`longest stretch without a successful object write: ${describeWriteGaps(gaps)}\n`);
process.exit(worst === "ok" ? 0 : 1);
