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
 * old revisions, are what keep the hit rate up under writes. Entries are bounded by `maxEntries`, evicting by second chance (CLOCK over a ring of
 * slots: an approximation of least recently used that costs a hit one flag write).
 *
 * Entries are found by (scope, user, object) (ResolvedCheck `scope`) through one open-addressing table of slot
 * numbers (an Int32Array, linear probing), placed by a hash of the three strings computed here, each candidate
 * confirmed by comparing the entry's own strings: no key text is built per question (one cost building, flattening
 * and hashing it, about a microsecond a lookup in a cache of 80k entries), and no Map is made or grown per entry.
 * Nested Maps (scope -> user -> object) did that before: a first-time question's miss walked three of them through
 * memory no longer in the processor's caches, and its store grew them, copied by every young-generation GC until
 * promoted (in isolation, 1,000 new questions into a cache of 20k-80k: 0.5-1.7 us a miss, 0.75-2.3 us a store).
 */

import type { ChangeListener } from "../changes/feed.js";
import { changeReach, type InfluenceMap } from "../changes/influence.js";
import type { StoredChange } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";
import { fmix32, randomSeed } from "../util/hash.js";
import {
  type BatchOutcome,
  type CheckResolver,
  LayerCounters,
  type LayerStats,
  promised,
  type Resolution,
  type ResolvedCheck,
  readKey,
  resolveManyNow,
  scopeOf,
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

/** Slots the arrays start with (they grow by doubling up to maxEntries). */
const INITIAL_SLOTS = 1024;
/** Entries the first table has room for (at most half full): 32,768 buckets, 256 KB. */
const TABLE_START_ENTRIES = 16_384;
/**
 * Misses remembered with their hash (a power of two), so that storing the answers of a batch does not hash each
 * question a second time (#loggedHash); and how far a store looks past the next one for its question (a request
 * that missed and then failed validation leaves an entry no store asks for).
 */
const MISS_LOG = 2048;
const MISS_LOG_AHEAD = 8;
/** Strings of #keys per slot, and their offsets. */
const KEY_WORDS = 3;
const KEY_OBJECT = 0;
const KEY_USER = 1;
const KEY_SCOPE = 2;
/** Words of #slots per slot, and their offsets. */
const SLOT_WORDS = 4;
const REVISION = 0;
const VALID_UNTIL = 1;
const COMPUTED_AT = 2;
const FLAGS = 3;
/** Bits of the FLAGS word: hit since the entry last came up for eviction; the answer is "allowed". */
const USED = 1;
const ALLOWED = 2;
/**
 * The entry hash's start, drawn once a process, and its multiplier (see hashText): the golden ratio's odd word.
 * Random, as V8 seeds its own string hashes: ids chosen to share one hash (and so one long run of buckets, every
 * probe through them) cannot be worked out ahead from this code alone.
 */
const HASH_START = randomSeed();
const HASH_PRIME = 0x9e3779b1 | 0;
/**
 * The bits of a hash kept (30): a small integer to V8, so a hash kept in a field or returned from a call is not
 * boxed as a heap number (32 bytes a question when it was).
 */
const SMALL = 0x3fffffff;

export class ResultCacheResolver implements CheckResolver, ChangeListener {
  readonly layer = "result-cache";
  readonly #inner: CheckResolver;
  readonly #influence: InfluenceMap;
  readonly #maxEntries: number;
  /**
   * The entries' index, two words a bucket: slot + 1 (0: empty) and the entry's hash, at the bucket where probing
   * from the hash (& #mask) found room (a probe then compares hashes without reading the slot's arrays). At least
   * twice as many buckets as slots (a power of two), so probes stay short; rebuilt when the slots grow. An entry
   * leaves by backward shift (no tombstones): every entry stays reachable from its hash's bucket without crossing
   * an empty one.
   */
  #table = new Int32Array(2);
  #mask = 0;
  /** Each slot's entry hash (#hashOf), compared before its strings and used to place it again. */
  #hashes = new Int32Array(0);
  /** The (scope, user) #hashOf hashed last and their part of the hash: a batch mostly asks for one user. */
  #hashedScope: string | undefined;
  #hashedUser: string | undefined;
  #hashedPrefix = 0;
  /** The empty bucket the last #find ended at, when it found nothing. */
  #emptyBucket = -1;
  /**
   * The questions the last MISS_LOG lookups missed and their hashes, a ring: miss number n (counted by #missCount,
   * modulo SMALL + 1) at n % MISS_LOG. Stores look their question up there from #logCursor on (#loggedHash): a batch's answers are
   * stored in the order its lookups missed, so its stores find their hashes one after the other. Exact: a hash is
   * taken only for the very same strings. Holds at most MISS_LOG questions' strings past their request (bounded).
   */
  readonly #logObjects: string[] = new Array<string>(MISS_LOG).fill("");
  readonly #logUsers: string[] = new Array<string>(MISS_LOG).fill("");
  readonly #logScopes: string[] = new Array<string>(MISS_LOG).fill("");
  readonly #logHashes = new Int32Array(MISS_LOG);
  #missCount = 0;
  #logCursor = 0;
  /**
   * The empty bucket the last miss's probe ended at, valid while #changes is still #missChanges: the store of its
   * answer, which follows at once when the layers inside answered without waiting, then takes the miss as its own
   * lookup instead of repeating it.
   */
  #missBucket = -1;
  #missChanges = -1;
  /** Counts every change to the table (an entry added or removed, a rebuild): a remembered miss holds only while it stands. */
  #changes = 0;
  /** Slots in use, filled in order up to maxEntries (CLOCK's ring); #hand is the next to come up. */
  #size = 0;
  #hand = 0;
  /** What a hit returns (a shared, read-only resolution: the evaluator's, without its read list). */
  #answers: Resolution[] = [];
  /**
   * What a hit reads, SLOT_WORDS per slot side by side (one cache line, where a hit on a cold entry pays for every
   * line it touches): at REVISION a revision the answer holds at (where it was computed, raised to the newest one
   * a reuse proved), at VALID_UNTIL the epoch ms from which it may change without a new revision, at COMPUTED_AT
   * the request instant it was computed for (an earlier instant may still count tuples since expired), at FLAGS
   * the bit USED when hit since it last came up for eviction (second chance: a hit only sets this, no reordering)
   * and the bit ALLOWED when the answer allows (allowedAt then reads no other memory: the hit of a batch over
   * entries no longer in the processor's caches cost a cache miss per line touched, and the answer object was two).
   */
  #slots = new Float64Array(0);
  /** The check's class (type, relation): an index into #classKeys. */
  #classOf = new Uint32Array(0);
  /**
   * Interned ids of the tuple lists the answer read (see #listIds), or undefined when unknown. Only as long as the
   * last slot given one (a slot past its end reads undefined): the WASM kernel's answers carry none, and an array
   * grown with every entry for nothing was a fifth of the garbage of storing a first-pass answer.
   */
  #reads: (Uint32Array | undefined)[] = [];
  /**
   * Each entry's question, KEY_WORDS a slot side by side (a probe compares all three in one cache line): its
   * object, subject string (also per-subject reuse) and scope.
   */
  #keys: string[] = [];
  /** Check classes as `type#relation` (the influence maps' keys), by id; the last one stored is remembered. */
  readonly #classKeys: string[] = [];
  readonly #classIds = new Map<string, number>();
  #lastClassType = "";
  #lastClassRelation = "";
  #lastClassId = -1;
  /** Entries holding a read set: while none does, changes are not interned (see onChanges). */
  #withReads = 0;
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
  /** The highest revision onChanges has been handed. */
  #received = 0;
  readonly #counters = new LayerCounters();
  #knowledge: ChangeKnowledge | undefined;
  #crossRevisionHits = 0;
  #evictions = 0;
  #stale = 0;

  constructor(inner: CheckResolver, influence: InfluenceMap, options: ResultCacheOptions = {}) {
    this.#inner = inner;
    this.#influence = influence;
    this.#maxEntries = wholeCount(options.maxEntries, 100_000, "maxEntries");
    this.#maxTrackedLists = wholeCount(options.maxTrackedLists, 1_000_000, "maxTrackedLists");
    this.#maxTrackedSubjects = wholeCount(options.maxTrackedSubjects, 200_000, "maxTrackedSubjects");
    if (!lookupsTrained) {
      lookupsTrained = true;
      ResultCacheResolver.#trainLookups();
    }
  }

  /**
   * Runs the lookup code on a scratch cache of a few entries, hits and misses, once a process (under a
   * millisecond, mostly compiling it), so V8 has seen every branch of it before it compiles the code that calls it. Why: the pipeline's cache shortcut
   * (Pipeline#cachedAnswer) is compiled once it is hot, with this code inlined, from what had run so far. After a
   * first pass of distinct questions (every lookup a miss, the answer stored) the hit branch had never run; the
   * first hit threw the compiled code away and the hits after it ran unoptimized for longer than a second pass
   * of 2,000 repeated checks lasts (measured: 1.6-1.8 us a check instead of 0.4-0.6). Touches only the scratch
   * cache (no stats, no entries of any real cache).
   */
  static #trainLookups(): void {
    const cache = new ResultCacheResolver(TRAINING_INNER, TRAINING_INFLUENCE, { maxEntries: 8 });
    const answer: Resolution = { allowed: true, revision: 1, validUntil: Number.POSITIVE_INFINITY };
    // Strings made at run time, as a request's usually are (literals are internalized: compiled code that had
    // only compared those would be thrown away at the first other string).
    const text = (prefix: string, id: number): string => [prefix, id].join("");
    const scope = text("view", 0).slice(0, 4);
    const users = [text("user:", 1), text("user:", 2), text("user:", 3)];
    const objects = [text("doc:", 1), text("doc:", 2), text("doc:", 3)];
    // Two users' entries, the third user unknown: hits, misses for a known user and for the unknown one, one user
    // asked twice in a row and a change of user, at the revision stored and at another (no feed: not reused there).
    for (const user of users.slice(0, 2)) {
      for (const object of objects.slice(0, 2)) {
        cache.#store(trainingCheck(scope, user, object), answer);
      }
    }
    for (let round = 0; round < 40; round++) {
      for (const user of users) {
        for (const object of objects) cache.allowedAt(scope, user, object, 1 + (round % 8 === 7 ? 1 : 0), 1);
      }
    }
    cache.clear();
  }

  /** Lets the cache reuse answers across revisions, trusting the feed's watermark. */
  follow(knowledge: ChangeKnowledge): void {
    this.#knowledge = knowledge;
  }

  get size(): number {
    return this.#size;
  }

  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    return promised(() => this.resolveNow(check, signal));
  }

  /** resolve, the answer itself for a hit or when the layers inside answered without waiting. */
  resolveNow(check: ResolvedCheck, signal?: AbortSignal): Resolution | Promise<Resolution> {
    this.#counters.requests++;
    const hit = this.#lookup(check);
    if (hit !== undefined) return hit;
    this.#counters.misses++;
    return this.#evaluated(check, signal);
  }

  /**
   * resolve for a question the caller just looked up (hit) and missed: no second lookup. An entry stored since is
   * not used, and the answer is evaluated (as exact).
   */
  resolveMissed(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    return promised(() => this.resolveMissedNow(check, signal));
  }

  /** resolveMissed, the answer itself when the layers inside answered without waiting. */
  resolveMissedNow(check: ResolvedCheck, signal?: AbortSignal): Resolution | Promise<Resolution> {
    this.#counters.requests++;
    this.#counters.misses++;
    return this.#evaluated(check, signal);
  }

  /**
   * The inner layer's resolveNow (its resolve when it has none). A method of this class rather than the shared
   * helper: the call site then sees one kind of inner layer, not every layer's (a megamorphic site cost about a
   * third of a microsecond per check).
   */
  #innerNow(check: ResolvedCheck, signal: AbortSignal | undefined): Resolution | Promise<Resolution> {
    const inner = this.#inner;
    return inner.resolveNow !== undefined ? inner.resolveNow(check, signal) : inner.resolve(check, signal);
  }

  /** The inner layers' answer, stored (as soon as it is there: at once when they answered without waiting). */
  #evaluated(check: ResolvedCheck, signal: AbortSignal | undefined): Resolution | Promise<Resolution> {
    const resolution = this.#innerNow(check, signal);
    if (resolution instanceof Promise) {
      return resolution.then((r) => {
        this.#store(check, r);
        return r;
      });
    }
    this.#store(check, resolution);
    return resolution;
  }

  /** resolveMany for questions the caller just looked up (hit) and missed, each: no second lookup. */
  resolveManyMissed(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    return promised(() => this.resolveManyMissedNow(checks, signal));
  }

  /** resolveManyMissed, the outcomes themselves when the layers inside answered without waiting. */
  resolveManyMissedNow(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    const count = checks.length;
    this.#counters.requests += count;
    this.#counters.misses += count;
    // The misses so far are this batch's lookups (the caller's); those after it, if the layers inside wait, are not.
    const logEnd = this.#missCount;
    const store = (answers: BatchOutcome[]): BatchOutcome[] => {
      this.#beforeStores(count, logEnd);
      for (let i = 0; i < count; i++) {
        const answer = answers[i]!;
        if (!(answer instanceof Error)) this.#store(checks[i]!, answer);
      }
      return answers;
    };
    const answers = resolveManyNow(this.#inner, checks, signal);
    return answers instanceof Promise ? answers.then(store) : store(answers);
  }

  resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    return promised(() => this.resolveManyNow(checks, signal));
  }

  /** resolveMany, the outcomes themselves when every question hit or the layers inside answered without waiting. */
  resolveManyNow(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = new Array(checks.length);
    const missed: number[] = [];
    for (let i = 0; i < checks.length; i++) {
      const hit = this.#lookup(checks[i]!);
      if (hit !== undefined) outcomes[i] = hit;
      else missed.push(i);
    }
    this.#counters.requests += checks.length;
    if (missed.length === 0) return outcomes;
    this.#counters.misses += missed.length;
    const all = missed.length === checks.length;
    const logEnd = this.#missCount;
    const store = (answers: BatchOutcome[]): BatchOutcome[] => {
      this.#beforeStores(missed.length, logEnd);
      for (let j = 0; j < missed.length; j++) {
        const i = missed[j]!;
        const answer = answers[j]!;
        outcomes[i] = answer;
        if (!(answer instanceof Error)) this.#store(checks[i]!, answer);
      }
      return outcomes;
    };
    const answers = resolveManyNow(this.#inner, all ? checks : missed.map((i) => checks[i]!), signal);
    return answers instanceof Promise ? answers.then(store) : store(answers);
  }

  onChanges(changes: readonly StoredChange[]): void {
    if (changes.length === 0) return;
    const last = changes[changes.length - 1]!.revision;
    if (last > this.#received) this.#received = last;
    // While no entry holds a read set (the WASM evaluator's answers carry none), changes are not interned: the
    // floor moves past them instead, so a read set stored later is trusted only from after them (an answer computed
    // at an older revision may still arrive; it then falls back to the class rule). Saves a string key per change
    // at load.
    const intern = this.#withReads > 0;
    if (!intern) {
      if (last > this.#floor) this.#floor = last;
    } else if (this.#listIds.size + changes.length > this.#maxTrackedLists) {
      // Forget what came before this page; its own changes are recorded below.
      this.#forgetReads(changes[0]!.revision - 1);
    }
    this.#counters.invalidations += changes.length;
    // The class rule, by runs: consecutive changes of one class (type, relation and subject type; a load writes
    // long runs) reach the same classes, found once per run; a run that is not subject-bound raises its classes
    // once, at its newest revision.
    const count = changes.length;
    let start = 0;
    while (start < count) {
      const first = changes[start]!;
      const t0 = first.tuple;
      const objectType = t0.objectType;
      const relation = t0.relation;
      const subject0 = t0.subject;
      const subjectType = subject0.kind === "object" ? subject0.type : "";
      let newest = first.revision;
      let end = start + 1;
      while (end < count) {
        const change = changes[end]!;
        const t = change.tuple;
        if (t.objectType !== objectType || t.relation !== relation) break;
        const subject = t.subject;
        if ((subject.kind === "object" ? subject.type : "") !== subjectType) break;
        if (change.revision > newest) newest = change.revision;
        end++;
      }
      if (intern) {
        for (let i = start; i < end; i++) {
          const change = changes[i]!;
          const t = change.tuple;
          this.#listChangedAt[this.#listId(readKey(t.tenant, t.object, t.relation))] = change.revision;
        }
      }
      const reach = changeReach(this.#influence, t0);
      if (reach.subject === undefined) this.#raiseClasses(reach.classes, newest);
      else this.#raiseSubjects(changes, start, end, reach.classes, newest);
      start = end;
    }
  }

  /**
   * The subject rule for changes[start, end), a run of one subject-bound class: its classes once, at the run's
   * newest revision (what raising them per change left), then per change, per subject.
   */
  #raiseSubjects(
    changes: readonly StoredChange[],
    start: number,
    end: number,
    classes: readonly string[],
    newest: number,
  ): void {
    for (const cls of classes) raise(this.#changedAt, cls, newest);
    for (let i = start; i < end; i++) {
      const change = changes[i]!;
      if (this.#subjectChangedAt.size >= this.#maxTrackedSubjects) {
        // Forget per-subject changes so far, this revision's earlier ones included: the subject rule then needs
        // both revisions at or after this one (before it, the class rule).
        this.#subjectChangedAt.clear();
        this.#subjectFloor = change.revision;
      }
      const user = change.tuple.user;
      for (const cls of classes) raise(this.#subjectChangedAt, cls + "\u0000" + user, change.revision);
    }
  }

  onReset(): void {
    // Answers stay right at their own revision; only the cross-revision proof is lost, and the feed's `complete`
    // moving past every entry's revision already withdraws it.
  }

  /** Drops every entry. */
  clear(): void {
    this.#table = new Int32Array(2);
    this.#mask = 0;
    this.#hashes = new Int32Array(0);
    this.#changes++;
    this.#size = 0;
    this.#hand = 0;
    this.#withReads = 0;
    this.#answers = [];
    this.#reads = [];
    this.#keys = [];
    this.#slots = new Float64Array(0);
    this.#classOf = new Uint32Array(0);
    // The miss log's strings too (the cache keeps no question past clear and close).
    this.#logObjects.fill("");
    this.#logUsers.fill("");
    this.#logScopes.fill("");
    // And its count: a blanked slot still holds its hash, which a store of the empty strings would take.
    this.#missCount = 0;
    this.#logCursor = 0;
  }

  stats(): LayerStats[] {
    return [
      this.#counters.snapshot(this.layer, true, {
        entries: this.#size,
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
    this.clear();
    this.#changedAt.clear();
    this.#anySubjectChangedAt.clear();
    this.#subjectChangedAt.clear();
    this.#listIds.clear();
    this.#listChangedAt = [];
    await this.#inner.close();
  }

  /**
   * The cached answer to the question (scope, user, object) at `revision` and instant `now`, counted as a request
   * and a hit; undefined (counted as nothing) when there is none: the whole resolution, for a caller that reads
   * more than the boolean (the chain's shortcut uses allowedAt). An entry exists only for a question that passed
   * validation.
   */
  hit(scope: string, user: string, object: string, revision: number, now: number): Resolution | undefined {
    const answer = this.#lookupAt(scope, user, object, revision, now);
    if (answer !== undefined) this.#counters.requests++;
    return answer;
  }

  /**
   * hit's answer as a boolean (undefined when there is none): the pipeline's shortcut, whose compiled code then
   * reads no field of a resolution on a hit that it did not read on a miss.
   */
  allowedAt(scope: string, user: string, object: string, revision: number, now: number): boolean | undefined {
    const slot = this.#hitSlot(scope, user, object, revision, now);
    if (slot < 0) return undefined;
    this.#counters.requests++;
    return (this.#slots[slot * SLOT_WORDS + FLAGS]! & ALLOWED) !== 0;
  }

  #lookup(check: ResolvedCheck): Resolution | undefined {
    const scope = scopeOf(check);
    if (scope === undefined) return undefined;
    return this.#lookupAt(scope, check.user, check.object, check.revision, check.now);
  }

  #lookupAt(
    scope: string,
    user: string,
    object: string,
    revision: number,
    now: number,
  ): Resolution | undefined {
    const slot = this.#hitSlot(scope, user, object, revision, now);
    return slot < 0 ? undefined : this.#answers[slot];
  }

  /** The slot whose answer holds for the question at `revision` and `now`, counted as a hit; -1 when none. */
  #hitSlot(scope: string, user: string, object: string, revision: number, now: number): number {
    const hash = this.#hashOf(scope, user, object);
    const slot = this.#find(hash, scope, user, object);
    if (slot < 0) {
      const at = this.#missCount & (MISS_LOG - 1);
      this.#logObjects[at] = object;
      this.#logUsers[at] = user;
      this.#logScopes[at] = scope;
      this.#logHashes[at] = hash;
      // Counted round within SMALL (a multiple of MISS_LOG: the ring goes on in order), so the count stays a small
      // integer; at the wrap a store's cursor does not find its question and hashes it again.
      this.#missCount = (this.#missCount + 1) & SMALL;
      this.#missBucket = this.#emptyBucket;
      this.#missChanges = this.#changes;
      return -1;
    }
    const slots = this.#slots;
    const base = slot * SLOT_WORDS;
    if (now >= slots[base + VALID_UNTIL]! || now < slots[base + COMPUTED_AT]!) return -1;
    const at = slots[base + REVISION]!;
    if (at !== revision) {
      if (!this.#unchangedBetween(slot, at, revision)) {
        this.#stale++;
        return -1;
      }
      this.#crossRevisionHits++;
      // The answer holds from its revision through this one: later reads at this revision hit without a proof.
      if (revision > at) slots[base + REVISION] = revision;
    }
    this.#counters.hits++;
    slots[base + FLAGS] = slots[base + FLAGS]! | USED;
    return slot;
  }

  /** Whether the answer in `slot`, held at revision `at`, is proven to be the same at `revision`. */
  #unchangedBetween(slot: number, at: number, revision: number): boolean {
    const knowledge = this.#knowledge;
    if (knowledge === undefined) return false;
    const low = Math.min(at, revision);
    const high = Math.max(at, revision);
    if (high > knowledge.watermark || low < knowledge.complete) return false;
    // Two proofs, either enough: no tuple list the answer read changed, or no change that could reach this class
    // and subject happened.
    const reads = this.#reads[slot];
    if (reads !== undefined && low >= this.#floor && this.#readsUnchanged(reads, low)) return true;
    const cls = this.#classKeys[this.#classOf[slot]!]!;
    if (low >= this.#subjectFloor) {
      return (
        (this.#anySubjectChangedAt.get(cls) ?? -1) <= low &&
        (this.#subjectChangedAt.get(cls + "\u0000" + this.#keys[slot * KEY_WORDS + KEY_USER]) ?? -1) <= low
      );
    }
    return (this.#changedAt.get(cls) ?? -1) <= low;
  }

  #readsUnchanged(reads: Uint32Array, low: number): boolean {
    const changedAt = this.#listChangedAt;
    for (const id of reads) if (changedAt[id]! > low) return false;
    return true;
  }

  /** Raises the class maps of a class set (not subject-bound) to `revision`. */
  #raiseClasses(classes: readonly string[], revision: number): void {
    for (const cls of classes) {
      raise(this.#changedAt, cls, revision);
      raise(this.#anySubjectChangedAt, cls, revision);
    }
  }

  #intern(keys: readonly string[]): Uint32Array | undefined {
    if (this.#listIds.size + keys.length > this.#maxTrackedLists) {
      // Everything received so far is forgotten, which can be past the watermark: the feed hands a large
      // revision over in parts and moves the watermark only after the last one.
      this.#forgetReads(Math.max(this.#knowledge?.watermark ?? Number.POSITIVE_INFINITY, this.#received));
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
    this.#reads.fill(undefined);
    this.#withReads = 0;
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
    const scope = scopeOf(check);
    if (scope === undefined || check.now >= resolution.validUntil || this.#maxEntries < 1) return;
    const { user, object } = check;
    // The answer without its read list (the entry keeps that as ids).
    const answer: Resolution =
      resolution.reads === undefined
        ? resolution
        : { allowed: resolution.allowed, revision: resolution.revision, validUntil: resolution.validUntil };
    // The miss just looked up for this very question, while no entry came or went since: no second lookup.
    const last = (this.#missCount - 1) & (MISS_LOG - 1);
    const missed =
      this.#missChanges === this.#changes &&
      object === this.#logObjects[last] &&
      user === this.#logUsers[last] &&
      scope === this.#logScopes[last];
    let hash: number;
    let bucket: number;
    let existing: number;
    if (missed) {
      hash = this.#logHashes[last]!;
      bucket = this.#missBucket;
      existing = -1;
    } else {
      hash = this.#loggedHash(scope, user, object);
      existing = this.#find(hash, scope, user, object);
      bucket = this.#emptyBucket;
    }
    if (existing >= 0) {
      // Keep the newer answer when two revisions race (older reads still hit it when nothing changed between).
      if (this.#slots[existing * SLOT_WORDS + REVISION]! > resolution.revision) return;
      if (this.#reads[existing] !== undefined) this.#withReads--;
      this.#fill(existing, answer, check, resolution);
      return;
    }
    let slot: number;
    if (this.#size < this.#maxEntries) {
      if (this.#size >= this.#classOf.length) {
        this.#grow(this.#size + 1);
        bucket = -1; // the table was rebuilt
      }
      slot = this.#size++;
    } else {
      // Second chance (CLOCK): the entry under the hand goes unless it was hit since it last came up, in which
      // case its mark is cleared and the hand moves on. Hits never reorder anything.
      const slots = this.#slots;
      const size = this.#size;
      let hand = this.#hand;
      while ((slots[hand * SLOT_WORDS + FLAGS]! & USED) !== 0) {
        slots[hand * SLOT_WORDS + FLAGS] = slots[hand * SLOT_WORDS + FLAGS]! & ALLOWED;
        hand = hand + 1 === size ? 0 : hand + 1;
      }
      slot = hand;
      this.#hand = hand + 1 === size ? 0 : hand + 1;
      // The evicted entry's removal shifts entries back: the question's empty bucket is found again.
      this.#evict(slot);
      bucket = -1;
    }
    this.#changes++;
    if (bucket < 0) bucket = this.#emptyFor(hash);
    this.#table[bucket * 2] = slot + 1;
    this.#table[bucket * 2 + 1] = hash;
    this.#hashes[slot] = hash;
    // Written in order (a new slot is the array's end: it stays packed).
    const keys = this.#keys;
    const at = slot * KEY_WORDS;
    keys[at + KEY_OBJECT] = object;
    keys[at + KEY_USER] = user;
    keys[at + KEY_SCOPE] = scope;
    this.#fill(slot, answer, check, resolution);
  }

  /** Writes an answer into `slot` (new, or replacing the one it held for the same question). */
  #fill(slot: number, answer: Resolution, check: ResolvedCheck, resolution: Resolution): void {
    this.#answers[slot] = answer;
    const slots = this.#slots;
    const base = slot * SLOT_WORDS;
    slots[base + REVISION] = resolution.revision;
    slots[base + VALID_UNTIL] = resolution.validUntil;
    slots[base + COMPUTED_AT] = check.now;
    slots[base + FLAGS] = answer.allowed ? ALLOWED : 0;
    this.#classOf[slot] = this.#classId(check.objectType, check.relation);
    const reads = this.#readsOf(resolution);
    const all = this.#reads;
    if (reads !== undefined) {
      // Filled up to the slot first: the array stays packed (a write far past its end would make it a dictionary).
      while (all.length < slot) all.push(undefined);
      all[slot] = reads;
    } else if (slot < all.length) {
      all[slot] = undefined;
    }
  }

  /** The id of the class (type, relation); consecutive answers mostly share one (no key built then). */
  #classId(objectType: string, relation: string): number {
    if (objectType === this.#lastClassType && relation === this.#lastClassRelation) return this.#lastClassId;
    const key = `${objectType}#${relation}`;
    let id = this.#classIds.get(key);
    if (id === undefined) {
      id = this.#classKeys.length;
      this.#classKeys.push(key);
      this.#classIds.set(key, id);
    }
    this.#lastClassType = objectType;
    this.#lastClassRelation = relation;
    this.#lastClassId = id;
    return id;
  }

  /** Doubles the typed arrays (up to maxEntries slots) until they hold `want` slots. */
  #grow(want: number): void {
    let length = Math.max(INITIAL_SLOTS, this.#classOf.length * 2);
    while (length < want) length *= 2;
    length = Math.min(this.#maxEntries, length);
    const slots = new Float64Array(length * SLOT_WORDS);
    slots.set(this.#slots);
    this.#slots = slots;
    const classOf = new Uint32Array(length);
    classOf.set(this.#classOf);
    this.#classOf = classOf;
    const hashes = new Int32Array(length);
    hashes.set(this.#hashes);
    this.#hashes = hashes;
    // The first table already holds TABLE_START_ENTRIES (placing every entry again at each doubling before that
    // was a third of the store's time in a first pass).
    let buckets = 1;
    while (buckets < Math.max(length, Math.min(this.#maxEntries, TABLE_START_ENTRIES)) * 2) buckets *= 2;
    if (buckets * 2 > this.#table.length) this.#rebuild(buckets);
  }

  /**
   * Places every entry again in a table of `buckets` buckets (a power of two, more than before), in the old
   * table's order: an entry's new bucket is then near where the one before it went, so the writes move through
   * the new table in order (in slot order they went anywhere: at 64k entries 7-8 ms of cache misses, one pause).
   */
  #rebuild(buckets: number): void {
    const old = this.#table;
    const table = new Int32Array(buckets * 2);
    const mask = buckets - 1;
    for (let from = 0; from < old.length; from += 2) {
      const entry = old[from]!;
      if (entry === 0) continue;
      const hash = old[from + 1]!;
      let bucket = hash & mask;
      while (table[bucket * 2] !== 0) bucket = (bucket + 1) & mask;
      table[bucket * 2] = entry;
      table[bucket * 2 + 1] = hash;
    }
    this.#table = table;
    this.#mask = mask;
    this.#changes++;
  }

  /**
   * #hashOf(scope, user, object), from the miss log when one of the next misses from #logCursor on (at most
   * MISS_LOG_AHEAD past it) was this question; the cursor then moves past it.
   */
  #loggedHash(scope: string, user: string, object: string): number {
    const end = this.#missCount;
    let cursor = this.#logCursor;
    const stop = Math.min(end, cursor + MISS_LOG_AHEAD + 1);
    for (; cursor < stop; cursor++) {
      const at = cursor & (MISS_LOG - 1);
      if (this.#logObjects[at] === object && this.#logUsers[at] === user && this.#logScopes[at] === scope) {
        this.#logCursor = cursor + 1;
        return this.#logHashes[at]!;
      }
    }
    return this.#hashOf(scope, user, object);
  }

  /**
   * Readies the store of `count` answers whose questions missed last before miss number `end`, in order: the miss
   * log's cursor at the first of them (allowing for MISS_LOG_AHEAD misses that are not stored), and room for them
   * all in the slot arrays, so that a batch grows them at most once.
   */
  #beforeStores(count: number, end: number): void {
    this.#logCursor = Math.max(0, end - MISS_LOG, end - count - MISS_LOG_AHEAD);
    const want = Math.min(this.#maxEntries, this.#size + count);
    if (want > this.#classOf.length) this.#grow(want);
  }

  /**
   * The hash of an entry's strings: hashText over the scope's, the user's and the object's, then mixed (murmur3's
   * finalizer) so that its low bits, which pick the bucket, depend on every unit. The (scope, user) part
   * hashed last is kept: a folder's questions share it.
   */
  #hashOf(scope: string, user: string, object: string): number {
    let prefix: number;
    if (user === this.#hashedUser && scope === this.#hashedScope) {
      prefix = this.#hashedPrefix;
    } else {
      prefix = hashText(hashText(HASH_START, scope), user) & SMALL;
      this.#hashedScope = scope;
      this.#hashedUser = user;
      this.#hashedPrefix = prefix;
    }
    return fmix32(hashText(prefix, object)) & SMALL;
  }

  /**
   * The slot of the entry (scope, user, object) of hash `hash`, -1 when there is none (#emptyBucket is then the
   * empty bucket its probe ended at: where it would go).
   */
  #find(hash: number, scope: string, user: string, object: string): number {
    const table = this.#table;
    const mask = this.#mask;
    let bucket = hash & mask;
    for (;;) {
      const entry = table[bucket * 2]!;
      if (entry === 0) {
        this.#emptyBucket = bucket;
        return -1;
      }
      const slot = entry - 1;
      if (table[bucket * 2 + 1] === hash) {
        const keys = this.#keys;
        const at = slot * KEY_WORDS;
        if (
          keys[at + KEY_OBJECT] === object &&
          keys[at + KEY_USER] === user &&
          keys[at + KEY_SCOPE] === scope
        ) {
          return slot;
        }
      }
      bucket = (bucket + 1) & mask;
    }
  }

  /** The first empty bucket from `hash`'s (for an entry known to be absent). */
  #emptyFor(hash: number): number {
    const table = this.#table;
    const mask = this.#mask;
    let bucket = hash & mask;
    while (table[bucket * 2] !== 0) bucket = (bucket + 1) & mask;
    return bucket;
  }

  #readsOf(resolution: Resolution): Uint32Array | undefined {
    if (resolution.reads === undefined) return undefined;
    const ids = this.#intern(resolution.reads);
    if (ids !== undefined) this.#withReads++;
    return ids;
  }

  /** Removes the entry in `slot` from the table (the slot is about to be reused), shifting back what follows it. */
  #evict(slot: number): void {
    this.#evictions++;
    this.#changes++;
    if (this.#reads[slot] !== undefined) this.#withReads--;
    const table = this.#table;
    const mask = this.#mask;
    let hole = this.#hashes[slot]! & mask;
    while (table[hole * 2] !== slot + 1) hole = (hole + 1) & mask;
    // Backward shift: an entry after the hole moves into it unless its own bucket lies after the hole (between
    // the hole and where it sits), so no entry is left beyond an empty bucket on its probe path.
    let bucket = hole;
    for (;;) {
      bucket = (bucket + 1) & mask;
      const entry = table[bucket * 2]!;
      if (entry === 0) break;
      const hash = table[bucket * 2 + 1]!;
      if (((bucket - (hash & mask)) & mask) >= ((bucket - hole) & mask)) {
        table[hole * 2] = entry;
        table[hole * 2 + 1] = hash;
        hole = bucket;
      }
    }
    table[hole * 2] = 0;
  }
}

/** Whether ResultCacheResolver#trainLookups has run in this process. */
let lookupsTrained = false;

/** The inner layer of the training cache: never asked (the training stores its answers itself). */
const TRAINING_INNER: CheckResolver = {
  layer: "training",
  resolve: () => Promise.reject(new Error("the training cache asks no inner layer")),
  resolveMany: () => Promise.reject(new Error("the training cache asks no inner layer")),
  stats: () => [],
  close: async () => {},
};

/** The influence map of the training cache: never read (it follows no changes). */
const TRAINING_INFLUENCE: InfluenceMap = {
  affectedBy: () => [],
  readsOf: () => new Set(),
  mayEvaluateConditions: () => false,
  maxHops: () => 0,
  subjectBound: () => false,
};

/** A question of the training cache, with a validated check's fields. */
function trainingCheck(scope: string, user: string, object: string): ResolvedCheck {
  return {
    tenant: "default",
    subjectTenant: "default",
    object,
    objectType: "doc",
    relation: scope,
    subject: { kind: "object", type: "user", id: user.slice(5) },
    user,
    revision: 1,
    now: 1,
    context: undefined,
    contextualTuples: [],
    scope,
  };
}

/**
 * `hash` carried over `text`'s UTF-16 units, two at a time (a word of 32 bits): each step multiplies (low bits
 * into high) and folds the high half back down. A step is a bijection of the running hash for a given word, so
 * texts of one length that differ in one unit never meet.
 */
function hashText(hash: number, text: string): number {
  const length = text.length;
  let i = 0;
  for (; i + 1 < length; i += 2) {
    hash = Math.imul(hash ^ (text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16)), HASH_PRIME);
    hash ^= hash >>> 15;
  }
  if (i < length) {
    hash = Math.imul(hash ^ text.charCodeAt(i), HASH_PRIME);
    hash ^= hash >>> 15;
  }
  return hash ^ length;
}

function raise(changedAt: Map<string, number>, key: string, revision: number): void {
  const before = changedAt.get(key);
  if (before === undefined || before < revision) changedAt.set(key, revision);
}

/**
 * A count option: a whole number ≥ 0, or `fallback` when not given. Anything else is refused: the slot arithmetic
 * needs whole numbers (a fractional maxEntries handed out a slot past the arrays' end, whose dropped writes read
 * back as a denial, or as an answer kept across a revoke; NaN never filled, so a store looked for a free bucket in
 * an empty table forever).
 */
function wholeCount(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new NexusError(
      "invalid_argument",
      `cache.resultCache.${name} must be a whole number ≥ 0, got ${describe(value)}`,
    );
  }
  return value;
}
