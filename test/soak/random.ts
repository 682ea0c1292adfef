/**
 * Seeded randomness for the soak. Event content is a pure function of (seed, event index), so a
 * duplicate re-sent an hour later is byte for byte the event sent first, without keeping it.
 */

/** A 32-bit hash of a few integers (multiply-xorshift rounds; good enough to spread test data). */
export function hash32(...parts: number[]): number {
  let h = 0x2545f491;
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca77);
    h ^= h >>> 13;
    // Parts above 2^32 (none expected) still change the hash.
    if (part > 0xffffffff) h ^= Math.floor(part / 2 ** 32);
  }
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  return (h ^ (h >>> 15)) >>> 0;
}

/** A number in [0, 1) from a few integers. */
export const unitOf = (...parts: number[]): number => hash32(...parts) / 2 ** 32;

/** A sequence of numbers in [0, 1) from a seed (for decisions taken as the run goes). */
export function sequence(seed: number, stream: number): () => number {
  let n = 0;
  return () => unitOf(seed, stream, n++);
}
