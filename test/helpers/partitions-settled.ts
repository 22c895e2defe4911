// Waits until every partition of a fresh cluster is led by its placed leader (the leader applied its
// own announce and holds the epoch): right after a cluster forms, partitions move to their placed
// nodes, and a call that lands on a leader stepping down may fail in ways a client must handle.
import { eventually, json } from "./cluster.ts";

export async function partitionsSettled(admin: string, timeoutMs = 90_000): Promise<void> {
  await eventually(
    "every partition led by its placed leader",
    async () => {
      const r = await json<{ partitions?: Array<{ leader: string | null; epochHolder: string | null; leaderApplied: boolean }> }>(`${admin}/v1/partitions`);
      const ps = r.body.partitions ?? [];
      return ps.length > 0 && ps.every((p) => p.leader !== null && p.leaderApplied && p.epochHolder === p.leader) ? true : undefined;
    },
    timeoutMs,
  );
}
