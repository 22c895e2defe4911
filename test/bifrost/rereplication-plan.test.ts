// The re-replication planner (pure): which sealed segments are short of their log's current
// replication, and which log-servers receive copies.
import { describe, expect, test } from "bun:test";
import type { LogsDocument, Segment } from "../../src/bifrost/chain.ts";
import { planRereplication, type RereplicationInput } from "../../src/bifrost/rereplication-plan.ts";
import { logId, nodeId, type NodeId } from "../../src/ids/index.ts";

function seg(index: number, baseLsn: number, sealedTail: number | undefined, nodeset: string[], replication: number): Segment {
  return {
    index,
    baseLsn,
    kind: "replicated",
    params: { loglet: `0_${index}`, sequencer: "N1:1", nodeset, replication },
    ...(sealedTail !== undefined ? { sealedTail } : {}),
    placement: "auto",
    createdAtMs: 0,
  };
}

const N = (...ids: number[]): NodeId[] => ids.map((i) => nodeId(i));

function input(doc: LogsDocument, over: Partial<RereplicationInput> = {}): RereplicationInput {
  return { doc, candidates: N(1, 2, 3), lost: () => false, inflight: new Set(), maxPlans: 8, ...over };
}

/** Log 0: segment 0 on N1 (r = 1, LSNs 1..10), tail segment 1 on N2,N3 with r = 2. */
const grown: LogsDocument = {
  defaultReplication: 2,
  logs: [{ id: 0, trimPoint: 0, segments: [seg(0, 1, 11, ["N1"], 1), seg(1, 11, undefined, ["N2", "N3"], 2)] }],
};

describe("re-replication planning", () => {
  test("a sealed segment below its log's current replication gets a copy on a log-server outside its nodeset", () => {
    const p = planRereplication(input(grown));
    expect(p.copies).toEqual([
      { log: logId(0), segment: 0, expectNodeset: ["N1"], sources: N(1), targets: N(2), nodeset: N(1, 2), replication: 2, records: 10 },
    ]);
    expect(p.underReplicatedRecords.get(0)).toBe(10);
    expect(p.blocked).toEqual([]);
  });

  test("the open tail segment and segments at the current replication are never planned", () => {
    const doc: LogsDocument = {
      defaultReplication: 2,
      logs: [{ id: 0, trimPoint: 0, segments: [seg(0, 1, 5, ["N1", "N2"], 2), seg(1, 5, undefined, ["N1"], 1)] }],
    };
    expect(planRereplication(input(doc)).copies).toEqual([]);
    const raised: LogsDocument = { defaultReplication: 2, logs: [{ id: 0, trimPoint: 0, segments: [seg(0, 1, 5, ["N1"], 1), seg(1, 5, 9, ["N1"], 1)] }] };
    // A sealed tail (an operator's seal) is the log's current replication too: nothing to copy.
    expect(planRereplication(input(raised)).shortfalls).toEqual([]);
  });

  test("trimmed records are not counted and a fully trimmed segment needs nothing", () => {
    const trimmed = { ...grown, logs: [{ ...grown.logs[0]!, trimPoint: 7 }] };
    expect(planRereplication(input(trimmed)).copies[0]?.records).toBe(3);
    const all = { ...grown, logs: [{ ...grown.logs[0]!, trimPoint: 10 }] };
    expect(planRereplication(input(all)).shortfalls).toEqual([]);
  });

  test("members whose copies are gone are no sources, leave the nodeset and count against the copies", () => {
    const doc: LogsDocument = {
      defaultReplication: 2,
      logs: [{ id: 0, trimPoint: 0, segments: [seg(0, 1, 11, ["N1", "N2"], 2), seg(1, 11, undefined, ["N1", "N3"], 2)] }],
    };
    const p = planRereplication(input(doc, { candidates: N(1, 3, 4), lost: (id) => id === nodeId(2) }));
    expect(p.copies).toEqual([
      { log: logId(0), segment: 0, expectNodeset: ["N1", "N2"], sources: N(1), targets: N(3), nodeset: N(1, 3), replication: 2, records: 10 },
    ]);
  });

  test("with no log-server outside the nodeset, live survivors take full copies when that adds copies (a wiped member of a 3-node nodeset)", () => {
    const doc: LogsDocument = {
      defaultReplication: 2,
      logs: [{ id: 0, trimPoint: 0, segments: [seg(0, 1, 11, ["N1", "N2", "N3"], 2), seg(1, 11, undefined, ["N1", "N3"], 2)] }],
    };
    const p = planRereplication(input(doc, { candidates: N(1, 3), lost: (id) => id === nodeId(2) }));
    expect(p.copies).toEqual([
      { log: logId(0), segment: 0, expectNodeset: ["N1", "N2", "N3"], sources: N(1, 3), targets: N(1, 3), nodeset: N(1, 3), replication: 2, records: 10 },
    ]);
    // One survivor alone adds nothing (it already counts once): blocked rather than a useless copy.
    const one = planRereplication(input(doc, { candidates: N(1), lost: (id) => id === nodeId(2) }));
    expect(one.copies).toEqual([]);
    expect(one.blocked).toHaveLength(1);
  });

  test("without a log-server outside the nodeset the segment is blocked, still counted", () => {
    const p = planRereplication(input(grown, { candidates: N(1) }));
    expect(p.copies).toEqual([]);
    expect(p.blocked).toEqual([{ log: logId(0), segment: 0, copies: 1, wanted: 2, records: 10 }]);
    expect(p.underReplicatedRecords.get(0)).toBe(10);
  });

  test("fewer targets than missing copies raise the replication only by the copies made", () => {
    const doc: LogsDocument = {
      defaultReplication: 3,
      logs: [{ id: 0, trimPoint: 0, segments: [seg(0, 1, 11, ["N1"], 1), seg(1, 11, undefined, ["N1", "N2", "N3"], 3)] }],
    };
    expect(planRereplication(input(doc, { candidates: N(2) })).copies[0]).toMatchObject({ targets: N(2), nodeset: N(1, 2), replication: 2 });
    expect(planRereplication(input(doc)).copies[0]).toMatchObject({ targets: N(2, 3), nodeset: N(1, 2, 3), replication: 3 });
  });

  test("one plan per log, logs in flight are skipped, maxPlans bounds the round, `only` picks one log", () => {
    const two: LogsDocument = {
      defaultReplication: 2,
      logs: [
        { id: 0, trimPoint: 0, segments: [seg(0, 1, 11, ["N1"], 1), seg(1, 11, 20, ["N1"], 1), seg(2, 20, undefined, ["N2", "N3"], 2)] },
        { id: 1, trimPoint: 0, segments: [{ ...seg(0, 1, 4, ["N1"], 1), params: { loglet: "1_0", sequencer: "N1:1", nodeset: ["N1"], replication: 1 } }, { ...seg(1, 4, undefined, ["N2", "N3"], 2), params: { loglet: "1_1", sequencer: "N1:1", nodeset: ["N2", "N3"], replication: 2 } }] },
      ],
    };
    const all = planRereplication(input(two));
    expect(all.copies.map((c) => [c.log, c.segment])).toEqual([[0, 0], [1, 0]]);
    expect(all.underReplicatedRecords).toEqual(new Map([[0, 19], [1, 3]]));
    expect(planRereplication(input(two, { inflight: new Set([0]) })).copies.map((c) => c.log)).toEqual([logId(1)]);
    expect(planRereplication(input(two, { maxPlans: 1 })).copies).toHaveLength(1);
    expect(planRereplication(input(two, { only: logId(1) })).copies.map((c) => c.log)).toEqual([logId(1)]);
  });
});
