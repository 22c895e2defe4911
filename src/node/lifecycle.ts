// The node lifecycle: an explicit state machine. Every transition is checked; an illegal one is a
// bug and throws. Listeners learn of each change (readiness, logs, metrics follow from it).
import { NODE_STATES, type NodeLifecycleState } from "../ids/index.ts";
import { invariant } from "../observability/errors.ts";

export { NODE_STATES, type NodeLifecycleState };

const LEGAL: Record<NodeLifecycleState, readonly NodeLifecycleState[]> = {
  starting: ["running", "stopping", "failed"],
  running: ["stopping", "failed"],
  stopping: ["stopped", "failed"],
  failed: ["stopped"],
  stopped: [],
};

export function isLegalTransition(from: NodeLifecycleState, to: NodeLifecycleState): boolean {
  return LEGAL[from].includes(to);
}

export class NodeLifecycle {
  private current: NodeLifecycleState = "starting";
  private reason = "starting up";
  private readonly listeners: Array<(from: NodeLifecycleState, to: NodeLifecycleState, reason: string) => void> = [];

  get state(): NodeLifecycleState {
    return this.current;
  }

  /** Why the node is in its current state (shown by /ready and /v1/node). */
  get stateReason(): string {
    return this.reason;
  }

  onChange(listener: (from: NodeLifecycleState, to: NodeLifecycleState, reason: string) => void): void {
    this.listeners.push(listener);
  }

  transition(to: NodeLifecycleState, reason: string): void {
    const from = this.current;
    invariant(isLegalTransition(from, to), () => `illegal node lifecycle transition ${from} -> ${to} (${reason})`);
    this.current = to;
    this.reason = reason;
    for (const l of this.listeners) l(from, to, reason);
  }
}
