/**
 * The cluster's shared result cache: check answers in Redis, so a question one member answered is answered by any
 * other without evaluation (after a member leaves, its tenants' new owners start warm).
 *
 * Key: `<prefix>a:[tenant, K, model, user, relation, object]`, where K bounds the revisions of the tenant's changes
 * that can alter this answer, by the in-process cache's rule (tenant-changes.ts): a write about another plain
 * subject that no tuple-to-userset can follow, or to a class the question does not read, leaves K — and the shared
 * answer — alone; any other write that reaches the question moves K, and entries under an older K are never read
 * again and expire. An entry is written only when K did not move between the lookup and the answer, and read only
 * at a revision whose K is the same, so the answer is the one at K either way (exact, from the changelog every
 * member follows; no counter in Redis).
 *
 * Entries are immutable once written, which is where RESP3 client-side caching pays: a member keeps the entries it
 * read and Redis only has to tell it about evictions. Redis errors never fail a request: a lookup that fails is a
 * miss, a store that fails is dropped, and both are counted.
 */
import type { Redis } from "./redis.js";
import type { QuestionState, TenantChanges } from "./tenant-changes.js";

export interface SharedQuestion {
  readonly tenant: string;
  readonly model: string;
  readonly user: string;
  readonly relation: string;
  readonly object: string;
}

/** What a lookup learnt: a hit's answer, or the key to store the answer under once computed. */
export type Lookup =
  | { readonly hit: true; readonly allowed: boolean }
  | {
      readonly hit: false;
      readonly key: string | undefined;
      readonly question: SharedQuestion;
      readonly since: number;
    };

export interface SharedCacheStats {
  hits: number;
  misses: number;
  stores: number;
  /** Lookups or stores that failed (Redis unreachable or slow). */
  errors: number;
  /** Questions left out (tenant with expiring or cross-tenant tuples; revision not followed yet). */
  skipped: number;
}

export interface SharedCacheOptions {
  readonly redis: Redis;
  readonly prefix: string;
  readonly changes: TenantChanges;
  /** Latest committed revision (the store's counter). */
  readonly currentRevision: () => Promise<number>;
  /** Entries expire after this long unread (default 10 min). */
  readonly ttlMs?: number;
}

export class SharedResultCache {
  readonly #o: SharedCacheOptions;
  readonly #ttlMs: number;
  readonly stats: SharedCacheStats = { hits: 0, misses: 0, stores: 0, errors: 0, skipped: 0 };

  constructor(options: SharedCacheOptions) {
    this.#o = options;
    this.#ttlMs = options.ttlMs ?? 600_000;
  }

  /**
   * Looks the question up at the latest revision (what a read seeing every acknowledged write reads). Never throws:
   * a failure is a miss without a key (the answer is then not stored either).
   */
  async lookup(q: SharedQuestion): Promise<Lookup> {
    let key: string | undefined;
    let since = -1;
    try {
      const revision = await this.#o.currentRevision();
      await this.#o.changes.reach(revision);
      const state = await this.#state(q);
      if (state === undefined || state.excluded || state.lastChange > revision) {
        this.stats.skipped++;
        return { hit: false, key: undefined, question: q, since };
      }
      since = state.lastChange;
      key = keyOf(this.#o.prefix, q, since);
    } catch {
      this.stats.errors++;
      return { hit: false, key: undefined, question: q, since };
    }
    try {
      const value = await this.#o.redis.get(key);
      if (value === "1" || value === "0") {
        this.stats.hits++;
        return { hit: true, allowed: value === "1" };
      }
      this.stats.misses++;
      return { hit: false, key, question: q, since };
    } catch {
      this.stats.errors++;
      this.stats.misses++;
      return { hit: false, key: undefined, question: q, since };
    }
  }

  /**
   * Stores an answer computed after `lookup` missed, if no change reaching the question came since the lookup's
   * revision: the answer was computed at some revision between the lookup and now, so it holds under the lookup's
   * key exactly when K did not move in between. Never throws.
   */
  async store(miss: Lookup, allowed: boolean): Promise<void> {
    if (miss.hit || miss.key === undefined) return;
    try {
      const now = await this.#o.currentRevision();
      await this.#o.changes.reach(now);
      const state = await this.#state(miss.question);
      if (state === undefined || state.excluded || state.lastChange !== miss.since) return;
      await this.#o.redis.set(miss.key, allowed ? "1" : "0", { PX: this.#ttlMs });
      this.stats.stores++;
    } catch {
      this.stats.errors++;
    }
  }

  /** The question's K, or undefined for an object without a type (the route rejects it). */
  #state(q: SharedQuestion): Promise<QuestionState> | undefined {
    const colon = q.object.indexOf(":");
    if (colon <= 0) return undefined;
    return this.#o.changes.question(q.tenant, q.model, `${q.object.slice(0, colon)}#${q.relation}`, q.user);
  }
}

function keyOf(prefix: string, q: SharedQuestion, since: number): string {
  // JSON keeps the fields apart whatever characters they hold.
  return `${prefix}a:${JSON.stringify([q.tenant, since, q.model, q.user, q.relation, q.object])}`;
}
