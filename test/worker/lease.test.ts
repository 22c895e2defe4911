import { describe, expect, test } from "bun:test";
import { LEASE_CLOCK_MARGIN, LeaderLeases } from "../../src/worker/lease.ts";

describe("leader leases", () => {
  test("a confirmation covers reads for one lease from when it started, and only at its epoch", () => {
    const l = new LeaderLeases(250);
    expect(l.holds(3, 1, 0)).toBe(false);
    l.confirmed(3, 1, 1_000);
    expect(l.holds(3, 1, 1_000)).toBe(true);
    expect(l.holds(3, 1, 1_249)).toBe(true);
    expect(l.holds(3, 1, 1_250)).toBe(false);
    expect(l.holds(3, 2, 1_100)).toBe(false);
    expect(l.holds(4, 1, 1_100)).toBe(false);
  });

  test("an older confirmation finishing late never shortens the lease", () => {
    const l = new LeaderLeases(250);
    l.confirmed(0, 1, 2_000);
    l.confirmed(0, 1, 1_900);
    expect(l.holds(0, 1, 2_200)).toBe(true);
  });

  test("a new leadership answers nothing until every lease of an older epoch has run out", () => {
    const leaseMs = 250;
    const old = new LeaderLeases(leaseMs);
    const next = new LeaderLeases(leaseMs);
    // The old leader's last confirmation started at 1 000 and was linearized before the bump.
    old.confirmed(7, 4, 1_000);
    // The bump to epoch 5 returned at 1 010 on the new leader's clock.
    next.won(7, 5, 1_010);
    const lastOldRead = 1_000 + leaseMs - 1;
    expect(old.holds(7, 4, lastOldRead)).toBe(true);
    // Up to then (and with the clock margin, beyond) the new leader must wait.
    expect(next.waitMs(7, 5, lastOldRead)).toBeGreaterThan(0);
    const firstNewAnswer = 1_010 + leaseMs * LEASE_CLOCK_MARGIN;
    expect(next.waitMs(7, 5, firstNewAnswer - 1)).toBeGreaterThan(0);
    expect(next.waitMs(7, 5, firstNewAnswer)).toBe(0);
    expect(old.holds(7, 4, firstNewAnswer)).toBe(false);
    // A gate is for its own epoch only.
    expect(next.waitMs(7, 6, 1_011)).toBe(0);
  });

  test("winning an epoch drops the lease held for an older one", () => {
    const l = new LeaderLeases(250);
    l.confirmed(1, 2, 0);
    l.won(1, 3, 10);
    expect(l.holds(1, 2, 20)).toBe(false);
    expect(l.holds(1, 3, 20)).toBe(false);
  });
});
