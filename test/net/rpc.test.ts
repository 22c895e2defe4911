import { describe, expect, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import { CairnError } from "../../src/observability/errors.ts";
import { defineRpc } from "../../src/net/index.ts";
import { schemaMayHoldBinary } from "../../src/net/rpc.ts";

const Store = defineRpc({
  service: "logserver",
  method: "store",
  request: Type.Object({ loglet: Type.String(), first: Type.Integer({ minimum: 1 }), records: Type.Array(Type.Uint8Array()) }),
  response: Type.Object({ stored: Type.Integer() }),
});

describe("RPC definitions", () => {
  test("derive the path and validate requests on decode", () => {
    expect(Store.path).toBe("/rpc/logserver/store");
    const body = Store.encodeRequest({ loglet: "L1", first: 1, records: [new Uint8Array([1, 2])] });
    expect(Store.decodeRequest(body)).toEqual({ loglet: "L1", first: 1, records: [new Uint8Array([1, 2])] });
    const bad = Store.encodeRequest({ loglet: "L1", first: 0, records: [] });
    expect(() => Store.decodeRequest(bad)).toThrow(CairnError);
    try {
      Store.decodeRequest(bad);
    } catch (e) {
      expect((e as CairnError).code).toBe("CAIRN-NET-0008");
      expect((e as CairnError).details.path).toBe("/first");
    }
  });

  test("a response that does not match is NET_BAD_RESPONSE on the caller's side", () => {
    const body = Store.encodeResponse({ stored: 3 });
    expect(Store.decodeResponse(body)).toEqual({ stored: 3 });
    const wrong = defineRpc({ service: "logserver", method: "store", request: Type.Object({}), response: Type.Object({ stored: Type.String() }) });
    try {
      wrong.decodeResponse(body);
      throw new Error("expected a failure");
    } catch (e) {
      expect((e as CairnError).code).toBe("CAIRN-NET-0011");
    }
    try {
      Store.decodeResponse(new Uint8Array([0, 0]));
      throw new Error("expected a failure");
    } catch (e) {
      expect((e as CairnError).code).toBe("CAIRN-NET-0011");
    }
  });

  test("names must be lower-case identifiers", () => {
    expect(() => defineRpc({ service: "Log Server", method: "x", request: Type.Object({}), response: Type.Object({}) })).toThrow(/invariant/);
  });

  test("binary detection sees Uint8Array anywhere in a schema, and counts open schemas as binary", () => {
    expect(schemaMayHoldBinary(Type.Object({ a: Type.String(), b: Type.Array(Type.Integer()) }))).toBe(false);
    expect(schemaMayHoldBinary(Type.Object({ a: Type.Optional(Type.Uint8Array()) }))).toBe(true);
    expect(schemaMayHoldBinary(Type.Tuple([Type.String(), Type.Uint8Array()]))).toBe(true);
    expect(schemaMayHoldBinary(Type.Union([Type.Null(), Type.Object({ x: Type.Uint8Array() })]))).toBe(true);
    expect(schemaMayHoldBinary(Type.Record(Type.String(), Type.Uint8Array()))).toBe(true);
    expect(schemaMayHoldBinary(Type.Object({ meta: Type.Unknown() }))).toBe(true);
  });
});
