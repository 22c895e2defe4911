// Binary search for the checkers: a long run's histories hold hundreds of thousands of operations,
// so "the first one past a time" is found in log time, not by a scan per question.

/** The first index i in [0, n) for which `before(i)` is false, given every true comes before every false. */
export function partitionPoint(n: number, before: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
