// Prometheus metrics of the fabric, registered on the node's registry. Creation is idempotent per
// registry (a node's server and client, or several test instances, can share one). Label values come
// from RPC definitions, error codes and configured peer addresses only, so cardinality stays bounded.
import { Counter, Gauge, Histogram, type Registry } from "../observability/metrics.ts";

const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Outcome label of a call or request that succeeded; failures use their error code. */
export const OUTCOME_OK = "ok";

export class ClientMetrics {
  readonly calls: Counter<"service" | "method" | "outcome">;
  readonly callDurationSeconds: Histogram<"service" | "method">;
  readonly inFlight: Gauge<"peer">;
  readonly queued: Gauge<"peer">;
  readonly sessionsConnected: Gauge;
  readonly reconnects: Counter<"peer">;
  readonly connectFailures: Counter<"peer">;
  readonly heartbeatFailures: Counter<"peer">;

  constructor(registry: Registry) {
    this.calls = counter(registry, "cairn_fabric_client_calls_total", "RPC calls made, by outcome (ok or error code)", ["service", "method", "outcome"]);
    this.callDurationSeconds = histogram(registry, "cairn_fabric_client_call_duration_seconds", "RPC call latency as seen by the caller, queueing included", ["service", "method"]);
    this.inFlight = gauge(registry, "cairn_fabric_client_in_flight", "RPC calls sent to a peer and not yet answered", ["peer"]);
    this.queued = gauge(registry, "cairn_fabric_client_queued", "RPC calls waiting for an in-flight slot to a peer", ["peer"]);
    this.sessionsConnected = gauge(registry, "cairn_fabric_client_sessions_connected", "HTTP/2 client sessions currently open", []);
    this.reconnects = counter(registry, "cairn_fabric_client_reconnects_total", "Sessions opened to a peer after its first one", ["peer"]);
    this.connectFailures = counter(registry, "cairn_fabric_client_connect_failures_total", "Failed attempts to open a session to a peer", ["peer"]);
    this.heartbeatFailures = counter(registry, "cairn_fabric_client_heartbeat_failures_total", "Sessions destroyed because a heartbeat PING went unanswered", ["peer"]);
  }
}

export class ServerMetrics {
  readonly requests: Counter<"service" | "method" | "outcome">;
  readonly requestDurationSeconds: Histogram<"service" | "method">;
  readonly inFlight: Gauge;

  constructor(registry: Registry) {
    this.requests = counter(registry, "cairn_fabric_server_requests_total", "Peer requests served, by outcome (ok, error code, or cancelled)", ["service", "method", "outcome"]);
    this.requestDurationSeconds = histogram(registry, "cairn_fabric_server_request_duration_seconds", "Time from request headers to response", ["service", "method"]);
    this.inFlight = gauge(registry, "cairn_fabric_server_in_flight", "Peer requests being handled", []);
  }

  /** Counts one finished request and its duration; the labelled children are looked up once per label set. */
  record(service: string, method: string, outcome: string, durationSeconds: number): void {
    const key = `${service}\n${method}\n${outcome}`;
    let children = this.children.get(key);
    if (children === undefined) {
      children = { requests: this.requests.labels(service, method, outcome), duration: this.requestDurationSeconds.labels(service, method) };
      this.children.set(key, children);
    }
    children.requests.inc();
    children.duration.observe(durationSeconds);
  }

  /** Bounded like the labels themselves: services and methods come from RPC definitions, outcomes from error codes. */
  private readonly children = new Map<
    string,
    { readonly requests: ReturnType<Counter<"service" | "method" | "outcome">["labels"]>; readonly duration: ReturnType<Histogram<"service" | "method">["labels"]> }
  >();
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<L>;
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}

function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Gauge<L> {
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Gauge<L>;
  return new Gauge<L>({ name, help, labelNames, registers: [registry] });
}

function histogram<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Histogram<L> {
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Histogram<L>;
  return new Histogram<L>({ name, help, labelNames, buckets: LATENCY_BUCKETS_SECONDS, registers: [registry] });
}
