/**
 * The Bloom negative cache: a WASM Bloom filter of every object that carries a tuple and every subject
 * that appears in one, answering "denied" without evaluation when a grant cannot exist. What "cannot" means is
 * read off the evaluator (src/reference/check.ts), where TRUE comes only from
 *   (a) a tuple matching the subject exactly or by its type's wildcard (`user:*`), for a plain or wildcard
 *       subject, or
 *   (b) the subject being the userset `object#relation` reached (a userset subject, no tuple needed),
 * and every path from the checked object starts with a tuple on that object (direct tuples, usersets and
 * tuple-to-userset tuplesets are all read on it; computed usersets stay on it). So:
 * - object rule: no tuple on (tenant, object), and the subject is not a userset of that same object → FALSE;
 *   exact, since no tuple is read (no condition evaluated, no depth reached).
 * - subject rule: a plain or wildcard subject with no tuple naming it or its type's wildcard, in its tenant, in
 *   any tenant's tuples → no grant. Applied only when the checked (type, relation) cannot evaluate a condition
 *   (src/changes/influence.ts), since the reference would report a missing condition parameter rather than deny,
 *   and only when no check of that (type, relation) can take as many steps as the depth limit (an acyclic class
 *   graph with a shorter longest path), since the reference would fail with "resolution_too_complex" rather
 *   than deny. Recursive relations (group in group, folder in folder) therefore rely on the object rule.
 * Contextual tuples bypass the layer.
 *
 * Built by default only over the reference evaluator: over the WASM one the kernel's interner answers both rules
 * (src/pipeline/builder.ts says how), so the engine builds it there only when asked (`cache: { bloom: true }`).
 *
 * The filter only grows as tuples are written (deletes leave stale bits: more "maybe", never a false deny). It
 * follows the change feed from revision 0: the feed replays the changelog to it, then hands it every new page.
 * When the changelog no longer reaches back that far it is seeded instead from a snapshot of the `tenants`
 * named. It may answer only for revisions it has absorbed completely: up to the last page it was handed, and
 * from revision 0 after a replay (from the snapshot's revision when seeded or rebuilt from snapshots). When
 * stale bits pile up or it fills past capacity, it is rebuilt in the background from a snapshot of every tenant
 * it has seen, then swapped in (answering again from the rebuild's revision on).
 *
 * Owner: the layer owns its feed subscription and its rebuild task; close() unsubscribes, waits for the rebuild,
 * frees the filters and closes the next layer.
 */

import type { ChangeListener, ChangeSource } from "../changes/feed.js";
import type { InfluenceMap } from "../changes/influence.js";
import { BloomFilter } from "../kernels/bloom.js";
import type { RelationTuple } from "../tuples/tuple.js";
import type { Revision, StoredChange, TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import { yieldToLoop } from "../util/yield.js";
import { ready } from "../wasm/loader.js";
import {
  type BatchOutcome,
  type CheckResolver,
  type DepthGuard,
  LayerCounters,
  type LayerStats,
  promised,
  type Resolution,
  type ResolvedCheck,
  resolveRestNow,
} from "./types.js";

export interface BloomNegativeOptions {
  /** False-positive rate at capacity (default 0.01). */
  readonly fpRate?: number;
  /** Keys the first filter is sized for (default 65,536; a rebuild sizes for four times what is live when the
   * filter was outgrown, twice when deletes made it stale). */
  readonly initialCapacity?: number;
  /**
   * Tenants to seed from when the changelog no longer reaches back to revision 0. Without them (and without the
   * changelog) the layer cannot know every tuple and stays off.
   */
  readonly tenants?: readonly string[];
  /** Rebuild when deletes since the last build exceed this share of its keys (default 0.5). */
  readonly rebuildStaleRatio?: number;
  /** The evaluator's depth limit (default 25): the subject rule applies only where no check can reach it. */
  readonly maxResolutionDepth?: number;
  /** Where no check can reach that limit (default: the (type, relation) cannot recurse that far). */
  readonly depthGuard?: DepthGuard;
}

const SEP = "\u0000";
// A key is its prefix and a name: handed to the filter in those two parts (BloomFilter.addParts), so no string is
// built a key.
const objectPrefix = (tenant: string): string => `o${SEP}${tenant}${SEP}`;
const subjectPrefix = (subjectTenant: string): string => `s${SEP}${subjectTenant}${SEP}`;
/** A wildcard subject's name is its type and this (`user:*`): looked up as (prefix, type, WILDCARD). */
const WILDCARD = ":*";

/** Tuples a rebuild adds from its snapshot between returns to the event loop. */
const FILL_SLICE = 8192;

export class BloomNegativeResolver implements CheckResolver, ChangeListener {
  readonly layer = "bloom-negative";
  /** A large write reaches the filter in parts (the feed turns the event loop between them). */
  readonly partialRevisions = true;
  readonly #inner: CheckResolver;
  readonly #store: TupleStore;
  readonly #influence: InfluenceMap;
  readonly #fpRate: number;
  readonly #initialCapacity: number;
  readonly #staleRatio: number;
  readonly #depthGuard: DepthGuard;
  readonly #counters = new LayerCounters();
  readonly #tenants = new Set<string>();
  #unsubscribe: (() => void) | undefined;
  #filter: BloomFilter | undefined;
  /** A filter being rebuilt: changes go to it too until it is swapped in. */
  #next: BloomFilter | undefined;
  #rebuilding: Promise<void> | undefined;
  /** Answers hold for revisions from #from to #seen. */
  #from = Number.POSITIVE_INFINITY;
  #seen: Revision;
  #keys = 0;
  /** Tuples whose keys went into the filter since its build: deletes are judged against these, not against keys,
   * since a tuple sharing its object or subject with the one before it adds fewer than two keys. */
  #tuples = 0;
  #deletes = 0;
  #rebuilds = 0;
  #objectDenials = 0;
  #subjectDenials = 0;
  #bypassed = 0;
  #note = "";
  #resets = 0;
  /** The feed is still replaying the changelog from revision 0 to this layer. */
  #seeding = false;
  /** Set when that replay found the changelog trimmed: the revision the feed continues from. */
  #historyLostAt: Revision | undefined;
  /**
   * The last part delivered ended inside a revision (after #seen): a rebuild must not start now, since its
   * snapshot at #seen would miss the parts already handed to the old filter only. It starts at the revision's end.
   */
  #midRevision = false;
  #rebuildWanted = false;
  #closed = false;

  private constructor(
    inner: CheckResolver,
    store: TupleStore,
    influence: InfluenceMap,
    options: BloomNegativeOptions,
    seen: Revision,
  ) {
    this.#inner = inner;
    this.#store = store;
    this.#influence = influence;
    this.#fpRate = options.fpRate ?? 0.01;
    this.#initialCapacity = options.initialCapacity ?? 65_536;
    this.#staleRatio = options.rebuildStaleRatio ?? 0.5;
    const maxDepth = options.maxResolutionDepth ?? 25;
    this.#depthGuard = options.depthGuard ?? ((c) => influence.maxHops(c.objectType, c.relation) < maxDepth);
    this.#seen = seen;
    for (const tenant of options.tenants ?? []) this.#tenants.add(tenant);
  }

  /**
   * Builds the filter and starts following `source`. Never throws for lack of a kernel or history: the layer then
   * passes everything through and says why in stats().
   */
  static async open(
    inner: CheckResolver,
    context: { store: TupleStore; influence: InfluenceMap; source: ChangeSource },
    options: BloomNegativeOptions = {},
  ): Promise<BloomNegativeResolver> {
    const fpRate = options.fpRate ?? 0.01;
    if (!(fpRate > 0 && fpRate < 1)) {
      throw new NexusError("invalid_argument", `bloom.fpRate must be in (0, 1), got ${fpRate}`);
    }
    const { store, influence, source } = context;
    let filter: BloomFilter | undefined;
    let note = "";
    try {
      await ready();
      filter = new BloomFilter(options.initialCapacity ?? 65_536, fpRate);
    } catch (error) {
      note = `no Bloom kernel: ${error instanceof Error ? error.message : String(error)}`;
    }
    const layer = new BloomNegativeResolver(inner, store, influence, options, source.watermark);
    layer.#note = note;
    if (filter === undefined) return layer;
    layer.#filter = filter;
    layer.#seeding = true;
    // The feed replays every change from revision 0 to this layer alone, then adds it to the live fan-out with no
    // gap; when the changelog no longer reaches back, it calls onReset instead (noted in #historyLostAt).
    const subscription = source.subscribe(layer, { after: 0 });
    layer.#unsubscribe = subscription;
    try {
      await subscription.replayed();
      layer.#seeding = false;
      const lostAt = layer.#historyLostAt;
      if (lostAt !== undefined) await layer.#seedFromSnapshot(filter, lostAt);
      // A replay from revision 0 holds every tuple that ever existed up to where the feed stood, so it answers for
      // all of them; a snapshot only for its own revision on. A reset since means changes were missed: the
      // rebuild it started decides from when to answer.
      if (layer.#resets === 0) layer.#from = lostAt ?? 0;
    } catch (error) {
      layer.#note = error instanceof Error ? error.message : String(error);
    } finally {
      layer.#seeding = false;
    }
    return layer;
  }

  /** Whether the layer can answer for revision `revision` now. */
  answersFor(revision: Revision): boolean {
    return this.#filter !== undefined && revision >= this.#from && revision <= this.#seen;
  }

  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    return promised(() => this.resolveNow(check, signal));
  }

  /** resolve, the denial itself, or the inner layers' answer as they gave it (at once when they did not wait). */
  resolveNow(check: ResolvedCheck, signal?: AbortSignal): Resolution | Promise<Resolution> {
    this.#counters.requests++;
    if (this.#denies(check)) {
      this.#counters.hits++;
      return { allowed: false, revision: check.revision, validUntil: Number.POSITIVE_INFINITY };
    }
    this.#counters.misses++;
    return this.#innerNow(check, signal);
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

  resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    return promised(() => this.resolveManyNow(checks, signal));
  }

  /** resolveMany, the outcomes themselves when every question was denied here or the layers inside did not wait. */
  resolveManyNow(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    const count = checks.length;
    const outcomes: BatchOutcome[] = new Array(count);
    this.#counters.requests += count;
    // The object rule for the whole batch in one kernel call, and the subject rule's keys in one more (a batch's
    // subject repeats: a run of questions with one subject shares its two keys). A lookup per key cost more than
    // the hashing.
    const denied = this.#objectRule(checks);
    const slots = denied === undefined ? undefined : this.#subjectSlots(checks, denied);
    const absent = slots === undefined ? undefined : this.#subjectsAbsent();
    const passed: number[] = [];
    for (let i = 0; i < count; i++) {
      const check = checks[i]!;
      let deny = denied !== undefined && denied[i] === 1;
      if (deny) {
        this.#objectDenials++;
      } else if (absent !== undefined && slots![i]! >= 0 && absent[slots![i]!] === 1) {
        this.#subjectDenials++;
        deny = true;
      }
      if (deny) {
        this.#counters.hits++;
        outcomes[i] = { allowed: false, revision: check.revision, validUntil: Number.POSITIVE_INFINITY };
      } else {
        passed.push(i);
      }
    }
    this.#counters.misses += passed.length;
    if (passed.length === count) {
      // Nothing denied here: the batch goes on as it came.
      const inner = this.#inner;
      return inner.resolveManyNow !== undefined
        ? inner.resolveManyNow(checks, signal)
        : inner.resolveMany(checks, signal);
    }
    return resolveRestNow(this.#inner, checks, passed, outcomes, signal);
  }

  /**
   * The object rule for a batch: per question 1 (denied: no tuple on its object), 0 (the object may hold tuples),
   * 2 (not eligible: no filter, contextual tuples, a revision the filter does not answer for, or a userset of its
   * own object; counted as bypassed); undefined when no question is eligible.
   */
  #objectRule(checks: readonly ResolvedCheck[]): Uint8Array | undefined {
    const filter = this.#filter;
    const count = checks.length;
    if (filter === undefined) {
      this.#bypassed += count;
      return undefined;
    }
    const parts = this.#partsBuffer;
    parts.length = 0;
    const at: number[] = [];
    const state = new Uint8Array(count).fill(2);
    for (let i = 0; i < count; i++) {
      const check = checks[i]!;
      if (check.contextualTuples.length > 0 || check.revision < this.#from || check.revision > this.#seen) {
        this.#bypassed++;
        continue;
      }
      const subject = check.subject;
      if (subject.kind === "userset" && `${subject.type}:${subject.id}` === check.object) {
        state[i] = 0; // the object rule does not apply; the subject rule does not either (a userset)
        continue;
      }
      parts.push(this.#objectPrefix(check.tenant), check.object);
      at.push(i);
    }
    if (parts.length > 0) {
      const present = filter.mightContainParts(parts, 2);
      for (let k = 0; k < at.length; k++) state[at[k]!] = present[k] === 1 ? 0 : 1;
    }
    parts.length = 0;
    return state;
  }

  /**
   * The subject rule's keys for a batch, put in #partsBuffer two a slot (the subject's, its type's wildcard's):
   * per question its slot, or -1 where the rule does not apply (denied or not eligible by the object rule, a
   * userset, a relation that may evaluate a condition, or past the depth guard). Consecutive questions with one
   * subject share a slot. Undefined when no question needs the rule.
   */
  #subjectSlots(checks: readonly ResolvedCheck[], denied: Uint8Array): Int32Array | undefined {
    const count = checks.length;
    const parts = this.#partsBuffer;
    parts.length = 0;
    const slots = new Int32Array(count).fill(-1);
    let slot = -1;
    let lastTenant: string | undefined;
    let lastUser: string | undefined;
    let lastType: string | undefined;
    let wildcard = "";
    for (let i = 0; i < count; i++) {
      if (denied[i] !== 0) continue;
      const check = checks[i]!;
      const subject = check.subject;
      if (subject.kind === "userset" || this.#mayEvaluateConditions(check) || !this.#depthGuard(check))
        continue;
      if (slot < 0 || check.user !== lastUser || check.subjectTenant !== lastTenant) {
        lastUser = check.user;
        lastTenant = check.subjectTenant;
        if (subject.type !== lastType) {
          lastType = subject.type;
          wildcard = subject.type + WILDCARD;
        }
        const prefix = this.#subjectPrefix(check.subjectTenant);
        parts.push(prefix, check.user, prefix, wildcard);
        slot++;
      }
      slots[i] = slot;
    }
    return slot < 0 ? undefined : slots;
  }

  /** Per slot of #subjectSlots' keys (in #partsBuffer, emptied here): 1 when neither key may be in the filter. */
  #subjectsAbsent(): Uint8Array {
    const parts = this.#partsBuffer;
    const present = this.#filter!.mightContainParts(parts, 2);
    parts.length = 0;
    const slots = present.length / 2;
    const absent = new Uint8Array(slots);
    for (let k = 0; k < slots; k++) absent[k] = present[2 * k] === 0 && present[2 * k + 1] === 0 ? 1 : 0;
    return absent;
  }

  /** InfluenceMap.mayEvaluateConditions, its last answer kept (it builds a `type#relation` key per call). */
  #mayEvaluateConditions(check: ResolvedCheck): boolean {
    if (check.objectType !== this.#conditionType || check.relation !== this.#conditionRelation) {
      this.#conditional = this.#influence.mayEvaluateConditions(check.objectType, check.relation);
      this.#conditionType = check.objectType;
      this.#conditionRelation = check.relation;
    }
    return this.#conditional;
  }

  onChanges(changes: readonly StoredChange[], watermark: Revision): void {
    // One kernel call per filter for the whole part (a call per key cost more than the hashing).
    const parts = this.#partsBuffer;
    parts.length = 0;
    this.#forgetLastKeys();
    for (const change of changes) {
      if (change.op === "write") {
        this.#keysOf(change.tuple, parts);
        this.#tuples++;
      } else {
        this.#deletes++;
      }
    }
    if (parts.length > 0) {
      this.#filter?.addParts(parts, 2);
      this.#next?.addParts(parts, 2);
      this.#keys += parts.length / 2;
    }
    parts.length = 0;
    this.#seen = watermark;
    this.#midRevision = changes.length > 0 && changes[changes.length - 1]!.revision > watermark;
    if (this.#midRevision) return;
    if (this.#rebuildWanted) this.#startRebuild();
    else this.#maybeRebuild();
  }

  onReset(revision: Revision): void {
    if (this.#seeding) {
      // The changelog does not reach back to revision 0: open() seeds from a snapshot at `revision` instead.
      this.#historyLostAt = revision;
      this.#seen = revision;
      return;
    }
    // Changes were missed: nothing is known to be absent any more until a rebuild at `revision` or later.
    this.#midRevision = false;
    this.#resets++;
    this.#from = Number.POSITIVE_INFINITY;
    this.#seen = revision;
    if (this.#rebuilding !== undefined) {
      // The rebuild in progress started before the gap; run another after it.
      void this.#rebuilding.then(() => this.#startRebuild());
    } else {
      this.#startRebuild();
    }
  }

  stats(): LayerStats[] {
    const filter = this.#filter;
    return [
      this.#counters.snapshot(this.layer, filter !== undefined && !this.#closed, {
        objectDenials: this.#objectDenials,
        subjectDenials: this.#subjectDenials,
        bypassed: this.#bypassed,
        keysAdded: this.#keys,
        rebuilds: this.#rebuilds,
        memoryBytes: (filter?.memoryBytes ?? 0) + (this.#next?.memoryBytes ?? 0),
        capacity: filter?.capacity ?? 0,
        answersFrom: Number.isFinite(this.#from) ? this.#from : -1,
        ...(this.#note !== "" ? { note: this.#note } : {}),
      }),
      ...this.#inner.stats(),
    ];
  }

  /** Stops following changes, waits for a rebuild in progress, frees the filters, then closes the next layer. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#unsubscribe?.();
      await this.#rebuilding;
      this.#filter?.dispose();
      this.#next?.dispose();
      this.#filter = undefined;
      this.#next = undefined;
    }
    await this.#inner.close();
  }

  #denies(check: ResolvedCheck): boolean {
    const filter = this.#filter;
    if (
      filter === undefined ||
      check.contextualTuples.length > 0 ||
      check.revision < this.#from ||
      check.revision > this.#seen
    ) {
      this.#bypassed++;
      return false;
    }
    const subject = check.subject;
    if (subject.kind === "userset") {
      // The subject rule never applies to a userset; the object rule not to a userset of the object itself.
      if (`${subject.type}:${subject.id}` === check.object) return false;
      if (filter.mightContainJoined(this.#objectPrefix(check.tenant), check.object)) return false;
      this.#objectDenials++;
      return true;
    }
    const objectPrefix = this.#objectPrefix(check.tenant);
    if (this.#mayEvaluateConditions(check) || !this.#depthGuard(check)) {
      // The object rule alone.
      if (filter.mightContainJoined(objectPrefix, check.object)) return false;
      this.#objectDenials++;
      return true;
    }
    // Both rules apply: the object's and the subject's keys in one call (their lookups overlap in memory).
    const subjectPrefix = this.#subjectPrefix(check.subjectTenant);
    const found = filter.mightContainJoinedPair(objectPrefix, check.object, subjectPrefix, check.user);
    if ((found & 1) === 0) {
      this.#objectDenials++;
      return true;
    }
    if ((found & 2) === 0 && !filter.mightContainJoined(subjectPrefix, subject.type, WILDCARD)) {
      this.#subjectDenials++;
      return true;
    }
    return false;
  }

  /**
   * Appends the tuple's two keys (its object's and its subject's), each as (prefix, name), to `parts`; a key
   * equal to the previous tuple's is left out (adding it again changes no bit): a folder's files share their
   * subject, a group's members their object. Call with #lastObject and #lastUser cleared for a new batch.
   * Notes the tenants (a rebuild reads every tenant seen).
   */
  #keysOf(tuple: RelationTuple, parts: string[]): void {
    if (tuple.object !== this.#lastObject || tuple.tenant !== this.#lastObjectTenant) {
      if (tuple.tenant !== this.#lastObjectTenant) this.#tenants.add(tuple.tenant);
      this.#lastObject = tuple.object;
      this.#lastObjectTenant = tuple.tenant;
      parts.push(this.#objectPrefix(tuple.tenant), tuple.object);
    }
    if (tuple.user !== this.#lastUser || tuple.subjectTenant !== this.#lastUserTenant) {
      if (tuple.subjectTenant !== this.#lastUserTenant) this.#tenants.add(tuple.subjectTenant);
      this.#lastUser = tuple.user;
      this.#lastUserTenant = tuple.subjectTenant;
      parts.push(this.#subjectPrefix(tuple.subjectTenant), tuple.user);
    }
  }

  /** Reused by every batch: keys in parts. */
  readonly #partsBuffer: string[] = [];
  #lastObject: string | undefined;
  #lastObjectTenant: string | undefined;
  #lastUser: string | undefined;
  #lastUserTenant: string | undefined;
  /** The last tenant's key prefixes (tenants change rarely from one key to the next). */
  #prefixTenant: string | undefined;
  #objectPrefixText = "";
  #prefixSubjectTenant: string | undefined;
  #subjectPrefixText = "";
  /** The last class asked whether it may evaluate a condition, and the answer. */
  #conditionType: string | undefined;
  #conditionRelation: string | undefined;
  #conditional = false;

  #forgetLastKeys(): void {
    this.#lastObject = undefined;
    this.#lastObjectTenant = undefined;
    this.#lastUser = undefined;
    this.#lastUserTenant = undefined;
  }

  #objectPrefix(tenant: string): string {
    if (tenant !== this.#prefixTenant) {
      this.#prefixTenant = tenant;
      this.#objectPrefixText = objectPrefix(tenant);
    }
    return this.#objectPrefixText;
  }

  #subjectPrefix(subjectTenant: string): string {
    if (subjectTenant !== this.#prefixSubjectTenant) {
      this.#prefixSubjectTenant = subjectTenant;
      this.#subjectPrefixText = subjectPrefix(subjectTenant);
    }
    return this.#subjectPrefixText;
  }

  /** Adds every tuple alive at `revision` from a snapshot of the named tenants (the changelog being trimmed). */
  async #seedFromSnapshot(filter: BloomFilter, revision: Revision): Promise<void> {
    if (this.#tenants.size === 0) {
      throw new Error(
        "the changelog does not reach back to revision 0 and no tenants were named to seed from",
      );
    }
    await this.#fillFromSnapshot(filter, revision);
  }

  async #fillFromSnapshot(filter: BloomFilter, revision: Revision): Promise<void> {
    const snapshot = await this.#store.snapshot(revision);
    try {
      for (const tenant of [...this.#tenants]) {
        const tuples = await snapshot.read({ tenant });
        // In slices, back to the event loop between them: a million tuples in one task held it for a second.
        // Changes after `revision` reach the filter meanwhile (as #next) through onChanges.
        for (let start = 0; start < tuples.length; start += FILL_SLICE) {
          const parts: string[] = [];
          const end = Math.min(tuples.length, start + FILL_SLICE);
          this.#forgetLastKeys();
          for (let i = start; i < end; i++) this.#keysOf(tuples[i]!, parts);
          filter.addParts(parts, 2);
          this.#keys += parts.length / 2;
          this.#tuples += end - start;
          if (end < tuples.length) {
            await yieldToLoop();
            if (this.#closed || filter.disposed) return;
          }
        }
      }
    } finally {
      snapshot.release();
    }
  }

  #maybeRebuild(): void {
    const filter = this.#filter;
    if (filter === undefined || this.#rebuilding !== undefined || this.#closed || this.#seeding) return;
    if (this.#keys > filter.capacity || this.#deletes > this.#staleRatio * Math.max(this.#tuples, 1)) {
      this.#startRebuild();
    }
  }

  #startRebuild(): void {
    if (this.#rebuilding !== undefined || this.#closed || this.#filter === undefined) return;
    if (this.#midRevision) {
      this.#rebuildWanted = true;
      return;
    }
    this.#rebuildWanted = false;
    this.#rebuilding = this.#rebuild().finally(() => {
      this.#rebuilding = undefined;
    });
  }

  async #rebuild(): Promise<void> {
    const revision = this.#seen;
    const resets = this.#resets;
    // Keys still named by a live tuple, estimated as the share of tuples not deleted since (a delete cannot be told
    // apart per key: its keys may be shared with live tuples).
    const live = Math.ceil(this.#keys * Math.max(0, 1 - this.#deletes / Math.max(this.#tuples, 1)));
    // Outgrown (not stale): room for four times what is live, so a growing store is re-read from snapshots about
    // a third of its size in all (twice: once in all), at 9.6 bits a key of room at the default rate.
    const growth = this.#keys > (this.#filter?.capacity ?? 0) ? 4 : 2;
    let next: BloomFilter;
    try {
      next = new BloomFilter(Math.max(this.#initialCapacity, live * growth, 1024), this.#fpRate);
    } catch (error) {
      this.#note = `rebuild failed: ${error instanceof Error ? error.message : String(error)}`;
      return;
    }
    this.#next = next;
    const keysBefore = this.#keys;
    const tuplesBefore = this.#tuples;
    const deletesBefore = this.#deletes;
    try {
      this.#keys = 0;
      this.#tuples = 0;
      this.#deletes = 0;
      await this.#fillFromSnapshot(next, revision);
    } catch (error) {
      // Keep the old filter (still a superset); try again on later changes.
      this.#next = undefined;
      next.dispose();
      this.#keys = keysBefore;
      this.#tuples = tuplesBefore;
      this.#deletes = deletesBefore;
      this.#note = `rebuild failed: ${error instanceof Error ? error.message : String(error)}`;
      return;
    }
    this.#next = undefined;
    if (this.#closed) {
      next.dispose();
      return;
    }
    this.#filter?.dispose();
    this.#filter = next;
    // Answer from the rebuild's revision on, unless a reset since then left a gap (its own rebuild follows).
    if (this.#resets === resets) this.#from = revision;
    this.#rebuilds++;
  }
}
