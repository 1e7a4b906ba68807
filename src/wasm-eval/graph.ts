/**
 * One tenant's compiled tuple graph (assembly/graph.ts) kept at one store revision: built from a snapshot, then
 * moved forward by applying the store's changelog, never rebuilt per check. Only tuples valid under the model
 * count (as the reference reader filters them); tuples the kernel does not evaluate (a condition, an expiry, a
 * subject in another tenant, and in a SpiceDB schema a userset subject on a relation some arrow follows) are
 * counted on their node as "flagged", so a check that reads that node is handed
 * to the reference evaluator instead. When the model has recursive membership relations, the graph carries a
 * Leopard index (assembly/leopard.ts) maintained by the same changes. Runtime-neutral.
 */

import { analyze, type ProgramAnalysis } from "../model/analysis.js";
import { followsSpiceDb, type Rewrite } from "../model/program.js";
import { isValidTuple } from "../model/tuple-rules.js";
import type { RelationTuple } from "../tuples/tuple.js";
import type { Revision } from "../tuples/types.js";
import type { CompiledProgram } from "./compile.js";
import { NO_REL } from "./compile.js";
import { type EvaluateKernel, type EvaluateKernelExports, SubjectForm } from "./kernel.js";
import type { Symbols } from "./symbols.js";

/** Integers #stage keeps per staged write (see #staged). */
const STAGED_WORDS = 6;
/** Integers #removeMany keeps per tuple removed: object, relation, type, subject, subject relation, form, flagged. */
const REMOVED_WORDS = 7;

/** Whether the kernel leaves a tuple to the reference evaluator. */
export function isFlagged(t: RelationTuple): boolean {
  return t.condition !== undefined || t.expiresAt !== undefined || t.subjectTenant !== t.tenant;
}

/** A change `applyMany` takes (a StoredChange is one). */
export interface GraphChange {
  readonly tuple: RelationTuple;
  readonly op: "write" | "delete";
}

interface Uses {
  readonly computed: readonly string[];
  readonly tupleset: readonly string[];
}
const NO_USES: Uses = { computed: [], tupleset: [] };

/**
 * The reverse of the evaluation's edges between relations, as flat tables indexed by type * relations + relation
 * (type and relation ids are dense), so the invalidation walk reads integers, never strings or the analysis.
 */
interface WalkTables {
  readonly types: number;
  readonly relations: number;
  /** CSR: the same object's relations that read the node (computed usersets in any position, tuple-to-usersets
   * following it as their tupleset). */
  readonly localStart: Int32Array;
  readonly local: Int32Array;
  /** CSR: tuple-to-userset parents of the node, as triples (parent type, tupleset relation, parent relation). */
  readonly ttuStart: Int32Array;
  readonly ttu: Int32Array;
}

/** One set of tables per compiled program (every tenant's graph shares it). */
const walkTablesOf = new WeakMap<CompiledProgram, WalkTables>();

function buildWalkTables(
  compiled: CompiledProgram,
  users: (type: string, relation: string) => Uses,
): WalkTables {
  const { typeIds, relationIds } = compiled;
  const analysis: ProgramAnalysis = analyze(compiled.program);
  const types = typeIds.size;
  const relations = relationIds.size;
  const localStart = new Int32Array(types * relations + 1);
  const ttuStart = new Int32Array(types * relations + 1);
  const local: number[] = [];
  const ttu: number[] = [];
  for (const [typeName, type] of typeIds) {
    for (const [relationName, relation] of relationIds) {
      const node = type * relations + relation;
      localStart[node] = local.length;
      ttuStart[node] = ttu.length;
      const u = users(typeName, relationName);
      for (const rel of u.computed) local.push(relationIds.get(rel)!);
      for (const rel of u.tupleset) local.push(relationIds.get(rel)!);
      for (const p of analysis.ttuParents(typeName, relationName)) {
        ttu.push(
          typeIds.get(p.type) ?? -1,
          relationIds.get(p.tupleset) ?? -1,
          relationIds.get(p.relation) ?? -1,
        );
      }
    }
  }
  localStart[types * relations] = local.length;
  ttuStart[types * relations] = ttu.length;
  return {
    types,
    relations,
    localStart,
    local: Int32Array.from(local),
    ttuStart,
    ttu: Int32Array.from(ttu),
  };
}

/**
 * The nodes (object, relation) one invalidation walk has reached: open addressing over typed arrays, reused from
 * walk to walk (a slot counts only when stamped with the current walk), so a walk over tens of thousands of nodes
 * allocates nothing and leaves nothing for the GC.
 */
class NodeSet {
  #objects = new Uint32Array(1024);
  #relations = new Uint32Array(1024);
  #stamps = new Uint32Array(1024);
  // 1, not 0: the stamps start at 0, so a new set is empty before its first reset.
  #stamp = 1;
  #size = 0;

  /** Empties the set (O(1): a new stamp). */
  reset(): void {
    this.#size = 0;
    if (++this.#stamp === 0xffffffff) {
      this.#stamps.fill(0);
      this.#stamp = 1;
    }
  }

  /** Adds (o, r); false when it was there already. */
  add(o: number, r: number): boolean {
    if ((this.#size + 1) * 2 > this.#stamps.length) this.#grow();
    const mask = this.#stamps.length - 1;
    const stamps = this.#stamps;
    const stamp = this.#stamp;
    for (let i = (Math.imul(o, 0x9e3779b1) ^ Math.imul(r + 1, 0x85ebca77)) & mask; ; i = (i + 1) & mask) {
      if (stamps[i] !== stamp) {
        stamps[i] = stamp;
        this.#objects[i] = o;
        this.#relations[i] = r;
        this.#size++;
        return true;
      }
      if (this.#objects[i] === o && this.#relations[i] === r) return false;
    }
  }

  #grow(): void {
    const objects = this.#objects;
    const relations = this.#relations;
    const stamps = this.#stamps;
    const stamp = this.#stamp;
    const size = stamps.length * 2;
    this.#objects = new Uint32Array(size);
    this.#relations = new Uint32Array(size);
    this.#stamps = new Uint32Array(size);
    this.#size = 0;
    for (let i = 0; i < stamps.length; i++) if (stamps[i] === stamp) this.add(objects[i]!, relations[i]!);
  }
}

/** A tuple's subject as the graph kernel takes it (TupleGraph#kernelForm). */
interface KernelForm {
  flagged: number;
  form: number;
  subjectRelation: number;
  subjectText: string;
}

export class TupleGraph implements Disposable {
  readonly tenant: string;
  /** The store revision the graph reflects. */
  revision: Revision;
  readonly #exports: EvaluateKernelExports;
  readonly #compiled: CompiledProgram;
  readonly #symbols: Symbols;
  /** 1 at type * relations + relation for a Leopard-indexed relation (integers: no string per tuple). */
  readonly #indexed: Uint8Array;
  readonly #relationCount: number;
  #ptr: number;
  #leopard = 0;
  readonly #kernel: EvaluateKernel;
  /** Nodes whose facts a change invalidated (over the graph's life). */
  invalidated = 0;

  constructor(
    kernel: EvaluateKernel,
    compiled: CompiledProgram,
    symbols: Symbols,
    tenant: string,
    revision: Revision,
  ) {
    this.#exports = kernel.exports;
    this.#kernel = kernel;
    this.#compiled = compiled;
    this.#symbols = symbols;
    this.tenant = tenant;
    this.revision = revision;
    const seed = (Math.random() * 2 ** 32) >>> 0;
    this.#ptr = this.#exports.graph_new(seed, seed ^ 0x5bd1e995) >>> 0;
    this.#relationCount = compiled.relationIds.size;
    this.#indexed = new Uint8Array(compiled.typeIds.size * this.#relationCount);
    for (const l of compiled.leopardRelations) this.#indexed[l.type * this.#relationCount + l.relation] = 1;
    if (compiled.leopardRelations.length > 0) {
      this.#leopard = this.#exports.leopard_new(seed ^ 0x68e31da4, seed) >>> 0;
      this.#exports.graph_set_leopard(this.#ptr, this.#leopard);
    }
  }

  /**
   * Address of the graph in the kernel's memory, for evaluating on it: the Leopard updates of removals queued
   * (#removeMany) run first, so no reader of the index sees it behind the graph (review finding: a check between
   * beginBatch and endBatch read an index that still held a deleted member). One compare when none is queued.
   */
  get pointer(): number {
    if (this.#leopardQueueCount !== 0) this.#settle();
    return this.#ptr;
  }

  /** Address of the graph's Leopard index (0 when the model has no indexed relation). */
  get leopardPointer(): number {
    this.#settle();
    return this.#leopard;
  }

  /** Evaluable tuples held. */
  get tuples(): number {
    return this.#exports.graph_tuples(this.#ptr) >>> 0;
  }

  /** Tuples held only as "flagged" counts. */
  get flagged(): number {
    return this.#exports.graph_flagged(this.#ptr) >>> 0;
  }

  /** Bytes of the graph's own structures (not the shared symbol table, not the Leopard index). */
  get memoryBytes(): number {
    return this.#exports.graph_memory_bytes(this.#ptr) >>> 0;
  }

  /** Bytes of the Leopard index (0 without one). */
  get leopardBytes(): number {
    this.#settle();
    return this.#leopard === 0 ? 0 : this.#exports.leopard_memory_bytes(this.#leopard) >>> 0;
  }

  /**
   * Marks every indexed relation for a rebuild (rebuildLeopard) before a bulk load: the load's hooks then only
   * count, where maintaining the closure edge by edge would redo it at every group link.
   */
  deferLeopard(): void {
    this.#settle();
    for (const l of this.#compiled.leopardRelations) {
      this.#exports.leopard_mark_dirty(this.#leopard, l.type, l.relation);
    }
  }

  /**
   * Some indexed relation waits for rebuildLeopard (dirty, with no impure or flagged tuple keeping it unusable):
   * until then its questions are answered by the walk, never by a rebuild inside them.
   */
  get leopardPending(): boolean {
    this.#settle();
    if (this.#leopard === 0) return false;
    for (const l of this.#compiled.leopardRelations) {
      // Bits: 0 impure, 1 flagged, 2 cyclic, 3 dirty, 4 oversized (assembly/leopard.ts leopard_state); an
      // oversized relation is never dirty.
      if ((this.#exports.leopard_state(this.#leopard, l.type, l.relation) & 0b1011) === 0b1000) return true;
    }
    return false;
  }

  /**
   * Rebuilds every indexed relation that waits for it: a scan of the graph's nodes (~4 ms at 100k tuples), so it
   * is run off the request path (TenantGraphs: at the end of a small run, or once writes settle). Returns the
   * relations rebuilt.
   */
  rebuildLeopard(): number {
    this.#settle();
    if (this.#leopard === 0) return 0;
    let rebuilt = 0;
    try {
      for (const l of this.#compiled.leopardRelations) {
        rebuilt += this.#exports.leopard_rebuild(this.#ptr, this.#leopard, l.type, l.relation);
      }
    } catch {
      // A trap inside the rebuild (memory that could not grow) leaves the index half rebuilt: the graph goes on
      // without it (questions walk, as they do while a rebuild is pending), and the error is not thrown to the
      // timer that called this, where it would end the process.
      this.#dropLeopard();
    }
    return rebuilt;
  }

  #dropLeopard(): void {
    const leopard = this.#leopard;
    this.#leopard = 0;
    this.#exports.graph_set_leopard(this.#ptr, 0);
    try {
      this.#exports.leopard_free(leopard);
    } catch {
      // Its memory stays allocated: freeing a structure a trap left half written may trap again.
    }
  }

  /** Applies a write or delete of `tuple` (of this graph's tenant). Tuples invalid under the model are ignored. */
  apply(tuple: RelationTuple, op: "write" | "delete"): void {
    this.#settle();
    const { program, typeIds, relationIds } = this.#compiled;
    if (!isValidTuple(program, tuple)) return;
    const e = this.#exports;
    const relation = relationIds.get(tuple.relation)!;
    const type = typeIds.get(tuple.objectType)!;
    const { flagged, form, subjectRelation, subjectText } = this.#kernelForm(tuple);
    const s = tuple.subject;
    let object: number | undefined;
    let subject: number | undefined = 0;
    let changed: number;
    if (op === "write") {
      object = this.#symbols.intern(tuple.object, type);
      if (!flagged) subject = this.#symbols.intern(subjectText, typeIds.get(s.type)!);
      changed = e.graph_add(this.#ptr, object, relation, subject, subjectRelation, form, flagged);
    } else {
      object = this.#symbols.lookup(tuple.object);
      if (!flagged) subject = this.#symbols.lookup(subjectText);
      if (object === undefined || subject === undefined) return;
      changed = e.graph_remove(this.#ptr, object, relation, subject, subjectRelation, form, flagged);
    }
    if (changed === 0) return;
    const facts = e.graph_facts(this.#ptr) > 0;
    if (facts || e.graph_plans(this.#ptr) > 0) this.#invalidateUpstream(object, relation, facts);
    if (this.#leopard === 0) return;
    if (this.#indexed[type * this.#relationCount + relation] !== 1) return;
    const hook = op === "write" ? e.leopard_on_add : e.leopard_on_remove;
    hook(this.#ptr, this.#leopard, type, relation, object, subject, subjectRelation, form, flagged);
  }

  /**
   * Applies changes[from, to) in order: the same graph, walks and Leopard updates as `apply` on each. The strings
   * of a run of writes are interned in one call (one copy into the kernel for the run, where `apply` made one a
   * string, and a repeated subject copied once); a run of deletes goes to the kernel as one batch (#removeMany),
   * after the writes staged before it.
   */
  applyMany(changes: readonly GraphChange[], from: number, to: number): void {
    try {
      for (let i = from; i < to; ) {
        const change = changes[i]!;
        if (change.op === "write") {
          if (!this.#stage(change.tuple)) {
            this.#flush();
            this.apply(change.tuple, "write");
          }
          i++;
          continue;
        }
        this.#flush();
        let end = i + 1;
        while (end < to && changes[end]!.op === "delete") end++;
        if (end - i === 1) this.apply(change.tuple, "delete");
        else this.#removeMany(changes, i, end);
        i = end;
      }
      this.#flush();
    } finally {
      this.#unstage();
    }
  }

  /**
   * Deletes changes[from, to) (all deletes) as one batch of the kernel's (graph_batch_begin / graph_batch_end in
   * assembly/graph.ts): a long vector loses all its entries the batch removes in one pass, O(n + k), where one
   * graph_remove at a time scanned and shifted it for each, O(n·k) (a group's 80,000 members deleted in writes of
   * 10,000). The kernel answers each graph_remove as `apply` gets it, but nothing may read the graph until the
   * batch ends, so the invalidation walks and the Leopard upkeep of the tuples removed run after it, in order, on
   * the graph without all of them:
   * - the walks invalidate the same nodes: a node above a removed tuple's node at the time it was removed is above
   *   it afterwards too, or else above the node of a later removed tuple on the path between them (the first one
   *   missing), whose own walk reaches it (deletes only take nodes away from above);
   * - each Leopard update recomputes its group and the groups above it from their children; run after the whole
   *   batch, every group that had a descendant removed is recomputed last after its children are (they are below
   *   a removed tuple's group too), so the index ends as one update a delete leaves it. A repeat of an update
   *   (same group, same kind of subject: a plain object or wildcard, or a userset) of a pure tuple is left out: on
   *   the same graph it would only recompute the same groups again, or set the same flags (dirty, cyclic cleared).
   *   The updates wait longer still inside beginBatch/endBatch: TenantGraphs hands a graph a write's changes in
   *   runs of 256, and a group of n members deleted in such runs was recomputed n/256 times; they run (#settle)
   *   before anything else touches the graph or the index: the next write or `apply`, endBatch, and the methods
   *   that read or rebuild the index. So they always run on the graph after a span of deletes only.
   *   What can differ is when the index gives up and waits for a rebuild: a walk past its bound (WALK_LIMIT groups
   *   above) is shorter on the smaller graph, so a batch may keep an index one delete at a time marked dirty.
   */
  #removeMany(changes: readonly GraphChange[], from: number, to: number): void {
    const { program, typeIds, relationIds } = this.#compiled;
    const e = this.#exports;
    const ptr = this.#ptr;
    let removed = this.#removed;
    if (removed.length < REMOVED_WORDS * (to - from)) {
      removed = this.#removed = new Uint32Array(REMOVED_WORDS * (to - from));
    }
    let count = 0;
    let ended = false;
    e.graph_batch_begin(ptr);
    try {
      for (let i = from; i < to; i++) {
        const tuple = changes[i]!.tuple;
        // As `apply` takes a delete.
        if (!isValidTuple(program, tuple)) continue;
        const relation = relationIds.get(tuple.relation)!;
        const type = typeIds.get(tuple.objectType)!;
        const { flagged, form, subjectRelation, subjectText } = this.#kernelForm(tuple);
        const object = this.#symbols.lookup(tuple.object);
        const subject = flagged ? 0 : this.#symbols.lookup(subjectText);
        if (object === undefined || subject === undefined) continue;
        if (e.graph_remove(ptr, object, relation, subject, subjectRelation, form, flagged) === 0) continue;
        let at = REMOVED_WORDS * count++;
        removed[at++] = object;
        removed[at++] = relation;
        removed[at++] = type;
        removed[at++] = subject;
        removed[at++] = subjectRelation;
        removed[at++] = form;
        removed[at] = flagged;
      }
      ended = true;
      e.graph_batch_end(ptr);
    } finally {
      if (!ended) {
        try {
          e.graph_batch_end(ptr);
        } catch {
          // A trap inside the batch left the graph half updated (the caller drops it): its error is the one thrown.
        }
      }
    }
    let facts = e.graph_facts(ptr) > 0;
    let walk = facts || e.graph_plans(ptr) > 0;
    const updated = this.#leopardQueued;
    for (let i = 0, at = 0; i < count; i++, at += REMOVED_WORDS) {
      const object = removed[at]!;
      const relation = removed[at + 1]!;
      if (walk) {
        this.#invalidateUpstream(object, relation, facts);
        facts = e.graph_facts(ptr) > 0;
        walk = facts || e.graph_plans(ptr) > 0;
      }
      const type = removed[at + 2]!;
      if (this.#leopard === 0 || this.#indexed[type * this.#relationCount + relation] !== 1) continue;
      const subject = removed[at + 3]!;
      const subjectRelation = removed[at + 4]!;
      const form = removed[at + 5]!;
      const flagged = removed[at + 6]!;
      // Pure as assembly/leopard.ts counts it: a plain object or wildcard, or a userset of the same relation and type.
      const userset = form === SubjectForm.USERSET;
      const pure =
        flagged === 0 &&
        (!userset || (subjectRelation === relation && e.symbols_type(subject) >>> 0 === type));
      if (pure && !updated.add(object, 2 * relation + (userset ? 1 : 0))) continue;
      let queue = this.#leopardQueue;
      if (queue.length === REMOVED_WORDS * this.#leopardQueueCount) {
        queue = new Uint32Array(2 * queue.length);
        queue.set(this.#leopardQueue);
        this.#leopardQueue = queue;
      }
      queue.set(removed.subarray(at, at + REMOVED_WORDS), REMOVED_WORDS * this.#leopardQueueCount++);
    }
    // A very large batch's list is not kept for the next one.
    if (removed.length > REMOVED_WORDS * 65536) this.#removed = new Uint32Array(REMOVED_WORDS * 256);
    if (!this.#batch) this.#settle();
  }

  /** Runs the Leopard updates #removeMany queued, in order, then forgets them. */
  #settle(): void {
    const count = this.#leopardQueueCount;
    if (count === 0) return;
    this.#leopardQueueCount = 0;
    this.#leopardQueued.reset();
    const queue = this.#leopardQueue;
    if (queue.length > REMOVED_WORDS * 65536) this.#leopardQueue = new Uint32Array(REMOVED_WORDS * 64);
    const e = this.#exports;
    const ptr = this.#ptr;
    try {
      for (let at = 0; at < REMOVED_WORDS * count; at += REMOVED_WORDS) {
        // The index may have been dropped since (a trap in a rebuild): then there is nothing to update.
        const leopard = this.#leopard;
        if (leopard === 0 || ptr === 0) return;
        e.leopard_on_remove(
          ptr,
          leopard,
          queue[at + 2]!,
          queue[at + 1]!,
          queue[at]!,
          queue[at + 3]!,
          queue[at + 4]!,
          queue[at + 5]!,
          queue[at + 6]!,
        );
      }
    } catch {
      // A trap inside an update (memory that could not grow) leaves the index half updated; the graph, which the
      // updates only read, is whole. As after a trap in rebuildLeopard: the graph goes on without the index (its
      // questions walk). Thrown from endBatch, the error would escape TenantGraphs' `finally` with the graph kept.
      this.#dropLeopard();
    }
  }

  /** #removeMany's tuples removed: REMOVED_WORDS integers each (kept from batch to batch). */
  #removed = new Uint32Array(REMOVED_WORDS * 256);
  /** Leopard updates of removed tuples waiting for #settle (REMOVED_WORDS integers each, as #removed). */
  #leopardQueue = new Uint32Array(REMOVED_WORDS * 64);
  #leopardQueueCount = 0;
  /** The queued updates of pure tuples, by (group, relation and kind of subject): a repeat is not queued. */
  readonly #leopardQueued = new NodeSet();

  /** Writes tuples[from, to) in order, as `applyMany` does. */
  writeMany(tuples: readonly RelationTuple[], from: number, to: number): void {
    try {
      for (let i = from; i < to; i++) {
        const tuple = tuples[i]!;
        if (this.#stage(tuple)) continue;
        this.#flush();
        this.apply(tuple, "write");
      }
      this.#flush();
    } finally {
      this.#unstage();
    }
  }

  // Writes staged for one interning call: their strings (objects, and subjects unless flagged or repeated), the
  // type of each string, and per tuple STAGED_WORDS integers: object text index, relation, subject text index (-1
  // when flagged), subject relation, form, the object's type.
  // The lists are kept from one interning call to the next, written over from the start (emptying one with
  // `length = 0` dropped its backing store, and every part of a load grew it again from nothing: about 50 B a tuple
  // of garbage); #texts is cut to the call's texts before the call, and holds them, strings the store holds too,
  // until the next staging writes over them.
  #texts: string[] = [];
  #textCount = 0;
  #textTypes = new Int32Array(512);
  #staged: Int32Array = new Int32Array(STAGED_WORDS * 256);
  #stagedCount = 0;
  #lastSubject: string | undefined;
  #lastSubjectIndex = 0;
  #symbolsOut = new Uint32Array(512);
  // The ids of the last tuple's type, relation and subject type (the program's, fixed for the graph's life).
  #runType: string | undefined;
  #runRelation: string | undefined;
  #runTypeId = 0;
  #runRelationId = 0;
  #runSubjectType: string | undefined;
  #runSubjectTypeId = 0;

  /**
   * Stages a write (true; kept for `apply`'s callers' loops, which send deletes there). A write on a Leopard-indexed
   * relation is staged too: #flush runs its index update right after adding it, as `apply` does, so the update
   * reads the graph as it stood then (every earlier tuple added, no later one), and it is interned in batch order
   * like the rest. Sent one by one through `apply`, a group's members each paid a call into the kernel to intern
   * their strings and ran code apart from the load's (a first 10k-tuple batch spent ~30 ms there cold).
   */
  #stage(tuple: RelationTuple): boolean {
    const { program, typeIds, relationIds } = this.#compiled;
    // A tuple invalid under the model is ignored, as `apply` ignores it.
    if (!isValidTuple(program, tuple)) return true;
    // Consecutive tuples mostly share their type and relation: their ids are looked up once a run.
    if (tuple.objectType !== this.#runType || tuple.relation !== this.#runRelation) {
      this.#runType = tuple.objectType;
      this.#runRelation = tuple.relation;
      this.#runTypeId = typeIds.get(tuple.objectType)!;
      this.#runRelationId = relationIds.get(tuple.relation)!;
    }
    const relation = this.#runRelationId;
    const type = this.#runTypeId;
    const flagged = isFlagged(tuple) || this.#isSpiceDbArrowUserset(tuple);
    let at = STAGED_WORDS * this.#stagedCount;
    if (at === this.#staged.length) {
      const grown = new Int32Array(2 * this.#staged.length);
      grown.set(this.#staged);
      this.#staged = grown;
    }
    const staged = this.#staged;
    this.#stagedCount++;
    staged[at + 5] = type;
    staged[at++] = this.#addText(tuple.object, type);
    staged[at++] = relation;
    if (flagged) {
      // Only counted on its node: its subject is not interned.
      staged[at++] = -1;
      staged[at++] = NO_REL;
      staged[at] = 0;
      return true;
    }
    const s = tuple.subject;
    const subjectText = s.kind === "userset" ? `${s.type}:${s.id}` : tuple.user;
    if (subjectText !== this.#lastSubject) {
      if (s.type !== this.#runSubjectType) {
        this.#runSubjectType = s.type;
        this.#runSubjectTypeId = typeIds.get(s.type)!;
      }
      this.#lastSubject = subjectText;
      this.#lastSubjectIndex = this.#addText(subjectText, this.#runSubjectTypeId);
    }
    staged[at++] = this.#lastSubjectIndex;
    staged[at++] = s.kind === "userset" ? relationIds.get(s.relation)! : NO_REL;
    staged[at] =
      s.kind === "userset"
        ? SubjectForm.USERSET
        : s.kind === "wildcard"
          ? SubjectForm.WILDCARD
          : SubjectForm.OBJECT;
    return true;
  }

  /** Stages `text` (of type id `type`) for the next interning call; returns its index there. */
  #addText(text: string, type: number): number {
    const i = this.#textCount++;
    const texts = this.#texts;
    if (i < texts.length) texts[i] = text;
    else texts.push(text);
    if (i === this.#textTypes.length) {
      const grown = new Int32Array(2 * i);
      grown.set(this.#textTypes);
      this.#textTypes = grown;
    }
    this.#textTypes[i] = type;
    return i;
  }

  /** Interns the staged writes' strings in one call, then adds them in order (with `apply`'s walks). */
  #flush(): void {
    const count = this.#stagedCount;
    if (count === 0) return;
    // Deletes before these writes have their Leopard updates run first, as one `apply` a change runs them.
    this.#settle();
    const texts = this.#texts;
    if (texts.length > this.#textCount) texts.length = this.#textCount;
    if (this.#symbolsOut.length < texts.length) this.#symbolsOut = new Uint32Array(2 * texts.length);
    const symbols = this.#symbols.internMany(texts, this.#textTypes, this.#symbolsOut);
    const staged = this.#staged;
    this.#unstage();
    const e = this.#exports;
    const ptr = this.#ptr;
    // Facts and plans are stored only by evaluations, none of which runs here: the counts change only in a walk.
    let facts = e.graph_facts(ptr) > 0;
    let walk = facts || e.graph_plans(ptr) > 0;
    const leopard = this.#leopard;
    const indexed = this.#indexed;
    const relations = this.#relationCount;
    for (let i = 0, at = 0; i < count; i++, at += STAGED_WORDS) {
      const object = symbols[staged[at]!]!;
      const relation = staged[at + 1]!;
      const subjectIndex = staged[at + 2]!;
      const flagged = subjectIndex < 0 ? 1 : 0;
      const subject = flagged ? 0 : symbols[subjectIndex]!;
      const subjectRelation = staged[at + 3]!;
      const form = staged[at + 4]!;
      if (e.graph_add(ptr, object, relation, subject, subjectRelation, form, flagged) === 0) continue;
      if (walk) {
        this.#invalidateUpstream(object, relation, facts);
        facts = e.graph_facts(ptr) > 0;
        walk = facts || e.graph_plans(ptr) > 0;
      }
      // As `apply` does after adding a tuple of a Leopard-indexed relation.
      const type = staged[at + 5]!;
      if (leopard !== 0 && indexed[type * relations + relation] === 1) {
        e.leopard_on_add(ptr, leopard, type, relation, object, subject, subjectRelation, form, flagged);
      }
    }
  }

  #unstage(): void {
    this.#stagedCount = 0;
    this.#textCount = 0;
    this.#lastSubject = undefined;
  }

  /** Facts kept across checks, live or invalidated-not-yet-overwritten (see assembly/graph/facts.ts). */
  get facts(): number {
    return this.#exports.graph_facts(this.#ptr) >>> 0;
  }

  /** Object plans (and first-question markers) kept, live or invalidated-not-yet-overwritten. */
  get plans(): number {
    return this.#exports.graph_plans(this.#ptr) >>> 0;
  }

  /**
   * Forgets the facts and plans of every node whose answer or plan can depend on node (object, relation): the
   * node itself, the relations of the same object that include it (computed usersets, in any position: a plan
   * reads its object's subtracted relations too) or follow it as a tupleset, the objects whose tuple-to-userset
   * follows a tuple to it, and the nodes holding it as a userset subject; then theirs, and so on (the reverse of
   * the evaluation's edges). Nothing else is touched. A plan reads only its own object's nodes: with no fact
   * held (`crossObjects` false) the walk stays within the object.
   */
  #invalidateUpstream(object: number, relation: number, crossObjects: boolean): void {
    const e = this.#exports;
    const ptr = this.#ptr;
    let w = walkTablesOf.get(this.#compiled);
    if (w === undefined) {
      w = buildWalkTables(this.#compiled, (type, rel) => this.#users(type, rel));
      walkTablesOf.set(this.#compiled, w);
    }
    const { types, relations: stride, localStart, local, ttuStart, ttu } = w;
    // A typed node set and a flat queue: a walk over tens of thousands of nodes built a string and two arrays
    // per node before, and most of its time went to them and the GC.
    const seen = this.#seen;
    const queue = this.#queue;
    // Within a batch the set keeps the nodes earlier walks invalidated (see beginBatch): a walk stops there.
    if (!this.#batch || this.#batchCross !== crossObjects) seen.reset();
    this.#batchCross = crossObjects;
    queue.length = 0;
    if (!seen.add(object, relation)) return;
    queue.push(object, relation);
    let lastObject = -1;
    let type = 0;
    for (let head = 0; head < queue.length; head += 2) {
      const o = queue[head]!;
      const r = queue[head + 1]!;
      e.graph_invalidate(ptr, o, r);
      this.invalidated++;
      // The queue holds an object's relations together: one type lookup for them.
      if (o !== lastObject) {
        type = e.symbols_type(o) >>> 0;
        lastObject = o;
      }
      if (type >= types || r >= stride) continue;
      const node = type * stride + r;
      // The same object's relations that read the node, as a computed userset or as their tupleset.
      for (let i = localStart[node]!, end = localStart[node + 1]!; i < end; i++) {
        if (seen.add(o, local[i]!)) queue.push(o, local[i]!);
      }
      if (!crossObjects) continue;
      const ttuFrom = ttuStart[node]!;
      const ttuEnd = ttuStart[node + 1]!;
      if (ttuFrom < ttuEnd) {
        // Objects holding o as a plain subject under a tupleset some tuple-to-userset of theirs follows to o#r.
        const n = e.graph_subject_length(ptr, o, NO_REL) >>> 0;
        if (n > 0) {
          const at = (e.graph_subject_entries(ptr, o, NO_REL) >>> 0) >>> 2;
          const pairs = this.#kernel.views.u32.slice(at, at + 2 * n);
          for (let j = 0; j < 2 * n; j += 2) {
            const a = pairs[j]!;
            const ar = pairs[j + 1]!;
            const aType = e.symbols_type(a) >>> 0;
            for (let i = ttuFrom; i < ttuEnd; i += 3) {
              if (ttu[i] !== aType || ttu[i + 1] !== ar) continue;
              if (seen.add(a, ttu[i + 2]!)) queue.push(a, ttu[i + 2]!);
            }
          }
        }
      }
      // Nodes holding o#r as a userset subject.
      const n = e.graph_subject_length(ptr, o, r) >>> 0;
      if (n === 0) continue;
      const at = (e.graph_subject_entries(ptr, o, r) >>> 0) >>> 2;
      const u32 = this.#kernel.views.u32;
      for (let j = at, end = at + 2 * n; j < end; j += 2) {
        const a = u32[j]!;
        const ar = u32[j + 1]!;
        if (seen.add(a, ar)) queue.push(a, ar);
      }
    }
    // A very large walk's queue is not kept for the next one.
    if (queue.length > 1 << 17) this.#queue = [];
  }

  readonly #seen = new NodeSet();
  #batch = false;
  #batchCross = false;

  /**
   * Starts a batch of applies with no evaluation on this graph in between (the caller's synchronous loop): a node
   * an earlier walk of the batch invalidated is not walked again. Sound because such a node holds no live fact or
   * plan (none was stored since), and neither does anything above it: its walk invalidated all of that, and a
   * later add that puts a new node above it starts its own walk at that node, which covers everything above the
   * new node. Deletes only take nodes away from above. A write of many tuples under one group or folder then walks
   * what lies above them once, not once a tuple.
   */
  beginBatch(): void {
    this.#settle();
    this.#batch = true;
    this.#seen.reset();
  }

  /**
   * Ends the batch: the Leopard updates of its deletes run (#settle), and the next walk starts afresh (evaluations
   * may store facts and plans again).
   */
  endBatch(): void {
    this.#batch = false;
    this.#settle();
    this.#seen.reset();
  }
  #queue: number[] = [];

  #uses: Map<string, { computed: string[]; tupleset: string[] }> | undefined;

  /**
   * Whether a SpiceDB program's arrow may follow the tuple to its userset subject's object (the kernel's
   * tuple-to-userset follows plain objects only, as OpenFGA's): such a tuple is flagged too, so the checks that
   * read it go to the reference.
   */
  #isSpiceDbArrowUserset(t: RelationTuple): boolean {
    return (
      t.subject.kind === "userset" &&
      followsSpiceDb(this.#compiled.program) &&
      this.#users(t.objectType, t.relation).tupleset.length > 0
    );
  }

  /**
   * Relations of `type` whose rewrite names `relation`, in any position: as a computed userset, or as the
   * tupleset of a tuple-to-userset.
   */
  #users(type: string, relation: string): Uses {
    if (this.#uses === undefined) {
      const uses = new Map<string, { computed: string[]; tupleset: string[] }>();
      const add = (key: string, which: "computed" | "tupleset", owner: string): void => {
        let entry = uses.get(key);
        if (entry === undefined) {
          entry = { computed: [], tupleset: [] };
          uses.set(key, entry);
        }
        if (!entry[which].includes(owner)) entry[which].push(owner);
      };
      const visit = (typeName: string, owner: string, rw: Rewrite): void => {
        if (rw.kind === "computed") add(`${typeName}#${rw.relation}`, "computed", owner);
        else if (rw.kind === "ttu") add(`${typeName}#${rw.tupleset}`, "tupleset", owner);
        else if (rw.kind === "union" || rw.kind === "intersection") {
          for (const c of rw.children) visit(typeName, owner, c);
        } else if (rw.kind === "exclusion") {
          visit(typeName, owner, rw.base);
          visit(typeName, owner, rw.subtract);
        }
      };
      for (const [typeName, t] of this.#compiled.program.types) {
        for (const [name, r] of t.relations) visit(typeName, name, r.rewrite);
      }
      this.#uses = uses;
    }
    return this.#uses.get(`${type}#${relation}`) ?? NO_USES;
  }

  /**
   * How graph_add / graph_remove take `tuple`'s subject: flagged (only counted on its node, its subject not
   * interned), its form, its userset relation (NO_REL otherwise) and the text its symbol is interned under. Written
   * into one object reused from call to call (apply and #removeMany read it before the next call).
   */
  #kernelForm(tuple: RelationTuple): KernelForm {
    const out = this.#form;
    const flagged = isFlagged(tuple) || this.#isSpiceDbArrowUserset(tuple) ? 1 : 0;
    const s = tuple.subject;
    out.flagged = flagged;
    out.form = flagged
      ? 0
      : s.kind === "userset"
        ? SubjectForm.USERSET
        : s.kind === "wildcard"
          ? SubjectForm.WILDCARD
          : SubjectForm.OBJECT;
    out.subjectRelation =
      !flagged && s.kind === "userset" ? this.#compiled.relationIds.get(s.relation)! : NO_REL;
    out.subjectText = s.kind === "userset" ? `${s.type}:${s.id}` : tuple.user;
    return out;
  }
  readonly #form: KernelForm = { flagged: 0, form: 0, subjectRelation: 0, subjectText: "" };

  get disposed(): boolean {
    return this.#ptr === 0;
  }

  dispose(): void {
    this.#leopardQueueCount = 0;
    const ptr = this.#ptr;
    const leopard = this.#leopard;
    if (ptr === 0) return;
    this.#ptr = 0;
    this.#leopard = 0;
    // The graph is freed even when freeing its index traps: graph_free also forgets a batch left open on it by a
    // trap, which the next graph's batch would otherwise end (review finding).
    try {
      if (leopard !== 0) this.#exports.leopard_free(leopard);
    } finally {
      this.#exports.graph_free(ptr);
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
