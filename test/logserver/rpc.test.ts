// The log-server wire schemas: what the store answers passes them, bad requests do not, and a round
// trip through the peer fabric's own defineRpc codec (binary payloads included) gives back the same
// domain values: the fabric wiring is mechanical.
import { describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { join } from "node:path";
import { logletOffset } from "../../src/ids/index.ts";
import {
  LOGSERVER_RPC_SPECS,
  LogStore,
  StoreRequestSchema,
  decodeGetRecordsRequest,
  decodeLogServerResponse,
  decodeStoreRequest,
  toWire,
} from "../../src/logserver/index.ts";
import { defineRpc, type RpcSpec } from "../../src/net/index.ts";
import type { TSchema } from "@sinclair/typebox";
import { L1, SEQ_A, storeReq, useTempDirs } from "./helpers.ts";

const tempDir = useTempDirs();

describe("log-server RPC schemas", () => {
  test("every answer of the store matches its response schema", async () => {
    const store = LogStore.open({ path: join(tempDir(), "s.sqlite"), sync: false });
    try {
      const answers = {
        store: await store.store(storeReq(L1, 1, 3)),
        seal: await store.seal({ loglet: L1 }),
        getLogletInfo: await store.getLogletInfo({ loglet: L1 }),
        getRecords: await store.getRecords({ loglet: L1, from: logletOffset(1), to: logletOffset(3), byteBudget: 100 }),
        trim: await store.trim({ loglet: L1, upTo: logletOffset(1) }),
        waitForTail: await store.waitForTail({ loglet: L1, offset: logletOffset(2) }),
        getDigest: await store.getDigest({ loglet: L1, from: logletOffset(1), to: logletOffset(9) }),
      };
      for (const [rpc, answer] of Object.entries(answers)) {
        const spec = LOGSERVER_RPC_SPECS[rpc as keyof typeof LOGSERVER_RPC_SPECS];
        expect({ rpc, ok: Value.Check(spec.response, answer) }).toEqual({ rpc, ok: true });
      }
    } finally {
      await store.close();
    }
  });

  test("malformed requests are rejected by the schema before any handler sees them", () => {
    const good = storeReq(L1, 1, 1);
    expect(Value.Check(StoreRequestSchema, good)).toBe(true);
    expect(Value.Check(StoreRequestSchema, { ...good, loglet: "x" })).toBe(false);
    expect(Value.Check(StoreRequestSchema, { ...good, payloads: [] })).toBe(false);
    expect(Value.Check(StoreRequestSchema, { ...good, payloads: ["text"] })).toBe(false);
    expect(Value.Check(StoreRequestSchema, { ...good, firstOffset: -1 })).toBe(false);
    expect(Value.Check(StoreRequestSchema, { ...good, sequencer: { id: "node-1", generation: 1 } })).toBe(false);
    expect(Value.Check(StoreRequestSchema, { ...good, extra: 1 })).toBe(false);
  });

  test("a store request and its answer survive the fabric codec, binary payloads included", async () => {
    const rpc = defineRpc(LOGSERVER_RPC_SPECS.store);
    expect(rpc.path).toBe("/rpc/logserver/store");
    const request = storeReq(L1, 5, 2, { size: 1024 });
    const decoded = decodeStoreRequest(rpc.decodeRequest(rpc.encodeRequest(toWire(request))));
    expect(decoded).toEqual(request);
    expect(decoded.payloads[0]).toBeInstanceOf(Uint8Array);
    expect(decoded.sequencer).toEqual(SEQ_A);

    const store = LogStore.open({ path: join(tempDir(), "s.sqlite"), sync: false });
    try {
      const answer = await store.store(decoded);
      expect(decodeLogServerResponse.store(rpc.decodeResponse(rpc.encodeResponse(toWire(answer))))).toEqual(answer);
      const reads = defineRpc(LOGSERVER_RPC_SPECS.getRecords);
      const readReq = { loglet: L1, from: logletOffset(1), to: logletOffset(10), byteBudget: 4096 };
      const records = await store.getRecords(decodeGetRecordsRequest(reads.decodeRequest(reads.encodeRequest(toWire(readReq)))));
      const back = decodeLogServerResponse.getRecords(reads.decodeResponse(reads.encodeResponse(toWire(records))));
      expect(back).toEqual(records);
    } finally {
      await store.close();
    }
  });

  test("every RPC has a fabric-valid method name", () => {
    for (const spec of Object.values(LOGSERVER_RPC_SPECS) as Array<RpcSpec<TSchema, TSchema>>) expect(defineRpc(spec).path).toMatch(/^\/rpc\/logserver\/[a-z][a-z0-9-]*$/);
  });
});
