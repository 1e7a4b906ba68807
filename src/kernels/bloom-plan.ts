/**
 * How big a blocked Bloom filter (src/kernels/bloom.ts) must be for a capacity and a false-positive rate.
 *
 * Sizing: a blocked filter needs more bits than the textbook `m = -n ln p / ln² 2`, because keys do not spread
 * evenly over blocks (a block's load is Binomial(n, 1/blocks)) and an overloaded block answers "maybe" more often.
 * `planBloomFilter` computes the expected false-positive rate of exactly this layout — the load distribution of a
 * block, and for each load the exact distribution of set bits in 512 bits (an occupancy DP), each key setting k
 * independent uniform positions — and picks the fewest blocks (then the smallest k) whose expected rate at
 * capacity is ≤ fpRate. Bits a key, this layout vs textbook: 4.84 vs 4.79 at 10%, 9.92 vs 9.59 at 1% (k = 6),
 * 15.5 vs 14.4 at 0.1%, 38.8 vs 28.8 at 1e-6 (k = 16). Measured rates at capacity land within a few % of the
 * model's (test/kernels/bloom.test.ts checks them).
 */
import { NexusError } from "../util/errors.js";
import { bloomAbi } from "./abi/bloom.js";

/** Bits in one block: one 64-byte cache line. */
export const BLOOM_BLOCK_BITS = bloomAbi.constants.BLOCK_BITS;
/** Most bits a key sets (the kernel has 32 salts). */
export const BLOOM_MAX_HASHES = bloomAbi.constants.MAX_K;
/** Most blocks one filter may have: 1 GiB of bits, the largest single allocation the kernel's allocator makes. */
export const BLOOM_MAX_BLOCKS = 2 ** 24 - 1;

/** Bytes in one block. */
export const BLOCK_BYTES = BLOOM_BLOCK_BITS / 8;

export interface BloomPlan {
  /** Number of 512-bit blocks. */
  readonly blocks: number;
  /** Bits set per key. */
  readonly hashes: number;
  /** Filter bits per key at capacity. */
  readonly bitsPerKey: number;
  /** The model's false-positive rate with `capacity` distinct keys added (≤ the requested rate). */
  readonly expectedFpRate: number;
}

/** After this many key bits thrown into one block, P(any of its 512 bits unset) < 1e-25: treat it as full. */
const SATURATION_THROWS = 64 * BLOOM_BLOCK_BITS;

/**
 * For one k: inner[i] = P(a random key's k bits are all set | the block holds i keys), extended on demand.
 * `occupancy[x]` is the distribution of set bits after the throws so far; `powers[x]` = (x / 512)^k.
 */
interface InnerTable {
  readonly k: number;
  readonly occupancy: Float64Array;
  readonly powers: Float64Array;
  readonly inner: number[];
}
const innerTables = new Map<number, InnerTable>();

function innerRate(k: number, keysInBlock: number): number {
  if (keysInBlock * k >= SATURATION_THROWS) return 1;
  let table = innerTables.get(k);
  if (table === undefined) {
    const occupancy = new Float64Array(BLOOM_BLOCK_BITS + 1);
    occupancy[0] = 1;
    const powers = new Float64Array(BLOOM_BLOCK_BITS + 1);
    for (let x = 0; x <= BLOOM_BLOCK_BITS; x++) powers[x] = (x / BLOOM_BLOCK_BITS) ** k;
    table = { k, occupancy, powers, inner: [0] };
    innerTables.set(k, table);
  }
  const { occupancy, powers, inner } = table;
  const w = BLOOM_BLOCK_BITS;
  while (inner.length <= keysInBlock) {
    // One more key: k more uniform throws. Descending x updates in place (occupancy[x - 1] is still the old one).
    const maxSet = Math.min(w, inner.length * k);
    for (let t = 0; t < k; t++) {
      for (let x = maxSet; x >= 1; x--) {
        occupancy[x] = (occupancy[x]! * x + occupancy[x - 1]! * (w - x + 1)) / w;
      }
      occupancy[0] = 0;
    }
    let rate = 0;
    for (let x = 1; x <= maxSet; x++) rate += occupancy[x]! * powers[x]!;
    inner.push(Math.min(1, rate));
  }
  return inner[keysInBlock]!;
}

/**
 * Expected false-positive rate of `blocks` blocks holding `n` distinct keys at k bits a key. With `stopAbove`,
 * returns as soon as the partial sum exceeds it (the caller only needs to know that it does).
 */
export function blockedFpRate(n: number, blocks: number, k: number, stopAbove = 1): number {
  if (blocks === 1) return innerRate(k, n);
  // A block's load is Binomial(n, 1/blocks); sum P(load = i) * inner(i), in log space (the early terms underflow).
  const p = 1 / blocks;
  const logRatio = Math.log(p) - Math.log1p(-p);
  const mean = n * p;
  let logPmf = n * Math.log1p(-p);
  let rate = 0;
  let mass = 0;
  for (let i = 0; i <= n; i++) {
    const pmf = Math.exp(logPmf);
    if (i * k >= SATURATION_THROWS) return rate + Math.max(0, 1 - mass);
    rate += pmf * innerRate(k, i);
    mass += pmf;
    if (rate > stopAbove) return rate;
    if (i > mean) {
      const nextRatio = ((n - i) / (i + 1)) * Math.exp(logRatio);
      // Past the mean the terms shrink at least geometrically: the tail is < pmf * r / (1 - r).
      if (nextRatio < 0.5 && pmf < rate * 1e-9) return rate + pmf;
    }
    logPmf += Math.log(n - i) - Math.log(i + 1) + logRatio;
  }
  return rate;
}

/**
 * The smallest filter of this layout whose expected false-positive rate with `capacity` keys is ≤ `fpRate`:
 * the fewest blocks over all k (then the smallest k). Blocks needed is unimodal in k, with its minimum at or below
 * the textbook optimum log2(1/fpRate) (block-load variance favours fewer bits a key as the rate drops), so the
 * search walks from there. Plans are cached: filters are usually made with a few recurring parameter pairs.
 */
export function planBloomFilter(capacity: number, fpRate: number): BloomPlan {
  checkCapacity(capacity);
  checkFpRate(fpRate);
  const cacheKey = `${capacity}/${fpRate}`;
  const cached = plans.get(cacheKey);
  if (cached !== undefined) return cached;
  const plan = capacity > SCALE_FROM ? scaledPlan(capacity, fpRate) : searchedPlan(capacity, fpRate);
  if (plans.size >= 256) plans.delete(plans.keys().next().value!);
  plans.set(cacheKey, plan);
  return plan;
}
const plans = new Map<string, BloomPlan>();

/**
 * Above this capacity a plan is scaled from the plan at it instead of searched afresh. A block's load is
 * Binomial(n, 1/blocks), which for n this large is Poisson(n / blocks) to many digits: the rate depends on keys a
 * block only, so the best k stays and the blocks scale with n. The scaled count is then moved block by block to
 * the fewest that meet the rate (a few evaluations, where the full search took 10-50 ms: a layer sizing a filter
 * for a rebuild paid that in one task).
 */
const SCALE_FROM = 65_536;

function scaledPlan(capacity: number, fpRate: number): BloomPlan {
  const base = planBloomFilter(SCALE_FROM, fpRate);
  const k = base.hashes;
  const meets = (blocks: number) => blockedFpRate(capacity, blocks, k, fpRate) <= fpRate;
  let blocks = Math.min(BLOOM_MAX_BLOCKS, Math.ceil((base.blocks * capacity) / SCALE_FROM));
  if (!meets(blocks)) {
    if (!meets(BLOOM_MAX_BLOCKS)) return searchedPlan(capacity, fpRate);
    let step = 1;
    while (!meets(Math.min(BLOOM_MAX_BLOCKS, blocks + step))) step *= 2;
    let lo = blocks + (step >> 1);
    let hi = Math.min(BLOOM_MAX_BLOCKS, blocks + step);
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (meets(mid)) hi = mid;
      else lo = mid;
    }
    blocks = hi;
  } else {
    let step = 1;
    while (blocks - step >= 1 && meets(blocks - step)) step *= 2;
    let lo = Math.max(0, blocks - step);
    let hi = blocks - (step >> 1);
    // Invariant: meets(hi), and lo is 0 or fails.
    while (hi - lo > 1) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (meets(mid)) hi = mid;
      else lo = mid;
    }
    blocks = hi;
  }
  return {
    blocks,
    hashes: k,
    bitsPerKey: (blocks * BLOOM_BLOCK_BITS) / capacity,
    expectedFpRate: blockedFpRate(capacity, blocks, k),
  };
}

function searchedPlan(capacity: number, fpRate: number): BloomPlan {
  const blocksFor = (k: number) =>
    k >= 1 && k <= BLOOM_MAX_HASHES
      ? (fewestBlocks(capacity, fpRate, k) ?? Number.POSITIVE_INFINITY)
      : Number.POSITIVE_INFINITY;
  let k = Math.min(BLOOM_MAX_HASHES, Math.max(1, Math.round(Math.log2(1 / fpRate))));
  let blocks = blocksFor(k);
  // Down while no worse (ties favour fewer probes), then up while strictly better.
  // (An infeasible k, needing more than the most blocks, keeps walking: fewer bits a key may fit.)
  while (k > 1) {
    const below = blocksFor(k - 1);
    if (below > blocks) break;
    k--;
    blocks = below;
  }
  for (let above = blocksFor(k + 1); above < blocks; above = blocksFor(k + 1)) {
    k++;
    blocks = above;
  }
  if (!Number.isFinite(blocks)) {
    throw new NexusError(
      "invalid_argument",
      `a Bloom filter for capacity ${capacity} at fpRate ${fpRate} needs more than ${BLOOM_MAX_BLOCKS * BLOCK_BYTES} bytes, the most one filter can hold`,
      { capacity, fpRate, maxBytes: BLOOM_MAX_BLOCKS * BLOCK_BYTES },
    );
  }
  return {
    blocks,
    hashes: k,
    bitsPerKey: (blocks * BLOOM_BLOCK_BITS) / capacity,
    expectedFpRate: blockedFpRate(capacity, blocks, k),
  };
}

function fewestBlocks(n: number, target: number, k: number): number | undefined {
  const meets = (blocks: number) => blockedFpRate(n, blocks, k, target) <= target;
  // Start from the classic filter's size for this k (a blocked filter never needs fewer bits), then bracket.
  const classicBits = (-k * n) / Math.log1p(-(target ** (1 / k)));
  if (classicBits > BLOOM_MAX_BLOCKS * BLOOM_BLOCK_BITS || !meets(BLOOM_MAX_BLOCKS)) return undefined;
  let lo = Math.max(1, Math.floor((classicBits / BLOOM_BLOCK_BITS) * 0.9));
  while (lo > 1 && meets(lo)) lo = Math.max(1, Math.floor(lo / 2));
  if (meets(lo)) return lo;
  let hi = Math.min(BLOOM_MAX_BLOCKS, Math.max(lo + 1, Math.ceil((classicBits / BLOOM_BLOCK_BITS) * 1.25)));
  while (!meets(hi)) {
    lo = hi;
    hi = Math.min(BLOOM_MAX_BLOCKS, hi * 2);
  }
  // Invariant: !meets(lo) && meets(hi).
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (meets(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

export function checkCapacity(capacity: unknown): asserts capacity is number {
  if (typeof capacity !== "number" || !Number.isSafeInteger(capacity) || capacity < 1) {
    throw new NexusError(
      "invalid_argument",
      `Bloom filter capacity must be an integer ≥ 1, got ${String(capacity)}`,
      {
        capacity,
      },
    );
  }
}

export function checkFpRate(fpRate: unknown): asserts fpRate is number {
  if (typeof fpRate !== "number" || !(fpRate > 0 && fpRate < 1)) {
    throw new NexusError(
      "invalid_argument",
      `Bloom filter fpRate must be a number with 0 < fpRate < 1, got ${String(fpRate)}`,
      { fpRate },
    );
  }
}
