// The invocation state machine over a real partition store: admission and the virtual-object inbox,
// journal order when notifications race an attempt, the suspension race, stale attempts, timers,
// calls between invocations, kill and cancel. Frames are built with the protocol codec, as the SDK
// would send them.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PartitionStore } from "../../../src/worker/store.ts";
import { InvocationStateMachine, type InvokerAction } from "../../../src/worker/invoker/state-machine.ts";
import { encodeFrame, MessageType, decodeMessage } from "../../../src/worker/invoker/protocol/index.ts";
import { formatInvocationId, randomInvocationId } from "../../../src/worker/invoker/ids.ts";
import type { AttemptOutcomeRecord, InvocationRecord, TargetSpec } from "../../../src/worker/invoker/records.ts";
import { partitionKeyOf } from "../../../src/worker/key-hash.ts";

const enc = new TextEncoder();
let dir: string;
let store: PartitionStore;
let sm: InvocationStateMachine;
let clock = 1_000_000;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "cairn-sm-"));
  store = new PartitionStore(join(dir, "p0.sqlite"));
  sm = new InvocationStateMachine(store.invocations, store, { partition: 0, partitionOfKey: () => 0, expireBatch: 10 });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function apply(r: InvocationRecord): { actions: InvokerAction[]; state: string } {
  let out!: ReturnType<InvocationStateMachine["apply"]>;
  store.transaction(() => (out = sm.apply(r, (clock += 10))));
  return { actions: out.actions, state: out.outcome.status === "invocation" ? out.outcome.state : "ignored" };
}

const counter = (key: string): TargetSpec => ({ service: "Counter", handler: "add", key, serviceType: "virtual-object", handlerType: "exclusive" });
const greeter: TargetSpec = { service: "Greeter", handler: "greet", key: null, serviceType: "service", handlerType: null };

function invoke(target: TargetSpec, input = "1"): string {
  const id = formatInvocationId(randomInvocationId(target.key === null ? 7n : partitionKeyOf(target.service, target.key)));
  apply({ kind: "invoke", invocationId: id, target, input: enc.encode(input), headers: [], idempotencyKey: null, executeAtMs: null, caller: null, retentionMs: 60_000, source: null });
  return id;
}

function attempt(id: string, frames: Uint8Array[], outcome: AttemptOutcomeRecord, targets: Array<{ commandIndex: number; resolved: { target: TargetSpec; retentionMs: number } }> = []) {
  const row = store.invocations.get(id)!;
  return apply({ kind: "invoker-attempt", invocationId: id, journalLength: row.journalLength, commandCount: row.commandCount, frames, outcome, targets });
}

const end: AttemptOutcomeRecord = { kind: "end" };
const output = (text: string) => encodeFrame({ kind: "output", result: { value: enc.encode(text) }, name: "" });
const suspended = (completions: number[], signals: number[] = [1]): AttemptOutcomeRecord => ({ kind: "suspended", completions, signals, namedSignals: [] });
const journalKinds = (id: string) => store.invocations.journal(id).map((e) => decodeMessage(e.type, e.frame.subarray(8)).kind);

describe("invocation state machine", () => {
  test("a second exclusive invocation of a key waits in the inbox and runs, in order, after the first ends", () => {
    const a = invoke(counter("k"));
    const b = invoke(counter("k"));
    const c = invoke(counter("k"));
    const other = invoke(counter("other"));
    expect(store.invocations.get(a)!.status).toBe("ready");
    expect(store.invocations.get(b)!.status).toBe("inboxed");
    expect(store.invocations.get(c)!.status).toBe("inboxed");
    expect(store.invocations.get(other)!.status).toBe("ready");
    const r = attempt(a, [output("1")], end);
    expect(r.state).toBe("completed");
    expect(r.actions).toContainEqual({ kind: "run", invocationId: b });
    expect(store.invocations.get(c)!.status).toBe("inboxed");
    // The lock is held across a suspension: c still waits.
    attempt(b, [encodeFrame({ kind: "sleep", wakeUpTimeMs: clock + 1000, resultCompletionId: 1, name: "" })], suspended([1]));
    expect(store.invocations.get(b)!.status).toBe("suspended");
    expect(store.invocations.get(c)!.status).toBe("inboxed");
    apply({ kind: "invocation-timer", invocationId: b, completionId: 1 });
    attempt(b, [output("2")], end);
    expect(store.invocations.get(c)!.status).toBe("ready");
  });

  test("a notification that arrives while an attempt runs is stored after the attempt's commands", () => {
    const a = invoke(greeter);
    const startedWith = store.invocations.get(a)!;
    // Signal 17 (an awakeable) arrives during the attempt.
    apply({
      kind: "invocation-notify",
      invocationId: a,
      frame: encodeFrame({ kind: "notification", type: MessageType.Signal, id: { signalId: 17 }, result: { value: enc.encode('"x"') } }),
      source: null,
    });
    expect(store.invocations.get(a)!.journalLength).toBe(2);
    const run = encodeFrame({ kind: "run", resultCompletionId: 1, name: "r" });
    const propose = encodeFrame({ kind: "proposeRunCompletion", resultCompletionId: 1, result: { value: enc.encode('"v"') } });
    const r = apply({
      kind: "invoker-attempt",
      invocationId: a,
      journalLength: startedWith.journalLength,
      commandCount: startedWith.commandCount,
      frames: [run, propose],
      outcome: suspended([1]),
      targets: [],
    });
    expect(journalKinds(a)).toEqual(["input", "run", "notification", "notification"]);
    const types = store.invocations.journal(a).map((e) => e.type);
    expect(types).toEqual([MessageType.InputCommand, MessageType.RunCommand, MessageType.RunCompletion, MessageType.Signal]);
    // The suspension waited for completion 1, which the run's proposal already stored: it runs again at once.
    expect(r.state).toBe("ready");
    expect(r.actions).toContainEqual({ kind: "run", invocationId: a });
  });

  test("an attempt whose journal has moved on is ignored", () => {
    const a = invoke(greeter);
    const row = store.invocations.get(a)!;
    const run = encodeFrame({ kind: "run", resultCompletionId: 1, name: "r" });
    const record: InvocationRecord = { kind: "invoker-attempt", invocationId: a, journalLength: row.journalLength, commandCount: row.commandCount, frames: [run], outcome: suspended([1]), targets: [] };
    expect(apply(record).state).toBe("suspended");
    expect(apply(record).state).toBe("ignored");
    expect(store.invocations.get(a)!.journalLength).toBe(2);
  });

  test("a call to a local service creates the child at once; its end completes the caller's await", () => {
    const parent = invoke(greeter);
    const call = encodeFrame({ kind: "call", serviceName: "Greeter", handlerName: "greet", parameter: enc.encode('"a"'), headers: [], key: "", invocationIdNotificationIdx: 1, resultCompletionId: 2, name: "" });
    const r = attempt(parent, [call], suspended([2]), [{ commandIndex: 1, resolved: { target: greeter, retentionMs: 1000 } }]);
    expect(r.state).toBe("suspended");
    const run = r.actions.find((x) => x.kind === "run" && x.invocationId !== parent);
    expect(run).toBeDefined();
    const child = (run as { invocationId: string }).invocationId;
    expect(journalKinds(parent)).toEqual(["input", "call", "notification"]);
    const done = attempt(child, [output("Hello a")], end);
    expect(done.state).toBe("completed");
    expect(store.invocations.get(parent)!.status).toBe("ready");
    expect(store.invocations.journal(parent).map((e) => e.type)).toEqual([MessageType.InputCommand, MessageType.CallCommand, MessageType.CallInvocationIdCompletion, MessageType.CallCompletion]);
  });

  test("a failed attempt keeps nothing of its commands and backs off; retries count up until the journal grows", () => {
    const a = invoke(greeter);
    const row = store.invocations.get(a)!;
    const r = apply({
      kind: "invoker-attempt",
      invocationId: a,
      journalLength: row.journalLength,
      commandCount: row.commandCount,
      frames: [],
      outcome: { kind: "error", message: "500 boom", retryAtMs: clock + 500, fail: null },
      targets: [],
    });
    expect(r.state).toBe("backing-off");
    expect(r.actions).toContainEqual({ kind: "retry", invocationId: a, atMs: expect.any(Number) });
    expect(store.invocations.get(a)!.retryCount).toBe(1);
    attempt(a, [encodeFrame({ kind: "run", resultCompletionId: 1, name: "r" })], suspended([1]));
    expect(store.invocations.get(a)!.retryCount).toBe(0);
  });

  test("kill ends an inboxed invocation with 409 and frees nothing it did not hold", () => {
    const a = invoke(counter("k"));
    const b = invoke(counter("k"));
    apply({ kind: "invocation-control", invocationId: b, action: "kill", source: null });
    const killed = store.invocations.get(b)!;
    expect(killed.status).toBe("completed");
    expect(killed.result).toEqual({ failure: { code: 409, message: "killed", metadata: [] } });
    expect(store.invocations.lockHolder("Counter", "k")).toBe(a);
    attempt(a, [output("1")], end);
    expect(store.invocations.lockHolder("Counter", "k")).toBeUndefined();
  });

  test("state writes of an exclusive handler land in the object's state and bump its version", () => {
    const a = invoke(counter("k"));
    const set = encodeFrame({ kind: "setState", key: enc.encode("count"), value: enc.encode("5"), name: "" });
    attempt(a, [set, output("5")], end);
    expect(new TextDecoder().decode(store.get("Counter", "k", "count"))).toBe("5");
    expect(store.objectVersion("Counter", "k")).toBe(1);
  });

  test("a shared handler that writes state fails instead of writing", () => {
    const target: TargetSpec = { service: "Counter", handler: "get", key: "k", serviceType: "virtual-object", handlerType: "shared" };
    const a = invoke(target);
    const set = encodeFrame({ kind: "setState", key: enc.encode("count"), value: enc.encode("5"), name: "" });
    expect(attempt(a, [set, output("5")], end).state).toBe("completed");
    expect(store.invocations.get(a)!.result).toMatchObject({ failure: { code: 500 } });
    expect(store.get("Counter", "k", "count")).toBeUndefined();
  });
});

function invokeWithFirstAttempt(id: string, firstAttempt: { frames: Uint8Array[]; targets: []; outcome: AttemptOutcomeRecord }) {
  return apply({ kind: "invoke", invocationId: id, target: greeter, input: enc.encode('"a"'), headers: [], idempotencyKey: null, executeAtMs: null, caller: null, retentionMs: 60_000, source: null, firstAttempt });
}

describe("a first attempt recorded with its invocation", () => {
  test("an invocation whose first attempt ended completes in the record that admits it, and no attempt is started", () => {
    const id = formatInvocationId(randomInvocationId(9n));
    const r = invokeWithFirstAttempt(id, { frames: [output('"Hello a"')], targets: [], outcome: end });
    expect(r.state).toBe("completed");
    expect(r.actions.some((a) => a.kind === "run")).toBe(false);
    expect(r.actions).toContainEqual({ kind: "completed", invocationId: id, result: { value: enc.encode('"Hello a"') } });
  });

  test("a first attempt that suspended on a run resumes at once from its stored completion", () => {
    const id = formatInvocationId(randomInvocationId(9n));
    const run = encodeFrame({ kind: "run", resultCompletionId: 1, name: "r" });
    const propose = encodeFrame({ kind: "proposeRunCompletion", resultCompletionId: 1, result: { value: enc.encode("1") } });
    const r = invokeWithFirstAttempt(id, { frames: [run, propose], targets: [], outcome: suspended([1]) });
    expect(r.state).toBe("ready");
    expect(r.actions.filter((a) => a.kind === "run")).toEqual([{ kind: "run", invocationId: id }]);
    expect(journalKinds(id)).toEqual(["input", "run", "notification"]);
  });
});

describe("a first attempt of an object's handler", () => {
  const set = (v: string) => encodeFrame({ kind: "setState", key: enc.encode("count"), value: enc.encode(v), name: "" });
  const invokeObject = (id: string, objectVersion: number) =>
    apply({
      kind: "invoke",
      invocationId: id,
      target: counter("k"),
      input: enc.encode("1"),
      headers: [],
      idempotencyKey: null,
      executeAtMs: null,
      caller: null,
      retentionMs: 60_000,
      source: null,
      firstAttempt: { frames: [set("1"), output("1")], targets: [], outcome: end, objectVersion },
    });

  test("counts when the object stayed unlocked at the version it read", () => {
    const id = formatInvocationId(randomInvocationId(partitionKeyOf("Counter", "k")));
    expect(invokeObject(id, 0).state).toBe("completed");
    expect(new TextDecoder().decode(store.get("Counter", "k", "count"))).toBe("1");
  });

  test("is dropped when another handler changed the object meanwhile: the invocation runs anew", () => {
    const other = invoke(counter("k"));
    attempt(other, [set("7"), output("7")], end);
    const id = formatInvocationId(randomInvocationId(partitionKeyOf("Counter", "k")));
    const r = invokeObject(id, 0);
    expect(r.state).toBe("ready");
    expect(r.actions).toContainEqual({ kind: "run", invocationId: id });
    expect(new TextDecoder().decode(store.get("Counter", "k", "count"))).toBe("7");
  });

  test("is dropped while another exclusive handler holds the object: it waits in the inbox", () => {
    invoke(counter("k"));
    const id = formatInvocationId(randomInvocationId(partitionKeyOf("Counter", "k")));
    expect(invokeObject(id, 0).state).toBe("inboxed");
    expect(store.get("Counter", "k", "count")).toBeUndefined();
  });
});
