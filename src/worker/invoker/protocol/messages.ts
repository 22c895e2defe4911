// Restate service-protocol messages (V5-V7) as a typed union, and their protobuf payload codec built with
// protobufjs from a descriptor written here from the protocol's field tables. Invariants: decode never
// returns a half-read message (malformed input throws ProtocolError), absent optional fields are
// `undefined`, bytes are copied out of the input, and encode(decode(x)) decodes to the same message.
import protobuf from "protobufjs";
import { ProtocolError } from "./errors.ts";

/** Message type ids (the u16 in the frame header). */
export const MessageType = {
  // control
  Start: 0x0000,
  Suspension: 0x0001,
  Error: 0x0002,
  End: 0x0003,
  CommandAck: 0x0004,
  ProposeRunCompletion: 0x0005,
  AwaitingOn: 0x0006,
  ProposeRunCompletionAck: 0x0007,
  // commands
  InputCommand: 0x0400,
  OutputCommand: 0x0401,
  GetLazyStateCommand: 0x0402,
  SetStateCommand: 0x0403,
  ClearStateCommand: 0x0404,
  ClearAllStateCommand: 0x0405,
  GetLazyStateKeysCommand: 0x0406,
  GetEagerStateCommand: 0x0407,
  GetEagerStateKeysCommand: 0x0408,
  GetPromiseCommand: 0x0409,
  PeekPromiseCommand: 0x040a,
  CompletePromiseCommand: 0x040b,
  SleepCommand: 0x040c,
  CallCommand: 0x040d,
  OneWayCallCommand: 0x040e,
  SendSignalCommand: 0x0410,
  RunCommand: 0x0411,
  AttachInvocationCommand: 0x0412,
  GetInvocationOutputCommand: 0x0413,
  CompleteAwakeableCommand: 0x0414,
  // notifications (all share the notification template)
  GetLazyStateCompletion: 0x8002,
  GetLazyStateKeysCompletion: 0x8006,
  GetPromiseCompletion: 0x8009,
  PeekPromiseCompletion: 0x800a,
  CompletePromiseCompletion: 0x800b,
  SleepCompletion: 0x800c,
  CallCompletion: 0x800d,
  CallInvocationIdCompletion: 0x800e,
  RunCompletion: 0x8011,
  AttachInvocationCompletion: 0x8012,
  GetInvocationOutputCompletion: 0x8013,
  Signal: 0xfbff,
} as const;
export type MessageTypeId = (typeof MessageType)[keyof typeof MessageType];

/** First id of the custom range: opaque messages, stored and replayed verbatim. */
export const CUSTOM_MESSAGE_TYPE_MIN = 0xfc00;
/** Type ranges of §2.2. */
export const isCommandType = (type: number): boolean => type >= 0x0400 && type < 0x8000;
export const isNotificationType = (type: number): boolean => type >= 0x8000 && type < CUSTOM_MESSAGE_TYPE_MIN;

const NOTIFICATION_TYPES: ReadonlySet<number> = new Set([
  MessageType.GetLazyStateCompletion,
  MessageType.GetLazyStateKeysCompletion,
  MessageType.GetPromiseCompletion,
  MessageType.PeekPromiseCompletion,
  MessageType.CompletePromiseCompletion,
  MessageType.SleepCompletion,
  MessageType.CallCompletion,
  MessageType.CallInvocationIdCompletion,
  MessageType.RunCompletion,
  MessageType.AttachInvocationCompletion,
  MessageType.GetInvocationOutputCompletion,
  MessageType.Signal,
]);

// ---------------------------------------------------------------------------------------------------
// Types

export interface FailureMetadata {
  key: string;
  value: string;
}
export interface Failure {
  code: number;
  message: string;
  metadata: FailureMetadata[];
}
export interface Header {
  key: string;
  value: string;
}
export interface StateEntry {
  key: Uint8Array;
  value: Uint8Array;
}
/** A V7 await point: leaves are notification ids, inner nodes combine their children. */
export interface Future {
  waitingCompletions: number[];
  waitingSignals: number[];
  waitingNamedSignals: string[];
  nestedFutures: Future[];
  /** 0 unknown (= first completed), 1 first completed, 2 all completed, 3 first succeeded or all failed, 4 all succeeded or first failed. */
  combinatorType: number;
}
export type ValueOrFailure = { value: Uint8Array } | { failure: Failure };
export type VoidValueOrFailure = { void: true } | ValueOrFailure;
export type NotificationId = { completionId: number } | { signalId: number } | { signalName: string };
export type NotificationResult = VoidValueOrFailure | { invocationId: string } | { stateKeys: Uint8Array[] };
export interface IdempotentRequestTarget {
  serviceName: string;
  serviceKey?: string;
  handlerName: string;
  idempotencyKey: string;
  scope?: string;
}
export interface WorkflowTarget {
  workflowName: string;
  workflowKey: string;
  scope?: string;
}
export type InvocationTarget = { invocationId: string } | { idempotentRequest: IdempotentRequestTarget } | { workflow: WorkflowTarget };
export type ErrorBehavior = "retry" | "pause" | "fail";

/** What Call and OneWayCall share. */
export interface CallFields {
  serviceName: string;
  handlerName: string;
  parameter: Uint8Array;
  headers: Header[];
  key: string;
  idempotencyKey?: string;
  scope?: string;
  limitKey?: string;
  invocationIdNotificationIdx: number;
  name: string;
}

export interface StartMessage {
  kind: "start";
  id: Uint8Array;
  debugId: string;
  knownEntries: number;
  stateMap: StateEntry[];
  partialState: boolean;
  key: string;
  retryCountSinceLastStoredEntry: number;
  durationSinceLastStoredEntryMs: number;
  randomSeed: bigint;
  scope?: string;
  limitKey?: string;
  idempotencyKey?: string;
}
/** V5/V6 fill the three flat lists; V7 sends `awaitingOn` (and leaves the lists empty). */
export interface SuspensionMessage {
  kind: "suspension";
  waitingCompletions: number[];
  waitingSignals: number[];
  waitingNamedSignals: string[];
  awaitingOn?: Future;
}
export interface ErrorMessage {
  kind: "error";
  code: number;
  message: string;
  stacktrace: string;
  relatedCommandIndex?: number;
  relatedCommandName?: string;
  relatedCommandType?: number;
  nextRetryDelayMs?: number;
  behavior?: ErrorBehavior;
}

export type ProtocolMessage =
  | StartMessage
  | SuspensionMessage
  | ErrorMessage
  | { kind: "end" }
  | { kind: "commandAck"; commandIndex: number }
  | { kind: "proposeRunCompletion"; resultCompletionId: number; result: ValueOrFailure }
  | { kind: "awaitingOn"; awaitingOn?: Future; executingSideEffects: boolean }
  | { kind: "proposeRunCompletionAck"; completionId: number }
  | { kind: "input"; headers: Header[]; value: Uint8Array; name: string }
  | { kind: "output"; result: ValueOrFailure; name: string }
  | { kind: "getLazyState"; key: Uint8Array; resultCompletionId: number; name: string }
  | { kind: "setState"; key: Uint8Array; value: Uint8Array; name: string }
  | { kind: "clearState"; key: Uint8Array; name: string }
  | { kind: "clearAllState"; name: string }
  | { kind: "getLazyStateKeys"; resultCompletionId: number; name: string }
  | { kind: "getEagerState"; key: Uint8Array; result: { void: true } | { value: Uint8Array }; name: string }
  | { kind: "getEagerStateKeys"; keys: Uint8Array[]; name: string }
  | { kind: "getPromise"; key: string; resultCompletionId: number; name: string }
  | { kind: "peekPromise"; key: string; resultCompletionId: number; name: string }
  | { kind: "completePromise"; key: string; completion: ValueOrFailure; resultCompletionId: number; name: string }
  | { kind: "sleep"; wakeUpTimeMs: number; resultCompletionId: number; name: string }
  | ({ kind: "call"; resultCompletionId: number } & CallFields)
  | ({ kind: "oneWayCall"; /** Absolute ms since the Unix epoch; 0 = now. */ invokeTimeMs: number } & CallFields)
  | { kind: "sendSignal"; targetInvocationId: string; signal: { idx: number } | { name: string }; result: VoidValueOrFailure; name: string }
  | { kind: "run"; resultCompletionId: number; name: string }
  | { kind: "attachInvocation"; target: InvocationTarget; resultCompletionId: number; name: string }
  | { kind: "getInvocationOutput"; target: InvocationTarget; resultCompletionId: number; name: string }
  | { kind: "completeAwakeable"; awakeableId: string; result: ValueOrFailure; name: string }
  | { kind: "notification"; type: number; id: NotificationId; result: NotificationResult }
  | { kind: "custom"; type: number; payload: Uint8Array };

export type MessageKind = ProtocolMessage["kind"];

// ---------------------------------------------------------------------------------------------------
// Descriptor (package dev.restate.service.protocol; field numbers from the protocol's tables). Field
// names are ours (camelCase); only ids and wire types matter on the wire. Enums are read as uint32.

type FieldSpec = { id: number; type: string; rule?: "repeated" };
const f = (id: number, type: string): FieldSpec => ({ id, type });
const r = (id: number, type: string): FieldSpec => ({ id, type, rule: "repeated" });
/**
 * A message; `oneofs` lists the fields with explicit presence (proto3 oneofs, and proto3 `optional` fields
 * as one-member oneofs, which is what they are on the wire). Every other field is proto3-implicit: a
 * default value is not written.
 */
const msg = (fields: Record<string, FieldSpec>, oneofs: Record<string, string[]> = {}) => ({
  fields,
  oneofs: Object.fromEntries(Object.entries(oneofs).map(([name, members]) => [name, { oneof: members }])),
});
/** One-member oneofs for proto3 `optional` fields. */
const optional = (...names: string[]): Record<string, string[]> => Object.fromEntries(names.map((n) => [`_${n}`, [n]]));
const VALUE_OR_FAILURE = { result: ["value", "failure"] };
const TARGET = { target: ["invocationId", "idempotentRequestTarget", "workflowTarget"] };
const targetFields = { invocationId: f(1, "string"), idempotentRequestTarget: f(3, "IdempotentRequestTarget"), workflowTarget: f(4, "WorkflowTarget") };

const DESCRIPTOR = {
  nested: {
    restateproto: {
      nested: {
        Void: msg({}),
        Value: msg({ content: f(1, "bytes") }),
        StateKeys: msg({ keys: r(1, "bytes") }),
        FailureMetadata: msg({ key: f(1, "string"), value: f(2, "string") }),
        Failure: msg({ code: f(1, "uint32"), message: f(2, "string"), metadata: r(3, "FailureMetadata") }),
        Header: msg({ key: f(1, "string"), value: f(2, "string") }),
        StateEntry: msg({ key: f(1, "bytes"), value: f(2, "bytes") }),
        WorkflowTarget: msg({ workflowName: f(1, "string"), workflowKey: f(2, "string"), scope: f(7, "string") }, optional("scope")),
        IdempotentRequestTarget: msg({
          serviceName: f(1, "string"),
          serviceKey: f(2, "string"),
          handlerName: f(3, "string"),
          idempotencyKey: f(4, "string"),
          scope: f(7, "string"),
        }, optional("serviceKey", "scope")),
        Future: msg({
          waitingCompletions: r(1, "uint32"),
          waitingSignals: r(2, "uint32"),
          waitingNamedSignals: r(3, "string"),
          nestedFutures: r(4, "Future"),
          combinatorType: f(5, "uint32"),
        }),
        Start: msg({
          id: f(1, "bytes"),
          debugId: f(2, "string"),
          knownEntries: f(3, "uint32"),
          stateMap: r(4, "StateEntry"),
          partialState: f(5, "bool"),
          key: f(6, "string"),
          retryCountSinceLastStoredEntry: f(7, "uint32"),
          durationSinceLastStoredEntry: f(8, "uint64"),
          randomSeed: f(9, "uint64"),
          scope: f(10, "string"),
          limitKey: f(11, "string"),
          idempotencyKey: f(12, "string"),
        }, optional("scope", "limitKey", "idempotencyKey")),
        // Both shapes in one message: V5/V6 use fields 1-3, V7 reserves them and uses 4.
        Suspension: msg({
          waitingCompletions: r(1, "uint32"),
          waitingSignals: r(2, "uint32"),
          waitingNamedSignals: r(3, "string"),
          awaitingOn: f(4, "Future"),
        }),
        Error: msg({
          code: f(1, "uint32"),
          message: f(2, "string"),
          stacktrace: f(3, "string"),
          relatedCommandIndex: f(4, "uint32"),
          relatedCommandName: f(5, "string"),
          relatedCommandType: f(6, "uint32"),
          nextRetryDelay: f(8, "uint64"),
          behavior: f(9, "uint32"),
        }, optional("relatedCommandIndex", "relatedCommandName", "relatedCommandType", "nextRetryDelay", "behavior")),
        End: msg({}),
        CommandAck: msg({ commandIndex: f(1, "uint32") }),
        ProposeRunCompletion: msg({ resultCompletionId: f(1, "uint32"), value: f(14, "bytes"), failure: f(15, "Failure") }, VALUE_OR_FAILURE),
        AwaitingOn: msg({ awaitingOn: f(1, "Future"), executingSideEffects: f(2, "bool") }),
        ProposeRunCompletionAck: msg({ completionId: f(1, "uint32") }),
        Input: msg({ headers: r(1, "Header"), value: f(14, "Value"), name: f(12, "string") }),
        Output: msg({ value: f(14, "Value"), failure: f(15, "Failure"), name: f(12, "string") }, VALUE_OR_FAILURE),
        GetLazyState: msg({ key: f(1, "bytes"), resultCompletionId: f(11, "uint32"), name: f(12, "string") }),
        SetState: msg({ key: f(1, "bytes"), value: f(3, "Value"), name: f(12, "string") }),
        ClearState: msg({ key: f(1, "bytes"), name: f(12, "string") }),
        ClearAllState: msg({ name: f(12, "string") }),
        GetLazyStateKeys: msg({ resultCompletionId: f(11, "uint32"), name: f(12, "string") }),
        GetEagerState: msg({ key: f(1, "bytes"), void: f(13, "Void"), value: f(14, "Value"), name: f(12, "string") }, { result: ["void", "value"] }),
        GetEagerStateKeys: msg({ value: f(14, "StateKeys"), name: f(12, "string") }),
        GetPromise: msg({ key: f(1, "string"), resultCompletionId: f(11, "uint32"), name: f(12, "string") }),
        PeekPromise: msg({ key: f(1, "string"), resultCompletionId: f(11, "uint32"), name: f(12, "string") }),
        CompletePromise: msg({
          key: f(1, "string"),
          completionValue: f(2, "Value"),
          completionFailure: f(3, "Failure"),
          resultCompletionId: f(11, "uint32"),
          name: f(12, "string"),
        }, { completion: ["completionValue", "completionFailure"] }),
        Sleep: msg({ wakeUpTime: f(1, "uint64"), resultCompletionId: f(11, "uint32"), name: f(12, "string") }),
        Call: msg({
          serviceName: f(1, "string"),
          handlerName: f(2, "string"),
          parameter: f(3, "bytes"),
          headers: r(4, "Header"),
          key: f(5, "string"),
          idempotencyKey: f(6, "string"),
          scope: f(7, "string"),
          limitKey: f(8, "string"),
          invocationIdNotificationIdx: f(10, "uint32"),
          resultCompletionId: f(11, "uint32"),
          name: f(12, "string"),
        }, optional("idempotencyKey", "scope", "limitKey")),
        OneWayCall: msg({
          serviceName: f(1, "string"),
          handlerName: f(2, "string"),
          parameter: f(3, "bytes"),
          invokeTime: f(4, "uint64"),
          headers: r(5, "Header"),
          key: f(6, "string"),
          idempotencyKey: f(7, "string"),
          scope: f(8, "string"),
          limitKey: f(9, "string"),
          invocationIdNotificationIdx: f(10, "uint32"),
          name: f(12, "string"),
        }, optional("idempotencyKey", "scope", "limitKey")),
        SendSignal: msg({
          targetInvocationId: f(1, "string"),
          idx: f(2, "uint32"),
          name: f(3, "string"),
          void: f(4, "Void"),
          value: f(5, "Value"),
          failure: f(6, "Failure"),
          entryName: f(12, "string"),
        }, { signalId: ["idx", "name"], result: ["void", "value", "failure"] }),
        Run: msg({ resultCompletionId: f(11, "uint32"), name: f(12, "string") }),
        AttachInvocation: msg({ ...targetFields, resultCompletionId: f(11, "uint32"), name: f(12, "string") }, TARGET),
        GetInvocationOutput: msg({ ...targetFields, resultCompletionId: f(11, "uint32"), name: f(12, "string") }, TARGET),
        CompleteAwakeable: msg({ awakeableId: f(1, "string"), value: f(2, "Value"), failure: f(3, "Failure"), name: f(12, "string") }, VALUE_OR_FAILURE),
        // The duck type every notification (0x8000..0xFBFF) follows.
        Notification: msg({
          completionId: f(1, "uint32"),
          signalId: f(2, "uint32"),
          signalName: f(3, "string"),
          void: f(4, "Void"),
          value: f(5, "Value"),
          failure: f(6, "Failure"),
          invocationId: f(16, "string"),
          stateKeys: f(17, "StateKeys"),
        }, { id: ["completionId", "signalId", "signalName"], result: ["void", "value", "failure", "invocationId", "stateKeys"] }),
      },
    },
  },
};

const root = protobuf.Root.fromJSON(DESCRIPTOR);
const T = (name: string): protobuf.Type => root.lookupType(`restateproto.${name}`);

/** The protobuf message of each non-notification, non-custom type. */
const TYPE_OF_ID = new Map<number, { kind: MessageKind; type: protobuf.Type }>();
const ID_OF_KIND = new Map<MessageKind, number>();
function bind(id: number, kind: MessageKind, typeName: string): void {
  TYPE_OF_ID.set(id, { kind, type: T(typeName) });
  ID_OF_KIND.set(kind, id);
}
bind(MessageType.Start, "start", "Start");
bind(MessageType.Suspension, "suspension", "Suspension");
bind(MessageType.Error, "error", "Error");
bind(MessageType.End, "end", "End");
bind(MessageType.CommandAck, "commandAck", "CommandAck");
bind(MessageType.ProposeRunCompletion, "proposeRunCompletion", "ProposeRunCompletion");
bind(MessageType.AwaitingOn, "awaitingOn", "AwaitingOn");
bind(MessageType.ProposeRunCompletionAck, "proposeRunCompletionAck", "ProposeRunCompletionAck");
bind(MessageType.InputCommand, "input", "Input");
bind(MessageType.OutputCommand, "output", "Output");
bind(MessageType.GetLazyStateCommand, "getLazyState", "GetLazyState");
bind(MessageType.SetStateCommand, "setState", "SetState");
bind(MessageType.ClearStateCommand, "clearState", "ClearState");
bind(MessageType.ClearAllStateCommand, "clearAllState", "ClearAllState");
bind(MessageType.GetLazyStateKeysCommand, "getLazyStateKeys", "GetLazyStateKeys");
bind(MessageType.GetEagerStateCommand, "getEagerState", "GetEagerState");
bind(MessageType.GetEagerStateKeysCommand, "getEagerStateKeys", "GetEagerStateKeys");
bind(MessageType.GetPromiseCommand, "getPromise", "GetPromise");
bind(MessageType.PeekPromiseCommand, "peekPromise", "PeekPromise");
bind(MessageType.CompletePromiseCommand, "completePromise", "CompletePromise");
bind(MessageType.SleepCommand, "sleep", "Sleep");
bind(MessageType.CallCommand, "call", "Call");
bind(MessageType.OneWayCallCommand, "oneWayCall", "OneWayCall");
bind(MessageType.SendSignalCommand, "sendSignal", "SendSignal");
bind(MessageType.RunCommand, "run", "Run");
bind(MessageType.AttachInvocationCommand, "attachInvocation", "AttachInvocation");
bind(MessageType.GetInvocationOutputCommand, "getInvocationOutput", "GetInvocationOutput");
bind(MessageType.CompleteAwakeableCommand, "completeAwakeable", "CompleteAwakeable");
const NOTIFICATION = T("Notification");

/** The u16 type id of a message. */
export function messageTypeOf(m: ProtocolMessage): number {
  if (m.kind === "notification" || m.kind === "custom") return m.type;
  const id = ID_OF_KIND.get(m.kind);
  if (id === undefined) throw new ProtocolError(`no message type for kind ${m.kind}`);
  return id;
}

// ---------------------------------------------------------------------------------------------------
// Decoding

type Decoded = Record<string, unknown>;
const has = (o: Decoded, field: string): boolean => Object.prototype.hasOwnProperty.call(o, field) && o[field] !== null && o[field] !== undefined;
const str = (o: Decoded, field: string): string => (has(o, field) ? (o[field] as string) : "");
const optStr = (o: Decoded, field: string): string | undefined => (has(o, field) ? (o[field] as string) : undefined);
const u32 = (o: Decoded, field: string): number => (has(o, field) ? (o[field] as number) : 0);
const optU32 = (o: Decoded, field: string): number | undefined => (has(o, field) ? (o[field] as number) : undefined);
const bool = (o: Decoded, field: string): boolean => has(o, field) && (o[field] as boolean);
const bytes = (o: Decoded, field: string): Uint8Array => (has(o, field) ? new Uint8Array(o[field] as Uint8Array) : new Uint8Array(0));
const sub = (o: Decoded, field: string): Decoded | undefined => (has(o, field) ? (o[field] as Decoded) : undefined);
const list = (o: Decoded, field: string): Decoded[] => (has(o, field) ? (o[field] as Decoded[]) : []);
const u32s = (o: Decoded, field: string): number[] => (has(o, field) ? [...(o[field] as number[])] : []);
const strs = (o: Decoded, field: string): string[] => (has(o, field) ? [...(o[field] as string[])] : []);

/** A uint64 as protobufjs yields it (a number, or a Long when the `long` package is present). */
function u64(o: Decoded, field: string): bigint {
  if (!has(o, field)) return 0n;
  const v = o[field] as number | { low: number; high: number };
  if (typeof v === "number") return BigInt(v);
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}
const u64ms = (o: Decoded, field: string): number => Number(u64(o, field));

function toLongBits(n: bigint): { low: number; high: number; unsigned: boolean } {
  const v = BigInt.asUintN(64, n);
  return { low: Number(v & 0xffffffffn) | 0, high: Number(v >> 32n) | 0, unsigned: true };
}

const valueContent = (o: Decoded, field: string): Uint8Array => bytes(sub(o, field) ?? {}, "content");

function failureOf(o: Decoded): Failure {
  return {
    code: u32(o, "code"),
    message: str(o, "message"),
    metadata: list(o, "metadata").map((m) => ({ key: str(m, "key"), value: str(m, "value") })),
  };
}

function futureOf(o: Decoded): Future {
  return {
    waitingCompletions: u32s(o, "waitingCompletions"),
    waitingSignals: u32s(o, "waitingSignals"),
    waitingNamedSignals: strs(o, "waitingNamedSignals"),
    nestedFutures: list(o, "nestedFutures").map(futureOf),
    combinatorType: u32(o, "combinatorType"),
  };
}

const headersOf = (o: Decoded, field: string): Header[] => list(o, field).map((h) => ({ key: str(h, "key"), value: str(h, "value") }));

/** `value` (a Value or bytes) or `failure`; `what` names the message for the error. */
function valueOrFailure(o: Decoded, valueField: string, failureField: string, rawBytes: boolean, what: string): ValueOrFailure {
  if (has(o, failureField)) return { failure: failureOf(o[failureField] as Decoded) };
  if (has(o, valueField)) return { value: rawBytes ? bytes(o, valueField) : valueContent(o, valueField) };
  throw new ProtocolError(`${what} carries neither a value nor a failure`);
}

function voidValueOrFailure(o: Decoded, what: string): VoidValueOrFailure {
  if (has(o, "void")) return { void: true };
  return valueOrFailure(o, "value", "failure", false, what);
}

function targetOf(o: Decoded, what: string): InvocationTarget {
  const idem = sub(o, "idempotentRequestTarget");
  if (idem !== undefined) {
    return {
      idempotentRequest: {
        serviceName: str(idem, "serviceName"),
        serviceKey: optStr(idem, "serviceKey"),
        handlerName: str(idem, "handlerName"),
        idempotencyKey: str(idem, "idempotencyKey"),
        scope: optStr(idem, "scope"),
      },
    };
  }
  const wf = sub(o, "workflowTarget");
  if (wf !== undefined) return { workflow: { workflowName: str(wf, "workflowName"), workflowKey: str(wf, "workflowKey"), scope: optStr(wf, "scope") } };
  if (has(o, "invocationId")) return { invocationId: str(o, "invocationId") };
  throw new ProtocolError(`${what} has no target`);
}

const BEHAVIORS: readonly ErrorBehavior[] = ["retry", "pause", "fail"];

function decodeNotification(type: number, o: Decoded): ProtocolMessage {
  let id: NotificationId;
  if (has(o, "completionId")) id = { completionId: u32(o, "completionId") };
  else if (has(o, "signalId")) id = { signalId: u32(o, "signalId") };
  else if (has(o, "signalName")) id = { signalName: str(o, "signalName") };
  else throw new ProtocolError(`notification 0x${type.toString(16)} has no id`);
  let result: NotificationResult;
  if (has(o, "invocationId")) result = { invocationId: str(o, "invocationId") };
  else if (has(o, "stateKeys")) result = { stateKeys: list(sub(o, "stateKeys")!, "keys").map((k) => new Uint8Array(k as unknown as Uint8Array)) };
  else result = voidValueOrFailure(o, `notification 0x${type.toString(16)}`);
  return { kind: "notification", type, id, result };
}

function callFieldsOf(o: Decoded): CallFields {
  return {
    serviceName: str(o, "serviceName"),
    handlerName: str(o, "handlerName"),
    parameter: bytes(o, "parameter"),
    headers: headersOf(o, "headers"),
    key: str(o, "key"),
    idempotencyKey: optStr(o, "idempotencyKey"),
    scope: optStr(o, "scope"),
    limitKey: optStr(o, "limitKey"),
    invocationIdNotificationIdx: u32(o, "invocationIdNotificationIdx"),
    name: str(o, "name"),
  };
}

function fromDecoded(kind: MessageKind, o: Decoded): ProtocolMessage {
  const name = str(o, "name");
  const resultCompletionId = u32(o, "resultCompletionId");
  switch (kind) {
    case "start":
      return {
        kind,
        id: bytes(o, "id"),
        debugId: str(o, "debugId"),
        knownEntries: u32(o, "knownEntries"),
        stateMap: list(o, "stateMap").map((e) => ({ key: bytes(e, "key"), value: bytes(e, "value") })),
        partialState: bool(o, "partialState"),
        key: str(o, "key"),
        retryCountSinceLastStoredEntry: u32(o, "retryCountSinceLastStoredEntry"),
        durationSinceLastStoredEntryMs: u64ms(o, "durationSinceLastStoredEntry"),
        randomSeed: u64(o, "randomSeed"),
        scope: optStr(o, "scope"),
        limitKey: optStr(o, "limitKey"),
        idempotencyKey: optStr(o, "idempotencyKey"),
      };
    case "suspension": {
      const awaiting = sub(o, "awaitingOn");
      return {
        kind,
        waitingCompletions: u32s(o, "waitingCompletions"),
        waitingSignals: u32s(o, "waitingSignals"),
        waitingNamedSignals: strs(o, "waitingNamedSignals"),
        awaitingOn: awaiting === undefined ? undefined : futureOf(awaiting),
      };
    }
    case "error": {
      const behavior = optU32(o, "behavior");
      if (behavior !== undefined && BEHAVIORS[behavior] === undefined) throw new ProtocolError(`error message with unknown behavior ${behavior}`);
      return {
        kind,
        code: u32(o, "code"),
        message: str(o, "message"),
        stacktrace: str(o, "stacktrace"),
        relatedCommandIndex: optU32(o, "relatedCommandIndex"),
        relatedCommandName: optStr(o, "relatedCommandName"),
        relatedCommandType: optU32(o, "relatedCommandType"),
        nextRetryDelayMs: has(o, "nextRetryDelay") ? u64ms(o, "nextRetryDelay") : undefined,
        behavior: behavior === undefined ? undefined : BEHAVIORS[behavior],
      };
    }
    case "end":
      return { kind };
    case "commandAck":
      return { kind, commandIndex: u32(o, "commandIndex") };
    case "proposeRunCompletion":
      return { kind, resultCompletionId, result: valueOrFailure(o, "value", "failure", true, "ProposeRunCompletion") };
    case "awaitingOn": {
      const awaiting = sub(o, "awaitingOn");
      return { kind, awaitingOn: awaiting === undefined ? undefined : futureOf(awaiting), executingSideEffects: bool(o, "executingSideEffects") };
    }
    case "proposeRunCompletionAck":
      return { kind, completionId: u32(o, "completionId") };
    case "input":
      return { kind, headers: headersOf(o, "headers"), value: valueContent(o, "value"), name };
    case "output":
      return { kind, result: valueOrFailure(o, "value", "failure", false, "Output"), name };
    case "getLazyState":
      return { kind, key: bytes(o, "key"), resultCompletionId, name };
    case "setState":
      return { kind, key: bytes(o, "key"), value: valueContent(o, "value"), name };
    case "clearState":
      return { kind, key: bytes(o, "key"), name };
    case "clearAllState":
      return { kind, name };
    case "getLazyStateKeys":
      return { kind, resultCompletionId, name };
    case "getEagerState":
      if (has(o, "void")) return { kind, key: bytes(o, "key"), result: { void: true }, name };
      if (has(o, "value")) return { kind, key: bytes(o, "key"), result: { value: valueContent(o, "value") }, name };
      throw new ProtocolError("GetEagerState carries no result");
    case "getEagerStateKeys":
      return { kind, keys: list(sub(o, "value") ?? {}, "keys").map((k) => new Uint8Array(k as unknown as Uint8Array)), name };
    case "getPromise":
    case "peekPromise":
      return { kind, key: str(o, "key"), resultCompletionId, name };
    case "completePromise":
      return { kind, key: str(o, "key"), completion: valueOrFailure(o, "completionValue", "completionFailure", false, "CompletePromise"), resultCompletionId, name };
    case "sleep":
      return { kind, wakeUpTimeMs: u64ms(o, "wakeUpTime"), resultCompletionId, name };
    case "call":
      return { kind, resultCompletionId, ...callFieldsOf(o) };
    case "oneWayCall":
      return { kind, invokeTimeMs: u64ms(o, "invokeTime"), ...callFieldsOf(o) };
    case "sendSignal": {
      let signal: { idx: number } | { name: string };
      if (has(o, "idx")) signal = { idx: u32(o, "idx") };
      else if (has(o, "name")) signal = { name: str(o, "name") };
      else throw new ProtocolError("SendSignal names no signal");
      return { kind, targetInvocationId: str(o, "targetInvocationId"), signal, result: voidValueOrFailure(o, "SendSignal"), name: str(o, "entryName") };
    }
    case "run":
      return { kind, resultCompletionId, name };
    case "attachInvocation":
    case "getInvocationOutput":
      return { kind, target: targetOf(o, kind), resultCompletionId, name };
    case "completeAwakeable":
      return { kind, awakeableId: str(o, "awakeableId"), result: valueOrFailure(o, "value", "failure", false, "CompleteAwakeable"), name };
    case "notification":
    case "custom":
      break;
  }
  throw new ProtocolError(`no decoder for ${kind}`);
}

/** Decodes one payload of message type `type`. Throws ProtocolError on malformed input or an unknown type. */
export function decodeMessage(type: number, payload: Uint8Array): ProtocolMessage {
  if (!Number.isInteger(type) || type < 0 || type > 0xffff) throw new ProtocolError(`message type ${type} is not a u16`);
  if (type >= CUSTOM_MESSAGE_TYPE_MIN) return { kind: "custom", type, payload: new Uint8Array(payload) };
  const isNotification = NOTIFICATION_TYPES.has(type);
  const bound = TYPE_OF_ID.get(type);
  if (!isNotification && bound === undefined) throw new ProtocolError(`unknown message type 0x${type.toString(16).padStart(4, "0")}`);
  let decoded: Decoded;
  try {
    decoded = (isNotification ? NOTIFICATION : bound!.type).decode(payload) as unknown as Decoded;
  } catch (e) {
    throw new ProtocolError(`malformed payload of message type 0x${type.toString(16).padStart(4, "0")}: ${(e as Error).message}`);
  }
  return isNotification ? decodeNotification(type, decoded) : fromDecoded(bound!.kind, decoded);
}

// ---------------------------------------------------------------------------------------------------
// Encoding: plain objects in the descriptor's field names. Undefined fields are not written; defaults of
// implicit-presence fields are not written either (proto3), oneof members always are.

type Plain = Record<string, unknown>;
const failurePlain = (x: Failure): Plain => ({ code: x.code, message: x.message, metadata: x.metadata.map((m) => ({ key: m.key, value: m.value })) });
const headersPlain = (hs: Header[]): Plain[] => hs.map((h) => ({ key: h.key, value: h.value }));
const futurePlain = (x: Future): Plain => ({
  waitingCompletions: x.waitingCompletions,
  waitingSignals: x.waitingSignals,
  waitingNamedSignals: x.waitingNamedSignals,
  nestedFutures: x.nestedFutures.map(futurePlain),
  combinatorType: x.combinatorType,
});
function voPlain(x: VoidValueOrFailure | NotificationResult, valueField = "value", failureField = "failure", rawBytes = false): Plain {
  if ("void" in x) return { void: {} };
  if ("value" in x) return { [valueField]: rawBytes ? x.value : { content: x.value } };
  if ("failure" in x) return { [failureField]: failurePlain(x.failure) };
  if ("invocationId" in x) return { invocationId: x.invocationId };
  return { stateKeys: { keys: x.stateKeys } };
}
function targetPlain(t: InvocationTarget): Plain {
  if ("invocationId" in t) return { invocationId: t.invocationId };
  if ("workflow" in t) return { workflowTarget: { ...t.workflow } };
  return { idempotentRequestTarget: { ...t.idempotentRequest } };
}
/** Drops undefined entries so absent optional fields stay absent on the wire. */
function defined(o: Plain): Plain {
  const out: Plain = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

function callPlain(m: CallFields): Plain {
  return {
    serviceName: m.serviceName,
    handlerName: m.handlerName,
    parameter: m.parameter,
    headers: headersPlain(m.headers),
    key: m.key,
    idempotencyKey: m.idempotencyKey,
    scope: m.scope,
    limitKey: m.limitKey,
    invocationIdNotificationIdx: m.invocationIdNotificationIdx,
    name: m.name,
  };
}

function toPlain(m: ProtocolMessage): Plain {
  switch (m.kind) {
    case "start":
      return {
        id: m.id,
        debugId: m.debugId,
        knownEntries: m.knownEntries,
        stateMap: m.stateMap.map((e) => ({ key: e.key, value: e.value })),
        partialState: m.partialState,
        key: m.key,
        retryCountSinceLastStoredEntry: m.retryCountSinceLastStoredEntry,
        durationSinceLastStoredEntry: toLongBits(BigInt(m.durationSinceLastStoredEntryMs)),
        randomSeed: toLongBits(m.randomSeed),
        scope: m.scope,
        limitKey: m.limitKey,
        idempotencyKey: m.idempotencyKey,
      };
    case "suspension":
      return {
        waitingCompletions: m.waitingCompletions,
        waitingSignals: m.waitingSignals,
        waitingNamedSignals: m.waitingNamedSignals,
        awaitingOn: m.awaitingOn === undefined ? undefined : futurePlain(m.awaitingOn),
      };
    case "error":
      return {
        code: m.code,
        message: m.message,
        stacktrace: m.stacktrace,
        relatedCommandIndex: m.relatedCommandIndex,
        relatedCommandName: m.relatedCommandName,
        relatedCommandType: m.relatedCommandType,
        nextRetryDelay: m.nextRetryDelayMs === undefined ? undefined : toLongBits(BigInt(m.nextRetryDelayMs)),
        behavior: m.behavior === undefined ? undefined : BEHAVIORS.indexOf(m.behavior),
      };
    case "end":
      return {};
    case "commandAck":
      return { commandIndex: m.commandIndex };
    case "proposeRunCompletion":
      return { resultCompletionId: m.resultCompletionId, ...voPlain(m.result, "value", "failure", true) };
    case "awaitingOn":
      return { awaitingOn: m.awaitingOn === undefined ? undefined : futurePlain(m.awaitingOn), executingSideEffects: m.executingSideEffects };
    case "proposeRunCompletionAck":
      return { completionId: m.completionId };
    case "input":
      return { headers: headersPlain(m.headers), value: { content: m.value }, name: m.name };
    case "output":
      return { ...voPlain(m.result), name: m.name };
    case "getLazyState":
      return { key: m.key, resultCompletionId: m.resultCompletionId, name: m.name };
    case "setState":
      return { key: m.key, value: { content: m.value }, name: m.name };
    case "clearState":
      return { key: m.key, name: m.name };
    case "clearAllState":
      return { name: m.name };
    case "getLazyStateKeys":
      return { resultCompletionId: m.resultCompletionId, name: m.name };
    case "getEagerState":
      return { key: m.key, ...("void" in m.result ? { void: {} } : { value: { content: m.result.value } }), name: m.name };
    case "getEagerStateKeys":
      return { value: { keys: m.keys }, name: m.name };
    case "getPromise":
    case "peekPromise":
      return { key: m.key, resultCompletionId: m.resultCompletionId, name: m.name };
    case "completePromise":
      return { key: m.key, ...voPlain(m.completion, "completionValue", "completionFailure"), resultCompletionId: m.resultCompletionId, name: m.name };
    case "sleep":
      return { wakeUpTime: toLongBits(BigInt(m.wakeUpTimeMs)), resultCompletionId: m.resultCompletionId, name: m.name };
    case "call":
      return { ...callPlain(m), resultCompletionId: m.resultCompletionId };
    case "oneWayCall":
      return { ...callPlain(m), invokeTime: toLongBits(BigInt(m.invokeTimeMs)) };
    case "sendSignal":
      return { targetInvocationId: m.targetInvocationId, ...m.signal, ...voPlain(m.result), entryName: m.name };
    case "run":
      return { resultCompletionId: m.resultCompletionId, name: m.name };
    case "attachInvocation":
    case "getInvocationOutput":
      return { ...targetPlain(m.target), resultCompletionId: m.resultCompletionId, name: m.name };
    case "completeAwakeable":
      return { awakeableId: m.awakeableId, ...voPlain(m.result), name: m.name };
    case "notification":
      return { ...m.id, ...voPlain(m.result) };
    case "custom":
      return {};
  }
}

/** The protobuf payload of a message (no frame header). */
export function encodeMessage(m: ProtocolMessage): Uint8Array {
  if (m.kind === "custom") return new Uint8Array(m.payload);
  const type = messageTypeOf(m);
  if (m.kind === "notification" && !NOTIFICATION_TYPES.has(type)) throw new ProtocolError(`0x${type.toString(16)} is not a notification type`);
  const pbType = m.kind === "notification" ? NOTIFICATION : TYPE_OF_ID.get(type)!.type;
  return pbType.encode(pbType.create(defined(toPlain(m)))).finish();
}
