// Leader leases of partitions (pure: times come from the caller's monotonic clock). A confirmation
// of the epoch in metadata that started at t lets the leader answer reads until t + lease; a new
// leadership answers nothing until LEASE_CLOCK_MARGIN leases after its epoch bump returned. Every
// older leader's confirmation was linearized before that bump, so its lease has run out by then.

/**
 * A new leader waits its lease times this before answering: monotonic clocks of two nodes may run at
 * slightly different rates (NTP slews them by at most 500 ppm; 10 % is a wide margin).
 */
export const LEASE_CLOCK_MARGIN = 1.1;

export class LeaderLeases {
  /** Until when a partition's reads at an epoch need no confirmation. */
  private readonly leases = new Map<number, { epoch: number; untilMs: number }>();
  /** Before when a partition's new leadership at an epoch answers nothing. */
  private readonly gates = new Map<number, { epoch: number; notBeforeMs: number }>();

  constructor(readonly leaseMs: number) {}

  /** A confirmation of `epoch` that started at `startedMs` succeeded. */
  confirmed(partition: number, epoch: number, startedMs: number): void {
    const held = this.leases.get(partition);
    // A confirmation that started earlier than the lease held never shortens it.
    if (held !== undefined && held.epoch === epoch && held.untilMs >= startedMs + this.leaseMs) return;
    this.leases.set(partition, { epoch, untilMs: startedMs + this.leaseMs });
  }

  /** Whether reads of `partition` at `epoch` may be answered at `nowMs` without confirming. */
  holds(partition: number, epoch: number, nowMs: number): boolean {
    const lease = this.leases.get(partition);
    return lease !== undefined && lease.epoch === epoch && nowMs < lease.untilMs;
  }

  /** This node bumped the partition's epoch to `epoch`; the bump returned at `bumpReturnedMs`. */
  won(partition: number, epoch: number, bumpReturnedMs: number): void {
    this.gates.set(partition, { epoch, notBeforeMs: bumpReturnedMs + this.leaseMs * LEASE_CLOCK_MARGIN });
    this.leases.delete(partition);
  }

  /** How long the leadership at `epoch` must still wait before it answers anything (0: none). */
  waitMs(partition: number, epoch: number, nowMs: number): number {
    const gate = this.gates.get(partition);
    if (gate === undefined || gate.epoch !== epoch) return 0;
    const wait = gate.notBeforeMs - nowMs;
    if (wait <= 0) {
      this.gates.delete(partition);
      return 0;
    }
    return wait;
  }
}
