// The exactly-once checker of the invocations workload, pure: counters incremented by 1 per increment,
// each increment with its own idempotency key and answered with the count it produced. Per counter:
// every answer unique and within 1..(increments made), the final count through every node equal to the
// acknowledged increments, and no increment left unanswered (after the quiet period every one must be).

export interface CounterIncrement {
  readonly key: string;
  readonly idempotencyKey: string;
  readonly attempts: number;
  /** The count the increment was answered with; null when never answered. */
  readonly answer: number | null;
}

export interface CountersInput {
  readonly keys: readonly string[];
  readonly increments: readonly CounterIncrement[];
  /** Per key, the final `get` per node (null: no node answered). */
  readonly finals: ReadonlyMap<string, ReadonlyMap<string, number | null>>;
}

export interface CountersReport {
  readonly valid: boolean;
  readonly anomalies: string[];
  readonly acknowledged: number;
  readonly unanswered: number;
  /** Acknowledged only after more than one attempt (an idempotent retry). */
  readonly retried: number;
  readonly perKey: Record<string, { made: number; acknowledged: number; final: Record<string, number | null> }>;
}

export function checkCounters(input: CountersInput): CountersReport {
  const anomalies: string[] = [];
  const unanswered = input.increments.filter((x) => x.answer === null);
  for (const u of unanswered) anomalies.push(`increment ${u.idempotencyKey} on ${u.key} unanswered after ${u.attempts} attempts and the quiet period`);
  const perKey: CountersReport["perKey"] = {};
  for (const key of input.keys) {
    const made = input.increments.filter((x) => x.key === key);
    const answers = made.flatMap((x) => (x.answer === null ? [] : [x.answer]));
    const seen = new Map<number, number>();
    for (const a of answers) seen.set(a, (seen.get(a) ?? 0) + 1);
    for (const [a, n] of seen) if (n > 1) anomalies.push(`${key}: ${n} increments answered ${a} (counted once for several, or an answer repeated)`);
    // An answer above the increments made counts one of them twice (or counts something never sent).
    for (const a of seen.keys()) if (a < 1 || a > made.length) anomalies.push(`${key}: answer ${a} outside 1..${made.length} (${made.length} increments made)`);
    const final = input.finals.get(key);
    if (final === undefined || final.size === 0) anomalies.push(`${key}: never read at the end`);
    for (const [node, count] of final ?? []) {
      if (count === null) anomalies.push(`${key}: no final get answered through ${node}`);
      else if (count !== answers.length) anomalies.push(`${key}: final count ${count} through ${node}, but ${answers.length} increments were acknowledged`);
    }
    perKey[key] = { made: made.length, acknowledged: answers.length, final: Object.fromEntries(final ?? []) };
  }
  return {
    valid: anomalies.length === 0,
    anomalies,
    acknowledged: input.increments.length - unanswered.length,
    unanswered: unanswered.length,
    retried: input.increments.filter((x) => x.answer !== null && x.attempts > 1).length,
    perKey,
  };
}
