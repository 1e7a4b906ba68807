/**
 * The Tiger cache (P0-3): for a (subject, permission, object type), the set of objects the subject may access,
 * as a roaring bitmap (roaring-wasm) over interned object ids, materialised on demand by the reference list
 * objects (exactly the objects check allows) at one snapshot revision. It answers single checks (one bit test)
 * and `filter` (which of these objects may the subject access, in input order).
 *
 * Exactness: a bitmap holds at its own revision; it answers another revision only when the change feed proves no
 * change in between touched a tuple class its (type, permission) reads (src/watch/influence.ts) — otherwise it is
 * re-materialised — and only before the earliest expiry among the tuples its materialisation read. Questions with
 * a condition context, contextual tuples, or on a relation that may evaluate a condition pass through.
 *
 * Owner: the layer owns every bitmap (WASM memory): evicted ones (beyond `maxBitmaps`, least recently used) and
 * replaced ones are disposed at once, the rest by close().
 */
import { RoaringBitmap32, roaringLibraryInitialize } from "roaring-wasm";
import { DEFAULT_MAX_DEPTH, Evaluation } from "../check/evaluation.js";
import { listObjects } from "../check/list-objects.js";
import { TupleReader } from "../check/reader.js";
import { NexusError } from "../errors.js";
import type { Program } from "../model/program.js";
import type { RelationTuple } from "../store/tuple.js";
import type {
  ObjectRelationKey,
  ReadFilter,
  Revision,
  StoredChange,
  SubjectKey,
  TupleSnapshot,
  TupleStore,
  TypeRelationKey,
} from "../store/types.js";
import type { ChangeListener } from "../watch/feed.js";
import type { InfluenceMap } from "../watch/influence.js";
import type { ChangeKnowledge } from "./result-cache.js";
import {
  type BatchOutcome,
  type CheckResolver,
  LayerCounters,
  type LayerStats,
  type Resolution,
  type ResolvedCheck,
} from "./types.js";

export interface TigerOptions {
  /** Most bitmaps kept (default 10,000; the least recently used is disposed beyond it). */
  readonly maxBitmaps?: number;
  /** Checks of one (subject, permission, type) before its bitmap is materialised (default 2; 1 = at once). */
  readonly materializeAfter?: number;
}

interface Materialised {
  readonly bitmap: RoaringBitmap32;
  readonly revision: Revision;
  readonly computedAt: number;
  readonly validUntil: number;
  readonly relationClass: string;
}

const SEP = "\u0000";
const FORMAT = "portable";

export class TigerResolver implements CheckResolver, ChangeListener {
  readonly layer = "tiger";
  readonly #inner: CheckResolver;
  readonly #program: Program;
  readonly #store: TupleStore;
  readonly #influence: InfluenceMap;
  readonly #maxDepth: number;
  readonly #maxBitmaps: number;
  readonly #materializeAfter: number;
  readonly #counters = new LayerCounters();
  /** tenant → object → id. Ids are never reused, so a bitmap's bits keep their meaning. */
  readonly #ids = new Map<string, Map<string, number>>();
  #nextId = 0;
  readonly #bitmaps = new Map<string, Materialised>();
  readonly #building = new Map<string, Promise<Materialised | undefined>>();
  readonly #demand = new Map<string, number>();
  readonly #changedAt = new Map<string, number>();
  #knowledge: ChangeKnowledge | undefined;
  #materialised = 0;
  #evicted = 0;
  /** Bitmaps allocated and not yet disposed (the leak audit's count). */
  #live = 0;
  #closed = false;

  private constructor(
    inner: CheckResolver,
    context: { program: Program; store: TupleStore; influence: InfluenceMap; maxResolutionDepth?: number },
    options: TigerOptions,
  ) {
    this.#inner = inner;
    this.#program = context.program;
    this.#store = context.store;
    this.#influence = context.influence;
    this.#maxDepth = context.maxResolutionDepth ?? DEFAULT_MAX_DEPTH;
    this.#maxBitmaps = options.maxBitmaps ?? 10_000;
    this.#materializeAfter = options.materializeAfter ?? 2;
  }

  /** Loads roaring-wasm and creates the layer. */
  static async open(
    inner: CheckResolver,
    context: { program: Program; store: TupleStore; influence: InfluenceMap; maxResolutionDepth?: number },
    options: TigerOptions = {},
  ): Promise<TigerResolver> {
    for (const [name, value] of [
      ["maxBitmaps", options.maxBitmaps],
      ["materializeAfter", options.materializeAfter],
    ] as const) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
        throw new NexusError("invalid_argument", `tiger.${name} must be an integer ≥ 1, got ${value}`);
      }
    }
    await roaringLibraryInitialize();
    return new TigerResolver(inner, context, options);
  }

  /** Lets bitmaps answer other revisions when the feed proves nothing relevant changed. */
  follow(knowledge: ChangeKnowledge): void {
    this.#knowledge = knowledge;
  }

  /** Whether a question may be answered from a bitmap at all. */
  eligible(check: ResolvedCheck): boolean {
    return (
      check.contextualTuples.length === 0 &&
      check.context === undefined &&
      !this.#influence.mayEvaluateConditions(check.objectType, check.relation)
    );
  }

  async resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    this.#counters.requests++;
    if (this.eligible(check)) {
      const key = bitmapKey(check);
      let m = this.#valid(key, check);
      if (m === undefined && this.#wanted(key)) m = await this.#materialise(key, check);
      if (m !== undefined) {
        this.#counters.hits++;
        const id = this.#ids.get(check.tenant)?.get(check.object);
        return {
          allowed: id !== undefined && m.bitmap.has(id),
          revision: m.revision,
          validUntil: m.validUntil,
        };
      }
    }
    this.#counters.misses++;
    return this.#inner.resolve(check, signal);
  }

  async resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    const outcomes: BatchOutcome[] = new Array(checks.length);
    const passed: number[] = [];
    for (let i = 0; i < checks.length; i++) {
      const check = checks[i]!;
      this.#counters.requests++;
      const m = this.eligible(check) ? this.#valid(bitmapKey(check), check) : undefined;
      if (m === undefined) {
        passed.push(i);
        continue;
      }
      this.#counters.hits++;
      const id = this.#ids.get(check.tenant)?.get(check.object);
      outcomes[i] = {
        allowed: id !== undefined && m.bitmap.has(id),
        revision: m.revision,
        validUntil: m.validUntil,
      };
    }
    if (passed.length > 0) {
      this.#counters.misses += passed.length;
      const answers = await this.#inner.resolveMany(
        passed.map((i) => checks[i]!),
        signal,
      );
      passed.forEach((i, j) => {
        outcomes[i] = answers[j]!;
      });
    }
    return outcomes;
  }

  /**
   * Which of `objects` (ids of `check.objectType`, in `check.tenant`) the subject of `check` may access, in input
   * order; materialises the bitmap when needed. Undefined when the question is not eligible (the caller checks).
   */
  async filter(check: ResolvedCheck, objects: readonly string[]): Promise<boolean[] | undefined> {
    if (!this.eligible(check)) return undefined;
    const key = bitmapKey(check);
    const m = this.#valid(key, check) ?? (await this.#materialise(key, check));
    if (m === undefined) return undefined;
    this.#counters.hits += objects.length;
    this.#counters.requests += objects.length;
    const ids = this.#ids.get(check.tenant);
    const bitmap = m.bitmap;
    const out = new Array<boolean>(objects.length);
    for (let i = 0; i < objects.length; i++) {
      const id = ids?.get(objects[i]!);
      out[i] = id !== undefined && bitmap.has(id);
    }
    return out;
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
  }

  onReset(): void {
    // The feed's `complete` moves past every bitmap's revision, which withdraws cross-revision reuse.
  }

  /** WASM bytes held by the bitmaps (their serialized size, which is what roaring allocates for them). */
  get memoryBytes(): number {
    let bytes = 0;
    for (const m of this.#bitmaps.values()) bytes += m.bitmap.getSerializationSizeInBytes(FORMAT);
    return bytes;
  }

  /**
   * Every bitmap, with the object ids it needs, as bytes: a JSON header (length-prefixed) then each bitmap in
   * roaring's portable format. `load` restores them into a layer over the same store.
   */
  serialize(): Uint8Array {
    const parts: Uint8Array[] = [];
    const entries: unknown[] = [];
    for (const [key, m] of this.#bitmaps) {
      const bytes = m.bitmap.serialize(FORMAT);
      parts.push(bytes);
      entries.push({
        key,
        revision: m.revision,
        computedAt: m.computedAt,
        validUntil: Number.isFinite(m.validUntil) ? m.validUntil : null,
        relationClass: m.relationClass,
        length: bytes.length,
      });
    }
    const header = new TextEncoder().encode(
      JSON.stringify({
        version: 1,
        objects: [...this.#ids].flatMap(([tenant, ids]) =>
          [...ids].map(([object, id]) => [tenant, object, id]),
        ),
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
    let header: {
      version: number;
      objects: [tenant: string, object: string, id: number][];
      entries: {
        key: string;
        revision: number;
        computedAt: number;
        validUntil: number | null;
        relationClass: string;
        length: number;
      }[];
    };
    try {
      header = JSON.parse(
        new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(4, 4 + headerLength)),
      );
    } catch {
      throw corrupt("unreadable header");
    }
    if (header?.version !== 1 || !Array.isArray(header.objects) || !Array.isArray(header.entries)) {
      throw corrupt("unsupported header");
    }
    const restored = new Map<string, Materialised>();
    let at = 4 + headerLength;
    try {
      for (const e of header.entries) {
        if (at + e.length > bytes.length) throw corrupt("truncated bitmap");
        const bitmap = RoaringBitmap32.deserialize(FORMAT, bytes.subarray(at, at + e.length));
        this.#live++;
        at += e.length;
        restored.set(e.key, {
          bitmap,
          revision: e.revision,
          computedAt: e.computedAt,
          validUntil: e.validUntil ?? Number.POSITIVE_INFINITY,
          relationClass: e.relationClass,
        });
      }
    } catch (error) {
      for (const m of restored.values()) this.#dispose(m.bitmap);
      throw error instanceof NexusError ? error : corrupt(`bad bitmap (${String(error)})`);
    }
    for (const m of this.#bitmaps.values()) this.#dispose(m.bitmap);
    this.#bitmaps.clear();
    this.#ids.clear();
    this.#nextId = 0;
    for (const [tenant, object, id] of header.objects) {
      this.#tenantIds(tenant).set(object, id);
      if (id >= this.#nextId) this.#nextId = id + 1;
    }
    for (const [key, m] of restored) this.#bitmaps.set(key, m);
  }

  stats(): LayerStats[] {
    return [
      this.#counters.snapshot(this.layer, !this.#closed, {
        bitmaps: this.#bitmaps.size,
        materialised: this.#materialised,
        evicted: this.#evicted,
        objectIds: this.#nextId,
        liveBitmaps: this.#live,
        memoryBytes: this.#closed ? 0 : this.memoryBytes,
      }),
      ...this.#inner.stats(),
    ];
  }

  /** Waits for materialisations in progress, disposes every bitmap, then closes the next layer. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      await Promise.allSettled(this.#building.values());
      for (const m of this.#bitmaps.values()) this.#dispose(m.bitmap);
      this.#bitmaps.clear();
      this.#demand.clear();
    }
    await this.#inner.close();
  }

  #wanted(key: string): boolean {
    const count = (this.#demand.get(key) ?? 0) + 1;
    if (this.#demand.size > 4 * this.#maxBitmaps) this.#demand.clear();
    this.#demand.set(key, count);
    return count >= this.#materializeAfter;
  }

  #valid(key: string, check: ResolvedCheck): Materialised | undefined {
    const m = this.#bitmaps.get(key);
    if (m === undefined || check.now >= m.validUntil || check.now < m.computedAt) return undefined;
    if (m.revision !== check.revision) {
      const knowledge = this.#knowledge;
      if (knowledge === undefined) return undefined;
      const low = Math.min(m.revision, check.revision);
      const high = Math.max(m.revision, check.revision);
      if (high > knowledge.watermark || low < knowledge.complete) return undefined;
      if ((this.#changedAt.get(m.relationClass) ?? -1) > low) return undefined;
    }
    // Recently used bitmaps move to the back of the eviction order.
    this.#bitmaps.delete(key);
    this.#bitmaps.set(key, m);
    return m;
  }

  #materialise(key: string, check: ResolvedCheck): Promise<Materialised | undefined> {
    const buildKey = `${check.revision}${SEP}${check.now}${SEP}${key}`;
    let building = this.#building.get(buildKey);
    if (building === undefined) {
      building = this.#build(key, check).finally(() => this.#building.delete(buildKey));
      this.#building.set(buildKey, building);
    }
    return building;
  }

  async #build(key: string, check: ResolvedCheck): Promise<Materialised | undefined> {
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
      objects = await listObjects(ev, {
        tenant: check.tenant,
        type: check.objectType,
        relation: check.relation,
        subject: check.subject,
        user: check.user,
        subjectTenant: check.subjectTenant,
      });
    } catch {
      return undefined; // e.g. too deep: the evaluator reports it for this check
    } finally {
      snapshot.release();
    }
    if (this.#closed) return undefined;
    const ids = new Uint32Array(objects.length);
    const tenantIds = this.#tenantIds(check.tenant);
    objects.forEach((object, i) => {
      let id = tenantIds.get(object);
      if (id === undefined) {
        id = this.#nextId++;
        tenantIds.set(object, id);
      }
      ids[i] = id;
    });
    ids.sort();
    const bitmap = new RoaringBitmap32();
    this.#live++;
    bitmap.addMany(ids);
    bitmap.runOptimize();
    const m: Materialised = {
      bitmap,
      revision: snapshot.revision,
      computedAt: check.now,
      validUntil: observed.validUntil,
      relationClass: `${check.objectType}#${check.relation}`,
    };
    // The latest materialisation replaces the one before (each is exact at its own revision).
    const replaced = this.#bitmaps.get(key);
    if (replaced !== undefined) this.#dispose(replaced.bitmap);
    this.#bitmaps.delete(key);
    this.#bitmaps.set(key, m);
    this.#materialised++;
    while (this.#bitmaps.size > this.#maxBitmaps) {
      const [oldestKey, oldest] = this.#bitmaps.entries().next().value as [string, Materialised];
      this.#bitmaps.delete(oldestKey);
      this.#dispose(oldest.bitmap);
      this.#evicted++;
    }
    return m;
  }

  #dispose(bitmap: RoaringBitmap32): void {
    if (bitmap.dispose()) this.#live--;
  }

  #tenantIds(tenant: string): Map<string, number> {
    let ids = this.#ids.get(tenant);
    if (ids === undefined) {
      ids = new Map();
      this.#ids.set(tenant, ids);
    }
    return ids;
  }
}

function bitmapKey(check: ResolvedCheck): string {
  return (
    check.tenant +
    SEP +
    check.subjectTenant +
    SEP +
    check.user +
    SEP +
    check.relation +
    SEP +
    check.objectType
  );
}

/** A snapshot that remembers the earliest expiry (after `now`) among the tuples read through it. */
class ExpiryObserver implements TupleSnapshot {
  readonly revision: Revision;
  validUntil = Number.POSITIVE_INFINITY;
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
      if (at !== undefined && at > this.#now && at < this.validUntil) this.validUntil = at;
    }
  }
}
