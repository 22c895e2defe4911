// One node's pings shared by the controllers that run on it (the log controller and the partition
// controller each ping every node every round): an answer a node gave less than `freshMs` ago is the
// answer to the next ping too, so two rounds close in time cost one ping per node, not two.
//
// Invariants: only answers are reused (a failed or aborted ping is never remembered, so suspicion
// and the refused-means-dead probes always ask again); an answer is never older than `freshMs`, and
// never reused once the fabric lost its connection to the node (a killed node is pinged at once).
import type { NodeId } from "../../ids/index.ts";
import type { BifrostPeers, PingResponse } from "../../bifrost/rpc.ts";

export function sharedPings(
  peers: BifrostPeers,
  freshMs: number,
  connectionLost: (node: NodeId) => boolean,
  nowMs: () => number = () => performance.now(),
): BifrostPeers {
  const answers = new Map<NodeId, { atMs: number; answer: PingResponse }>();
  return {
    append: (to, request, signal) => peers.append(to, request, signal),
    tail: (to, request, signal) => peers.tail(to, request, signal),
    mayReach: (to) => peers.mayReach(to),
    ping: async (to, signal) => {
      const last = answers.get(to);
      if (last !== undefined && nowMs() - last.atMs < freshMs && !connectionLost(to)) {
        signal.throwIfAborted();
        return last.answer;
      }
      answers.delete(to);
      const sentMs = nowMs();
      const answer = await peers.ping(to, signal);
      answers.set(to, { atMs: sentMs, answer });
      return answer;
    },
  };
}
