/**
 * The one analysis of a model: facts derived once per Program (cached in a WeakMap) that the evaluators, the caches
 * and the change followers ask instead of walking the rewrites themselves. One pass over every relation's rewrite
 * records two kinds of edge:
 *
 * - Granting edges, where a subtracted branch is left out (it never grants): which subject kinds can ever reach a
 *   relation (OpenFGA's PathExists: a check whose subject cannot reach the relation is false without reading a
 *   tuple, and list users skips filters that cannot match), and the reverse edges list objects walks (which
 *   relations a relation feeds through computed usersets and tuple-to-usersets).
 * - Dependency edges, every rewrite position counted (a tuple under `but not`, or in one branch of an
 *   intersection, changes answers too): the tuple classes each relation reads and the classes it continues into
 *   (`edges`; src/changes/influence.ts derives which answers a change can affect from them), and the reverse index
 *   a cache walks from a changed tuple list back to the objects whose answers may differ (`dependents`).
 *
 * Also: which relations are tuplesets (their tuples must name plain objects), and which relations the
 * tuple-to-usersets over a tupleset continue into on its subjects (`tuplesetContinuations`).
 */
import type { Program, Rewrite } from "./program.js";

/**
 * A subject kind: `"user"` (objects of a type, and its wildcard), `"group#member"` (usersets of that relation).
 * A userset kind reaches a relation when the relation includes, through any chain of rewrites and tuples, the
 * userset's relation (so `group:eng#owner` may be in `doc#viewer` when `viewer: [group#member]` and
 * `member: owner`).
 */
export type SubjectKind = string;

/** `type#relation`. */
export type RelationClass = string;

/** Stands for "every class" in the `next` edge lists (no type is named with a NUL). */
export const ANY_CLASS: RelationClass = "\u0000any";

/** Relation R' of `type` includes relation `relation` of the same object (a computed userset). */
export interface ComputedParent {
  readonly type: string;
  readonly relation: string;
}

/** Relation `relation` of `type` follows tupleset `tupleset` to objects whose relation feeds it. */
export interface TtuParent {
  readonly type: string;
  readonly relation: string;
  readonly tupleset: string;
}

/** The direct dependency edges between relation classes, every rewrite position counted. */
export interface ClassEdges {
  /** Every relation class of the program, in declaration order. */
  readonly all: readonly RelationClass[];
  /** The tuple classes each class reads itself: its own tuples when it has a direct part, each tupleset it follows. */
  readonly reads: ReadonlyMap<RelationClass, ReadonlySet<RelationClass>>;
  /** The classes each class continues into; `ANY_CLASS` stands for every class (an unrestricted relation). */
  readonly next: ReadonlyMap<RelationClass, ReadonlySet<RelationClass>>;
  /** Classes whose tuples may carry a condition. */
  readonly conditional: ReadonlySet<RelationClass>;
}

/**
 * What a cache walks back from a changed tuple list `T:o#r` to the objects whose answers may differ, every rewrite
 * position counted.
 */
export interface DependentIndex {
  /** Relations of `type` whose evaluation on an object reads its tuple list `relation`: the relation itself, and
   * every relation with a tuple-to-userset over tupleset `relation`. */
  listReaders(type: string, relation: string): readonly string[];
  /** Relations of `type` that include `relation` of the same object (computed usersets). */
  computedParents(type: string, relation: string): readonly string[];
  /** Relations P#p with a tuple-to-userset into `relation` whose tupleset may hold `type` objects. */
  ttuParents(type: string, relation: string): readonly TtuParent[];
  /** Whether some relation may hold usersets `type#relation` (else no tuple names `object#relation`). */
  usersetSubject(type: string, relation: string): boolean;
  /** Whether an evaluation of `from` may continue into `to` (computed usersets, tuple-to-userset targets, userset
   * subjects; an unrestricted relation reaches everything). */
  reaches(from: RelationClass, to: RelationClass): boolean;
}

export interface ProgramAnalysis {
  /** Whether subjects of `kind` can ever be in `type#relation` (conservative: true when unsure). */
  canReach(type: string, relation: string, kind: SubjectKind): boolean;
  /** Every `type#relation` that subjects of `kind` can reach (what canReach answers true for). */
  relationsReachedBy(kind: SubjectKind): string[];
  /** Relations on the same type whose rewrite includes `type#relation` positively (computed usersets). */
  computedParents(type: string, relation: string): readonly ComputedParent[];
  /** Relations that reach `type#relation` through a tuple-to-userset whose tupleset may hold `type` objects. */
  ttuParents(type: string, relation: string): readonly TtuParent[];
  /** Whether `type#relation` is used as a tupleset by some tuple-to-userset of `type`. */
  isTupleset(type: string, relation: string): boolean;
  /** The dependency edges between classes (every rewrite position counted). */
  readonly edges: ClassEdges;
  /** The classes an evaluation of `cls` may reach, `cls` itself included (remembered, bounded). */
  reachableFrom(cls: RelationClass): ReadonlySet<RelationClass>;
  /** The reverse index from a changed tuple list to the relations whose answers depend on it. */
  readonly dependents: DependentIndex;
  /**
   * Per tupleset class, the relations its tuple-to-usersets continue into on the subjects ("*": one may follow a
   * subject of any type); "all" when a rewrite is of a kind not known here (then any tupleset may follow anything).
   */
  readonly tuplesetContinuations: ReadonlyMap<RelationClass, ReadonlySet<string>> | "all";
}

const ANY = "*any*";
/** Subject kinds whose reachable relations are kept (oldest dropped first). */
const MAX_CACHED_KINDS = 256;
const cache = new WeakMap<Program, ProgramAnalysis>();

export function analyze(program: Program): ProgramAnalysis {
  let analysis = cache.get(program);
  if (analysis === undefined) {
    analysis = build(program);
    cache.set(program, analysis);
  }
  return analysis;
}

/** The kind of a subject string's parsed form. */
export function subjectKind(subject: { kind: string; type: string; relation?: string }): SubjectKind {
  return subject.kind === "userset" ? `${subject.type}#${subject.relation}` : subject.type;
}

/**
 * Linear in the model: one node per relation, its own subject kinds, and its edges. `canReach` is then graph
 * reachability, answered per subject kind by one reverse walk from the relations that admit the kind directly
 * (cached), instead of a fixpoint over every relation's full kind set (quadratic in the types). Forward closures
 * (`reachableFrom`) are walked when first asked for and remembered, because their total size can be quadratic in
 * the model (a chain of n relations reaches n-1, n-2, ... classes).
 */
function build(program: Program): ProgramAnalysis {
  // Granting edges.
  const computedParents = new Map<RelationClass, ComputedParent[]>();
  const ttuParents = new Map<RelationClass, TtuParent[]>();
  // Dependency edges, every position.
  const tuplesets = new Set<RelationClass>();
  const reads = new Map<RelationClass, Set<RelationClass>>();
  const conditional = new Set<RelationClass>();
  const listReaders = new Map<RelationClass, Set<string>>();
  const dependentComputed = new Map<RelationClass, Set<string>>();
  const dependentTtu = new Map<RelationClass, TtuParent[]>();
  const usersets = new Set<RelationClass>();
  const continuations = new Map<RelationClass, Set<string>>();
  let unrestricted = false;
  let unknownRewrite = false;

  // Types holding a relation of a given name: the parents a tupleset without subject restrictions may lead to.
  const typesWithRelation = new Map<string, string[]>();
  const ids = new Map<RelationClass, number>();
  const all: RelationClass[] = [];
  for (const [typeName, type] of program.types) {
    for (const name of type.relations.keys()) {
      ids.set(`${typeName}#${name}`, ids.size);
      all.push(`${typeName}#${name}`);
      push(typesWithRelation, name, typeName);
    }
  }
  const next = new Map<RelationClass, Set<RelationClass>>([[ANY_CLASS, new Set(all)]]);
  /** The types a tuple-to-userset over `tupleset` of `typeName` may reach that have relation `computed`. */
  const parentTypesOf = (typeName: string, tupleset: string, computed: string): string[] => {
    const def = program.types.get(typeName)?.relations.get(tupleset);
    if (def?.directSubjects === undefined) return typesWithRelation.get(computed) ?? [];
    const out = new Set<string>();
    for (const s of def.directSubjects) {
      if (program.types.get(s.type)?.relations.has(computed)) out.add(s.type);
    }
    return [...out];
  };

  const reverse: number[][] = Array.from({ length: ids.size }, () => []);
  const kindIndex = new Map<SubjectKind, number[]>();
  const include = (from: number, node: string): void => {
    const to = ids.get(node);
    if (to !== undefined) reverse[to]!.push(from);
  };
  for (const [typeName, type] of program.types) {
    for (const relation of type.relations.values()) {
      const node = `${typeName}#${relation.name}`;
      const id = ids.get(node)!;
      // A relation's own usersets are in it (`group:eng#member` is in group:eng#member).
      const kinds = new Set<SubjectKind>([node]);
      const ownReads = new Set<RelationClass>();
      const ownNext = new Set<RelationClass>();
      add(listReaders, node, relation.name);
      if (relation.directSubjects === undefined) unrestricted = true;
      else
        for (const s of relation.directSubjects)
          if (s.relation !== undefined) usersets.add(`${s.type}#${s.relation}`);
      /** `granting`: not beneath a subtracted branch. */
      const visit = (rewrite: Rewrite, granting: boolean): void => {
        switch (rewrite.kind) {
          case "direct":
            ownReads.add(node);
            if (relation.directSubjects === undefined) {
              // Unrestricted (Nexus `{}`): any subject, any userset among them.
              ownNext.add(ANY_CLASS);
              if (granting) kinds.add(ANY);
              return;
            }
            for (const s of relation.directSubjects) {
              if (s.relation === undefined) {
                if (granting) kinds.add(s.type);
              } else {
                ownNext.add(`${s.type}#${s.relation}`);
                if (granting) {
                  kinds.add(`${s.type}#${s.relation}`);
                  include(id, `${s.type}#${s.relation}`);
                }
              }
            }
            return;
          case "computed": {
            const child = `${typeName}#${rewrite.relation}`;
            ownNext.add(child);
            add(dependentComputed, child, relation.name);
            if (granting) {
              push(computedParents, child, { type: typeName, relation: relation.name });
              include(id, child);
            }
            return;
          }
          case "ttu": {
            const tupleset = `${typeName}#${rewrite.tupleset}`;
            tuplesets.add(tupleset);
            ownReads.add(tupleset);
            add(listReaders, tupleset, relation.name);
            // A tuple-to-userset with more to it than tupleset and computed (SpiceDB's `all`, or a variant added
            // later) may depend on subjects of any type: "*" marks the tupleset never bound to its subject.
            const plain = Object.keys(rewrite).every(
              (k) => k === "kind" || k === "tupleset" || k === "computed",
            );
            add(continuations, tupleset, plain ? rewrite.computed : "*");
            const parent: TtuParent = { type: typeName, relation: relation.name, tupleset: rewrite.tupleset };
            for (const parentType of parentTypesOf(typeName, rewrite.tupleset, rewrite.computed)) {
              const target = `${parentType}#${rewrite.computed}`;
              ownNext.add(target);
              push(dependentTtu, target, parent);
              if (granting) {
                push(ttuParents, target, parent);
                include(id, target);
              }
            }
            return;
          }
          case "union":
          case "intersection":
            for (const child of rewrite.children) visit(child, granting);
            return;
          case "exclusion":
            // A subtracted relation never grants, but its tuples still change answers.
            visit(rewrite.base, granting);
            visit(rewrite.subtract, false);
            return;
          case "none":
            return;
          default:
            // A kind added later: assume its tuplesets may follow any subject.
            unknownRewrite = true;
            return;
        }
      };
      visit(relation.rewrite, true);
      for (const kind of kinds) push(kindIndex, kind, id);
      reads.set(node, ownReads);
      next.set(node, ownNext);
      // An unrestricted relation (directSubjects undefined) may hold tuples with any condition.
      const mayHoldConditions =
        relation.directSubjects === undefined
          ? program.conditions.size > 0
          : relation.directSubjects.some((s) => s.condition !== undefined);
      if (mayHoldConditions) conditional.add(node);
    }
  }

  // Per subject kind: the relations it can reach, by one walk backwards from those that admit it directly.
  const reachedBy = new Map<SubjectKind, Uint8Array>();
  const reached = (kind: SubjectKind): Uint8Array => {
    let marks = reachedBy.get(kind);
    if (marks !== undefined) return marks;
    marks = new Uint8Array(ids.size);
    const queue = [...(kindIndex.get(kind) ?? []), ...(kindIndex.get(ANY) ?? [])];
    for (const id of queue) marks[id] = 1;
    for (let i = 0; i < queue.length; i++) {
      for (const from of reverse[queue[i]!]!) {
        if (marks[from] === 0) {
          marks[from] = 1;
          queue.push(from);
        }
      }
    }
    // Bounded: a kind costs one bit array over the relations; requests may name many kinds.
    if (reachedBy.size >= MAX_CACHED_KINDS) reachedBy.delete(reachedBy.keys().next().value!);
    reachedBy.set(kind, marks);
    return marks;
  };

  // Forward closures over `next` (an explicit stack: a chain of thousands of classes must not overflow the call
  // stack).
  const closures = new BoundedMemo<RelationClass, ReadonlySet<RelationClass>>();
  const reachableFrom = (start: RelationClass): ReadonlySet<RelationClass> =>
    closures.get(start, () => {
      const seen = new Set<RelationClass>([start]);
      const stack = [start];
      while (stack.length > 0) {
        for (const c of next.get(stack.pop()!) ?? []) {
          if (!seen.has(c)) {
            seen.add(c);
            stack.push(c);
          }
        }
      }
      return seen;
    });

  const none: readonly never[] = [];
  const listOf = (map: Map<RelationClass, Set<string>>) => new Map([...map].map(([k, v]) => [k, [...v]]));
  const readerLists = listOf(listReaders);
  const computedLists = listOf(dependentComputed);
  const dependents: DependentIndex = {
    listReaders: (type, relation) => readerLists.get(`${type}#${relation}`) ?? [relation],
    computedParents: (type, relation) => computedLists.get(`${type}#${relation}`) ?? none,
    ttuParents: (type, relation) => dependentTtu.get(`${type}#${relation}`) ?? none,
    usersetSubject: (type, relation) => unrestricted || usersets.has(`${type}#${relation}`),
    reaches: (from, to) => reachableFrom(from).has(to),
  };
  return {
    canReach(type, relation, kind) {
      const id = ids.get(`${type}#${relation}`);
      return id !== undefined && reached(kind)[id] === 1;
    },
    relationsReachedBy(kind) {
      const marks = reached(kind);
      return all.filter((_, id) => marks[id] === 1);
    },
    computedParents: (type, relation) => computedParents.get(`${type}#${relation}`) ?? none,
    ttuParents: (type, relation) => ttuParents.get(`${type}#${relation}`) ?? none,
    isTupleset: (type, relation) => tuplesets.has(`${type}#${relation}`),
    edges: { all, reads, next, conditional },
    reachableFrom,
    dependents,
    tuplesetContinuations: unknownRewrite ? "all" : continuations,
  };
}

/** A memo that forgets everything once it holds `limit` entries (for values that can be large and are cheap to redo). */
export class BoundedMemo<K, V> {
  readonly #entries = new Map<K, V>();
  constructor(readonly limit = 4096) {}
  get(key: K, compute: () => V): V {
    let value = this.#entries.get(key);
    if (value === undefined) {
      if (this.#entries.size >= this.limit) this.#entries.clear();
      value = compute();
      this.#entries.set(key, value);
    }
    return value;
  }
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function add<T>(map: Map<string, Set<T>>, key: string, value: T): void {
  const set = map.get(key);
  if (set === undefined) map.set(key, new Set([value]));
  else set.add(value);
}
