/**
 * Questions kept by identity without a key string or an object per question: the warmer's recency record and
 * its queue see every answered request and every predicted question, and a Map keyed by warmKey built a string
 * (then flattened and hashed it) and kept a node object per entry; with 20,000 recent questions that was ~1-2 µs
 * and most of the warmer's garbage per check (a CPU profile of 20,000 first-pass peer-bench checks).
 *
 * - QuestionHash: the identity warmKey names (tenants, user, relation, object), hashed char by char into two
 *   independent 32-bit halves, nothing allocated; a prefix (who asks, the relation) is hashed once and each
 *   object continues from it.
 * - QuestionTable: a hash index over such pairs with a recency order (newest to oldest), in typed arrays that
 *   grow by doubling up to `max` entries: no allocation per entry once grown, and no pointers for the garbage
 *   collector to trace. What an entry holds is the caller's, in arrays indexed by the entry's slot.
 *
 * Two questions are told apart by 64 bits of hash: a false match (about one in 2^64 / entries per look-up)
 * makes the warmer skip warming one question for a while. It never changes an answer: warming only fills caches.
 */

import { DEFAULT_TENANT } from "../../tuples/tuple.js";
import { fmix32, randomSeed } from "../../util/hash.js";
import type { WarmQuestion } from "./questions.js";

/** Ends each part: not a UTF-16 code unit, so the parts' boundaries are part of the hash. */
const END = 0x10000;
/** Drawn once a process (util/hash.ts): questions that all share one bucket cannot be worked out ahead. */
const SEED_A = randomSeed();
const SEED_B = randomSeed();

export class QuestionHash {
  /** The halves of the last hashed question. */
  a = 0;
  b = 0;
  #prefixA = SEED_A;
  #prefixB = SEED_B;

  /**
   * Hashes who asks and the relation (tenants as warmKey reads them: absent means the default, an absent subject
   * tenant means the tenant); `object` then hashes each question of theirs.
   */
  begin(user: string, relation: string, tenant: string | undefined, subjectTenant: string | undefined): void {
    const t = tenant ?? DEFAULT_TENANT;
    const st = subjectTenant ?? t;
    this.a = SEED_A;
    this.b = SEED_B;
    if (t === DEFAULT_TENANT && st === DEFAULT_TENANT) {
      this.#part(""); // the default tenants: one empty part (a tenant id is never empty)
    } else {
      this.#part(t);
      this.#part(st);
    }
    this.#part(user);
    this.#part(relation);
    this.#prefixA = this.a;
    this.#prefixB = this.b;
  }

  /** Sets a and b for the question of `object` asked by the prefix `begin` hashed. */
  object(object: string): void {
    this.a = this.#prefixA;
    this.b = this.#prefixB;
    this.#part(object);
    this.a = fmix32(this.a);
    this.b = fmix32(this.b ^ 0x5bd1e995);
  }

  of(q: WarmQuestion): void {
    this.begin(q.user, q.relation, q.tenant, q.subjectTenant);
    this.object(q.object);
  }

  /** FNV-1a for a, a multiply-xorshift for b: different functions, so a pair collides only when both do. */
  #part(s: string): void {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    this.a = Math.imul(a ^ END, 0x01000193);
    b = Math.imul(b ^ END, 0x5bd1e995);
    this.b = b ^ (b >>> 15);
  }
}

const NONE = -1;
const INITIAL_CAPACITY = 256;

/** A hash index of (a, b) pairs to slots, with the slots in recency order; at most `max` slots. */
export class QuestionTable {
  readonly max: number;
  #a: Int32Array;
  #b: Int32Array;
  /** Next slot in the same bucket. */
  #chain: Int32Array;
  /** Towards the newest / the oldest in recency order. */
  #newer: Int32Array;
  #older: Int32Array;
  /** First slot of each bucket (a power of two of them, at least the capacity). */
  #buckets: Int32Array;
  #mask: number;
  #size = 0;
  /** Slots ever handed out; below it, free slots are chained through #chain from #free. */
  #used = 0;
  #free = NONE;
  #newest = NONE;
  #oldest = NONE;

  constructor(max: number) {
    this.max = max;
    const capacity = Math.min(max, INITIAL_CAPACITY);
    this.#a = new Int32Array(capacity);
    this.#b = new Int32Array(capacity);
    this.#chain = new Int32Array(capacity);
    this.#newer = new Int32Array(capacity);
    this.#older = new Int32Array(capacity);
    this.#mask = bucketsFor(capacity) - 1;
    this.#buckets = new Int32Array(this.#mask + 1).fill(NONE);
  }

  get size(): number {
    return this.#size;
  }

  /** Slots the arrays hold now (callers size their own per-slot arrays to it). */
  get capacity(): number {
    return this.#a.length;
  }

  /** The slot of (a, b), or -1. */
  find(a: number, b: number): number {
    const bs = this.#b;
    const as = this.#a;
    const chain = this.#chain;
    for (let i = this.#buckets[a & this.#mask]!; i !== NONE; i = chain[i]!) {
      if (as[i] === a && bs[i] === b) return i;
    }
    return NONE;
  }

  /** The hash halves slot i holds. */
  a(i: number): number {
    return this.#a[i]!;
  }

  b(i: number): number {
    return this.#b[i]!;
  }

  /** Adds (a, b), not present, as the newest; returns its slot. Call only below `max` (remove the oldest first). */
  insert(a: number, b: number): number {
    let i = this.#free;
    if (i !== NONE) {
      this.#free = this.#chain[i]!;
    } else {
      if (this.#used === this.#a.length) this.#grow();
      i = this.#used++;
    }
    this.#a[i] = a;
    this.#b[i] = b;
    const bucket = a & this.#mask;
    this.#chain[i] = this.#buckets[bucket]!;
    this.#buckets[bucket] = i;
    this.#older[i] = this.#newest;
    this.#newer[i] = NONE;
    if (this.#newest !== NONE) this.#newer[this.#newest] = i;
    else this.#oldest = i;
    this.#newest = i;
    this.#size++;
    return i;
  }

  /** Makes slot i the newest. */
  touch(i: number): void {
    if (i === this.#newest) return;
    this.#unlink(i);
    this.#older[i] = this.#newest;
    this.#newer[i] = NONE;
    this.#newer[this.#newest] = i; // not empty: i was in it, and is not the newest
    this.#newest = i;
  }

  /** The oldest slot, or -1 when empty. */
  oldest(): number {
    return this.#oldest;
  }

  /** Forgets slot i (its slot may be handed out again). */
  remove(i: number): void {
    const bucket = this.#a[i]! & this.#mask;
    const chain = this.#chain;
    let at = this.#buckets[bucket]!;
    if (at === i) {
      this.#buckets[bucket] = chain[i]!;
    } else {
      while (chain[at] !== i) at = chain[at]!;
      chain[at] = chain[i]!;
    }
    this.#unlink(i);
    chain[i] = this.#free;
    this.#free = i;
    this.#size--;
  }

  clear(): void {
    this.#buckets.fill(NONE);
    this.#size = 0;
    this.#used = 0;
    this.#free = NONE;
    this.#newest = NONE;
    this.#oldest = NONE;
  }

  #unlink(i: number): void {
    const newer = this.#newer[i]!;
    const older = this.#older[i]!;
    if (newer !== NONE) this.#older[newer] = older;
    else this.#newest = older;
    if (older !== NONE) this.#newer[older] = newer;
    else this.#oldest = newer;
  }

  /** Doubles the arrays (up to max) and re-buckets every slot (the list links are slot numbers: they stay). */
  #grow(): void {
    const capacity = Math.min(this.max, this.#a.length * 2);
    const widen = (from: Int32Array): Int32Array => {
      const to = new Int32Array(capacity);
      to.set(from);
      return to;
    };
    this.#a = widen(this.#a);
    this.#b = widen(this.#b);
    this.#chain = widen(this.#chain);
    this.#newer = widen(this.#newer);
    this.#older = widen(this.#older);
    this.#mask = bucketsFor(capacity) - 1;
    this.#buckets = new Int32Array(this.#mask + 1).fill(NONE);
    // Grown only when every slot handed out is in use (no free slot): all of 0..used-1 are entries.
    for (let i = 0; i < this.#used; i++) {
      const bucket = this.#a[i]! & this.#mask;
      this.#chain[i] = this.#buckets[bucket]!;
      this.#buckets[bucket] = i;
    }
  }
}

function bucketsFor(capacity: number): number {
  let n = 1;
  while (n < capacity) n *= 2;
  return n;
}
