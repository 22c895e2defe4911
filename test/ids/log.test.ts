import { describe, expect, test } from "bun:test";
import {
  asLogletId,
  combineTails,
  formatGenerationalNodeId,
  generationalNodeId,
  logletId,
  logId,
  logletOffset,
  lsn,
  lsnToOffset,
  matchesKeyFilter,
  nodeId,
  offsetToLsn,
  parseGenerationalNodeId,
  parseLogletId,
  segmentIndex,
} from "../../src/ids/index.ts";
import { InvariantViolation } from "../../src/observability/errors.ts";

describe("log address types", () => {
  test("LSN = base LSN + offset − 1, and back", () => {
    expect(offsetToLsn(lsn(1), logletOffset(1))).toBe(lsn(1));
    expect(offsetToLsn(lsn(101), logletOffset(5))).toBe(lsn(105));
    expect(lsnToOffset(lsn(101), lsn(105))).toBe(logletOffset(5));
    for (const base of [1, 7, 2 ** 40]) {
      for (const o of [1, 2, 1000]) expect(lsnToOffset(lsn(base), offsetToLsn(lsn(base), logletOffset(o)))).toBe(logletOffset(o));
    }
  });

  test("conversions refuse positions that do not exist", () => {
    expect(() => offsetToLsn(lsn(1), logletOffset(0))).toThrow(InvariantViolation);
    expect(() => offsetToLsn(lsn(0), logletOffset(1))).toThrow(InvariantViolation);
    expect(() => lsnToOffset(lsn(10), lsn(9))).toThrow(InvariantViolation);
    expect(() => lsn(-1)).toThrow(InvariantViolation);
    expect(() => lsn(1.5)).toThrow(InvariantViolation);
    expect(() => logletOffset(2 ** 31 + 1)).toThrow(InvariantViolation);
    expect(() => logId(2 ** 32)).toThrow(InvariantViolation);
    // Messages are built only on failure, and then name the value.
    expect(() => lsn(-1)).toThrow("invariant violated: LSN must be a non-negative safe integer, got -1");
    expect(() => logletOffset(2 ** 31 + 1)).toThrow(`got ${2 ** 31 + 1}`);
  });

  test("ids format and parse", () => {
    expect(logletId(logId(12), segmentIndex(3))).toBe(asLogletId("12_3"));
    expect(parseLogletId("12_3")).toEqual({ log: logId(12), segment: segmentIndex(3), id: asLogletId("12_3") });
    expect(parseLogletId("12-3")).toBeUndefined();
    expect(parseLogletId("012_3")).toBeUndefined();
    expect(nodeId(3)).toBe(nodeId("N3"));
    expect(() => nodeId("node3")).toThrow(InvariantViolation);
    const g = generationalNodeId(3, 5);
    expect(formatGenerationalNodeId(g)).toBe("N3:5");
    expect(parseGenerationalNodeId("N3:5")).toEqual(g);
    expect(parseGenerationalNodeId("N3")).toBeUndefined();
  });

  test("combining tails only moves forward and never unseals", () => {
    const open5 = { offset: logletOffset(5), sealed: false };
    const sealed3 = { offset: logletOffset(3), sealed: true };
    expect(combineTails(open5, sealed3)).toEqual({ offset: logletOffset(5), sealed: true });
  });

  test("key filters: a record without keys matches everything", () => {
    expect(matchesKeyFilter({ kind: "none" }, { kind: "include", key: 5n })).toBe(true);
    expect(matchesKeyFilter({ kind: "single", key: 5n }, { kind: "include", key: 5n })).toBe(true);
    expect(matchesKeyFilter({ kind: "pair", a: 1n, b: 9n }, { kind: "within", from: 8n, to: 10n })).toBe(true);
    expect(matchesKeyFilter({ kind: "range", from: 1n, to: 3n }, { kind: "within", from: 4n, to: 10n })).toBe(false);
    expect(matchesKeyFilter({ kind: "range", from: 1n, to: 4n }, { kind: "within", from: 4n, to: 10n })).toBe(true);
  });
});
