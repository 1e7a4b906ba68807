/**
 * The result cache: answers keyed by the question and the snapshot revision they hold at, reused across
 * revisions when the change feed proves nothing relevant changed.
 *
 * An entry computed at revision q answers a request at revision r when
 * - r = q (an answer at a snapshot never goes stale: quantization makes every read of a window name one r), or
 * - the change feed has delivered every change up to max(q, r), without a gap since before min(q, r), and no
 *   change in between touched what the answer depends on: the tuple lists its evaluation read (exact: the
 *   evaluation is a function of them), or, when the evaluator cannot tell (the WASM kernel), every tuple class
 *   the question's (type, relation) may read (src/changes/influence.ts), narrowed by subject: a change whose
 *   subject is a plain object (`user:anne`) on a class no relation follows as a tupleset can only change the
 *   answers of checks asking about that very subject (InfluenceMap.subjectBound), so it does not withdraw the
 *   answers of other subjects. The answer is then the same at both revisions.
 * and the request's instant lies in [the instant it was computed at, the entry's `validUntil`) (expiry).
 *
 * A change records the revision at which its tuple list (and its class) last changed (counted as
 * invalidations); answers that did not read it keep answering across windows, the others are replaced when next
 * computed. The change records are bounded (`maxTrackedLists`, `maxTrackedSubjects`): when one is full it is
 * dropped and reuse by it restarts from its floor (older answers fall back to the coarser rule).
 * Reads see every write the engine acknowledged (no quantization hides a change), so these reuse rules, not
 * old revisions, are what keep the hit rate up under writes. Entries are bounded by `maxEntries`, evicting by second chance (an approximation of least recently used
 * that costs a hit one flag write).
 */

import type { ChangeListener } from "../changes/feed.js";
import { changeReach, type InfluenceMap } from "../changes/influence.js";
import type { StoredChange } from "../tuples/types.js";
import {
  type BatchOutcome,
  type CheckResolver,
  LayerCounters,
  type LayerStats,
  type Resolution,
  type ResolvedCheck,
  readKey,
} from "./types.js";

export interface ResultCacheOptions {
  /** Most entries kept (default 100,000). */
  readonly maxEntries?: number;
  /** Most distinct tuple lists tracked for cross-revision reuse (default 1,000,000). */
  readonly maxTrackedLists?: number;
  /** Most distinct (check class, subject) pairs tracked for per-subject reuse (default 200,000). */
  readonly maxTrackedSubjects?: number;
}

/** What the cache knows of the change stream (a ChangeFeed, seen through the chain). */
export interface ChangeKnowledge {
  /** Every change up to this revision has been delivered. */
  readonly watermark: number;
  /** Every change after this revision has been delivered without a gap. */
  readonly complete: number;
}

interface Entry {
  /** What a hit returns. */
  readonly answer: Resolution;
  /** A revision the answer holds at: where it was computed, raised to the newest one a reuse proved. */
  revision: number;
  readonly validUntil: number;
  /** The request instant it was computed for (an earlier instant may still count tuples since expired). */
  readonly computedAt: number;
  readonly relationClass: string;
  /** The check's subject string (per-subject reuse). */
  readonly user: string;
  /** Interned ids of the tuple lists the answer read (see #listIds), or undefined when unknown. */
  readonly reads: Uint32Array | undefined;
  /** Hit since it last came up for eviction (second chance: a hit only sets this, no reordering). */
  used: boolean;
}

export class ResultCacheResolver implements CheckResolver, ChangeListener {
  readonly layer = "result-cache";
  readonly #inner: CheckResolver;
  readonly #influence: InfluenceMap;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, Entry>();
  /** Latest revision at which a change touched what each check class reads. */
  readonly #changedAt = new Map<string, number>();
  /** As #changedAt, counting only changes that may matter to every subject (not InfluenceMap.subjectBound). */
  readonly #anySubjectChangedAt = new Map<string, number>();
  /** Latest revision at which a subject-bound change touched a check class for one subject (`class NUL user`). */
  readonly #subjectChangedAt = new Map<string, number>();
  readonly #maxTrackedSubjects: number;
  /** Per-subject reuse needs both revisions at or after this (raised when #subjectChangedAt is dropped). */
  #subjectFloor = 0;
  /**
   * Tuple lists (readKey) interned to small ids, so an entry's read set is a Uint32Array rather than strings;
   * bounded by `maxTrackedLists` (when full, every entry's read set is forgotten with it).
   */
  readonly #listIds = new Map<string, number>();
  /** Latest revision at which each interned tuple list changed (-1: not since #floor). */
  #listChangedAt: number[] = [];
  readonly #maxTrackedLists: number;
  /** Cross-revision reuse needs both revisions at or after this (raised when the change record is dropped). */
  #floor = 0;
  readonly #counters = new LayerCounters();
  #knowledge: ChangeKnowledge | undefined;
  #crossRevisionHits = 0;
  #evictions = 0;
  #stale = 0;

  constructor(inner: CheckResolver, influence: InfluenceMap, options: ResultCacheOptions = {}) {
    this.#inner = inner;
    this.#influence = influence;
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#maxTrackedLists = options.maxTrackedLists ?? 1_000_000;
    this.#maxTrackedSubjects = options.maxTrackedSubjects ?? 200_000;
  }

  /** Lets the cache reuse answers across revisions, trusting the feed's watermark. */
  follow(knowledge: ChangeKnowledge): void {
    this.#knowledge = knowledge;
  }

  get size(): number {
    return this.#entries.size;
  }

  async resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    this.#counters.requests++;
    const hit = this.#lookup(check);
    if (hit !== undefined) return hit;
    this.#counters.misses++;
    const resolution = await this.#inner.resolve(check, signal);
    this.#store(check, resolution);
    return resolution;
  }

  async resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = new Array(checks.length);
    const missed: number[] = [];
    for (let i = 0; i < checks.length; i++) {
      this.#counters.requests++;
      const hit = this.#lookup(checks[i]!);
      if (hit !== undefined) outcomes[i] = hit;
      else missed.push(i);
    }
    if (missed.length > 0) {
      this.#counters.misses += missed.length;
      const answers = await this.#inner.resolveMany(
        missed.map((i) => checks[i]!),
        signal,
      );
      missed.forEach((i, j) => {
        const answer = answers[j]!;
        outcomes[i] = answer;
        if (!(answer instanceof Error)) this.#store(checks[i]!, answer);
      });
    }
    return outcomes;
  }

  onChanges(changes: readonly StoredChange[]): void {
    if (this.#listIds.size + changes.length > this.#maxTrackedLists) {
      // Forget what came before this page; its own changes are recorded below.
      this.#forgetReads(changes[0]!.revision - 1);
    }
    for (const change of changes) {
      const t = change.tuple;
      // Interned even when no answer read it yet: an answer computed at an older revision may still arrive.
      const id = this.#listId(readKey(t.tenant, t.object, t.relation));
      this.#listChangedAt[id] = change.revision;
      this.#counters.invalidations++;
      const reach = changeReach(this.#influence, t);
      if (reach.subject !== undefined && this.#subjectChangedAt.size >= this.#maxTrackedSubjects) {
        // Forget per-subject changes so far: reuse across revisions before this one uses the class rule.
        this.#subjectChangedAt.clear();
        this.#subjectFloor = change.revision - 1;
      }
      for (const cls of reach.classes) {
        raise(this.#changedAt, cls, change.revision);
        if (reach.subject !== undefined)
          raise(this.#subjectChangedAt, cls + "\u0000" + reach.subject, change.revision);
        else raise(this.#anySubjectChangedAt, cls, change.revision);
      }
    }
  }

  onReset(): void {
    // Answers stay right at their own revision; only the cross-revision proof is lost, and the feed's `complete`
    // moving past every entry's revision already withdraws it.
  }

  /** Drops every entry. */
  clear(): void {
    this.#entries.clear();
  }

  stats(): LayerStats[] {
    return [
      this.#counters.snapshot(this.layer, true, {
        entries: this.#entries.size,
        crossRevisionHits: this.#crossRevisionHits,
        trackedLists: this.#listIds.size,
        trackedSubjects: this.#subjectChangedAt.size,
        staleEntries: this.#stale,
        evictions: this.#evictions,
      }),
      ...this.#inner.stats(),
    ];
  }

  async close(): Promise<void> {
    this.#entries.clear();
    this.#changedAt.clear();
    this.#anySubjectChangedAt.clear();
    this.#subjectChangedAt.clear();
    this.#listIds.clear();
    this.#listChangedAt = [];
    await this.#inner.close();
  }

  /**
   * The cached answer to the question `key` at `revision` and instant `now`, counted as a request and a hit;
   * undefined (counted as nothing) when there is none. The chain's shortcut for plain requests whose key it can
   * build without validating: an entry exists only for a question that passed validation.
   */
  hit(key: string, revision: number, now: number): Resolution | undefined {
    const answer = this.#lookupKey(key, revision, now);
    if (answer !== undefined) this.#counters.requests++;
    return answer;
  }

  #lookup(check: ResolvedCheck): Resolution | undefined {
    const key = check.key;
    if (key === undefined) return undefined;
    return this.#lookupKey(key, check.revision, check.now);
  }

  #lookupKey(key: string, revision: number, now: number): Resolution | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined || now >= entry.validUntil || now < entry.computedAt) return undefined;
    if (entry.revision !== revision) {
      if (!this.#unchangedBetween(entry, revision)) {
        this.#stale++;
        return undefined;
      }
      this.#crossRevisionHits++;
      // The answer holds from its revision through this one: later reads at this revision hit without a proof.
      if (revision > entry.revision) entry.revision = revision;
    }
    this.#counters.hits++;
    entry.used = true;
    return entry.answer;
  }

  #unchangedBetween(entry: Entry, revision: number): boolean {
    const knowledge = this.#knowledge;
    if (knowledge === undefined) return false;
    const low = Math.min(entry.revision, revision);
    const high = Math.max(entry.revision, revision);
    if (high > knowledge.watermark || low < knowledge.complete) return false;
    // Two proofs, either enough: no tuple list the answer read changed, or no change that could reach this class
    // and subject happened.
    if (entry.reads !== undefined && low >= this.#floor && this.#readsUnchanged(entry.reads, low))
      return true;
    const cls = entry.relationClass;
    if (low >= this.#subjectFloor) {
      return (
        (this.#anySubjectChangedAt.get(cls) ?? -1) <= low &&
        (this.#subjectChangedAt.get(cls + "\u0000" + entry.user) ?? -1) <= low
      );
    }
    return (this.#changedAt.get(cls) ?? -1) <= low;
  }

  #readsUnchanged(reads: Uint32Array, low: number): boolean {
    const changedAt = this.#listChangedAt;
    for (const id of reads) if (changedAt[id]! > low) return false;
    return true;
  }

  #intern(keys: readonly string[]): Uint32Array | undefined {
    if (this.#listIds.size + keys.length > this.#maxTrackedLists) {
      this.#forgetReads(this.#knowledge?.watermark ?? Number.POSITIVE_INFINITY);
    }
    const ids = new Uint32Array(keys.length);
    for (let i = 0; i < keys.length; i++) ids[i] = this.#listId(keys[i]!);
    return ids;
  }

  /**
   * The tracking table is full: forget every read set (entries fall back to class-level reuse) and track afresh;
   * changes up to `floor` are forgotten, so read-set reuse needs both revisions at or after it.
   */
  #forgetReads(floor: number): void {
    this.#listIds.clear();
    this.#listChangedAt = [];
    this.#floor = floor;
    for (const [key, entry] of this.#entries) {
      this.#entries.set(key, { ...entry, reads: undefined, used: entry.used });
    }
  }

  /** The id of a tuple list; a new one has not changed since #floor (every change since was interned). */
  #listId(key: string): number {
    let id = this.#listIds.get(key);
    if (id === undefined) {
      id = this.#listIds.size;
      this.#listIds.set(key, id);
      this.#listChangedAt.push(-1);
    }
    return id;
  }

  #store(check: ResolvedCheck, resolution: Resolution): void {
    const key = check.key;
    if (key === undefined || check.now >= resolution.validUntil) return;
    const existing = this.#entries.get(key);
    // Keep the newer answer when two revisions race (older reads still hit it when nothing changed between).
    if (existing !== undefined && existing.revision > resolution.revision) return;
    this.#entries.delete(key);
    this.#entries.set(key, {
      answer: {
        allowed: resolution.allowed,
        revision: resolution.revision,
        validUntil: resolution.validUntil,
      },
      revision: resolution.revision,
      validUntil: resolution.validUntil,
      computedAt: check.now,
      relationClass: `${check.objectType}#${check.relation}`,
      user: check.user,
      reads: resolution.reads === undefined ? undefined : this.#intern(resolution.reads),
      used: false,
    });
    // Second chance (CLOCK over insertion order): the oldest entry goes unless it was hit since it last came up,
    // in which case it moves to the back with its mark cleared. Hits never reorder the map.
    while (this.#entries.size > this.#maxEntries) {
      const [oldest, entry] = this.#entries.entries().next().value as [string, Entry];
      this.#entries.delete(oldest);
      if (entry.used) {
        entry.used = false;
        this.#entries.set(oldest, entry);
      } else {
        this.#evictions++;
      }
    }
  }
}

function raise(changedAt: Map<string, number>, key: string, revision: number): void {
  const before = changedAt.get(key);
  if (before === undefined || before < revision) changedAt.set(key, revision);
}
