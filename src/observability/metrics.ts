// Prometheus metrics for one node. Every component registers its metrics on the node's Registry
// (passed in, never a process global) so several nodes can live in one test process.
import { Registry, collectDefaultMetrics } from "prom-client";

export { Counter, Gauge, Histogram, Registry } from "prom-client";

/** A registry with the process metrics (CPU, memory, event-loop lag) already collected. */
export function createRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: "cairn_" });
  }
  return registry;
}
