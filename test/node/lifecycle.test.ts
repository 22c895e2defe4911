import { describe, expect, test } from "bun:test";
import { NODE_STATES, NodeLifecycle, isLegalTransition, type NodeLifecycleState } from "../../src/node/index.ts";
import { InvariantViolation } from "../../src/observability/errors.ts";

const LEGAL: Array<[NodeLifecycleState, NodeLifecycleState]> = [
  ["starting", "running"],
  ["starting", "stopping"],
  ["starting", "failed"],
  ["running", "stopping"],
  ["running", "failed"],
  ["stopping", "stopped"],
  ["stopping", "failed"],
  ["failed", "stopped"],
];

/** Reach `state` from `starting` through legal steps. */
function lifecycleIn(state: NodeLifecycleState): NodeLifecycle {
  const path: Record<NodeLifecycleState, NodeLifecycleState[]> = {
    starting: [],
    running: ["running"],
    stopping: ["stopping"],
    failed: ["failed"],
    stopped: ["stopping", "stopped"],
  };
  const l = new NodeLifecycle();
  for (const s of path[state]) l.transition(s, "test");
  return l;
}

describe("node lifecycle", () => {
  test("every legal transition is accepted and reported to listeners", () => {
    for (const [from, to] of LEGAL) {
      const l = lifecycleIn(from);
      const seen: string[] = [];
      l.onChange((a, b, reason) => seen.push(`${a}->${b}:${reason}`));
      l.transition(to, "because");
      expect(l.state).toBe(to);
      expect(l.stateReason).toBe("because");
      expect(seen).toEqual([`${from}->${to}:because`]);
    }
  });

  test("every other transition is rejected as a bug and leaves the state unchanged", () => {
    let rejected = 0;
    for (const from of NODE_STATES) {
      for (const to of NODE_STATES) {
        if (LEGAL.some(([a, b]) => a === from && b === to)) continue;
        expect(isLegalTransition(from, to)).toBe(false);
        const l = lifecycleIn(from);
        expect(() => l.transition(to, "x")).toThrow(InvariantViolation);
        expect(l.state).toBe(from);
        rejected++;
      }
    }
    expect(rejected).toBe(NODE_STATES.length ** 2 - LEGAL.length);
  });
});
