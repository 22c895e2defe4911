// Parses the `?delay=` of a Restate send: friendly durations (`100ms`, `10s`, `1m`, `1h 30min`, `2days`)
// and ISO 8601 durations (`PT1S`, `P1DT2H`, `PT0.5S`, `P1W`). Pure.
// Invariants: the answer is a whole, non-negative number of milliseconds within Number.MAX_SAFE_INTEGER,
// or undefined for anything else (no unit, unknown unit, negative, empty, overflow).

const UNIT_MS: Record<string, number> = {
  ms: 1, msec: 1, msecs: 1, millis: 1, millisecond: 1, milliseconds: 1,
  s: 1_000, sec: 1_000, secs: 1_000, second: 1_000, seconds: 1_000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
};

const FRIENDLY_PART = /\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*/y;
const ISO = /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i;

/** The delay in ms, or undefined when `text` is not a duration. */
export function parseDelayMs(text: string): number | undefined {
  const ms = /^p/i.test(text) ? isoMs(text) : friendlyMs(text);
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || ms > Number.MAX_SAFE_INTEGER) return undefined;
  return Math.round(ms);
}

function friendlyMs(text: string): number | undefined {
  if (text.trim().length === 0) return undefined;
  let total = 0;
  FRIENDLY_PART.lastIndex = 0;
  while (FRIENDLY_PART.lastIndex < text.length) {
    const m = FRIENDLY_PART.exec(text);
    if (m === null) return undefined;
    const unit = UNIT_MS[m[2]!.toLowerCase()];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
  }
  return total;
}

function isoMs(text: string): number | undefined {
  const m = ISO.exec(text);
  // "P" alone and "PT" with nothing after it are not durations.
  if (m === null || /^PT?$/i.test(text) || /T$/i.test(text)) return undefined;
  const [, w, d, h, min, s] = m;
  const n = (v: string | undefined) => (v === undefined ? 0 : Number(v));
  return n(w) * UNIT_MS.w! + n(d) * UNIT_MS.d! + n(h) * UNIT_MS.h! + n(min) * UNIT_MS.m! + n(s) * UNIT_MS.s!;
}
