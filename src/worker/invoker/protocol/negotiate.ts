// Picks the service-protocol version cairn speaks with a deployment from the range its manifest
// declares. V6 is preferred (what Restate's server uses by default); otherwise the highest of 5..7.
export type ProtocolVersion = 5 | 6 | 7;

const SUPPORTED: readonly ProtocolVersion[] = [7, 6, 5];

/** The version to use for a deployment advertising [min, max], or undefined when none of 5..7 is in range. */
export function chooseProtocolVersion(min: number, max: number): ProtocolVersion | undefined {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min > max) return undefined;
  if (min <= 6 && 6 <= max) return 6;
  return SUPPORTED.find((v) => min <= v && v <= max);
}
