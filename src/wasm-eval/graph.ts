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

/** Whether the kernel leaves a tuple to the reference evaluator. */
export function isFlagged(t: RelationTuple): boolean {
  return t.condition !== undefined || t.expiresAt !== undefined || t.subjectTenant !== t.tenant;
}

interface Uses {
  readonly computed: readonly string[];
  readonly tupleset: readonly string[];
}
const NO_USES: Uses = { computed: [], tupleset: [] };

export class TupleGraph implements Disposable {
  readonly tenant: string;
  /** The store revision the graph reflects. */
  revision: Revision;
  readonly #exports: EvaluateKernelExports;
  readonly #compiled: CompiledProgram;
  readonly #symbols: Symbols;
  /** `type#relation` of the Leopard-indexed relations. */
  readonly #indexed: Set<string>;
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
    const ridNames = new Map([...compiled.rids].map(([name, rid]) => [rid, name]));
    this.#indexed = new Set(compiled.leopardRelations.map((l) => ridNames.get(l.rid)!));
    if (this.#indexed.size > 0) {
      this.#leopard = this.#exports.leopard_new(seed ^ 0x68e31da4, seed) >>> 0;
      this.#exports.graph_set_leopard(this.#ptr, this.#leopard);
    }
  }

  /** Address of the graph in the kernel's memory. */
  get pointer(): number {
    return this.#ptr;
  }

  /** Address of the graph's Leopard index (0 when the model has no indexed relation). */
  get leopardPointer(): number {
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
    return this.#leopard === 0 ? 0 : this.#exports.leopard_memory_bytes(this.#leopard) >>> 0;
  }

  /** Marks every indexed relation for a rebuild at its next question: before a bulk load. */
  deferLeopard(): void {
    for (const l of this.#compiled.leopardRelations) {
      this.#exports.leopard_mark_dirty(this.#leopard, l.type, l.relation);
    }
  }

  /** Applies a write or delete of `tuple` (of this graph's tenant). Tuples invalid under the model are ignored. */
  apply(tuple: RelationTuple, op: "write" | "delete"): void {
    const { program, typeIds, relationIds } = this.#compiled;
    if (!isValidTuple(program, tuple)) return;
    const e = this.#exports;
    const relation = relationIds.get(tuple.relation)!;
    const type = typeIds.get(tuple.objectType)!;
    const flagged = isFlagged(tuple) || this.#isSpiceDbArrowUserset(tuple) ? 1 : 0;
    const s = tuple.subject;
    // A flagged tuple is only counted on its node: its subject is not interned.
    const form = flagged
      ? 0
      : s.kind === "userset"
        ? SubjectForm.USERSET
        : s.kind === "wildcard"
          ? SubjectForm.WILDCARD
          : SubjectForm.OBJECT;
    const subjectRelation = !flagged && s.kind === "userset" ? relationIds.get(s.relation)! : NO_REL;
    const subjectText = s.kind === "userset" ? `${s.type}:${s.id}` : tuple.user;
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
    if (!this.#indexed.has(`${tuple.objectType}#${tuple.relation}`)) return;
    const hook = op === "write" ? e.leopard_on_add : e.leopard_on_remove;
    hook(this.#ptr, this.#leopard, type, relation, object, subject, subjectRelation, form, flagged);
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
    const { typeIds, relationIds } = this.#compiled;
    const analysis: ProgramAnalysis = analyze(this.#compiled.program);
    const typeNames = [...typeIds.keys()];
    const relationNames = [...relationIds.keys()];
    const seen = new Set<string>();
    const queue: [number, number][] = [];
    const reach = (o: number, r: number): void => {
      const key = `${o},${r}`;
      if (seen.has(key)) return;
      seen.add(key);
      queue.push([o, r]);
    };
    reach(object, relation);
    for (let head = 0; head < queue.length; head++) {
      const [o, r] = queue[head]!;
      e.graph_invalidate(this.#ptr, o, r);
      this.invalidated++;
      const typeName = typeNames[e.symbols_type(o) >>> 0];
      const relationName = relationNames[r];
      if (typeName === undefined || relationName === undefined) continue;
      for (const rel of this.#users(typeName, relationName).computed) reach(o, relationIds.get(rel)!);
      // The node is a tupleset: the same object's tuple-to-usersets that follow it.
      for (const rel of this.#users(typeName, relationName).tupleset) reach(o, relationIds.get(rel)!);
      if (!crossObjects) continue;
      const ttu = analysis.ttuParents(typeName, relationName);
      if (ttu.length > 0) {
        for (const [a, ar] of this.#pointing(o, NO_REL)) {
          const aType = typeNames[e.symbols_type(a) >>> 0];
          for (const p of ttu) {
            if (p.type === aType && relationIds.get(p.tupleset) === ar)
              reach(a, relationIds.get(p.relation)!);
          }
        }
      }
      for (const [a, ar] of this.#pointing(o, r)) reach(a, ar);
    }
  }

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

  /** The (object, relation) pairs holding subject (subject, subjectRelation), from the reverse adjacency. */
  #pointing(subject: number, subjectRelation: number): [number, number][] {
    const e = this.#exports;
    const n = e.graph_subject_length(this.#ptr, subject, subjectRelation) >>> 0;
    if (n === 0) return [];
    const at = (e.graph_subject_entries(this.#ptr, subject, subjectRelation) >>> 0) >>> 2;
    const u32 = this.#kernel.views.u32;
    const out: [number, number][] = [];
    for (let i = 0; i < n; i++) out.push([u32[at + 2 * i]!, u32[at + 2 * i + 1]!]);
    return out;
  }

  get disposed(): boolean {
    return this.#ptr === 0;
  }

  dispose(): void {
    if (this.#ptr === 0) return;
    if (this.#leopard !== 0) this.#exports.leopard_free(this.#leopard);
    this.#leopard = 0;
    this.#exports.graph_free(this.#ptr);
    this.#ptr = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
