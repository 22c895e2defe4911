import { describe, expect, test } from "bun:test";
import {
  METADATA_SERVER_STATES,
  checkOperatorRequest,
  nextMetadataServerState,
  transitionMetadataServerState,
  type MetadataServerEvent,
} from "../../src/metadata/server-state.ts";
import { CairnError, InvariantViolation } from "../../src/observability/errors.ts";

const EVENTS: MetadataServerEvent[] = [
  { kind: "register", autoJoin: true },
  { kind: "register", autoJoin: false },
  { kind: "seed" },
  { kind: "promoted" },
  { kind: "removed" },
  { kind: "operator-add" },
];
const FROM = ["unregistered", ...METADATA_SERVER_STATES] as const;

const LEGAL: Array<[string, string, string]> = [
  ["unregistered", "register(auto-join)", "auto-join"],
  ["unregistered", "register(no auto-join)", "standby"],
  ["unregistered", "seed", "member"],
  ["auto-join", "seed", "member"],
  ["standby", "seed", "member"],
  ["auto-join", "promoted", "member"],
  ["member", "removed", "standby"],
  ["standby", "operator-add", "auto-join"],
];

function label(e: MetadataServerEvent): string {
  return e.kind === "register" ? `register(${e.autoJoin ? "auto-join" : "no auto-join"})` : e.kind;
}

describe("metadata-server states", () => {
  test("every legal transition leads where it should", () => {
    for (const [from, event, to] of LEGAL) {
      const e = EVENTS.find((x) => label(x) === event)!;
      expect(transitionMetadataServerState(from as (typeof FROM)[number], e)).toBe(to as never);
    }
  });

  test("every other (state, event) pair is rejected loudly", () => {
    let illegal = 0;
    for (const from of FROM) {
      for (const e of EVENTS) {
        if (LEGAL.some(([f, ev]) => f === from && ev === label(e))) continue;
        expect(nextMetadataServerState(from, e)).toBeUndefined();
        expect(() => transitionMetadataServerState(from, e)).toThrow(InvariantViolation);
        illegal++;
      }
    }
    expect(illegal).toBe(FROM.length * EVENTS.length - LEGAL.length);
  });

  test("a new node is never registered as a member, and nothing demotes auto-join to standby", () => {
    for (const e of EVENTS) {
      if (e.kind === "register") expect(nextMetadataServerState("unregistered", e)).not.toBe("member");
      expect(nextMetadataServerState("auto-join", e)).not.toBe("standby");
    }
  });

  test("operator requests that cannot apply are refused with a clear error", () => {
    const code = (fn: () => void) => {
      try {
        fn();
        return "ok";
      } catch (e) {
        return (e as CairnError).code;
      }
    };
    expect(code(() => checkOperatorRequest("N2", "standby", "add"))).toBe("ok");
    expect(code(() => checkOperatorRequest("N2", "member", "add"))).toBe("CAIRN-METADATA-0010");
    expect(code(() => checkOperatorRequest("N2", "auto-join", "add"))).toBe("CAIRN-METADATA-0010");
    expect(code(() => checkOperatorRequest("N2", "member", "remove"))).toBe("ok");
    expect(code(() => checkOperatorRequest("N2", "auto-join", "remove"))).toBe("CAIRN-METADATA-0010");
    expect(code(() => checkOperatorRequest("N2", "standby", "remove"))).toBe("CAIRN-METADATA-0010");
  });
});
