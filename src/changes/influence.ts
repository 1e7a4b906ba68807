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
import { ANY_CLASS, analyze, BoundedMemo, type ClassEdges, type RelationClass } from "../model/analysis.js";
import type { Program } from "../model/program.js";
import type { RelationTuple } from "../tuples/tuple.js";

export { ANY_CLASS, type RelationClass } from "../model/analysis.js";

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
   * below the depth limit can never be "resolution_too_complex" by depth. It can still go over the per-check step
   * budget (MAX_RESOLUTION_STEPS, 250,000 rewrites: src/reference/evaluation.ts) on a very wide graph, which the
   * layers that rely on this bound do not model: there they may deny where the reference says too complex.
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

/** The direct edges of the class graph (exported for the tests, which check the closures against them). */
export type InfluenceEdges = ClassEdges;

export function influenceEdges(program: Program): InfluenceEdges {
  return analyze(program).edges;
}

/**
 * The edges come from the model's one analysis (src/model/analysis.ts); what is linear in them is done up front
 * (longest paths, the condition rule); the closures (`readsOf`, `affectedBy`) are walked when first asked for and
 * remembered, because their total size can be quadratic in the model (a chain of n relations reads n-1, n-2, ...
 * classes) and a cache asks for few of them.
 */
function build(program: Program): InfluenceMap {
  const analysis = analyze(program);
  const { all, reads, next, conditional } = analysis.edges;
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

  const closures = new BoundedMemo<RelationClass, ReadonlySet<RelationClass>>();
  const readsOf = (cls: RelationClass): ReadonlySet<RelationClass> =>
    closures.get(cls, () => {
      const out = new Set<RelationClass>();
      if (!reads.has(cls)) return out;
      for (const c of analysis.reachableFrom(cls)) for (const t of reads.get(c) ?? []) out.add(t);
      return out;
    });
  const affected = new BoundedMemo<RelationClass, readonly RelationClass[]>();
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

  const tuplesets = analysis.tuplesetContinuations;
  const subjectBound = (type: string, relation: string, subjectType: string): boolean => {
    if (tuplesets === "all") return false;
    const continued = tuplesets.get(`${type}#${relation}`);
    if (continued === undefined) return true;
    if (continued.has("*")) return false;
    const relations = program.types.get(subjectType)?.relations;
    if (relations === undefined) return true;
    for (const computed of continued) if (relations.has(computed)) return false;
    return true;
  };
  // Caches ask affectedBy and subjectBound for every change they follow, and the tuples of a write mostly share
  // one class: the last answer is kept, so a run of them builds no `type#relation` key and looks nothing up.
  let boundType: string | undefined;
  let boundRelation: string | undefined;
  let boundSubjectType: string | undefined;
  let bound = false;
  return {
    affectedBy: lastOf((type, relation) => affectedBy(`${type}#${relation}`)),
    readsOf: lastOf((type, relation) => readsOf(`${type}#${relation}`)),
    mayEvaluateConditions: (type, relation) => conditions.has(`${type}#${relation}`),
    maxHops: (type, relation) => hops.get(`${type}#${relation}`) ?? 0,
    subjectBound: (type, relation, subjectType) => {
      if (type !== boundType || relation !== boundRelation || subjectType !== boundSubjectType) {
        bound = subjectBound(type, relation, subjectType);
        boundType = type;
        boundRelation = relation;
        boundSubjectType = subjectType;
      }
      return bound;
    },
  };
}

/** `f` with its last answer kept for the same (type, relation): f is pure for a given Program. */
function lastOf<T>(f: (type: string, relation: string) => T): (type: string, relation: string) => T {
  let lastType: string | undefined;
  let lastRelation: string | undefined;
  let last: T | undefined;
  return (type, relation) => {
    if (type !== lastType || relation !== lastRelation) {
      last = f(type, relation);
      lastType = type;
      lastRelation = relation;
    }
    return last as T;
  };
}

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
