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

const cache = new WeakMap<Program, InfluenceMap>();

export function influenceOf(program: Program): InfluenceMap {
  let map = cache.get(program);
  if (map === undefined) {
    map = build(program);
    cache.set(program, map);
  }
  return map;
}

function build(program: Program): InfluenceMap {
  const all: RelationClass[] = [];
  for (const [typeName, type] of program.types) {
    for (const relation of type.relations.keys()) all.push(`${typeName}#${relation}`);
  }
  const typesWith = (relation: string): string[] =>
    [...program.types.values()].filter((t) => t.relations.has(relation)).map((t) => t.name);

  // Direct edges: the tuple classes a class reads itself, and the classes it continues into.
  const reads = new Map<RelationClass, Set<RelationClass>>();
  const next = new Map<RelationClass, Set<RelationClass>>();
  const conditional = new Set<RelationClass>();
  for (const [typeName, type] of program.types) {
    for (const def of type.relations.values()) {
      const self = `${typeName}#${def.name}`;
      const r = new Set<RelationClass>();
      const n = new Set<RelationClass>();
      edges(program, typeName, def, def.rewrite, r, n, all, typesWith);
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

  // Closure per class (a DFS each: programs have at most a few hundred relations).
  const closure = new Map<RelationClass, Set<RelationClass>>();
  const conditions = new Set<RelationClass>();
  for (const start of all) {
    const seen = new Set<RelationClass>([start]);
    const stack = [start];
    const out = new Set<RelationClass>();
    let mayCondition = false;
    while (stack.length > 0) {
      const cls = stack.pop()!;
      for (const t of reads.get(cls) ?? []) {
        out.add(t);
        // Conditions live on tuples; a class reading a conditional relation's tuples may evaluate them.
        if (conditional.has(t)) mayCondition = true;
      }
      for (const c of next.get(cls) ?? []) {
        if (!seen.has(c)) {
          seen.add(c);
          stack.push(c);
        }
      }
    }
    closure.set(start, out);
    if (mayCondition) conditions.add(start);
  }
  const affected = new Map<RelationClass, RelationClass[]>();
  for (const [cls, readSet] of closure) {
    for (const t of readSet) {
      const list = affected.get(t);
      if (list === undefined) affected.set(t, [cls]);
      else list.push(cls);
    }
  }
  // Longest path from each class (Infinity through a cycle): a DFS with an on-stack mark.
  const hops = new Map<RelationClass, number>();
  const onStack = new Set<RelationClass>();
  const longest = (cls: RelationClass): number => {
    const known = hops.get(cls);
    if (known !== undefined) return known;
    if (onStack.has(cls)) return Number.POSITIVE_INFINITY;
    onStack.add(cls);
    let most = 0;
    for (const c of next.get(cls) ?? []) most = Math.max(most, 1 + longest(c));
    onStack.delete(cls);
    hops.set(cls, most);
    return most;
  };
  for (const cls of all) longest(cls);
  const tuplesets = tuplesetClasses(program);
  const none: readonly RelationClass[] = [];
  const empty: ReadonlySet<RelationClass> = new Set();
  return {
    affectedBy: (type, relation) => affected.get(`${type}#${relation}`) ?? none,
    readsOf: (type, relation) => closure.get(`${type}#${relation}`) ?? empty,
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
  all: readonly RelationClass[],
  typesWith: (relation: string) => string[],
): void {
  switch (rewrite.kind) {
    case "direct":
      reads.add(`${typeName}#${def.name}`);
      if (def.directSubjects === undefined) {
        // Unrestricted (Nexus `{}`): any userset subject may appear.
        for (const c of all) next.add(c);
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
      for (const child of rewrite.children) edges(program, typeName, def, child, reads, next, all, typesWith);
      return;
    case "exclusion":
      edges(program, typeName, def, rewrite.base, reads, next, all, typesWith);
      edges(program, typeName, def, rewrite.subtract, reads, next, all, typesWith);
      return;
    case "none":
      return;
  }
}
