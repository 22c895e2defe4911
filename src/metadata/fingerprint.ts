// Random identities the metadata layer hands out: a cluster's fingerprint and a metadata storage's id.

/** 16 random hex digits (64 bits), never all zero. */
export function newFingerprint(random: (bytes: number) => Uint8Array): string {
  for (;;) {
    const hex = [...random(8)].map((b) => b.toString(16).padStart(2, "0")).join("");
    if (!/^0+$/.test(hex)) return hex;
  }
}
