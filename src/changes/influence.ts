/**
 * Which check results a tuple can change, derived from the Program: a check of `type#relation` reads tuples of a
 * fixed set of (type, relation) classes, whatever the ids: its own direct tuples, the tupleset of each
 * tuple-to-userset, and (transitively) whatever the relations it reaches through computed usersets, userset
 * subjects (`group#member`) and tuple-to-userset parents read. A subtracted relation counts too: a new tuple under
 * `but not` can turn a grant into a denial. A written or deleted tuple on `T#R` can therefore change exactly the
 * results of the classes that read `T#R`, and a cache invalidates only those.
 *
 * Tenants are ignored on purpose: evaluation that follows a cross-tenant grant continues in the subject's tenant,
 * so a tuple in one tenant may change answers in another.
 */
import type { Program, RelationDef, Rewrite } from "../model/program.js";
import type { RelationTuple } from "../tuples/tuple.js";

/** `type#relation`. */
export type RelationClass = string;

export interface InfluenceMap {
  /** The check classes whose results a tuple on `type#relation` can change (empty for an unknown class). */
  affectedBy(type: string, relation: string): readonly RelationClass[];
  /** The tuple classes a check of `type#relation` may read. */
  readsOf(type: string, relation: string): ReadonlySet<RelationClass>;
  /** Whether a check of `type#relation` may evaluate a tuple condition (and so fail on a missing parameter). */
  mayEvaluateConditions(type: string, relation: string): boolean;
  /**
   * The most class-to-class steps a check of `type#relation` can take (computed usersets, tuple-to-userset and
   * userset hops each counted as one), or Infinity when a cycle of classes is reachable: a check whose bound is
   * below the depth limit can never be "resolution_too_complex".
   */
  maxHops(type: string, relation: string): number;
  /**
   * Whether a tuple on `type#relation` whose subject is a plain object of `subjectType` (`user:anne`: no
   * relation, no wildcard) can change only the answers of checks whose subject is that same string: no relation
   * reading the class as a tupleset can follow such a subject on (its type lacks every relation those
   * tuple-to-usersets continue into). Such a tuple is matched against the check's subject and nothing else, so a
   * cache may invalidate per subject.
   */
  subjectBound(type: string, relation: string, subjectType: string): boolean;
}

/**
 * Which cached check answers a written or deleted tuple withdraws (the rule every result cache shares): those of
 * each class in `classes`, for every subject — or, when `subject` is set (a plain-object subject no tuple-to-userset
 * can follow on: InfluenceMap.subjectBound), only for checks whose subject is that string.
 */
export function changeReach(
  influence: InfluenceMap,
  t: RelationTuple,
): { readonly classes: readonly RelationClass[]; readonly subject: string | undefined } {
  const subjectBound =
    t.subject.kind === "object" && influence.subjectBound(t.objectType, t.relation, t.subject.type);
  return {
    classes: influence.affectedBy(t.objectType, t.relation),
    subject: subjectBound ? t.user : undefined,
  };
}

const cache = new WeakMap<Program, InfluenceMap>();

export function influenceOf(program: Program): InfluenceMap {
  let map = cache.get(program);
  if (map === undefined) {
    map = build(program);
    cache.set(program, map);
  }
  return map;
}

/**
 * Everything is linear in the model up front (direct edges, longest paths, the condition rule); the closures
 * (`readsOf`, `affectedBy`) are walked when first asked for and remembered, because their total size can be
 * quadratic in the model (a chain of n relations reads n-1, n-2, ... classes) and a cache asks for few of them.
 */
/** The direct edges of the class graph (exported for the tests, which check the closures against them). */
export interface InfluenceEdges {
  /** Every relation class of the program. */
  readonly all: readonly RelationClass[];
  /** The tuple classes each class reads itself. */
  readonly reads: ReadonlyMap<RelationClass, ReadonlySet<RelationClass>>;
  /** The classes each class continues into; `ANY_CLASS` stands for every class (an unrestricted relation). */
  readonly next: ReadonlyMap<RelationClass, ReadonlySet<RelationClass>>;
  /** Classes whose tuples may carry a condition. */
  readonly conditional: ReadonlySet<RelationClass>;
}

export function influenceEdges(program: Program): InfluenceEdges {
  const all: RelationClass[] = [];
  const typesWithRelation = new Map<string, string[]>();
  for (const [typeName, type] of program.types) {
    for (const relation of type.relations.keys()) {
      all.push(`${typeName}#${relation}`);
      const types = typesWithRelation.get(relation);
      if (types === undefined) typesWithRelation.set(relation, [typeName]);
      else types.push(typeName);
    }
  }
  const typesWith = (relation: string): readonly string[] => typesWithRelation.get(relation) ?? [];

  // Direct edges: the tuple classes a class reads itself, and the classes it continues into. An unrestricted
  // relation (Nexus `{}`) continues into every class: one edge to ANY_CLASS stands for those n edges.
  const reads = new Map<RelationClass, Set<RelationClass>>();
  const next = new Map<RelationClass, Set<RelationClass>>([[ANY_CLASS, new Set(all)]]);
  const conditional = new Set<RelationClass>();
  for (const [typeName, type] of program.types) {
    for (const def of type.relations.values()) {
      const self = `${typeName}#${def.name}`;
      const r = new Set<RelationClass>();
      const n = new Set<RelationClass>();
      edges(program, typeName, def, def.rewrite, r, n, typesWith);
      reads.set(self, r);
      next.set(self, n);
      // An unrestricted relation (directSubjects undefined) may hold tuples with any condition.
      const mayHoldConditions =
        def.directSubjects === undefined
          ? program.conditions.size > 0
          : def.directSubjects.some((s) => s.condition !== undefined);
      if (mayHoldConditions) conditional.add(self);
    }
  }
  return { all, reads, next, conditional };
}

function build(program: Program): InfluenceMap {
  const { all, reads, next, conditional } = influenceEdges(program);
  const previous = new Map<RelationClass, RelationClass[]>(); // next, reversed
  const readers = new Map<RelationClass, RelationClass[]>(); // reads, reversed
  const addTo = (map: Map<RelationClass, RelationClass[]>, key: RelationClass, value: RelationClass) => {
    const list = map.get(key);
    if (list === undefined) map.set(key, [value]);
    else list.push(value);
  };
  for (const [cls, targets] of next) for (const t of targets) addTo(previous, t, cls);
  for (const [cls, tuples] of reads) for (const t of tuples) addTo(readers, t, cls);

  // A class may evaluate a condition when something it reaches reads a conditional relation's tuples: marked
  // backwards from those readers, each class once.
  const conditions = new Set<RelationClass>();
  const marking: RelationClass[] = [];
  for (const t of conditional) {
    for (const reader of readers.get(t) ?? []) {
      if (!conditions.has(reader)) {
        conditions.add(reader);
        marking.push(reader);
      }
    }
  }
  while (marking.length > 0) {
    for (const before of previous.get(marking.pop()!) ?? []) {
      if (!conditions.has(before)) {
        conditions.add(before);
        marking.push(before);
      }
    }
  }

  const hops = longestPaths([ANY_CLASS, ...all], next);

  // Closures on demand (an explicit stack each: a chain of thousands of classes must not overflow the call stack).
  const reachable = (start: RelationClass, step: ReadonlyMap<RelationClass, Iterable<RelationClass>>) => {
    const seen = new Set<RelationClass>([start]);
    const stack = [start];
    while (stack.length > 0) {
      for (const c of step.get(stack.pop()!) ?? []) {
        if (!seen.has(c)) {
          seen.add(c);
          stack.push(c);
        }
      }
    }
    return seen;
  };
  const closures = new BoundedMemo<ReadonlySet<RelationClass>>();
  const readsOf = (cls: RelationClass): ReadonlySet<RelationClass> =>
    closures.get(cls, () => {
      const out = new Set<RelationClass>();
      if (!reads.has(cls)) return out;
      for (const c of reachable(cls, next)) for (const t of reads.get(c) ?? []) out.add(t);
      return out;
    });
  const affected = new BoundedMemo<readonly RelationClass[]>();
  const affectedBy = (t: RelationClass): readonly RelationClass[] =>
    affected.get(t, () => {
      const out = new Set<RelationClass>();
      const stack: RelationClass[] = [];
      for (const reader of readers.get(t) ?? []) {
        if (!out.has(reader)) {
          out.add(reader);
          stack.push(reader);
        }
      }
      while (stack.length > 0) {
        for (const before of previous.get(stack.pop()!) ?? []) {
          if (!out.has(before)) {
            out.add(before);
            stack.push(before);
          }
        }
      }
      out.delete(ANY_CLASS);
      return [...out];
    });

  const tuplesets = tuplesetClasses(program);
  return {
    affectedBy: (type, relation) => affectedBy(`${type}#${relation}`),
    readsOf: (type, relation) => readsOf(`${type}#${relation}`),
    mayEvaluateConditions: (type, relation) => conditions.has(`${type}#${relation}`),
    maxHops: (type, relation) => hops.get(`${type}#${relation}`) ?? 0,
    subjectBound: (type, relation, subjectType) => {
      if (tuplesets === "all") return false;
      const continued = tuplesets.get(`${type}#${relation}`);
      if (continued === undefined) return true;
      if (continued.has("*")) return false;
      const relations = program.types.get(subjectType)?.relations;
      if (relations === undefined) return true;
      for (const computed of continued) if (relations.has(computed)) return false;
      return true;
    },
  };
}

/** Stands for "every class" in the edge lists (no type is named with a NUL). */
export const ANY_CLASS: RelationClass = "\u0000any";

/**
 * The most class-to-class steps from each class (Infinity where a cycle can be reached, the step into ANY_CLASS not
 * counted as a hop of its own): strongly connected components by an iterative Tarjan walk, then one pass over
 * them in reverse topological order (Tarjan emits a component after every component it reaches).
 */
function longestPaths(
  nodes: readonly RelationClass[],
  next: ReadonlyMap<RelationClass, ReadonlySet<RelationClass>>,
): Map<RelationClass, number> {
  const index = new Map<RelationClass, number>();
  const low = new Map<RelationClass, number>();
  const onStack = new Set<RelationClass>();
  const stack: RelationClass[] = [];
  const hops = new Map<RelationClass, number>();
  const weight = (from: RelationClass) => (from === ANY_CLASS ? 0 : 1);
  let counter = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { node: RelationClass; edges: Iterator<RelationClass> }[] = [];
    const enter = (node: RelationClass) => {
      index.set(node, counter);
      low.set(node, counter);
      counter++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, edges: (next.get(node) ?? new Set<RelationClass>()).values() });
    };
    enter(root);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const step = frame.edges.next();
      if (!step.done) {
        const to = step.value;
        if (!index.has(to)) enter(to);
        else if (onStack.has(to)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) !== index.get(frame.node)) continue;
      // frame.node roots a component: pop it; every component it reaches already has its hops.
      const component: RelationClass[] = [];
      let member: RelationClass;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== frame.node);
      const members = new Set(component);
      const cyclic = component.length > 1 || (next.get(frame.node)?.has(frame.node) ?? false);
      let most = 0;
      for (const from of component) {
        for (const to of next.get(from) ?? []) {
          if (!members.has(to)) most = Math.max(most, weight(from) + hops.get(to)!);
        }
      }
      // ANY_CLASS alone (no relation reaches it through a cycle) adds no hop; a cycle makes every member unbounded.
      const value = cyclic ? Number.POSITIVE_INFINITY : most;
      for (const m of component) hops.set(m, value);
    }
  }
  return hops;
}

/** A memo that forgets everything once it holds `limit` entries (the closures can be large; they are cheap to redo). */
class BoundedMemo<V> {
  readonly #entries = new Map<RelationClass, V>();
  constructor(readonly limit = 4096) {}
  get(key: RelationClass, compute: () => V): V {
    let value = this.#entries.get(key);
    if (value === undefined) {
      if (this.#entries.size >= this.limit) this.#entries.clear();
      value = compute();
      this.#entries.set(key, value);
    }
    return value;
  }
}

/**
 * The classes some relation reads as a tupleset, each with the relations its tuple-to-usersets continue into on
 * the subjects; "all" when a rewrite is of a kind not known here.
 */
function tuplesetClasses(program: Program): Map<RelationClass, Set<string>> | "all" {
  const out = new Map<RelationClass, Set<string>>();
  const walk = (typeName: string, rewrite: Rewrite): boolean => {
    switch (rewrite.kind) {
      case "direct":
      case "computed":
      case "none":
        return true;
      case "ttu":
        {
          const cls = `${typeName}#${rewrite.tupleset}`;
          // A tuple-to-userset with more to it than tupleset and computed (a variant added later, such as one
          // needing every parent) may depend on subjects of any type: "*" marks the class never subject-bound.
          const plain = Object.keys(rewrite).every(
            (k) => k === "kind" || k === "tupleset" || k === "computed",
          );
          const relation = plain ? rewrite.computed : "*";
          const continued = out.get(cls);
          if (continued === undefined) out.set(cls, new Set([relation]));
          else continued.add(relation);
        }
        return true;
      case "union":
      case "intersection":
        return rewrite.children.every((child) => walk(typeName, child));
      case "exclusion":
        return walk(typeName, rewrite.base) && walk(typeName, rewrite.subtract);
      default:
        return false; // a kind added later: assume it may follow any subject
    }
  };
  for (const [typeName, type] of program.types) {
    for (const def of type.relations.values()) if (!walk(typeName, def.rewrite)) return "all";
  }
  return out;
}

function edges(
  program: Program,
  typeName: string,
  def: RelationDef,
  rewrite: Rewrite,
  reads: Set<RelationClass>,
  next: Set<RelationClass>,
  typesWith: (relation: string) => readonly string[],
): void {
  switch (rewrite.kind) {
    case "direct":
      reads.add(`${typeName}#${def.name}`);
      if (def.directSubjects === undefined) {
        // Unrestricted (Nexus `{}`): any userset subject may appear.
        next.add(ANY_CLASS);
      } else {
        for (const s of def.directSubjects) if (s.relation !== undefined) next.add(`${s.type}#${s.relation}`);
      }
      return;
    case "computed":
      next.add(`${typeName}#${rewrite.relation}`);
      return;
    case "ttu": {
      reads.add(`${typeName}#${rewrite.tupleset}`);
      const tupleset = program.types.get(typeName)?.relations.get(rewrite.tupleset);
      const parents =
        tupleset?.directSubjects === undefined
          ? typesWith(rewrite.computed)
          : [...new Set(tupleset.directSubjects.map((s) => s.type))];
      for (const parent of parents) {
        if (program.types.get(parent)?.relations.has(rewrite.computed))
          next.add(`${parent}#${rewrite.computed}`);
      }
      return;
    }
    case "union":
    case "intersection":
      for (const child of rewrite.children) edges(program, typeName, def, child, reads, next, typesWith);
      return;
    case "exclusion":
      edges(program, typeName, def, rewrite.base, reads, next, typesWith);
      edges(program, typeName, def, rewrite.subtract, reads, next, typesWith);
      return;
    case "none":
      return;
  }
}
