import { describe, expect, test } from "bun:test";
import { CairnError } from "../../src/observability/errors.ts";
import { configKeyOf, DEFAULT_FABRIC_OPTIONS, resolveFabricOptions } from "../../src/net/index.ts";

describe("fabric options", () => {
  test("defaults fill what is not given, and undefined does not erase a default", () => {
    const o = resolveFabricOptions({ maxInFlightPerPeer: 8, requestTimeoutMs: undefined });
    expect(o.maxInFlightPerPeer).toBe(8);
    expect(o.requestTimeoutMs).toBe(DEFAULT_FABRIC_OPTIONS.requestTimeoutMs);
  });

  test("a value out of range is CONFIG_INVALID naming the net.* key", () => {
    for (const bad of [{ maxInFlightPerPeer: 0 }, { windowSizeBytes: 1000 }, { reconnectBackoffInitialMs: 10_000, reconnectBackoffMaxMs: 100 }, { heartbeatTimeoutMs: 1.5 }]) {
      try {
        resolveFabricOptions(bad);
        throw new Error(`accepted ${JSON.stringify(bad)}`);
      } catch (e) {
        expect(e).toBeInstanceOf(CairnError);
        expect((e as CairnError).code).toBe("CAIRN-CONFIG-0001");
        expect((e as CairnError).message).toMatch(/^net\.[a-z-]+ = /);
      }
    }
  });

  test("option names map to kebab-case configuration keys", () => {
    expect(configKeyOf("maxInFlightPerPeer")).toBe("net.max-in-flight-per-peer");
    expect(configKeyOf("maxSessionMemoryMb")).toBe("net.max-session-memory-mb");
  });
});
