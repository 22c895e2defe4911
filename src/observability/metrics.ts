// Prometheus metrics for one node. Every component registers its metrics on the node's Registry
// (passed in, never a process global) so several nodes can live in one test process.
import { Registry, collectDefaultMetrics } from "prom-client";

export { Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * Sampling period of the event-loop lag histogram. prom-client's default (10 ms) wakes an idle node
 * 100 times a second under Bun, about 0.4 % of a core per node; a stall still shows in the next
 * sample at this period, only the histogram has fewer samples.
 */
export const EVENT_LOOP_MONITORING_PRECISION_MS = 200;

/** A registry with the process metrics (CPU, memory, event-loop lag) already collected. */
export function createRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: "cairn_", eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });
  }
  return registry;
}
