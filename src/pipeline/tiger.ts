/**
 * The Tiger cache (P0-3): for a (subject, permission, object type), the set of objects the subject may access,
 * as a roaring bitmap (roaring-wasm) over interned object ids, materialised on demand by the reference list
 * objects (exactly the objects check allows) at one snapshot revision. It answers single checks (one bit test)
 * and `filter` (which of these objects may the subject access, in input order).
 *
 * Fast tests: the roaring bitmap is the canonical structure (serialised, its memory reported); next to it each
 * bitmap keeps a JS-side copy of its members (`Members`: a bitset over its (tenant, type)'s id space when that is
 * the smaller, else an open-addressed hash set), so a test is a typed-array read instead of a call into WASM.
 * Object ids are interned per (tenant, type), so a bitset spans only the ids of that type.
 *
 * Exactness: a bitmap holds at its own revision; it answers another revision only when the change feed proves no
 * change in between touched a tuple class its (type, permission) reads (src/changes/influence.ts), and only at
 * request instants between the latest expiry before and the earliest expiry after its evaluation's instant among
 * the tuples it read. Questions with a condition context, contextual tuples, or on a relation that may evaluate a
 * condition pass through; so does a question at an older revision than a changed bitmap (a newer bitmap is never
 * replaced by an older one).
 *
 * Incremental maintenance: when changes did touch its classes, a bitmap asked about at a newer revision is
 * brought forward rather than re-materialised, by re-checking only the objects a change can affect (see
 * `affectedObjects`: the objects whose evaluation can reach a changed tuple list, found by walking the model's
 * edges backwards from it at the new revision), and setting or clearing their bits. It falls back to
 * re-materialisation when it cannot know or bound that set: the changes are not all known (the feed lags or was
 * reset, or the layer's change log no longer reaches back to the bitmap's revision), the walk exceeds its budget
 * (`maxIncrementalRechecks` objects, or 16× that many nodes: a change near the root of a deep tree, a membership
 * change of a group that grants a whole tree), the bitmap's tuples expired, or a re-check failed. Stats count
 * `incrementalUpdates` (with `rechecked` objects, `bitsChanged`) against `rebuilds`, and each `fallback.*` reason.
 *
 * The check path builds no key: questions are indexed by their own strings (user → slots), so a question the
 * layer cannot answer yet costs two or three Map lookups before it goes on.
 *
 * Owner: the layer owns every bitmap (WASM memory): evicted ones (beyond `maxBitmaps`, least recently used) and
 * replaced ones are disposed at once, the rest by close().
 */
import { RoaringBitmap32, roaringLibraryInitialize } from "roaring-wasm";
import type { ChangeListener } from "../changes/feed.js";
import type { InfluenceMap } from "../changes/influence.js";
import type { Program, RelationDef, Rewrite } from "../model/program.js";
import { DEFAULT_MAX_DEPTH, Evaluation } from "../reference/evaluation.js";
import { candidateObjects, listObjects } from "../reference/list-objects.js";
import { TupleReader } from "../reference/reader.js";
import { questionKey } from "../request/key.js";
import { parseSubject, type RelationTuple, type Subject } from "../tuples/tuple.js";
import type {
  ObjectRelationKey,
  ReadFilter,
  Revision,
  StoredChange,
  SubjectKey,
  TupleSnapshot,
  TupleStore,
  TypeRelationKey,
} from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import type { ChangeKnowledge } from "./result-cache.js";
import {
  type BatchOutcome,
  type CheckResolver,
  type DepthGuard,
  LayerCounters,
  type LayerStats,
  type Resolution,
  type ResolvedCheck,
  resolveRest,
} from "./types.js";

export interface TigerContext {
  readonly program: Program;
  readonly store: TupleStore;
  readonly influence: InfluenceMap;
  readonly maxResolutionDepth?: number;
  /**
   * Where no check can reach the depth limit (default: the (type, relation) cannot recurse that far). Elsewhere
   * the layer passes questions through: an object missing from a bitmap is a denial only where the reference
   * could not have failed with "resolution_too_complex" instead.
   */
  readonly depthGuard?: DepthGuard;
}

export interface TigerOptions {
  /** Most bitmaps kept (default 10,000; the least recently used is disposed beyond it). */
  readonly maxBitmaps?: number;
  /** Checks of one (subject, permission, type) before its bitmap is materialised (default 2; 1 = at once). */
  readonly materializeAfter?: number;
  /**
   * Bring stale bitmaps forward by re-checking only the objects a change can affect (default true); false
   * re-materialises a bitmap whenever a change touched what it reads.
   */
  readonly incremental?: boolean;
  /** Most objects one incremental update re-checks before it re-materialises instead (default 256). */
  readonly maxIncrementalRechecks?: number;
  /** Changes remembered for incremental updates (default 32,768; older bitmaps are re-materialised). */
  readonly maxLoggedChanges?: number;
  /**
   * Materialise and bring bitmaps forward in the background (default false): a question whose bitmap is not
   * ready passes through to the evaluator at once, and later questions use the bitmap once it lands. The
   * engine turns this on, so no request ever waits for a materialisation.
   */
  readonly background?: boolean;
  /**
   * Check the list-objects candidates of a materialisation through the layer's inner resolver (the WASM
   * evaluator in the engine) instead of the reference evaluator (default false).
   */
  readonly checkThroughInner?: boolean;
}

/** Validates a filter's object that has no interned id (throws for a malformed one); see `filterObjects`. */
export type ObjectValidator = (object: unknown, index: number) => void;

/** What a bitmap is about: a resolved question without its object, revision and instant. */
interface Question {
  readonly tenant: string;
  readonly subjectTenant: string;
  readonly objectType: string;
  readonly relation: string;
  readonly subject: Subject;
  readonly user: string;
}

/**
 * One (subject, permission, type) in the layer's index: how often it was asked while it had no usable bitmap
 * (the materialisation threshold), and its bitmap.
 */
interface Slot {
  readonly tenant: string;
  readonly subjectTenant: string;
  readonly relation: string;
  readonly objectType: string;
  demand: number;
  bitmap: Materialised | undefined;
}

interface Materialised {
  readonly slot: Slot;
  readonly question: Question;
  readonly bitmap: RoaringBitmap32;
  /** The bitmap's members, JS-side, for tests (kept equal to `bitmap`). */
  readonly members: Members;
  /** The (tenant, type) id space its bits index. */
  readonly space: IdSpace;
  /** Revision it is exact at (moved forward by incremental updates). */
  revision: Revision;
  /** Earliest request instant it answers (an update re-checks at its instant). */
  computedAt: number;
  /** Instant from which it may be wrong (the earliest expiry among the tuples behind it). */
  validUntil: number;
  readonly relationClass: string;
  /** The incremental update in progress, if any (one at a time per bitmap). */
  updating: Promise<void> | undefined;
  /** Use tick, for least-recently-used eviction. */
  lastUsed: number;
}

type Fallback = "unknownChanges" | "olderRevision" | "tooBroad" | "recheckFailed" | "expired" | "disabled";

const SEP = "\u0000";
const FORMAT = "portable";
const VALID = 0;
const FORWARD = 1;
const UNUSABLE = 2;
type State = typeof VALID | typeof FORWARD | typeof UNUSABLE;

export class TigerResolver implements CheckResolver, ChangeListener {
  readonly layer = "tiger";
  readonly #inner: CheckResolver;
  readonly #program: Program;
  readonly #store: TupleStore;
  readonly #influence: InfluenceMap;
  readonly #reverse: ReverseIndex;
  readonly #maxDepth: number;
  readonly #maxBitmaps: number;
  readonly #materializeAfter: number;
  readonly #incremental: boolean;
  readonly #maxRechecks: number;
  readonly #counters = new LayerCounters();
  /** `tenant NUL type` → its objects' ids. Ids are never reused, so a bitmap's bits keep their meaning. */
  readonly #spaces = new Map<string, IdSpace>();
  /**
   * user → its slots. Looked up by the request's own strings (no key is built on the check path: a
   * concatenated key costs more to hash than everything else the layer does for a question it cannot answer).
   */
  readonly #index = new Map<string, Slot[]>();
  #slots = 0;
  readonly #bitmaps = new Set<Materialised>();
  #tick = 0;
  readonly #building = new Map<string, Promise<Materialised | undefined>>();
  readonly #background: boolean;
  readonly #depthGuard: DepthGuard;
  readonly #checkThroughInner: boolean;
  /** Incremental updates in flight (close() waits for them, evicted bitmaps' included). */
  readonly #updates = new Set<Promise<void>>();
  /** Latest revision at which a change touched each check class (a fast "nothing changed" test). */
  readonly #changedAt = new Map<string, number>();
  /** type → relation → whether a check of it may be answered from a bitmap (memo of `eligible`'s model part). */
  readonly #eligibleClass = new Map<string, Map<string, boolean>>();
  #lastType = "";
  #lastRelation = "";
  #lastEligible = false;
  readonly #log: ChangeLog;
  #knowledge: ChangeKnowledge | undefined;
  #materialised = 0;
  #rebuilt = 0;
  #evicted = 0;
  #incrementalUpdates = 0;
  #rechecked = 0;
  #bitsChanged = 0;
  readonly #fallbacks: Record<Fallback, number> = {
    unknownChanges: 0,
    olderRevision: 0,
    tooBroad: 0,
    recheckFailed: 0,
    expired: 0,
    disabled: 0,
  };
  /** Bitmaps allocated and not yet disposed (the leak audit's count). */
  #live = 0;
  #closed = false;

  private constructor(inner: CheckResolver, context: TigerContext, options: TigerOptions) {
    this.#inner = inner;
    this.#program = context.program;
    this.#store = context.store;
    this.#influence = context.influence;
    this.#reverse = reverseIndexOf(context.program);
    this.#maxDepth = context.maxResolutionDepth ?? DEFAULT_MAX_DEPTH;
    const maxDepth = this.#maxDepth;
    const influence = context.influence;
    this.#depthGuard = context.depthGuard ?? ((c) => influence.maxHops(c.objectType, c.relation) < maxDepth);
    this.#maxBitmaps = options.maxBitmaps ?? 10_000;
    this.#materializeAfter = options.materializeAfter ?? 2;
    this.#background = options.background ?? false;
    this.#checkThroughInner = options.checkThroughInner ?? false;
    this.#incremental = options.incremental ?? true;
    this.#maxRechecks = options.maxIncrementalRechecks ?? 256;
    this.#log = new ChangeLog(options.maxLoggedChanges ?? 32_768);
  }

  /** Loads roaring-wasm and creates the layer. */
  static async open(
    inner: CheckResolver,
    context: TigerContext,
    options: TigerOptions = {},
  ): Promise<TigerResolver> {
    for (const [name, value] of [
      ["maxBitmaps", options.maxBitmaps],
      ["materializeAfter", options.materializeAfter],
      ["maxIncrementalRechecks", options.maxIncrementalRechecks],
      ["maxLoggedChanges", options.maxLoggedChanges],
    ] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
        throw new NexusError("invalid_argument", `tiger.${name} must be an integer ≥ 1, got ${value}`);
      }
    }
    if (options.incremental !== undefined && typeof options.incremental !== "boolean") {
      throw new NexusError(
        "invalid_argument",
        `tiger.incremental must be a boolean, got ${options.incremental}`,
      );
    }
    await roaringLibraryInitialize();
    return new TigerResolver(inner, context, options);
  }

  /**
   * Lets bitmaps answer other revisions when the feed proves nothing relevant changed, and be brought forward
   * incrementally. Call it right after subscribing this layer to the feed: changes delivered before are unknown
   * to the layer, so only bitmaps at or after the current watermark are reused across revisions.
   */
  follow(knowledge: ChangeKnowledge): void {
    this.#knowledge = knowledge;
    this.#log.reset(knowledge.watermark);
  }

  /** Whether a question may be answered from a bitmap at all. */
  eligible(check: ResolvedCheck): boolean {
    if (check.contextualTuples.length !== 0 || check.context !== undefined) return false;
    // Batches ask about one (type, relation) at a time: remember the last answer.
    if (check.objectType === this.#lastType && check.relation === this.#lastRelation)
      return this.#lastEligible && this.#depthGuard(check);
    let relations = this.#eligibleClass.get(check.objectType);
    if (relations === undefined) {
      relations = new Map();
      this.#eligibleClass.set(check.objectType, relations);
    }
    let ok = relations.get(check.relation);
    if (ok === undefined) {
      ok = !this.#influence.mayEvaluateConditions(check.objectType, check.relation);
      relations.set(check.relation, ok);
    }
    this.#lastType = check.objectType;
    this.#lastRelation = check.relation;
    this.#lastEligible = ok;
    return ok && this.#depthGuard(check);
  }

  /** Not async on purpose: a question the layer passes through costs no extra promise. */
  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    this.#counters.requests++;
    if (this.eligible(check)) {
      const slot = this.#slotFor(check);
      const m = slot.bitmap;
      const state = m === undefined ? UNUSABLE : this.#state(m, check);
      if (state === VALID) {
        this.#counters.hits++;
        m!.lastUsed = ++this.#tick;
        return Promise.resolve(answerOf(m!, check.object));
      }
      if (state === FORWARD || (replaceableFor(m, check) && ++slot.demand >= this.#materializeAfter)) {
        return this.#resolveSlowly(slot, check, signal);
      }
    }
    this.#counters.misses++;
    return this.#inner.resolve(check, signal);
  }

  async resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = new Array(checks.length);
    const passed: number[] = [];
    const stale: number[] = [];
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i]!;
      this.#counters.requests++;
      const m = this.eligible(check) ? this.#find(check)?.bitmap : undefined;
      const state = m === undefined ? UNUSABLE : this.#state(m, check);
      if (state === VALID) {
        this.#counters.hits++;
        m!.lastUsed = ++this.#tick;
        outcomes[i] = answerOf(m!, check.object);
      } else if (state === FORWARD) {
        stale.push(i);
      } else {
        passed.push(i);
      }
    }
    // Stale bitmaps are brought forward once each (the first question of each asks), then answer their questions.
    for (const i of stale) {
      const check = checks[i]!;
      let m = this.#find(check)?.bitmap;
      let state = m === undefined ? UNUSABLE : this.#state(m, check);
      if (state === FORWARD) {
        m = await this.#bringForward(m!, check);
        state = m === undefined ? UNUSABLE : VALID;
      }
      if (state === VALID) {
        this.#counters.hits++;
        outcomes[i] = answerOf(m!, check.object);
      } else {
        passed.push(i);
      }
    }
    if (passed.length === checks.length) {
      // Nothing answered here: the batch goes on as it came.
      this.#counters.misses += passed.length;
      return this.#inner.resolveMany(checks, signal);
    }
    if (stale.length > 0) passed.sort((a, b) => a - b);
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
    for (const change of changes) {
      for (const cls of this.#influence.affectedBy(change.tuple.objectType, change.tuple.relation)) {
        const before = this.#changedAt.get(cls);
        if (before === undefined || before < change.revision) {
          this.#changedAt.set(cls, change.revision);
          this.#counters.invalidations++;
        }
      }
    }
    this.#log.append(changes);
  }

  onReset(revision: Revision): void {
    // Changes up to `revision` were never delivered: no bitmap older than it is reused across revisions.
    this.#log.reset(revision);
  }

  /** Bytes held: the roaring bitmaps (WASM, their serialized size, which is what roaring allocates) and their copies. */
  get memoryBytes(): number {
    return this.#roaringBytes() + this.#copyBytes();
  }

  /**
   * Every bitmap, with the object ids it needs, as bytes: a JSON header (length-prefixed) then each bitmap in
   * roaring's portable format. `load` restores them into a layer over the same store.
   */
  serialize(): Uint8Array {
    const parts: Uint8Array[] = [];
    const entries: SerializedEntry[] = [];
    for (const m of this.#bitmaps) {
      const bytes = m.bitmap.serialize(FORMAT);
      parts.push(bytes);
      const { subject: _, ...question } = m.question;
      entries.push({
        ...question,
        revision: m.revision,
        computedAt: Number.isFinite(m.computedAt) ? m.computedAt : null,
        validUntil: Number.isFinite(m.validUntil) ? m.validUntil : null,
        length: bytes.length,
      });
    }
    const header = new TextEncoder().encode(
      JSON.stringify({
        version: 2,
        spaces: [...this.#spaces.values()].map((s) => [s.tenant, s.type, s.objects]),
        entries,
      }),
    );
    const total = 4 + header.length + parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    new DataView(out.buffer).setUint32(0, header.length, true);
    out.set(header, 4);
    let at = 4 + header.length;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Replaces this layer's bitmaps with serialized ones. @throws NexusError "corrupt" for bytes that are not. */
  load(bytes: Uint8Array): void {
    const corrupt = (why: string) => new NexusError("corrupt", `Tiger cache bytes: ${why}`);
    if (!(bytes instanceof Uint8Array) || bytes.length < 4) throw corrupt("too short");
    const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
    if (4 + headerLength > bytes.length) throw corrupt("truncated header");
    let header: { version: number; spaces: [string, string, string[]][]; entries: SerializedEntry[] };
    try {
      header = JSON.parse(
        new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(4, 4 + headerLength)),
      );
    } catch {
      throw corrupt("unreadable header");
    }
    if (header?.version !== 2 || !Array.isArray(header.spaces) || !Array.isArray(header.entries)) {
      throw corrupt("unsupported header");
    }
    const spaces = new Map<string, IdSpace>();
    for (const entry of header.spaces) {
      const [tenant, type, objects] = Array.isArray(entry) ? entry : [];
      if (typeof tenant !== "string" || typeof type !== "string" || !Array.isArray(objects)) {
        throw corrupt("bad id space");
      }
      const space = new IdSpace(tenant, type);
      for (const object of objects) {
        if (typeof object !== "string" || space.ids.has(object)) throw corrupt("bad id space");
        space.intern(object);
      }
      spaces.set(tenant + SEP + type, space);
    }
    const restored: { bitmap: RoaringBitmap32; question: Question; space: IdSpace; e: SerializedEntry }[] =
      [];
    let at = 4 + headerLength;
    try {
      for (const e of header.entries) {
        const space = spaces.get(e?.tenant + SEP + e?.objectType);
        const subject = parseSubject(e?.user);
        if (
          space === undefined ||
          subject === undefined ||
          typeof e.subjectTenant !== "string" ||
          typeof e.relation !== "string" ||
          typeof e.revision !== "number" ||
          !Number.isInteger(e.length) ||
          e.length < 0
        ) {
          throw corrupt("bad entry");
        }
        if (at + e.length > bytes.length) throw corrupt("truncated bitmap");
        const bitmap = RoaringBitmap32.deserialize(FORMAT, bytes.subarray(at, at + e.length));
        this.#live++;
        at += e.length;
        const question: Question = {
          tenant: e.tenant,
          subjectTenant: e.subjectTenant,
          objectType: e.objectType,
          relation: e.relation,
          subject,
          user: e.user,
        };
        restored.push({ bitmap, question, space, e });
        if (bitmap.size > 0 && bitmap.maximum() >= space.size) throw corrupt("bitmap beyond its id space");
      }
    } catch (error) {
      for (const r of restored) this.#dispose(r.bitmap);
      throw error instanceof NexusError ? error : corrupt(`bad bitmap (${String(error)})`);
    }
    for (const m of this.#bitmaps) this.#dispose(m.bitmap);
    this.#bitmaps.clear();
    this.#index.clear();
    this.#slots = 0;
    this.#spaces.clear();
    for (const [key, space] of spaces) this.#spaces.set(key, space);
    for (const { bitmap, question, space, e } of restored) {
      const slot = this.#slotFor(question);
      const m: Materialised = {
        slot,
        question,
        bitmap,
        members: Members.of(bitmap.toUint32Array(), space.size),
        space,
        revision: e.revision,
        computedAt: e.computedAt ?? Number.NEGATIVE_INFINITY,
        validUntil: e.validUntil ?? Number.POSITIVE_INFINITY,
        relationClass: `${e.objectType}#${e.relation}`,
        updating: undefined,
        lastUsed: ++this.#tick,
      };
      if (slot.bitmap !== undefined) {
        this.#bitmaps.delete(slot.bitmap);
        this.#dispose(slot.bitmap.bitmap);
      }
      slot.bitmap = m;
      this.#bitmaps.add(m);
    }
  }

  stats(): LayerStats[] {
    let objectIds = 0;
    for (const space of this.#spaces.values()) objectIds += space.size;
    const roaringBytes = this.#closed ? 0 : this.#roaringBytes();
    const copyBytes = this.#closed ? 0 : this.#copyBytes();
    return [
      this.#counters.snapshot(this.layer, !this.#closed, {
        bitmaps: this.#bitmaps.size,
        materialised: this.#materialised,
        rebuilds: this.#rebuilt,
        incrementalUpdates: this.#incrementalUpdates,
        rechecked: this.#rechecked,
        bitsChanged: this.#bitsChanged,
        ...Object.fromEntries(
          Object.entries(this.#fallbacks).map(([reason, n]) => [`fallback.${reason}`, n]),
        ),
        loggedChanges: this.#log.size,
        evicted: this.#evicted,
        objectIds,
        liveBitmaps: this.#live,
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
      await Promise.allSettled([...this.#building.values(), ...this.#updates]);
      for (const m of this.#bitmaps) this.#dispose(m.bitmap);
      this.#bitmaps.clear();
      this.#index.clear();
      this.#slots = 0;
      this.#log.reset(0);
    }
    await this.#inner.close();
  }

  // ----------------------------------------------------------------------------------------------------------
  // Which bitmap answers

  /** The bitmap that answers `check` as it is, without waiting for anything (the filter fast path). */
  #usableNow(check: ResolvedCheck): Materialised | undefined {
    if (!this.eligible(check)) return undefined;
    const m = this.#find(check)?.bitmap;
    if (m === undefined || this.#state(m, check) !== VALID) return undefined;
    m.lastUsed = ++this.#tick;
    return m;
  }

  /** `filter`'s answer from `m`. */
  #flags(m: Materialised, objects: readonly string[]): boolean[] {
    this.#counters.hits += objects.length;
    this.#counters.requests += objects.length;
    const ids = m.space.ids;
    const members = m.members;
    const out = new Array<boolean>(objects.length);
    const bits = members.bits;
    if (bits !== undefined) {
      const limit = bits.length * 32;
      for (let i = 0; i < objects.length; i++) {
        const id = ids.get(objects[i]!);
        out[i] = id !== undefined && id < limit && ((bits[id >>> 5]! >>> (id & 31)) & 1) === 1;
      }
    } else {
      for (let i = 0; i < objects.length; i++) {
        const id = ids.get(objects[i]!);
        out[i] = id !== undefined && members.has(id);
      }
    }
    return out;
  }

  /** `filterObjects`' answer from `m`: one Map lookup and one bit test per object (the loop the goal is about). */
  #selected(m: Materialised, objects: readonly unknown[], validate: ObjectValidator | undefined): string[] {
    this.#counters.hits += objects.length;
    this.#counters.requests += objects.length;
    const ids = m.space.ids as Map<unknown, number>;
    const members = m.members;
    // Written in place and trimmed at the end (cheaper than growing by push).
    const out = new Array<string>(objects.length);
    let n = 0;
    const bits = members.bits;
    if (bits !== undefined) {
      const limit = bits.length * 32;
      for (let i = 0; i < objects.length; i++) {
        const object = objects[i];
        const id = ids.get(object);
        if (id === undefined) {
          if (validate !== undefined) validate(object, i);
        } else if (id < limit && ((bits[id >>> 5]! >>> (id & 31)) & 1) === 1) {
          out[n++] = object as string;
        }
      }
    } else {
      for (let i = 0; i < objects.length; i++) {
        const object = objects[i];
        const id = ids.get(object);
        if (id === undefined) {
          if (validate !== undefined) validate(object, i);
        } else if (members.has(id)) {
          out[n++] = object as string;
        }
      }
    }
    out.length = n;
    return out;
  }

  /** The slot of a question, if it was ever asked. */
  #find(q: Question): Slot | undefined {
    const slots = this.#index.get(q.user);
    if (slots === undefined) return undefined;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (
        s.relation === q.relation &&
        s.objectType === q.objectType &&
        s.tenant === q.tenant &&
        s.subjectTenant === q.subjectTenant
      ) {
        return s;
      }
    }
    return undefined;
  }

  /** The slot of a question, created when new (slots without a bitmap are dropped beyond 4 × maxBitmaps). */
  #slotFor(q: Question): Slot {
    const found = this.#find(q);
    if (found !== undefined) return found;
    if (this.#slots >= 4 * this.#maxBitmaps) this.#dropDemandOnly();
    const slot: Slot = {
      tenant: q.tenant,
      subjectTenant: q.subjectTenant,
      relation: q.relation,
      objectType: q.objectType,
      demand: 0,
      bitmap: undefined,
    };
    const slots = this.#index.get(q.user);
    if (slots === undefined) this.#index.set(q.user, [slot]);
    else slots.push(slot);
    this.#slots++;
    return slot;
  }

  /** Forgets every slot without a bitmap (their demand counts start over). */
  #dropDemandOnly(): void {
    this.#slots = 0;
    for (const [user, slots] of this.#index) {
      const kept = slots.filter((s) => s.bitmap !== undefined);
      if (kept.length === 0) this.#index.delete(user);
      else this.#index.set(user, kept);
      this.#slots += kept.length;
    }
  }

  async #resolveSlowly(
    slot: Slot,
    check: ResolvedCheck,
    signal: AbortSignal | undefined,
  ): Promise<Resolution> {
    let m = slot.bitmap;
    if (m !== undefined && this.#state(m, check) === FORWARD)
      m = await this.#later(() => this.#bringForward(m!, check));
    else m = undefined;
    // Brought forward, or else re-materialised when wanted (the demand was counted by the caller, or is now).
    if (m === undefined && replaceableFor(slot.bitmap, check)) {
      if (slot.demand >= this.#materializeAfter || ++slot.demand >= this.#materializeAfter) {
        m = await this.#later(() => this.#materialise(slot, check), true);
      }
    }
    if (m !== undefined && this.#state(m, check) === VALID) {
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
    const slot = this.#slotFor(check);
    let m = slot.bitmap;
    const state = m === undefined ? UNUSABLE : this.#state(m, check);
    if (state === VALID) {
      m!.lastUsed = ++this.#tick;
      return m;
    }
    const replaceable = replaceableFor(m, check);
    if (state === FORWARD) m = await this.#later(() => this.#bringForward(m!, check));
    else m = undefined;
    if (m === undefined && replaceable) m = await this.#later(() => this.#materialise(slot, check), true);
    if (m !== undefined) m.lastUsed = ++this.#tick;
    return m;
  }

  /**
   * Whether `m` answers `check` as it is (VALID), once brought forward to `check.revision` (FORWARD: changes in
   * between touched its classes, all of them known), or not at all (UNUSABLE).
   */
  #state(m: Materialised, check: ResolvedCheck): State {
    if (check.now >= m.validUntil || check.now < m.computedAt) return UNUSABLE;
    if (m.revision === check.revision) return VALID;
    const knowledge = this.#knowledge;
    if (knowledge === undefined) return UNUSABLE;
    const low = m.revision < check.revision ? m.revision : check.revision;
    const high = m.revision < check.revision ? check.revision : m.revision;
    if (high > knowledge.watermark || low < knowledge.complete || low < this.#log.floor) return UNUSABLE;
    if ((this.#changedAt.get(m.relationClass) ?? -1) <= low) return VALID;
    if (m.revision > check.revision) return UNUSABLE;
    return FORWARD;
  }

  // ----------------------------------------------------------------------------------------------------------
  // Incremental maintenance

  /**
   * Brings `m` to `check.revision` by re-checking the objects the changes in between can affect; undefined when
   * it cannot (the caller then re-materialises or passes through). One update per bitmap at a time: a second
   * caller waits for the first and looks again.
   */
  async #bringForward(m: Materialised, check: ResolvedCheck): Promise<Materialised | undefined> {
    for (;;) {
      if (m.slot.bitmap !== m) return undefined;
      const state = this.#state(m, check);
      if (state === VALID) return m;
      if (state === UNUSABLE) return undefined;
      if (m.updating === undefined) break;
      await m.updating;
    }
    if (!this.#incremental) {
      this.#fallbacks.disabled++;
      return undefined;
    }
    let advanced = false;
    const update = this.#advance(m, check)
      .then(
        (ok) => {
          advanced = ok;
        },
        () => {
          this.#fallbacks.recheckFailed++; // e.g. the evaluator failed: re-materialise or pass through
        },
      )
      .finally(() => {
        m.updating = undefined;
        this.#updates.delete(update);
      });
    m.updating = update;
    this.#updates.add(update);
    await update;
    return advanced && m.slot.bitmap === m && this.#state(m, check) === VALID ? m : undefined;
  }

  async #advance(m: Materialised, check: ResolvedCheck): Promise<boolean> {
    const from = m.revision;
    const to = check.revision;
    const reads = this.#influence.readsOf(m.question.objectType, m.question.relation);
    const lists = new Map<string, ChangedList>();
    for (const change of this.#log.between(from, to)) {
      const t = change.tuple;
      if (!reads.has(`${t.objectType}#${t.relation}`)) continue;
      lists.set(t.tenant + SEP + t.object + SEP + t.relation, t);
    }
    let candidates: string[] | undefined = [];
    if (lists.size > 0) {
      let snapshot: TupleSnapshot;
      try {
        snapshot = await this.#store.snapshot(to);
      } catch {
        this.#fallbacks.unknownChanges++;
        return false;
      }
      try {
        const reader = new TupleReader(snapshot, this.#program, [], check.now);
        candidates = await affectedObjects(reader, this.#reverse, [...lists.values()], m.question, {
          objects: this.#maxRechecks,
          nodes: 16 * this.#maxRechecks + 64,
        });
      } catch {
        this.#fallbacks.recheckFailed++;
        return false;
      } finally {
        snapshot.release();
      }
      if (candidates === undefined) {
        this.#fallbacks.tooBroad++;
        return false;
      }
    }
    let validUntil = m.validUntil;
    let answers: BatchOutcome[] = [];
    if (candidates.length > 0) {
      const q = m.question;
      answers = await this.#inner.resolveMany(
        candidates.map((object) => ({
          ...q,
          object,
          revision: to,
          now: check.now,
          context: undefined,
          contextualTuples: [],
          // Eligible questions have no context: its text is "".
          key: questionKey(q.tenant, q.subjectTenant, object, q.relation, q.user, ""),
        })),
      );
      for (const a of answers) {
        if (a instanceof Error || a.revision !== to) {
          this.#fallbacks.recheckFailed++;
          return false;
        }
        if (a.validUntil < validUntil) validUntil = a.validUntil;
      }
    }
    if (this.#closed || m.slot.bitmap !== m || m.revision !== from) return false;
    if (check.now >= validUntil) {
      this.#fallbacks.expired++;
      return false;
    }
    // Apply every answer at once (nothing awaited from here): readers see the bitmap at `from` or at `to`.
    let changed = 0;
    for (let i = 0; i < candidates.length; i++) {
      const object = candidates[i]!;
      if ((answers[i] as Resolution).allowed) {
        const id = m.space.intern(object);
        if (m.bitmap.tryAdd(id)) {
          m.members.add(id);
          changed++;
        }
      } else {
        const id = m.space.ids.get(object);
        if (id !== undefined && m.bitmap.delete(id)) {
          m.members.delete(id);
          changed++;
        }
      }
    }
    m.revision = to;
    // Candidates were found, and re-checked, at this instant (a tuple expired before it may have hidden some).
    if (lists.size > 0 && check.now > m.computedAt) m.computedAt = check.now;
    m.validUntil = validUntil;
    this.#incrementalUpdates++;
    this.#rechecked += candidates.length;
    this.#bitsChanged += changed;
    return true;
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
    else if (this.#state(m, check) === UNUSABLE) this.#fallbacks.unknownChanges++;
    // FORWARD: #advance counted its own reason.
  }

  async #build(slot: Slot, check: ResolvedCheck): Promise<Materialised | undefined> {
    if (this.#closed) return undefined;
    let snapshot: TupleSnapshot;
    try {
      snapshot = await this.#store.snapshot(check.revision);
    } catch {
      return undefined; // not retained any more: leave it to the evaluator
    }
    let objects: string[];
    const observed = new ExpiryObserver(snapshot, check.now);
    try {
      const reader = new TupleReader(observed, this.#program, [], check.now);
      const ev = new Evaluation(reader, { maxDepth: this.#maxDepth });
      const query = {
        tenant: check.tenant,
        type: check.objectType,
        relation: check.relation,
        subject: check.subject,
        user: check.user,
        subjectTenant: check.subjectTenant,
      };
      if (this.#checkThroughInner) {
        // The candidates (reverse expansion, read through the observer), each checked by the inner resolver at
        // exactly this revision and instant; the earliest expiry an answer depends on bounds the bitmap.
        const candidates = [...(await candidateObjects(ev, query))];
        const outcomes = await this.#inner.resolveMany(
          candidates.map((object) => ({ ...check, object, key: undefined })),
        );
        objects = [];
        for (let i = 0; i < outcomes.length; i++) {
          const outcome = outcomes[i]!;
          if (outcome instanceof Error || outcome.revision !== snapshot.revision) return undefined;
          if (outcome.validUntil < observed.validUntil) observed.validUntil = outcome.validUntil;
          if (outcome.allowed) objects.push(candidates[i]!);
        }
        // The inner answers say nothing of earlier instants: the bitmap holds from this one on.
        observed.validFrom = Math.max(observed.validFrom, check.now);
      } else {
        objects = await listObjects(ev, query);
      }
    } catch {
      return undefined; // e.g. too deep: the evaluator reports it for this check
    } finally {
      snapshot.release();
    }
    if (this.#closed) return undefined;
    const space = this.#space(check.tenant, check.objectType);
    const ids = new Uint32Array(objects.length);
    for (let i = 0; i < objects.length; i++) ids[i] = space.intern(objects[i]!);
    ids.sort();
    const bitmap = new RoaringBitmap32();
    this.#live++;
    bitmap.addMany(ids);
    bitmap.runOptimize();
    // The slot may have been forgotten while building (demand-only slots are dropped): the current one takes it.
    let home = this.#find(check);
    if (home === undefined) {
      home = slot;
      this.#reinsert(check.user, slot);
    }
    const m: Materialised = {
      slot: home,
      question: {
        tenant: check.tenant,
        subjectTenant: check.subjectTenant,
        objectType: check.objectType,
        relation: check.relation,
        subject: check.subject,
        user: check.user,
      },
      bitmap,
      members: Members.of(ids, space.size),
      space,
      revision: snapshot.revision,
      computedAt: observed.validFrom,
      validUntil: observed.validUntil,
      relationClass: `${check.objectType}#${check.relation}`,
      updating: undefined,
      lastUsed: ++this.#tick,
    };
    // The latest materialisation replaces the one before (each is exact at its own revision).
    const replaced = home.bitmap;
    if (replaced !== undefined) {
      this.#bitmaps.delete(replaced);
      this.#dispose(replaced.bitmap);
      this.#rebuilt++;
    }
    home.bitmap = m;
    this.#bitmaps.add(m);
    this.#materialised++;
    if (this.#bitmaps.size > this.#maxBitmaps) this.#evictOldest();
    return m;
  }

  #reinsert(user: string, slot: Slot): void {
    const slots = this.#index.get(user);
    if (slots === undefined) this.#index.set(user, [slot]);
    else slots.push(slot);
    this.#slots++;
  }

  /** Disposes the least recently used bitmap (a scan: it runs once per materialisation beyond `maxBitmaps`). */
  #evictOldest(): void {
    let oldest: Materialised | undefined;
    for (const m of this.#bitmaps) if (oldest === undefined || m.lastUsed < oldest.lastUsed) oldest = m;
    if (oldest === undefined) return;
    this.#bitmaps.delete(oldest);
    oldest.slot.bitmap = undefined;
    this.#dispose(oldest.bitmap);
    this.#evicted++;
  }

  #dispose(bitmap: RoaringBitmap32): void {
    if (bitmap.dispose()) this.#live--;
  }

  #space(tenant: string, type: string): IdSpace {
    const key = tenant + SEP + type;
    let space = this.#spaces.get(key);
    if (space === undefined) {
      space = new IdSpace(tenant, type);
      this.#spaces.set(key, space);
    }
    return space;
  }

  #roaringBytes(): number {
    let bytes = 0;
    for (const m of this.#bitmaps) bytes += m.bitmap.getSerializationSizeInBytes(FORMAT);
    return bytes;
  }

  #copyBytes(): number {
    let bytes = 0;
    for (const m of this.#bitmaps) bytes += m.members.bytes;
    return bytes;
  }
}

interface SerializedEntry extends Omit<Question, "subject"> {
  readonly revision: number;
  readonly computedAt: number | null;
  readonly validUntil: number | null;
  readonly length: number;
}

function bitmapKey(q: Question): string {
  return q.tenant + SEP + q.subjectTenant + SEP + q.user + SEP + q.relation + SEP + q.objectType;
}

/**
 * Whether a new materialisation for `check` may replace the bitmap there is: not when that one is at a newer
 * revision, or answers only later instants (the question then passes through instead).
 */
function replaceableFor(m: Materialised | undefined, check: ResolvedCheck): boolean {
  return m === undefined || (m.revision <= check.revision && check.now >= m.computedAt);
}

function answerOf(m: Materialised, object: string): Resolution {
  const id = m.space.ids.get(object);
  return { allowed: id !== undefined && m.members.has(id), revision: m.revision, validUntil: m.validUntil };
}

// ------------------------------------------------------------------------------------------------------------
// Object ids and the JS-side member sets

/** The objects of one (tenant, type), numbered in the order they were first seen. */
class IdSpace {
  readonly tenant: string;
  readonly type: string;
  readonly ids = new Map<string, number>();
  /** id → object. */
  readonly objects: string[] = [];

  constructor(tenant: string, type: string) {
    this.tenant = tenant;
    this.type = type;
  }

  get size(): number {
    return this.objects.length;
  }

  intern(object: string): number {
    let id = this.ids.get(object);
    if (id === undefined) {
      id = this.objects.length;
      this.objects.push(object);
      this.ids.set(object, id);
    }
    return id;
  }
}

const EMPTY = -1;
const GOLDEN = 0x9e3779b1;

/**
 * A bitmap's members as a JS-side copy for tests: a bitset over ids [0, n) when that is no bigger than a hash
 * set of them, else an open-addressed hash set (linear probing, load ≤ 1/2, backward-shift deletion). Chosen when
 * the bitmap is built; afterwards it grows as ids are added.
 */
export class Members {
  /** The bitset (bit id of word id >>> 5), or undefined for the hash set. Read directly by filter's loop. */
  bits: Uint32Array | undefined;
  #table: Int32Array | undefined;
  #shift = 32;
  #count = 0;

  private constructor() {}

  /** Members of `ids` (sorted ascending) in a space of `universe` ids. */
  static of(ids: Uint32Array, universe: number): Members {
    const members = new Members();
    const words = Math.ceil(Math.max(universe, (ids[ids.length - 1] ?? -1) + 1) / 32);
    if (words <= slotsFor(ids.length)) {
      const bits = new Uint32Array(Math.max(1, words));
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        bits[id >>> 5]! |= 1 << (id & 31);
      }
      members.bits = bits;
    } else {
      members.#rehash(slotsFor(ids.length));
      for (let i = 0; i < ids.length; i++) members.add(ids[i]!);
    }
    return members;
  }

  get bytes(): number {
    return (this.bits ?? this.#table)!.byteLength;
  }

  has(id: number): boolean {
    const bits = this.bits;
    if (bits !== undefined) return id < bits.length * 32 && ((bits[id >>> 5]! >>> (id & 31)) & 1) === 1;
    const table = this.#table!;
    const mask = table.length - 1;
    for (let i = Math.imul(id, GOLDEN) >>> this.#shift; ; i = (i + 1) & mask) {
      const v = table[i]!;
      if (v === id) return true;
      if (v === EMPTY) return false;
    }
  }

  add(id: number): void {
    const bits = this.bits;
    if (bits !== undefined) {
      if (id >= bits.length * 32) {
        const grown = new Uint32Array(Math.max(bits.length * 2, (id >>> 5) + 1));
        grown.set(bits);
        this.bits = grown;
      }
      this.bits![id >>> 5]! |= 1 << (id & 31);
      return;
    }
    if (this.has(id)) return;
    if (2 * (this.#count + 1) > this.#table!.length) this.#rehash(this.#table!.length * 2);
    this.#insert(id);
  }

  delete(id: number): void {
    const bits = this.bits;
    if (bits !== undefined) {
      if (id < bits.length * 32) bits[id >>> 5]! &= ~(1 << (id & 31));
      return;
    }
    const table = this.#table!;
    const mask = table.length - 1;
    let i = Math.imul(id, GOLDEN) >>> this.#shift;
    for (;;) {
      const v = table[i]!;
      if (v === EMPTY) return;
      if (v === id) break;
      i = (i + 1) & mask;
    }
    // Backward shift: move later entries of the probe run into the hole when their home slot allows it.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const v = table[j]!;
      if (v === EMPTY) break;
      const home = Math.imul(v, GOLDEN) >>> this.#shift;
      const stays = i < j ? home > i && home <= j : home > i || home <= j;
      if (!stays) {
        table[i] = v;
        i = j;
      }
    }
    table[i] = EMPTY;
    this.#count--;
  }

  #insert(id: number): void {
    const table = this.#table!;
    const mask = table.length - 1;
    let i = Math.imul(id, GOLDEN) >>> this.#shift;
    while (table[i] !== EMPTY) i = (i + 1) & mask;
    table[i] = id;
    this.#count++;
  }

  #rehash(slots: number): void {
    const old = this.#table;
    this.#table = new Int32Array(slots).fill(EMPTY);
    this.#shift = 32 - Math.log2(slots);
    this.#count = 0;
    if (old !== undefined) for (const v of old) if (v !== EMPTY) this.#insert(v);
  }
}

/** Hash-set slots for `count` members (a power of two, at least twice the count). */
function slotsFor(count: number): number {
  let slots = 16;
  while (slots < 2 * count) slots *= 2;
  return slots;
}

// ------------------------------------------------------------------------------------------------------------
// The change log

/** Changes delivered by the feed, in revision order, bounded; every change after `floor` is in it. */
class ChangeLog {
  floor: Revision = 0;
  readonly #max: number;
  #changes: StoredChange[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#changes.length;
  }

  append(changes: readonly StoredChange[]): void {
    for (const c of changes) this.#changes.push(c);
    if (this.#changes.length > this.#max) {
      // Drop the older half; the floor moves to the newest dropped change's revision.
      const drop = this.#changes.length - (this.#max >>> 1);
      this.floor = Math.max(this.floor, this.#changes[drop - 1]!.revision);
      this.#changes = this.#changes.slice(drop);
    }
  }

  reset(revision: Revision): void {
    this.#changes = [];
    this.floor = revision;
  }

  /** Changes with low < revision ≤ high. */
  between(low: Revision, high: Revision): StoredChange[] {
    const changes = this.#changes;
    let lo = 0;
    let hi = changes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (changes[mid]!.revision <= low) lo = mid + 1;
      else hi = mid;
    }
    const out: StoredChange[] = [];
    for (let i = lo; i < changes.length && changes[i]!.revision <= high; i++) out.push(changes[i]!);
    return out;
  }
}

// ------------------------------------------------------------------------------------------------------------
// Which objects a change can affect

type ChangedList = Pick<RelationTuple, "tenant" | "object" | "objectType" | "relation">;

/** `type#relation`. */
type Class = string;

/**
 * The model's edges, every position counted (a subtracted or intersected relation's tuples change answers too):
 * - `listReaders(T#r)`: relations of T whose evaluation on an object reads its tuple list `r` (r itself, and every
 *   relation with a tuple-to-userset over tupleset r);
 * - `computedParents(T#r)`: relations of T that include r of the same object;
 * - `ttuParents(T#r)`: relations P#p with a tuple-to-userset `r from ts` whose tupleset may hold T objects;
 * - `reaches(A, B)`: an evaluation of A may continue into B (forward closure: computed usersets, tuple-to-userset
 *   targets, userset subjects; an unrestricted relation reaches everything).
 */
interface ReverseIndex {
  listReaders(type: string, relation: string): readonly string[];
  computedParents(type: string, relation: string): readonly string[];
  ttuParents(type: string, relation: string): readonly { type: string; relation: string; tupleset: string }[];
  /** Whether some relation may hold usersets `T#r` (else no tuple names `object#r`). */
  usersetSubject(type: string, relation: string): boolean;
  reaches(from: Class, to: Class): boolean;
}

const reverseIndexes = new WeakMap<Program, ReverseIndex>();

function reverseIndexOf(program: Program): ReverseIndex {
  let index = reverseIndexes.get(program);
  if (index === undefined) {
    index = buildReverseIndex(program);
    reverseIndexes.set(program, index);
  }
  return index;
}

function buildReverseIndex(program: Program): ReverseIndex {
  const all: Class[] = [];
  for (const [typeName, type] of program.types)
    for (const r of type.relations.keys()) all.push(`${typeName}#${r}`);
  const readers = new Map<Class, Set<string>>();
  const computed = new Map<Class, Set<string>>();
  const ttu = new Map<Class, { type: string; relation: string; tupleset: string }[]>();
  const next = new Map<Class, Set<Class>>();
  const usersets = new Set<Class>();
  let unrestricted = false;
  const add = <V>(map: Map<Class, Set<V>>, key: Class, value: V) => {
    let set = map.get(key);
    if (set === undefined) {
      set = new Set();
      map.set(key, set);
    }
    set.add(value);
  };
  for (const [typeName, type] of program.types) {
    for (const def of type.relations.values()) {
      const self = `${typeName}#${def.name}`;
      add(readers, self, def.name);
      next.set(self, new Set());
      if (def.directSubjects === undefined) unrestricted = true;
      else
        for (const s of def.directSubjects)
          if (s.relation !== undefined) usersets.add(`${s.type}#${s.relation}`);
      const walk = (rw: Rewrite): void => {
        switch (rw.kind) {
          case "direct":
            forwardDirect(def, all, next.get(self)!);
            return;
          case "computed":
            add(computed, `${typeName}#${rw.relation}`, def.name);
            next.get(self)!.add(`${typeName}#${rw.relation}`);
            return;
          case "ttu": {
            add(readers, `${typeName}#${rw.tupleset}`, def.name);
            const tupleset = type.relations.get(rw.tupleset);
            const parents =
              tupleset?.directSubjects === undefined
                ? [...program.types.keys()]
                : [...new Set(tupleset.directSubjects.map((s) => s.type))];
            for (const parent of parents) {
              if (!program.types.get(parent)?.relations.has(rw.computed)) continue;
              const target = `${parent}#${rw.computed}`;
              next.get(self)!.add(target);
              let list = ttu.get(target);
              if (list === undefined) {
                list = [];
                ttu.set(target, list);
              }
              list.push({ type: typeName, relation: def.name, tupleset: rw.tupleset });
            }
            return;
          }
          case "union":
          case "intersection":
            for (const child of rw.children) walk(child);
            return;
          case "exclusion":
            walk(rw.base);
            walk(rw.subtract);
            return;
          case "none":
            return;
        }
      };
      walk(def.rewrite);
    }
  }
  const closures = new Map<Class, Set<Class>>();
  const closure = (from: Class): Set<Class> => {
    let seen = closures.get(from);
    if (seen === undefined) {
      seen = new Set([from]);
      const stack = [from];
      while (stack.length > 0) {
        for (const c of next.get(stack.pop()!) ?? []) {
          if (!seen.has(c)) {
            seen.add(c);
            stack.push(c);
          }
        }
      }
      closures.set(from, seen);
    }
    return seen;
  };
  const listOf = (map: Map<Class, Set<string>>) => {
    const out = new Map<Class, string[]>();
    for (const [k, v] of map) out.set(k, [...v]);
    return out;
  };
  const readerLists = listOf(readers);
  const computedLists = listOf(computed);
  const none: readonly never[] = [];
  return {
    listReaders: (type, relation) => readerLists.get(`${type}#${relation}`) ?? [relation],
    computedParents: (type, relation) => computedLists.get(`${type}#${relation}`) ?? none,
    ttuParents: (type, relation) => ttu.get(`${type}#${relation}`) ?? none,
    usersetSubject: (type, relation) => unrestricted || usersets.has(`${type}#${relation}`),
    reaches: (from, to) => closure(from).has(to),
  };
}

function forwardDirect(def: RelationDef, all: readonly Class[], out: Set<Class>): void {
  if (def.directSubjects === undefined) {
    for (const c of all) out.add(c);
    return;
  }
  for (const s of def.directSubjects) if (s.relation !== undefined) out.add(`${s.type}#${s.relation}`);
}

/**
 * The objects of `target`'s (tenant, type) whose `target.relation` may answer differently now that `lists`
 * changed, or undefined when there are more than `budget.objects` (or the walk visits more than `budget.nodes`).
 *
 * Why it is enough: a check is a function of the tuple lists it reads. If an object's answer changed, its
 * evaluation before the change read a changed list L, along a path of evaluation nodes joined by tuples; take the
 * first changed list on that path: the tuples before it are unchanged, so at the new revision the same path leads
 * from the object to a node reading that list. Walking back from every node that reads a changed list, over every
 * edge that could join two nodes (computed usersets, tuple-to-usersets through `bySubject(parent)`, userset
 * subjects through `bySubject(object#relation)`), therefore reaches every such object. Only nodes the target's
 * relation can continue into are followed.
 */
async function affectedObjects(
  reader: TupleReader,
  index: ReverseIndex,
  lists: readonly ChangedList[],
  target: Pick<Question, "tenant" | "objectType" | "relation">,
  budget: { objects: number; nodes: number },
): Promise<string[] | undefined> {
  const targetClass = `${target.objectType}#${target.relation}`;
  const seen = new Set<string>();
  const queue: [tenant: string, object: string, type: string, relation: string][] = [];
  const found = new Set<string>();
  const reach = (tenant: string, object: string, type: string, relation: string): void => {
    if (!index.reaches(targetClass, `${type}#${relation}`)) return;
    const key = tenant + SEP + object + SEP + relation;
    if (seen.has(key)) return;
    seen.add(key);
    queue.push([tenant, object, type, relation]);
  };
  for (const l of lists) {
    for (const r of index.listReaders(l.objectType, l.relation)) reach(l.tenant, l.object, l.objectType, r);
  }
  for (let head = 0; head < queue.length; head++) {
    if (head >= budget.nodes) return undefined;
    const [tenant, object, type, relation] = queue[head]!;
    if (tenant === target.tenant && type === target.objectType && relation === target.relation) {
      found.add(object);
      if (found.size > budget.objects) return undefined;
    }
    for (const parent of index.computedParents(type, relation)) reach(tenant, object, type, parent);
    const ttuParents = index.ttuParents(type, relation);
    if (ttuParents.length > 0) {
      for (const t of await reader.bySubject(tenant, object)) {
        for (const p of ttuParents) {
          if (t.objectType === p.type && t.relation === p.tupleset)
            reach(t.tenant, t.object, p.type, p.relation);
        }
      }
    }
    if (index.usersetSubject(type, relation)) {
      for (const t of await reader.bySubject(tenant, `${object}#${relation}`)) {
        for (const r of index.listReaders(t.objectType, t.relation))
          reach(t.tenant, t.object, t.objectType, r);
      }
    }
  }
  return [...found];
}

/**
 * `affectedObjects` for other maintainers of per-object answers (src/views): the objects of `target`'s (tenant,
 * type) whose `target.relation` may answer differently, for any subject, now that `lists` changed; `reader` reads
 * the new revision. No budget: every such object is returned.
 */
export function objectsAffectedBy(
  reader: TupleReader,
  lists: readonly ChangedList[],
  target: Pick<Question, "tenant" | "objectType" | "relation">,
): Promise<string[]> {
  const unbounded = { objects: Number.POSITIVE_INFINITY, nodes: Number.POSITIVE_INFINITY };
  const index = reverseIndexOf(reader.program);
  return affectedObjects(reader, index, lists, target, unbounded) as Promise<string[]>;
}

// ------------------------------------------------------------------------------------------------------------

/**
 * A snapshot that remembers, among the tuples read through it, the earliest expiry after `now` and the latest at
 * or before it: an evaluation through it answers the same at every instant in [validFrom, validUntil).
 */
class ExpiryObserver implements TupleSnapshot {
  readonly revision: Revision;
  validUntil = Number.POSITIVE_INFINITY;
  validFrom = Number.NEGATIVE_INFINITY;
  readonly #inner: TupleSnapshot;
  readonly #now: number;

  constructor(inner: TupleSnapshot, now: number) {
    this.#inner = inner;
    this.revision = inner.revision;
    this.#now = now;
  }

  async readByObject(keys: readonly ObjectRelationKey[]): Promise<RelationTuple[][]> {
    return this.#seeAll(await this.#inner.readByObject(keys));
  }

  async readBySubject(keys: readonly SubjectKey[]): Promise<RelationTuple[][]> {
    return this.#seeAll(await this.#inner.readBySubject(keys));
  }

  async readByTypeRelation(keys: readonly TypeRelationKey[]): Promise<RelationTuple[][]> {
    return this.#seeAll(await this.#inner.readByTypeRelation(keys));
  }

  async read(filter: ReadFilter): Promise<RelationTuple[]> {
    const tuples = await this.#inner.read(filter);
    this.#see(tuples);
    return tuples;
  }

  release(): void {
    // The owner releases the inner snapshot.
  }

  #seeAll(lists: RelationTuple[][]): RelationTuple[][] {
    for (const list of lists) this.#see(list);
    return lists;
  }

  #see(tuples: readonly RelationTuple[]): void {
    for (const t of tuples) {
      const at = t.expiresAt;
      if (at === undefined) continue;
      if (at > this.#now) {
        if (at < this.validUntil) this.validUntil = at;
      } else if (at > this.validFrom) {
        this.validFrom = at;
      }
    }
  }
}
