// The trim policy as pure functions: which policy runs for every combination of configured policy,
// node and worker count, repository and persisted-lsn history (with the warnings each shows); per
// log, the protection window (age, records), the settling delay and the bounds (archived LSN, the
// lowest durable LSN, the tail); and which persisted-lsn trims refuse a worker's join.
import { describe, expect, test } from "bun:test";
import { defaultConfig, type Config } from "../../../src/config/index.ts";
import { decideTrims, resolveTrimPolicy, TRIM_POLICIES, trimBound, type Candidate, type LogTrimInput, type PolicyInput } from "../../../src/admin/controller/trim-policy.ts";
import { repositoryConfigured, uncoveredTrims } from "../../../src/admin/controller/trim-inputs.ts";

const codes = (ws: readonly { code: string }[]) => ws.map((w) => w.code).sort();

describe("which trim policy runs", () => {
  const base: PolicyInput = { configured: "auto", repository: false, nodes: 1, workers: 1, persistedLsnDisabled: false, persistedLsnTrimmed: false };

  // Every combination: configured policy x repository x nodes (1 / 3, all workers) x persisted-lsn
  // switched off before (persisted-lsn never trimmed: see the next tests for one that did).
  const cases: Array<[PolicyInput["configured"], boolean, number, boolean, string, boolean, string[]]> = [
    // configured, repository, nodes, disabledBefore -> effective, disableNow, warnings
    ["auto", true, 1, false, "archived-lsn", false, []],
    ["auto", true, 3, false, "archived-lsn", false, []],
    ["auto", true, 1, true, "archived-lsn", false, []],
    ["auto", true, 3, true, "archived-lsn", false, []],
    ["auto", false, 1, false, "persisted-lsn", false, []],
    ["auto", false, 3, false, "off", true, ["CAIRN-TRIM-0002"]],
    ["auto", false, 1, true, "off", false, []],
    ["auto", false, 3, true, "off", false, ["CAIRN-TRIM-0002"]],
    ["archived-lsn", true, 1, false, "archived-lsn", false, []],
    ["archived-lsn", true, 3, false, "archived-lsn", false, []],
    ["archived-lsn", false, 1, false, "off", false, ["CAIRN-TRIM-0005"]],
    ["archived-lsn", false, 3, false, "off", false, ["CAIRN-TRIM-0002", "CAIRN-TRIM-0005"]],
    ["persisted-lsn", false, 1, false, "persisted-lsn", false, []],
    ["persisted-lsn", true, 1, false, "persisted-lsn", false, []],
    ["persisted-lsn", false, 3, false, "off", true, ["CAIRN-TRIM-0001", "CAIRN-TRIM-0002"]],
    ["persisted-lsn", true, 3, false, "off", true, ["CAIRN-TRIM-0001"]],
    ["persisted-lsn", false, 1, true, "off", false, ["CAIRN-TRIM-0001"]],
    ["off", false, 1, false, "off", false, []],
    ["off", false, 3, false, "off", false, []],
    ["off", true, 3, false, "off", false, []],
  ];
  for (const [configured, repository, nodes, disabled, effective, disableNow, warnings] of cases) {
    test(`${configured}, ${repository ? "a repository" : "no repository"}, ${nodes} node(s)${disabled ? ", persisted-lsn switched off before" : ""}: ${effective}${disableNow ? ", switches persisted-lsn off" : ""}`, () => {
      const d = resolveTrimPolicy({ configured, repository, nodes, workers: nodes, persistedLsnDisabled: disabled, persistedLsnTrimmed: false });
      expect(d.effective).toBe(effective as typeof d.effective);
      expect(d.disablePersistedLsn).toBe(disableNow);
      expect(codes(d.warnings)).toEqual(warnings);
    });
  }

  test("every configured policy is covered above", () => {
    expect(new Set(cases.map((c) => c[0]))).toEqual(new Set(TRIM_POLICIES));
  });

  test("auto after persisted-lsn trimmed: the switch-off is shown in status; before any trim it is only logged", () => {
    const trimmed = resolveTrimPolicy({ ...base, nodes: 2, workers: 1, persistedLsnTrimmed: true });
    expect(trimmed.disablePersistedLsn).toBe(true);
    expect(codes(trimmed.warnings)).toEqual(["CAIRN-TRIM-0001"]);
    const untouched = resolveTrimPolicy({ ...base, nodes: 2, workers: 1 });
    expect(untouched.disablePersistedLsn).toBe(true);
    expect(untouched.warnings).toEqual([]);
  });

  test("persisted-lsn before and after growth: on with one node, off the moment a second registers, and it stays off when the cluster shrinks back", () => {
    const before = resolveTrimPolicy({ ...base, configured: "persisted-lsn" });
    expect(before).toEqual({ effective: "persisted-lsn", disablePersistedLsn: false, warnings: [] });
    const grown = resolveTrimPolicy({ ...base, configured: "persisted-lsn", nodes: 2, workers: 2 });
    expect(grown.effective).toBe("off");
    expect(grown.disablePersistedLsn).toBe(true);
    // The driver stores the switch-off; the next rounds see it.
    const next = resolveTrimPolicy({ ...base, configured: "persisted-lsn", nodes: 2, workers: 2, persistedLsnDisabled: true });
    expect(next.disablePersistedLsn).toBe(false);
    expect(next.effective).toBe("off");
    const shrunk = resolveTrimPolicy({ ...base, configured: "persisted-lsn", persistedLsnDisabled: true });
    expect(shrunk.effective).toBe("off");
    expect(codes(shrunk.warnings)).toEqual(["CAIRN-TRIM-0001"]);
  });

  test("a second node without the worker role switches persisted-lsn off too, without the several-workers warning", () => {
    const d = resolveTrimPolicy({ ...base, configured: "persisted-lsn", nodes: 2, workers: 1 });
    expect(d.effective).toBe("off");
    expect(d.disablePersistedLsn).toBe(true);
    expect(codes(d.warnings)).toEqual(["CAIRN-TRIM-0001"]);
  });

  test("a repository configured later takes over with archived-lsn, whatever persisted-lsn did", () => {
    expect(resolveTrimPolicy({ ...base, repository: true, nodes: 3, workers: 3, persistedLsnDisabled: true }).effective).toBe("archived-lsn");
  });

  test("the repository accessor: 'none' is no repository, a file or s3 backend is one", () => {
    const with_ = (repository: Config["snapshots"]["repository"]) => repositoryConfigured({ snapshots: { ...defaultConfig().snapshots, repository } });
    expect(with_("none")).toBe(false);
    expect(with_("file")).toBe(true);
    expect(with_("s3")).toBe(true);
    expect(repositoryConfigured(defaultConfig())).toBe(false);
  });
});

describe("per-log trim decisions", () => {
  const window = { minAgeMs: 60_000, minRecords: 100, delayMs: 30_000 };
  const T0 = 1_000_000;
  const log = (over: Partial<LogTrimInput> = {}): LogTrimInput => ({
    log: 0,
    createdAtMs: T0 - 120_000,
    trimPoint: 0,
    tailLsn: 1001,
    archivedLsn: 500,
    durableLsns: [700, 650],
    ...over,
  });
  const one = (effective: "archived-lsn" | "persisted-lsn" | "off", l: LogTrimInput, nowMs = T0, candidates: Map<number, Candidate> = new Map(), w = window) =>
    decideTrims({ effective, window: w, nowMs, logs: [l], candidates });

  test("the bound: the archived LSN, or the lowest durable LSN of the partition's processors, never at or past the tail", () => {
    expect(trimBound("archived-lsn", log())).toBe(500);
    expect(trimBound("persisted-lsn", log())).toBe(650);
    expect(trimBound("archived-lsn", log({ archivedLsn: 5000 }))).toBe(1000);
    expect(trimBound("persisted-lsn", log({ durableLsns: [2000] }))).toBe(1000);
    expect(trimBound("archived-lsn", log({ archivedLsn: null }))).toBeUndefined();
    expect(trimBound("persisted-lsn", log({ durableLsns: null }))).toBeUndefined();
    expect(trimBound("persisted-lsn", log({ durableLsns: [] }))).toBeUndefined();
    expect(trimBound("archived-lsn", log({ tailLsn: null }))).toBeUndefined();
    expect(trimBound("off", log())).toBeUndefined();
  });

  test("policy off: nothing, and no candidate kept", () => {
    const r = one("off", log(), T0, new Map([[0, { point: 400, sinceMs: 0 }]]));
    expect(r.decisions).toEqual([{ log: 0, action: "none", reason: "policy-off" }]);
    expect(r.candidates.size).toBe(0);
  });

  test("nothing archived, or a silent processor: no trim", () => {
    expect(one("archived-lsn", log({ archivedLsn: null })).decisions[0]).toEqual({ log: 0, action: "none", reason: "no-bound" });
    expect(one("persisted-lsn", log({ durableLsns: null })).decisions[0]).toEqual({ log: 0, action: "none", reason: "no-bound" });
  });

  test("a bound at or below the trim point: nothing new", () => {
    expect(one("archived-lsn", log({ trimPoint: 500 })).decisions[0]).toEqual({ log: 0, action: "none", reason: "nothing-new" });
  });

  for (const effective of ["archived-lsn", "persisted-lsn"] as const) {
    test(`${effective}: window closed by age, then by records, then open`, () => {
      expect(one(effective, log({ createdAtMs: T0 - 59_999 })).decisions[0]).toEqual({ log: 0, action: "wait", reason: "young" });
      expect(one(effective, log({ createdAtMs: null })).decisions[0]).toEqual({ log: 0, action: "wait", reason: "young" });
      // 99 records held above the trim point: too few; 100: enough.
      expect(one(effective, log({ tailLsn: 100, archivedLsn: 50, durableLsns: [50] })).decisions[0]).toEqual({ log: 0, action: "wait", reason: "few-records" });
      expect(one(effective, log({ tailLsn: 101, archivedLsn: 50, durableLsns: [50] })).decisions[0]).toEqual({ log: 0, action: "wait", reason: "settling" });
    });
  }

  test("a point is applied only after it stayed valid for the delay", () => {
    const first = one("archived-lsn", log());
    expect(first.decisions[0]).toEqual({ log: 0, action: "wait", reason: "settling" });
    expect(first.candidates.get(0)).toEqual({ point: 500, sinceMs: T0 });
    const early = one("archived-lsn", log(), T0 + 29_999, new Map(first.candidates));
    expect(early.decisions[0]).toMatchObject({ action: "wait", reason: "settling" });
    const due = one("archived-lsn", log(), T0 + 30_000, new Map(early.candidates));
    expect(due.decisions[0]).toEqual({ log: 0, action: "trim", upTo: 500 });
    expect(due.candidates.size).toBe(0);
  });

  test("a bound that keeps moving (steady writes) still trims: the older candidate is applied, the newer one starts its delay", () => {
    let candidates = new Map<number, Candidate>();
    let durable = 600;
    let trimPoint = 0;
    const applied: number[] = [];
    for (let t = 0; t <= 100_000; t += 10_000) {
      durable += 10;
      const r = one("persisted-lsn", log({ durableLsns: [durable], trimPoint, tailLsn: durable + 50 }), T0 + t, candidates);
      candidates = new Map(r.candidates);
      const d = r.decisions[0]!;
      if (d.action === "trim") {
        expect(d.upTo).toBeLessThanOrEqual(durable);
        applied.push(d.upTo);
        trimPoint = d.upTo;
      }
    }
    expect(applied).toEqual([610, 640, 670]);
  });

  test("a candidate above the current bound (the bound went back) is dropped and the delay starts over", () => {
    const r = one("archived-lsn", log({ archivedLsn: 300 }), T0 + 60_000, new Map([[0, { point: 500, sinceMs: T0 }]]));
    expect(r.decisions[0]).toMatchObject({ action: "wait", reason: "settling" });
    expect(r.candidates.get(0)).toEqual({ point: 300, sinceMs: T0 + 60_000 });
  });

  test("the delay counts while the window is closed: a point seen while the log was young is applied once the window opens", () => {
    const young = one("archived-lsn", log({ createdAtMs: T0 }), T0);
    expect(young.decisions[0]).toEqual({ log: 0, action: "wait", reason: "young" });
    expect(young.candidates.get(0)).toEqual({ point: 500, sinceMs: T0 });
    const grown = one("archived-lsn", log({ createdAtMs: T0 }), T0 + 60_000, new Map(young.candidates));
    expect(grown.decisions[0]).toEqual({ log: 0, action: "trim", upTo: 500 });
  });

  test("no delay and an empty window: the bound is trimmed at once", () => {
    const r = one("persisted-lsn", log(), T0, new Map(), { minAgeMs: 0, minRecords: 0, delayMs: 0 });
    expect(r.decisions[0]).toEqual({ log: 0, action: "trim", upTo: 650 });
  });

  test("each log is decided on its own", () => {
    const r = decideTrims({
      effective: "archived-lsn",
      window: { ...window, delayMs: 0 },
      nowMs: T0,
      logs: [log({ log: 0 }), log({ log: 1, archivedLsn: null }), log({ log: 2, createdAtMs: T0 })],
      candidates: new Map(),
    });
    expect(r.decisions.map((d) => d.action)).toEqual(["trim", "none", "wait"]);
  });
});

describe("joins after persisted-lsn trims", () => {
  test("a worker's join waits until a snapshot covers every log persisted-lsn trimmed", () => {
    const trimmedAll = () => 1000;
    expect(uncoveredTrims(undefined, trimmedAll, () => null)).toEqual([]);
    const used = { logs: { "0": 40, "1": 70, "2": 0 }, firstAtMs: 1 };
    expect(uncoveredTrims(used, trimmedAll, () => null)).toEqual([
      { log: 0, trimmedTo: 40, coveredTo: null },
      { log: 1, trimmedTo: 70, coveredTo: null },
    ]);
    expect(uncoveredTrims(used, trimmedAll, (l) => (l === 0 ? 40 : 69))).toEqual([{ log: 1, trimmedTo: 70, coveredTo: 69 }]);
    expect(uncoveredTrims(used, trimmedAll, () => 70)).toEqual([]);
  });

  test("a recorded point the log's trim point never reached counts only as far as it did", () => {
    const used = { logs: { "0": 40, "1": 70 }, firstAtMs: 1 };
    // Log 0 was never trimmed (the trim did not follow its record); log 1 only to 50.
    expect(uncoveredTrims(used, (l) => (l === 0 ? 0 : 50), () => null)).toEqual([{ log: 1, trimmedTo: 50, coveredTo: null }]);
    expect(uncoveredTrims(used, (l) => (l === 0 ? 0 : 50), () => 50)).toEqual([]);
  });
});
