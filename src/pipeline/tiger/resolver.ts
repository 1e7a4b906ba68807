/**
 * The Tiger cache layer: for a (subject, permission, object type), the set of objects the subject may access,
 * as a roaring bitmap (roaring-wasm) over interned object ids (./id-space.ts), materialised on demand
 * (./materialise.ts) at one snapshot revision. It answers single checks (one bit test, on the bitmap's JS-side
 * copy ./members.ts) and `filter` (which of these objects may the subject access, in input order: ./filter.ts).
 *
 * Exactness: a bitmap holds at its own revision; it answers another revision only when the change feed proves no
 * change in between touched a tuple class its (type, permission) reads (./freshness.ts), and only at
 * request instants between the latest expiry before and the earliest expiry after its evaluation's instant among
 * the tuples it read (./expiry.ts). Questions with a condition context, contextual tuples, or on a relation that
 * may evaluate a condition pass through; so does a question at an older revision than a changed bitmap (a newer
 * bitmap is never replaced by an older one).
 *
 * Incremental maintenance: when changes did touch its classes, a bitmap asked about at a newer revision is
 * brought forward rather than re-materialised, by re-checking only the objects a change can affect
 * (./incremental.ts). It is re-materialised instead when the changes are not all known: the feed lags or was
 * reset, or the layer's change log (./change-log.ts, bounded by `maxLoggedChanges`) no longer reaches back to the
 * bitmap's revision. Stats count `incrementalUpdates` (with `rechecked` objects, `bitsChanged`) against
 * `rebuilds`, and each `fallback.*` reason.
 *
 * Owner: the layer owns every bitmap (WASM memory, ./owned.ts): evicted ones (beyond `maxBitmaps`, least recently
 * used) and replaced ones are disposed at once, the rest by close().
 */
import { roaringLibraryInitialize } from "roaring-wasm";
import type { ChangeListener } from "../../changes/feed.js";
import { analyze } from "../../model/analysis.js";
import type { Program } from "../../model/program.js";
import { DEFAULT_MAX_DEPTH } from "../../reference/evaluation.js";
import type { Revision, StoredChange, TupleStore } from "../../tuples/types.js";
import type { ChangeKnowledge } from "../result-cache.js";
import {
  type BatchOutcome,
  type CheckResolver,
  LayerCounters,
  type LayerStats,
  promised,
  type Resolution,
  type ResolvedCheck,
  resolveManyNow,
  resolveRest,
  resolveRestNow,
} from "../types.js";
import {
  answerOf,
  bitmapKey,
  FORWARD,
  type Materialised,
  questionOf,
  replaceableFor,
  SEP,
  type Slot,
  UNUSABLE,
  VALID,
} from "./bitmap.js";
import { Eligibility } from "./eligible.js";
import { flagsOf, selectedOf } from "./filter.js";
import { Freshness } from "./freshness.js";
import { type Fallback, IncrementalUpdates } from "./incremental.js";
import { allowedObjects, type MaterialiseContext } from "./materialise.js";
import { Members } from "./members.js";
import { checkTigerOptions, type ObjectValidator, type TigerContext, type TigerOptions } from "./options.js";
import { OwnedBitmaps } from "./owned.js";
import { decodeBitmaps, encodeBitmaps } from "./serialize.js";
import { SlotIndex } from "./slots.js";

export class TigerResolver implements CheckResolver, ChangeListener {
  readonly layer = "tiger";
  /**
   * A large write may reach the layer in parts: it only logs changes and marks classes, and whether a bitmap is
   * reused across revisions is decided against the feed's watermark, which moves once every part is delivered.
   */
  readonly partialRevisions = true;
  readonly #inner: CheckResolver;
  readonly #materializeAfter: number;
  readonly #counters = new LayerCounters();
  readonly #owned: OwnedBitmaps;
  /** user → its slots, looked up by the request's own strings (./slots.ts). */
  readonly #slots: SlotIndex;
  #tick = 0;
  readonly #building = new Map<string, Promise<Materialised | undefined>>();
  readonly #background: boolean;
  readonly #eligibility: Eligibility;
  /** What the layer knows of changes: which bitmaps answer other revisions (./freshness.ts). */
  readonly #freshness: Freshness;
  readonly #updates: IncrementalUpdates;
  readonly #materialiser: MaterialiseContext;
  #materialised = 0;
  #rebuilt = 0;
  readonly #fallbacks: Record<Fallback, number> = {
    unknownChanges: 0,
    olderRevision: 0,
    tooBroad: 0,
    recheckFailed: 0,
    expired: 0,
    disabled: 0,
  };
  #closed = false;

  private constructor(inner: CheckResolver, context: TigerContext, options: TigerOptions) {
    this.#inner = inner;
    const maxDepth = context.maxResolutionDepth ?? DEFAULT_MAX_DEPTH;
    const influence = context.influence;
    this.#eligibility = new Eligibility(
      influence,
      context.depthGuard ?? ((c) => influence.maxHops(c.objectType, c.relation) < maxDepth),
    );
    const maxBitmaps = options.maxBitmaps ?? 10_000;
    this.#owned = new OwnedBitmaps(maxBitmaps);
    this.#slots = new SlotIndex(4 * maxBitmaps);
    this.#materializeAfter = options.materializeAfter ?? 2;
    this.#background = options.background ?? false;
    this.#freshness = new Freshness(influence, options.maxLoggedChanges ?? 32_768);
    const program: Program = context.program;
    const store: TupleStore = context.store;
    this.#updates = new IncrementalUpdates(
      {
        program,
        store,
        influence,
        dependents: analyze(program).dependents,
        log: this.#freshness.log,
        inner,
        maxRechecks: options.maxIncrementalRechecks ?? 256,
      },
      {
        enabled: options.incremental ?? true,
        fallbacks: this.#fallbacks,
        state: (m, check) => this.#freshness.state(m, check),
        closed: () => this.#closed,
      },
    );
    this.#materialiser = {
      program,
      store,
      maxDepth,
      inner,
      checkThroughInner: options.checkThroughInner ?? false,
    };
  }

  /** Loads roaring-wasm and creates the layer. @throws NexusError "invalid_argument" for a bad option. */
  static async open(
    inner: CheckResolver,
    context: TigerContext,
    options: TigerOptions = {},
  ): Promise<TigerResolver> {
    checkTigerOptions(options);
    await roaringLibraryInitialize();
    return new TigerResolver(inner, context, options);
  }

  /**
   * Lets bitmaps answer other revisions when the feed proves nothing relevant changed, and be brought forward
   * incrementally. Call it right after subscribing this layer to the feed: changes delivered before are unknown
   * to the layer, so only bitmaps at or after the current watermark are reused across revisions.
   */
  follow(knowledge: ChangeKnowledge): void {
    this.#freshness.follow(knowledge);
  }

  /** Whether a question may be answered from a bitmap at all (./eligible.ts). */
  eligible(check: ResolvedCheck): boolean {
    return this.#eligibility.test(check);
  }

  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    return promised(() => this.resolveNow(check, signal));
  }

  /** resolve, the answer itself when a bitmap (or the layers inside) had it without waiting. */
  resolveNow(check: ResolvedCheck, signal?: AbortSignal): Resolution | Promise<Resolution> {
    this.#counters.requests++;
    // Where checks never start a bitmap (the engine's default: listings do), their demand is not counted, and a
    // subject without a slot has no bitmap: no slot is made for it. So while no listing made a slot, a check passes
    // straight through (nothing here could answer it).
    const findOnly = this.#materializeAfter >= Number.MAX_SAFE_INTEGER;
    if ((!findOnly || this.#slots.size > 0) && this.eligible(check)) {
      const slot = findOnly ? this.#slots.find(check) : this.#slots.slotFor(check);
      if (slot === undefined) {
        this.#counters.misses++;
        return this.#innerNow(check, signal);
      }
      const m = slot.bitmap;
      const state = m === undefined ? UNUSABLE : this.#freshness.state(m, check);
      if (state === VALID) {
        this.#counters.hits++;
        m!.lastUsed = ++this.#tick;
        return answerOf(m!, check.object);
      }
      if (state === FORWARD || (replaceableFor(m, check) && ++slot.demand >= this.#materializeAfter)) {
        return this.#resolveSlowly(slot, check, signal);
      }
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

  /** resolveMany, the outcomes themselves when no bitmap had to be brought forward and no layer inside waited. */
  resolveManyNow(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    const count = checks.length;
    this.#counters.requests += count;
    // The arrays below are made at the first question a bitmap answers or finds stale: a batch none of them
    // concerns (the common case: checks never start bitmaps) goes on as it came, having allocated nothing.
    let outcomes: BatchOutcome[] | undefined;
    let passed: number[] | undefined;
    let stale: number[] | undefined;
    // No slot, no bitmap (a batch only looks slots up): nothing to ask per question.
    for (let i = this.#slots.size > 0 ? 0 : count; i < count; i++) {
      const check = checks[i]!;
      const m = this.eligible(check) ? this.#slots.find(check)?.bitmap : undefined;
      const state = m === undefined ? UNUSABLE : this.#freshness.state(m, check);
      if (state !== VALID && state !== FORWARD) {
        passed?.push(i);
        continue;
      }
      if (outcomes === undefined) {
        outcomes = new Array(count);
        passed = [];
        stale = [];
        for (let k = 0; k < i; k++) passed.push(k);
      }
      if (state === VALID) {
        this.#counters.hits++;
        m!.lastUsed = ++this.#tick;
        outcomes[i] = answerOf(m!, check.object);
      } else {
        stale!.push(i);
      }
    }
    if (outcomes === undefined) {
      // Nothing answered here: the batch goes on as it came.
      this.#counters.misses += count;
      return resolveManyNow(this.#inner, checks, signal);
    }
    if (stale!.length > 0) return this.#resolveStale(checks, outcomes, passed!, stale!, signal);
    this.#counters.misses += passed!.length;
    return resolveRestNow(this.#inner, checks, passed!, outcomes, signal);
  }

  /** resolveMany's questions on stale bitmaps: each brought forward once (its first question asks), then answered. */
  async #resolveStale(
    checks: readonly ResolvedCheck[],
    outcomes: BatchOutcome[],
    passed: number[],
    stale: readonly number[],
    signal: AbortSignal | undefined,
  ): Promise<BatchOutcome[]> {
    for (const i of stale) {
      const check = checks[i]!;
      let m = this.#slots.find(check)?.bitmap;
      let state = m === undefined ? UNUSABLE : this.#freshness.state(m, check);
      if (state === FORWARD) {
        m = await this.#updates.bringForward(m!, check);
        state = m === undefined ? UNUSABLE : VALID;
      }
      if (state === VALID) {
        this.#counters.hits++;
        outcomes[i] = answerOf(m!, check.object);
      } else {
        passed.push(i);
      }
    }
    passed.sort((a, b) => a - b);
    this.#counters.misses += passed.length;
    await resolveRest(this.#inner, checks, passed, outcomes, signal);
    return outcomes;
  }

  /**
   * Which of `objects` (ids of `check.objectType`, in `check.tenant`) the subject of `check` may access, in input
   * order; materialises the bitmap when needed. Undefined when the question is not eligible (the caller checks).
   */
  filter(check: ResolvedCheck, objects: readonly string[]): Promise<boolean[] | undefined> {
    const ready = this.#usableNow(check);
    if (ready !== undefined) return Promise.resolve(this.#flags(ready, objects));
    return this.#forFilter(check).then((m) => (m === undefined ? undefined : this.#flags(m, objects)));
  }

  /**
   * The allowed objects themselves, in input order (as `filter`, without the boolean array). An object with an
   * interned id is a stored object of `check.objectType` (ids are only given to objects an evaluation returned),
   * so only the others are passed to `validate`, which throws for a malformed one: a caller may validate through
   * it instead of checking every object itself. Objects `validate` accepts (or every unknown one without it) are
   * denied: no bitmap holds them. Undefined when the question is not eligible (nothing validated then).
   */
  filterObjects(
    check: ResolvedCheck,
    objects: readonly unknown[],
    validate?: ObjectValidator,
  ): Promise<string[] | undefined> {
    const ready = this.#usableNow(check);
    if (ready !== undefined) {
      try {
        return Promise.resolve(this.#selected(ready, objects, validate));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#forFilter(check).then((m) =>
      m === undefined ? undefined : this.#selected(m, objects, validate),
    );
  }

  onChanges(changes: readonly StoredChange[]): void {
    // The log serves only bitmaps brought forward: while the layer holds none and builds none, no change is kept
    // (a load's 100k tuples were appended and dropped again, ~30 ms of it at 100k).
    const keep = this.#owned.size > 0 || this.#building.size > 0 || this.#updates.busy;
    this.#counters.invalidations += this.#freshness.record(changes, keep);
  }

  onReset(revision: Revision): void {
    // Changes up to `revision` were never delivered: no bitmap older than it is reused across revisions.
    this.#freshness.reset(revision);
  }

  /** Bytes held: the roaring bitmaps (WASM, their serialized size, which is what roaring allocates) and their copies. */
  get memoryBytes(): number {
    return this.#owned.roaringBytes() + this.#owned.copyBytes();
  }

  /** Every bitmap, with the object ids it needs, as bytes (./serialize.ts); `load` restores them. */
  serialize(): Uint8Array {
    return encodeBitmaps(this.#owned);
  }

  /**
   * Replaces this layer's bitmaps with serialized ones (from a layer over the same store).
   * @throws NexusError "corrupt" for bytes that are not.
   */
  load(bytes: Uint8Array): void {
    const { spaces, restored } = decodeBitmaps(bytes, this.#owned);
    this.#owned.clear(spaces);
    this.#slots.clear();
    for (const r of restored) {
      const slot = this.#slots.slotFor(r.question);
      this.#owned.install(slot, {
        slot,
        question: r.question,
        bitmap: r.bitmap,
        members: Members.of(r.bitmap.toUint32Array(), r.space.size),
        space: r.space,
        revision: r.revision,
        computedAt: r.computedAt,
        validUntil: r.validUntil,
        relationClass: `${r.question.objectType}#${r.question.relation}`,
        updating: undefined,
        lastUsed: ++this.#tick,
      });
    }
  }

  stats(): LayerStats[] {
    const owned = this.#owned;
    const roaringBytes = this.#closed ? 0 : owned.roaringBytes();
    const copyBytes = this.#closed ? 0 : owned.copyBytes();
    return [
      this.#counters.snapshot(this.layer, !this.#closed, {
        bitmaps: owned.size,
        materialised: this.#materialised,
        rebuilds: this.#rebuilt,
        incrementalUpdates: this.#updates.count,
        rechecked: this.#updates.rechecked,
        bitsChanged: this.#updates.bitsChanged,
        ...Object.fromEntries(
          Object.entries(this.#fallbacks).map(([reason, n]) => [`fallback.${reason}`, n]),
        ),
        loggedChanges: this.#freshness.log.size,
        evicted: owned.evicted,
        objectIds: owned.objectIds(),
        liveBitmaps: owned.live,
        memoryBytes: roaringBytes + copyBytes,
        roaringBytes,
        copyBytes,
      }),
      ...this.#inner.stats(),
    ];
  }

  /** Waits for materialisations and updates in progress, disposes every bitmap, then closes the next layer. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      await Promise.allSettled([...this.#building.values(), ...this.#updates.inFlight()]);
      this.#owned.clear();
      this.#slots.clear();
      this.#freshness.reset(0);
    }
    await this.#inner.close();
  }

  // ----------------------------------------------------------------------------------------------------------
  // Which bitmap answers

  /** The bitmap that answers `check` as it is, without waiting for anything (the filter fast path). */
  #usableNow(check: ResolvedCheck): Materialised | undefined {
    if (!this.eligible(check)) return undefined;
    const m = this.#slots.find(check)?.bitmap;
    if (m === undefined || this.#freshness.state(m, check) !== VALID) return undefined;
    m.lastUsed = ++this.#tick;
    return m;
  }

  /** `filter`'s answer from `m`. */
  #flags(m: Materialised, objects: readonly string[]): boolean[] {
    this.#counters.hits += objects.length;
    this.#counters.requests += objects.length;
    return flagsOf(m, objects);
  }

  /** `filterObjects`' answer from `m`. */
  #selected(m: Materialised, objects: readonly unknown[], validate: ObjectValidator | undefined): string[] {
    this.#counters.hits += objects.length;
    this.#counters.requests += objects.length;
    return selectedOf(m, objects, validate);
  }

  async #resolveSlowly(
    slot: Slot,
    check: ResolvedCheck,
    signal: AbortSignal | undefined,
  ): Promise<Resolution> {
    let m = slot.bitmap;
    if (m !== undefined && this.#freshness.state(m, check) === FORWARD)
      m = await this.#later(() => this.#updates.bringForward(m!, check));
    else m = undefined;
    // Brought forward, or else re-materialised when wanted (the demand was counted by the caller, or is now).
    if (m === undefined && replaceableFor(slot.bitmap, check)) {
      if (slot.demand >= this.#materializeAfter || ++slot.demand >= this.#materializeAfter) {
        m = await this.#later(() => this.#materialise(slot, check), true);
      }
    }
    if (m !== undefined && this.#freshness.state(m, check) === VALID) {
      this.#counters.hits++;
      m.lastUsed = ++this.#tick;
      return answerOf(m, check.object);
    }
    this.#counters.misses++;
    return this.#inner.resolve(check, signal);
  }

  /** The bitmap a filter reads (materialised or brought forward when needed), or undefined to pass through. */
  async #forFilter(check: ResolvedCheck): Promise<Materialised | undefined> {
    if (!this.eligible(check)) return undefined;
    const slot = this.#slots.slotFor(check);
    let m = slot.bitmap;
    const state = m === undefined ? UNUSABLE : this.#freshness.state(m, check);
    if (state === VALID) {
      m!.lastUsed = ++this.#tick;
      return m;
    }
    const replaceable = replaceableFor(m, check);
    if (state === FORWARD) m = await this.#later(() => this.#updates.bringForward(m!, check));
    else m = undefined;
    if (m === undefined && replaceable) m = await this.#later(() => this.#materialise(slot, check), true);
    if (m !== undefined) m.lastUsed = ++this.#tick;
    return m;
  }

  // ----------------------------------------------------------------------------------------------------------
  // Materialisation

  /**
   * In the background mode, work on a bitmap is not waited for (it is owned: close() awaits what is building or
   * updating) and the question passes through now; otherwise the work's result.
   */
  #later(
    work: () => Promise<Materialised | undefined>,
    build = false,
  ): Promise<Materialised | undefined> | undefined {
    if (!this.#background) return work();
    // One materialisation at a time in the background: each runs a list objects, and requests share the thread.
    if (build && this.#building.size > 0) return undefined;
    work().catch(() => {});
    return undefined;
  }

  #materialise(slot: Slot, check: ResolvedCheck): Promise<Materialised | undefined> {
    const buildKey = `${check.revision}${SEP}${check.now}${SEP}${bitmapKey(check)}`;
    let building = this.#building.get(buildKey);
    if (building === undefined) {
      if (slot.bitmap !== undefined) this.#countFallback(slot.bitmap, check);
      building = this.#build(slot, check).finally(() => this.#building.delete(buildKey));
      this.#building.set(buildKey, building);
    }
    return building;
  }

  /** Why an existing bitmap could not answer, when nothing counted it yet (counted once per rebuild). */
  #countFallback(m: Materialised, check: ResolvedCheck): void {
    if (check.now >= m.validUntil || check.now < m.computedAt) this.#fallbacks.expired++;
    else if (m.revision > check.revision) this.#fallbacks.olderRevision++;
    else if (this.#freshness.state(m, check) === UNUSABLE) this.#fallbacks.unknownChanges++;
    // FORWARD: the incremental update counted its own reason.
  }

  async #build(slot: Slot, check: ResolvedCheck): Promise<Materialised | undefined> {
    if (this.#closed) return undefined;
    const allowed = await allowedObjects(check, this.#materialiser);
    if (allowed === undefined || this.#closed) return undefined;
    const { objects } = allowed;
    const space = this.#owned.space(check.tenant, check.objectType);
    const ids = new Uint32Array(objects.length);
    for (let i = 0; i < objects.length; i++) ids[i] = space.intern(objects[i]!);
    ids.sort();
    const bitmap = this.#owned.create(ids);
    // The slot may have been forgotten while building (demand-only slots are dropped): the current one takes it.
    let home = this.#slots.find(check);
    if (home === undefined) {
      home = slot;
      this.#slots.add(check.user, slot);
    }
    const m: Materialised = {
      slot: home,
      question: questionOf(check),
      bitmap,
      members: Members.of(ids, space.size),
      space,
      revision: allowed.revision,
      computedAt: allowed.validFrom,
      validUntil: allowed.validUntil,
      relationClass: `${check.objectType}#${check.relation}`,
      updating: undefined,
      lastUsed: ++this.#tick,
    };
    // The latest materialisation replaces the one before (each is exact at its own revision).
    if (this.#owned.install(home, m)) this.#rebuilt++;
    this.#materialised++;
    this.#owned.evictBeyondMax();
    return m;
  }
}
