// The logs document and chain mutations (pure), and placement: what the chain writer may write, and
// what a new segment looks like.
import { describe, expect, test } from "bun:test";
import {
  initialLogsDocument,
  locate,
  parseLogsDocument,
  withFirstSegment,
  withNewSegment,
  withSealedTail,
  withTrimPoint,
  type LogChain,
  type NewSegment,
} from "../../src/bifrost/chain.ts";
import { chooseNodeset, chooseSequencer, desiredNodesetSize } from "../../src/bifrost/placement.ts";
import { generationalNodeId, lsn, nodeId } from "../../src/ids/index.ts";
import { isCairnError } from "../../src/observability/errors.ts";

const N = (i: number) => nodeId(i);
const seg: NewSegment = { kind: "replicated", sequencer: generationalNodeId(1, 3), nodeset: [N(1), N(2), N(3)], replication: 2, placement: "auto" };

function threeSegments(): LogChain {
  let log: LogChain = { id: 4, trimPoint: 0, segments: [] };
  log = withFirstSegment(log, seg, 1);
  log = withSealedTail(log, 0, lsn(11));
  log = withNewSegment(log, 0, seg, 2);
  log = withSealedTail(log, 1, lsn(11)); // empty segment
  log = withNewSegment(log, 1, seg, 3);
  return log;
}

describe("log chains", () => {
  test("segments follow each other at the sealed tail, with growing indexes and loglet ids <log>_<index>", () => {
    const log = threeSegments();
    expect(log.segments.map((s) => [s.index, s.baseLsn, s.sealedTail ?? null, s.params.loglet])).toEqual([
      [0, 1, 11, "4_0"],
      [1, 11, 11, "4_1"],
      [2, 11, null, "4_2"],
    ]);
    expect(locate(log, lsn(10))).toMatchObject({ kind: "segment", segment: { index: 0 }, end: 11 });
    expect(locate(log, lsn(11))).toMatchObject({ kind: "segment", segment: { index: 2 }, end: undefined });
  });

  test("a recorded sealed tail never changes; conditional extensions refuse a moved chain", () => {
    let log = withFirstSegment({ id: 1, trimPoint: 0, segments: [] }, seg, 0);
    log = withSealedTail(log, 0, lsn(5));
    expect(withSealedTail(log, 0, lsn(9))).toBe(log); // another recovery's tail loses
    const moved = withNewSegment(log, 0, seg, 0);
    const conflict = (() => {
      try {
        withNewSegment(moved, 0, seg, 0);
      } catch (e) {
        return e;
      }
    })();
    expect(isCairnError(conflict, "LOG_CHAIN_CONFLICT")).toBe(true);
    expect(() => withNewSegment(withFirstSegment({ id: 1, trimPoint: 0, segments: [] }, seg, 0), 0, seg, 0)).toThrow(/not sealed/);
  });

  test("trimming moves the trim point up only and drops fully trimmed segments, never the tail segment", () => {
    const log = threeSegments();
    expect(withTrimPoint(log, lsn(5)).segments).toHaveLength(3);
    const t = withTrimPoint(log, lsn(10));
    expect([t.trimPoint, t.segments.map((s) => s.index)]).toEqual([10, [2]]);
    expect(withTrimPoint(t, lsn(3))).toBe(t);
    expect(locate(t, lsn(4))).toEqual({ kind: "trimmed", to: lsn(10) });
    // A first segment after a trim starts above the trim point.
    expect(withFirstSegment({ id: 1, trimPoint: 7, segments: [] }, seg, 0).segments[0]!.baseLsn).toBe(8);
  });

  test("the stored document is validated: shape, chain invariants; provisioning's older shape still reads", () => {
    expect(parseLogsDocument(initialLogsDocument([0, 1], 2)).logs).toHaveLength(2);
    expect(parseLogsDocument({ defaultReplication: 1, logs: [{ id: 0, segments: [] }] }).logs[0]!.trimPoint).toBe(0);
    const broken = threeSegments();
    const gap = { ...broken, segments: broken.segments.map((s, i) => (i === 2 ? { ...s, baseLsn: 12 } : s)) };
    for (const bad of [{ logs: [] }, { defaultReplication: 1, logs: [gap] }, { defaultReplication: 1, logs: [{ ...broken, segments: [{ ...broken.segments[0]!, sealedTail: undefined }, broken.segments[2]!] }] }]) {
      const e = (() => {
        try {
          parseLogsDocument(JSON.parse(JSON.stringify(bad)));
        } catch (err) {
          return err;
        }
      })();
      expect(isCairnError(e, "LOG_CHAIN_INVALID")).toBe(true);
    }
  });
});

describe("placement", () => {
  const live = [1, 2, 3, 4, 5].map((i) => ({ id: N(i), generation: i }));
  test("nodeset size: 1 for r = 1, 2r − 1 otherwise, capped by the live log-servers", () => {
    expect([1, 2, 3].map((r) => desiredNodesetSize(r))).toEqual([1, 3, 5]);
    expect(desiredNodesetSize(2, 4)).toBe(4);
    expect(chooseNodeset({ log: 1, candidates: live.slice(0, 2), replication: 2, size: 3 })).toHaveLength(2);
    const e = (() => {
      try {
        chooseNodeset({ log: 1, candidates: live.slice(0, 1), replication: 2, size: 3 });
      } catch (err) {
        return err;
      }
    })();
    expect(isCairnError(e, "LOG_WRITE_UNAVAILABLE")).toBe(true);
  });

  test("a new nodeset keeps the previous segment's live members and is the same on every node", () => {
    const a = chooseNodeset({ log: 7, candidates: live, replication: 2, size: 3, previous: [N(2), N(9), N(5)] });
    expect(a).toContain(N(2));
    expect(a).toContain(N(5));
    expect(a).toHaveLength(3);
    expect(chooseNodeset({ log: 7, candidates: [...live].reverse(), replication: 2, size: 3, previous: [N(2), N(9), N(5)] })).toEqual(a);
  });

  test("the sequencer stays on its live node (at its current generation), else goes to the least loaded", () => {
    const load = new Map([[N(1), 3], [N(2), 0], [N(3), 1]]);
    const three = live.slice(0, 3);
    expect(chooseSequencer({ log: 1, candidates: three, load, previous: generationalNodeId(3, 1) })).toEqual(generationalNodeId(3, 3));
    expect(chooseSequencer({ log: 1, candidates: three, load, previous: generationalNodeId(9, 1) })).toEqual(generationalNodeId(2, 2));
    expect(chooseSequencer({ log: 1, candidates: three, load, previous: generationalNodeId(2, 1), avoid: N(2) })).toEqual(generationalNodeId(3, 3));
  });
});

describe("segments naming a node (data-loss recovery)", () => {
  test("open segments and sealed ones with records above the trim point count; empty or trimmed sealed ones do not", async () => {
    const { segmentsNaming } = await import("../../src/bifrost/chain.ts");
    const seg = (index: number, baseLsn: number, sealedTail: number | undefined, nodeset: string[]) => ({
      index,
      baseLsn,
      kind: "replicated" as const,
      params: { loglet: `0_${index}`, sequencer: "N1:1", nodeset, replication: 1 },
      ...(sealedTail !== undefined ? { sealedTail } : {}),
      placement: "auto" as const,
      createdAtMs: 0,
    });
    const doc = {
      defaultReplication: 1,
      logs: [{ id: 0, trimPoint: 4, segments: [seg(0, 1, 5, ["N3"]), seg(1, 5, 5, ["N3"]), seg(2, 5, 9, ["N3"]), seg(3, 9, undefined, ["N3"])] }],
    };
    expect(segmentsNaming(doc, "N3" as never)).toEqual(["0_2", "0_3"]);
    expect(segmentsNaming(doc, "N1" as never)).toEqual([]);
  });
});
