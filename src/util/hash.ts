/**
 * Pieces shared by the project's own hash tables (result cache, warmer, node index, blob metadata), each of
 * which hashes its keys its own way and finishes with the same mix.
 */

/**
 * MurmurHash3's 32-bit finalizer (fmix32): every input bit reaches every output bit, so a table may pick its
 * bucket by the low bits. Returns a signed 32-bit integer (`>>> 0` for the unsigned one).
 */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * A random 32-bit seed, drawn when called (modules draw theirs once, at load): as V8 seeds its own string
 * hashes, so keys that all share one bucket cannot be worked out ahead from the source alone.
 */
export function randomSeed(): number {
  return (Math.random() * 0x100000000) | 0;
}
