// The service-protocol codec: every message kind survives encode → decode, payloads written by hand from
// the protocol's field tables decode as the tables say, and malformed input is a ProtocolError.
import { describe, expect, test } from "bun:test";
import {
  chooseProtocolVersion,
  decodeMessage,
  encodeFrame,
  encodeMessage,
  MessageType,
  messageTypeOf,
  parseFrame,
  ProtocolError,
  REQUESTED_ACK_FLAG,
  type Failure,
  type ProtocolMessage,
} from "../../../../src/worker/invoker/protocol/index.ts";

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const failure: Failure = { code: 409, message: "nope", metadata: [{ key: "k", value: "v" }] };
const future = {
  waitingCompletions: [3],
  waitingSignals: [],
  waitingNamedSignals: [],
  nestedFutures: [{ waitingCompletions: [], waitingSignals: [1, 17], waitingNamedSignals: ["go"], nestedFutures: [], combinatorType: 1 }],
  combinatorType: 4,
};

const SAMPLES: ProtocolMessage[] = [
  {
    kind: "start",
    id: new Uint8Array(24).fill(7),
    debugId: "inv_1abc",
    knownEntries: 3,
    stateMap: [
      { key: b("count"), value: b("5") },
      { key: b("empty"), value: new Uint8Array(0) },
    ],
    partialState: true,
    key: "k1",
    retryCountSinceLastStoredEntry: 2,
    durationSinceLastStoredEntryMs: 1234,
    randomSeed: 0xfedcba9876543210n,
    scope: "s",
    limitKey: "l",
    idempotencyKey: "i",
  },
  { kind: "start", id: new Uint8Array(24), debugId: "inv_1", knownEntries: 1, stateMap: [], partialState: false, key: "", retryCountSinceLastStoredEntry: 0, durationSinceLastStoredEntryMs: 0, randomSeed: 0n },
  { kind: "suspension", waitingCompletions: [1, 2], waitingSignals: [1], waitingNamedSignals: ["n"] },
  { kind: "suspension", waitingCompletions: [], waitingSignals: [], waitingNamedSignals: [], awaitingOn: future },
  { kind: "error", code: 500, message: "boom", stacktrace: "at x", relatedCommandIndex: 1, relatedCommandName: "r", relatedCommandType: 0x0411, nextRetryDelayMs: 50, behavior: "pause" },
  { kind: "error", code: 570, message: "mismatch", stacktrace: "" },
  { kind: "error", code: 500, message: "", stacktrace: "", relatedCommandIndex: 0, behavior: "retry" },
  { kind: "end" },
  { kind: "commandAck", commandIndex: 4 },
  { kind: "proposeRunCompletion", resultCompletionId: 1, result: { value: b('"x"') } },
  { kind: "proposeRunCompletion", resultCompletionId: 2, result: { value: new Uint8Array(0) } },
  { kind: "proposeRunCompletion", resultCompletionId: 3, result: { failure } },
  { kind: "awaitingOn", awaitingOn: future, executingSideEffects: true },
  { kind: "proposeRunCompletionAck", completionId: 1 },
  { kind: "input", headers: [{ key: "h", value: "v" }], value: b('"x"'), name: "" },
  { kind: "output", result: { value: b('"Hello x"') }, name: "" },
  { kind: "output", result: { failure }, name: "out" },
  { kind: "getLazyState", key: b("count"), resultCompletionId: 1, name: "" },
  { kind: "setState", key: b("count"), value: b("8"), name: "" },
  { kind: "clearState", key: b("count"), name: "" },
  { kind: "clearAllState", name: "" },
  { kind: "getLazyStateKeys", resultCompletionId: 2, name: "" },
  { kind: "getEagerState", key: b("count"), result: { void: true }, name: "" },
  { kind: "getEagerState", key: b("count"), result: { value: b("5") }, name: "" },
  { kind: "getEagerStateKeys", keys: [b("a"), b("b")], name: "" },
  { kind: "getPromise", key: "p", resultCompletionId: 1, name: "" },
  { kind: "peekPromise", key: "p", resultCompletionId: 2, name: "" },
  { kind: "completePromise", key: "p", completion: { value: b("1") }, resultCompletionId: 3, name: "" },
  { kind: "completePromise", key: "p", completion: { failure }, resultCompletionId: 4, name: "" },
  { kind: "sleep", wakeUpTimeMs: 1_765_000_000_123, resultCompletionId: 4, name: "nap" },
  {
    kind: "call",
    serviceName: "Greeter",
    handlerName: "greet",
    parameter: b('"a"'),
    headers: [{ key: "x", value: "y" }],
    key: "",
    idempotencyKey: "idem",
    scope: "sc",
    limitKey: "lk",
    invocationIdNotificationIdx: 1,
    resultCompletionId: 2,
    name: "",
  },
  { kind: "call", serviceName: "S", handlerName: "h", parameter: new Uint8Array(0), headers: [], key: "k", invocationIdNotificationIdx: 1, resultCompletionId: 2, name: "" },
  { kind: "oneWayCall", serviceName: "Counter", handlerName: "add", parameter: b("10"), invokeTimeMs: 1_765_000_001_000, headers: [], key: "c", invocationIdNotificationIdx: 3, name: "" },
  { kind: "sendSignal", targetInvocationId: "inv_1x", signal: { idx: 1 }, result: { void: true }, name: "" },
  { kind: "sendSignal", targetInvocationId: "inv_1x", signal: { name: "go" }, result: { value: b("1") }, name: "sig" },
  { kind: "sendSignal", targetInvocationId: "inv_1x", signal: { idx: 17 }, result: { failure }, name: "" },
  { kind: "run", resultCompletionId: 1, name: "first" },
  { kind: "attachInvocation", target: { invocationId: "inv_1y" }, resultCompletionId: 5, name: "" },
  { kind: "attachInvocation", target: { workflow: { workflowName: "Signup", workflowKey: "a@b", scope: "s" } }, resultCompletionId: 5, name: "" },
  {
    kind: "getInvocationOutput",
    target: { idempotentRequest: { serviceName: "Greeter", serviceKey: "k", handlerName: "greet", idempotencyKey: "ik" } },
    resultCompletionId: 6,
    name: "",
  },
  { kind: "getInvocationOutput", target: { workflow: { workflowName: "Signup", workflowKey: "" } }, resultCompletionId: 6, name: "" },
  { kind: "completeAwakeable", awakeableId: "sign_1abc", result: { value: b('"ok"') }, name: "" },
  { kind: "completeAwakeable", awakeableId: "sign_1abc", result: { failure }, name: "" },
  { kind: "notification", type: MessageType.GetLazyStateCompletion, id: { completionId: 1 }, result: { void: true } },
  { kind: "notification", type: MessageType.GetLazyStateKeysCompletion, id: { completionId: 2 }, result: { stateKeys: [b("a"), new Uint8Array(0)] } },
  { kind: "notification", type: MessageType.GetPromiseCompletion, id: { completionId: 1 }, result: { value: b("v") } },
  { kind: "notification", type: MessageType.PeekPromiseCompletion, id: { completionId: 2 }, result: { void: true } },
  { kind: "notification", type: MessageType.CompletePromiseCompletion, id: { completionId: 3 }, result: { failure } },
  { kind: "notification", type: MessageType.SleepCompletion, id: { completionId: 4 }, result: { void: true } },
  { kind: "notification", type: MessageType.CallCompletion, id: { completionId: 2 }, result: { value: b('"Hello a"') } },
  { kind: "notification", type: MessageType.CallInvocationIdCompletion, id: { completionId: 1 }, result: { invocationId: "inv_1child" } },
  { kind: "notification", type: MessageType.RunCompletion, id: { completionId: 0 }, result: { value: new Uint8Array(0) } },
  { kind: "notification", type: MessageType.AttachInvocationCompletion, id: { completionId: 5 }, result: { failure } },
  { kind: "notification", type: MessageType.GetInvocationOutputCompletion, id: { completionId: 6 }, result: { void: true } },
  { kind: "notification", type: MessageType.Signal, id: { signalId: 17 }, result: { value: b('"woken"') } },
  { kind: "notification", type: MessageType.Signal, id: { signalName: "go" }, result: { void: true } },
  { kind: "notification", type: MessageType.Signal, id: { signalId: 1 }, result: { failure: { code: 409, message: "canceled", metadata: [] } } },
  { kind: "custom", type: 0xfc00, payload: b("opaque") },
  { kind: "custom", type: 0xffff, payload: new Uint8Array(0) },
];

describe("codec round trips", () => {
  test("every kind of message is covered by a sample", () => {
    const kinds = new Set(SAMPLES.map((m) => m.kind));
    const types = new Set(SAMPLES.map(messageTypeOf));
    for (const id of Object.values(MessageType)) expect(types.has(id)).toBe(true);
    expect(kinds.size).toBe(30); // 8 control, 20 commands, the generic notification, custom
  });

  for (const m of SAMPLES) {
    const label = m.kind === "notification" || m.kind === "custom" ? `${m.kind} 0x${m.type.toString(16)}` : m.kind;
    test(`${label}: decode(encode(m)) = m, and as a frame`, () => {
      const type = messageTypeOf(m);
      const payload = encodeMessage(m);
      expect(decodeMessage(type, payload)).toEqual(m);
      const frame = parseFrame(encodeFrame(m));
      expect(frame.type).toBe(type);
      expect(frame.flags).toBe(0);
      expect(frame.payload).toEqual(payload);
      expect(decodeMessage(frame.type, frame.payload)).toEqual(m);
    });
  }

  test("the random seed keeps all 64 bits and absent optional fields are undefined", () => {
    const start = SAMPLES[1]!;
    const decoded = decodeMessage(MessageType.Start, encodeMessage({ ...(start as Extract<ProtocolMessage, { kind: "start" }>), randomSeed: 2n ** 64n - 1n }));
    expect(decoded.kind).toBe("start");
    if (decoded.kind !== "start") return;
    expect(decoded.randomSeed).toBe(2n ** 64n - 1n);
    expect(typeof decoded.randomSeed).toBe("bigint");
    expect(decoded.scope).toBeUndefined();
    expect(decoded.idempotencyKey).toBeUndefined();
    expect(decoded.id).toBeInstanceOf(Uint8Array);
  });

  test("the ack flag travels in the frame header", () => {
    const frame = parseFrame(encodeFrame(SAMPLES[9]!, REQUESTED_ACK_FLAG));
    expect(frame.flags).toBe(REQUESTED_ACK_FLAG);
    expect(frame.raw[2]).toBe(0x80);
  });
});

describe("payloads written from the field tables", () => {
  test("Output failure: field 15 {code 1, message 2}", () => {
    // 7a 07 | 08 99 03 (code 409) 12 02 'n' 'o'
    const m = decodeMessage(MessageType.OutputCommand, Uint8Array.from([0x7a, 0x07, 0x08, 0x99, 0x03, 0x12, 0x02, 0x6e, 0x6f]));
    expect(m).toEqual({ kind: "output", result: { failure: { code: 409, message: "no", metadata: [] } }, name: "" });
  });

  test("V5/V6 Suspension: repeated completions 1, signals 2 (packed or not)", () => {
    // 0a 02 01 02 (packed completions [1,2]) 10 01 (signal 1, unpacked) 1a 01 'n'
    const m = decodeMessage(MessageType.Suspension, Uint8Array.from([0x0a, 0x02, 0x01, 0x02, 0x10, 0x01, 0x1a, 0x01, 0x6e]));
    expect(m).toEqual({ kind: "suspension", waitingCompletions: [1, 2], waitingSignals: [1], waitingNamedSignals: ["n"], awaitingOn: undefined });
  });

  test("V7 Suspension: awaiting_on 4 = Future{completions 1: [1], signals 2: [1], combinator 5: 1}", () => {
    const m = decodeMessage(MessageType.Suspension, Uint8Array.from([0x22, 0x08, 0x0a, 0x01, 0x01, 0x12, 0x01, 0x01, 0x28, 0x01]));
    expect(m).toEqual({
      kind: "suspension",
      waitingCompletions: [],
      waitingSignals: [],
      waitingNamedSignals: [],
      awaitingOn: { waitingCompletions: [1], waitingSignals: [1], waitingNamedSignals: [], nestedFutures: [], combinatorType: 1 },
    });
  });

  test("Run completion notification: completion_id 1, value 5 = Value{content 1}", () => {
    const payload = encodeMessage({ kind: "notification", type: MessageType.RunCompletion, id: { completionId: 1 }, result: { value: b("x") } });
    expect([...payload]).toEqual([0x08, 0x01, 0x2a, 0x03, 0x0a, 0x01, 0x78]);
  });

  test("Error: next_retry_delay 8 and behavior 9", () => {
    const m = decodeMessage(MessageType.Error, Uint8Array.from([0x08, 0xf4, 0x03, 0x40, 0x32, 0x48, 0x02]));
    expect(m).toEqual({ kind: "error", code: 500, message: "", stacktrace: "", nextRetryDelayMs: 50, behavior: "fail" });
  });
});

describe("malformed input", () => {
  const bad = (type: number, bytes: number[]) => () => decodeMessage(type, Uint8Array.from(bytes));
  test("a truncated payload is a ProtocolError", () => {
    expect(bad(MessageType.Start, [0x0a, 0x05, 0x01])).toThrow(ProtocolError);
    expect(bad(MessageType.OutputCommand, [0x7a])).toThrow(ProtocolError);
  });
  test("an unknown type is a ProtocolError; the custom range is opaque", () => {
    expect(bad(0x0415, [])).toThrow(ProtocolError);
    expect(bad(0x0008, [])).toThrow(ProtocolError);
    expect(bad(0x8003, [0x08, 0x01, 0x22, 0x00])).toThrow(ProtocolError);
    expect(bad(0x10000, [])).toThrow(ProtocolError);
    expect(decodeMessage(0xfc01, Uint8Array.from([1, 2]))).toEqual({ kind: "custom", type: 0xfc01, payload: Uint8Array.from([1, 2]) });
  });
  test("a result-bearing message without its result is a ProtocolError", () => {
    expect(bad(MessageType.OutputCommand, [])).toThrow(ProtocolError);
    expect(bad(MessageType.RunCompletion, [0x08, 0x01])).toThrow(ProtocolError);
    expect(bad(MessageType.SleepCompletion, [0x22, 0x00])).toThrow(ProtocolError);
    expect(bad(MessageType.ProposeRunCompletion, [0x08, 0x01])).toThrow(ProtocolError);
    expect(bad(MessageType.Error, [0x48, 0x07])).toThrow(ProtocolError);
  });
  test("encoding a non-notification type as a notification is refused", () => {
    expect(() => encodeMessage({ kind: "notification", type: 0x0400, id: { completionId: 1 }, result: { void: true } })).toThrow(ProtocolError);
  });
});

describe("protocol version choice", () => {
  test("V6 when in range, else the highest of 5..7, else none", () => {
    expect(chooseProtocolVersion(5, 7)).toBe(6);
    expect(chooseProtocolVersion(1, 6)).toBe(6);
    expect(chooseProtocolVersion(7, 9)).toBe(7);
    expect(chooseProtocolVersion(1, 5)).toBe(5);
    expect(chooseProtocolVersion(7, 7)).toBe(7);
    expect(chooseProtocolVersion(1, 4)).toBeUndefined();
    expect(chooseProtocolVersion(8, 10)).toBeUndefined();
    expect(chooseProtocolVersion(7, 5)).toBeUndefined();
  });
});
