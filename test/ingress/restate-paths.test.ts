// The pure parts of Restate's ingress API: reading a path into a route (and, once the service's type is
// known, into key/handler/send), and the friendly and ISO 8601 delays of a send.
import { describe, expect, test } from "bun:test";
import { parseDelayMs, RESERVED_NAMES } from "../../src/ingress/restate/index.ts";
import { idempotentTarget, parseRestatePath, servicePathTarget } from "../../src/ingress/restate/paths.ts";

describe("delays", () => {
  test("friendly durations, combined and spelled out", () => {
    const cases: Array<[string, number]> = [
      ["0ms", 0],
      ["100ms", 100],
      ["10s", 10_000],
      ["60sec", 60_000],
      ["1m", 60_000],
      ["2min", 120_000],
      ["1h30m", 5_400_000],
      ["1h 30m 5s", 5_405_000],
      ["2days", 172_800_000],
      ["1w", 604_800_000],
      ["1.5s", 1_500],
      ["3 seconds", 3_000],
    ];
    for (const [text, ms] of cases) expect({ text, ms: parseDelayMs(text) }).toEqual({ text, ms });
  });

  test("ISO 8601 durations", () => {
    const cases: Array<[string, number]> = [
      ["PT1S", 1_000],
      ["PT0.5S", 500],
      ["PT1M30S", 90_000],
      ["P1D", 86_400_000],
      ["P1DT2H", 93_600_000],
      ["pt2h", 7_200_000],
      ["P1W", 604_800_000],
    ];
    for (const [text, ms] of cases) expect({ text, ms: parseDelayMs(text) }).toEqual({ text, ms });
  });

  test("anything else is not a duration", () => {
    for (const text of ["", " ", "10", "soon", "-1s", "10 parsecs", "1s2", "P", "PT", "P1DT", "PT1X", "1e400s", "s10"]) {
      expect({ text, ms: parseDelayMs(text) }).toEqual({ text, ms: undefined });
    }
  });
});

describe("paths", () => {
  test("service, object and handle paths, percent-decoded once", () => {
    expect(parseRestatePath("/Greeter/greet")).toEqual({ kind: "service", service: "Greeter", rest: ["greet"], mode: "from-path" });
    expect(parseRestatePath("/Counter/a%2Fb%2520/add/send")).toEqual({ kind: "service", service: "Counter", rest: ["a/b%20", "add", "send"], mode: "from-path" });
    expect(parseRestatePath("/restate/send/Counter/k/add")).toEqual({ kind: "service", service: "Counter", rest: ["k", "add"], mode: "send" });
    expect(parseRestatePath("/restate/invocation/inv_1x/attach")).toEqual({ kind: "invocation-id", op: "attach", invocationId: "inv_1x" });
    expect(parseRestatePath("/restate/output/inv_1x")).toEqual({ kind: "invocation-id", op: "output", invocationId: "inv_1x" });
    expect(parseRestatePath("/restate/invocation/Counter/k/add/idem/output")).toEqual({ kind: "invocation-idempotent", op: "output", service: "Counter", rest: ["k", "add", "idem"] });
    expect(parseRestatePath("/restate/workflow/Signup/k%20/attach")).toEqual({ kind: "workflow", op: "attach", service: "Signup", key: "k " });
    expect(parseRestatePath("/restate/a/sign_1x/reject")).toEqual({ kind: "awakeable", op: "reject", awakeableId: "sign_1x" });
    expect(parseRestatePath("/restate/health")).toEqual({ kind: "health" });
  });

  test("cairn's reserved names are never services; malformed paths are refused with a code", () => {
    for (const name of RESERVED_NAMES.filter((n) => n !== "restate")) expect(parseRestatePath(`/${name}/x/y`)).toEqual({ kind: "cairn" });
    for (const path of ["/", "/Greeter", "/a/b/c/d/e", "/restate/nope", "/restate/workflow/W/k", "/restate/invocation/x", "/restate/awakeables/x", "/Counter/%zz/add"]) {
      expect({ path, r: parseRestatePath(path) }).toMatchObject({ path, r: { kind: "refused", error: "INVOKE_BAD_PATH" } });
    }
    expect(parseRestatePath("/restate/scope/s/call/Greeter/greet")).toMatchObject({ kind: "refused", error: "INVOKE_UNSUPPORTED" });
  });

  test("the service's type decides what the segments after its name mean", () => {
    expect(servicePathTarget("service", ["greet"], "from-path")).toEqual({ key: null, handler: "greet", send: false });
    expect(servicePathTarget("service", ["greet", "send"], "from-path")).toEqual({ key: null, handler: "greet", send: true });
    expect(servicePathTarget("service", ["send"], "from-path")).toEqual({ key: null, handler: "send", send: false });
    expect(servicePathTarget("virtual-object", ["k", "send"], "from-path")).toEqual({ key: "k", handler: "send", send: false });
    expect(servicePathTarget("workflow", ["k", "run", "send"], "from-path")).toEqual({ key: "k", handler: "run", send: true });
    expect(servicePathTarget("virtual-object", ["k", "add"], "send")).toEqual({ key: "k", handler: "add", send: true });
    expect(servicePathTarget("service", ["k", "greet"], "from-path")).toMatchObject({ kind: "refused", error: "INVOKE_BAD_PATH" });
    expect(servicePathTarget("virtual-object", ["add"], "from-path")).toMatchObject({ kind: "refused", error: "INVOKE_BAD_PATH" });
    // An explicit /restate/send/… path takes no trailing `send`.
    expect(servicePathTarget("service", ["greet", "send"], "send")).toMatchObject({ kind: "refused", error: "INVOKE_BAD_PATH" });
    expect(idempotentTarget("service", ["greet", "i"])).toEqual({ key: null, handler: "greet", idempotencyKey: "i" });
    expect(idempotentTarget("workflow", ["k", "run", "i"])).toEqual({ key: "k", handler: "run", idempotencyKey: "i" });
    expect(idempotentTarget("virtual-object", ["add", "i"])).toMatchObject({ kind: "refused" });
  });
});
