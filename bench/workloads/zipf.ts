/** Zipf-distributed draws for read mixes: a few questions are asked very often, most rarely (as real traffic). */
import { prng } from "./filesystem.js";

/** `count` indexes into a pool of `pool` items drawn Zipf(s) (index 0 the most popular), deterministic. */
export function zipfDraws(count: number, pool: number, s: number, seed: number): Uint32Array {
  const random = prng(seed);
  const cdf = new Float64Array(pool);
  let total = 0;
  for (let i = 0; i < pool; i++) {
    total += 1 / (i + 1) ** s;
    cdf[i] = total;
  }
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const x = random() * total;
    let lo = 0;
    let hi = pool - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    out[i] = lo;
  }
  return out;
}
