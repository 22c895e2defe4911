// The controllers' shared pings: a fresh answer is reused, failures and lost connections never are.
import { describe, expect, test } from "bun:test";
import { sharedPings } from "../../../src/admin/controller/shared-pings.ts";
import type { BifrostPeers, PingResponse } from "../../../src/bifrost/rpc.ts";
import { nodeId, type NodeId } from "../../../src/ids/index.ts";

function counting(answer: (to: NodeId) => PingResponse | Error) {
  const calls: NodeId[] = [];
  const peers: BifrostPeers = {
    append: () => Promise.reject(new Error("unused")),
    tail: () => Promise.reject(new Error("unused")),
    mayReach: () => true,
    ping: async (to) => {
      calls.push(to);
      const a = answer(to);
      if (a instanceof Error) throw a;
      return a;
    },
  };
  return { peers, calls };
}

const N1 = nodeId(1);
const N2 = nodeId(2);
const signal = () => new AbortController().signal;

describe("shared pings", () => {
  test("an answer younger than freshMs answers the next ping to the same node; older ones do not", async () => {
    let now = 1_000;
    const { peers, calls } = counting((to) => ({ generation: to === N1 ? 3 : 4 }) as unknown as PingResponse);
    const shared = sharedPings(peers, 400, () => false, () => now);
    const a = await shared.ping(N1, signal());
    now += 399;
    expect(await shared.ping(N1, signal())).toBe(a);
    await shared.ping(N2, signal());
    expect(calls).toEqual([N1, N2]);
    now += 1;
    await shared.ping(N1, signal());
    expect(calls).toEqual([N1, N2, N1]);
  });

  test("a failed ping is never reused, and a lost connection ends the reuse of an answer", async () => {
    let now = 0;
    let fail = true;
    let lost = false;
    const { peers, calls } = counting(() => (fail ? new Error("unreachable") : ({ generation: 1 } as unknown as PingResponse)));
    const shared = sharedPings(peers, 400, () => lost, () => now);
    await expect(shared.ping(N1, signal())).rejects.toThrow("unreachable");
    await expect(shared.ping(N1, signal())).rejects.toThrow("unreachable");
    fail = false;
    await shared.ping(N1, signal());
    now += 10;
    await shared.ping(N1, signal());
    expect(calls.length).toBe(3);
    lost = true;
    fail = true;
    await expect(shared.ping(N1, signal())).rejects.toThrow("unreachable");
    expect(calls.length).toBe(4);
  });

  test("an aborted caller gets its abort even when an answer is cached", async () => {
    const { peers } = counting(() => ({ generation: 1 }) as unknown as PingResponse);
    const shared = sharedPings(peers, 400, () => false, () => 0);
    await shared.ping(N1, signal());
    const c = new AbortController();
    c.abort(new Error("stopped"));
    await expect(shared.ping(N1, c.signal)).rejects.toThrow("stopped");
  });
});
