import { describe, expect, test } from "bun:test";
import type { Entry, Message } from "../../src/raft/index.ts";
import {
  RaftDecodeError,
  Xoshiro128,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  decodeSnapshotMetadata,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  encodeSnapshotMetadata,
  MESSAGE_TYPES,
} from "../../src/raft/index.ts";
import { id } from "./harness.ts";

const t = (n: number) => n as never;
const entries: Entry[] = [
  { kind: "normal", term: t(3), index: t(10), data: new Uint8Array([1, 2, 3]) },
  { kind: "normal", term: t(3), index: t(11), data: new Uint8Array(0) },
  { kind: "confChange", term: t(4), index: t(12), change: { type: "addLearner", nodeId: id(9), context: new Uint8Array([7]) } },
  { kind: "normal", term: t(2 ** 40), index: t(13), data: new Uint8Array(300).fill(0xab) },
];
const snapshot = { metadata: { index: t(2 ** 50), term: t(7), confState: { voters: [id(1), id(2)], learners: [id(5)] } }, data: new Uint8Array([9, 9]) };

const samples: Message[] = [
  { type: "append", from: id(1), to: id(2), term: t(3), prevIndex: t(9), prevTerm: t(3), entries, commit: t(8) },
  { type: "append", from: id(1), to: id(2), term: t(3), prevIndex: t(0), prevTerm: t(0), entries: [], commit: t(0) },
  { type: "appendResponse", from: id(2), to: id(1), term: t(3), index: t(9), reject: true, rejectHint: t(4), rejectHintTerm: t(2) },
  { type: "vote", from: id(1), to: id(3), term: t(5), lastIndex: t(12), lastTerm: t(4), transfer: true },
  { type: "preVote", from: id(1), to: id(3), term: t(5), lastIndex: t(12), lastTerm: t(4), transfer: false },
  { type: "voteResponse", from: id(3), to: id(1), term: t(5), reject: false },
  { type: "preVoteResponse", from: id(3), to: id(1), term: t(5), reject: true },
  { type: "heartbeat", from: id(1), to: id(2), term: t(5), commit: t(12), ctx: "read-ü-1" },
  { type: "heartbeat", from: id(1), to: id(2), term: t(5), commit: t(12), ctx: null },
  { type: "heartbeatResponse", from: id(2), to: id(1), term: t(5), ctx: "read-ü-1" },
  { type: "heartbeatResponse", from: id(2), to: id(1), term: t(5), ctx: null },
  { type: "snapshot", from: id(1), to: id(2), term: t(5), snapshot },
  { type: "readIndex", from: id(2), to: id(1), term: t(5), ctx: "" },
  { type: "readIndexResponse", from: id(1), to: id(2), term: t(5), index: t(12), ctx: "abc" },
  { type: "timeoutNow", from: id(1), to: id(2), term: t(5) },
  { type: "transferLeader", from: id(2), to: id(1), term: t(5), transferee: id(3) },
];

describe("codec", () => {
  test("every message type survives an encode/decode round trip", () => {
    const covered = new Set(samples.map((m) => m.type));
    expect([...covered].sort()).toEqual([...MESSAGE_TYPES].sort());
    for (const m of samples) expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  test("entries, hard state, conf state and snapshots round-trip", () => {
    for (const e of entries) expect(decodeEntry(encodeEntry(e))).toEqual(e);
    const hs = { term: t(2 ** 52), vote: id(3), commit: t(17) };
    expect(decodeHardState(encodeHardState(hs))).toEqual(hs);
    expect(decodeConfState(encodeConfState(snapshot.metadata.confState))).toEqual(snapshot.metadata.confState);
    expect(decodeSnapshotMetadata(encodeSnapshotMetadata(snapshot.metadata))).toEqual(snapshot.metadata);
    expect(decodeSnapshot(encodeSnapshot(snapshot))).toEqual(snapshot);
  });

  test("truncated input is refused with RaftDecodeError at every cut point", () => {
    for (const m of samples) {
      const bytes = encodeMessage(m);
      for (let n = 0; n < bytes.length; n++) expect(() => decodeMessage(bytes.subarray(0, n))).toThrow(RaftDecodeError);
      expect(() => decodeMessage(new Uint8Array([...bytes, 0]))).toThrow(RaftDecodeError);
    }
  });

  test("random corruption yields either a valid message or RaftDecodeError, never another failure", () => {
    const rng = new Xoshiro128(42);
    for (let k = 0; k < 3000; k++) {
      const bytes = encodeMessage(samples[k % samples.length]!).slice();
      const flips = 1 + (rng.nextUint32() % 3);
      for (let f = 0; f < flips; f++) bytes[rng.nextUint32() % bytes.length] = rng.nextUint32() & 0xff;
      try {
        decodeMessage(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(RaftDecodeError);
      }
    }
  });

  test("bad versions, kinds and malformed configurations are refused", () => {
    const good = encodeMessage(samples[0]!);
    expect(() => decodeMessage(new Uint8Array([2, ...good.subarray(1)]))).toThrow(RaftDecodeError);
    expect(() => decodeMessage(new Uint8Array([1, 200]))).toThrow(RaftDecodeError);
    expect(() => decodeConfState(new Uint8Array([1, 2, 5, 3, 0]))).toThrow(RaftDecodeError); // not ascending
    expect(() => decodeConfState(new Uint8Array([1, 1, 5, 1, 5]))).toThrow(RaftDecodeError); // voter and learner
  });
});
