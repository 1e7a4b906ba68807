/**
 * Facts derived once per Program (cached in a WeakMap) that every query needs:
 * - which subject kinds can ever reach a relation (OpenFGA's PathExists): a check whose subject cannot reach the
 *   relation is false without reading a tuple, and list users skips filters that cannot match;
 * - the reverse edges list objects walks (which relations a relation feeds through computed usersets and
 *   tuple-to-usersets);
 * - which relations are tuplesets (their tuples must name plain objects).
 */
import type { Program, Rewrite } from "./program.js";

/**
 * A subject kind: `"user"` (objects of a type, and its wildcard), `"group#member"` (usersets of that relation).
 * A userset kind reaches a relation when the relation includes, through any chain of rewrites and tuples, the
 * userset's relation (so `group:eng#owner` may be in `doc#viewer` when `viewer: [group#member]` and
 * `member: owner`).
 */
export type SubjectKind = string;

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
 * Linear in the model: one node per relation, its own subject kinds, and its "includes" edges (computed usersets,
 * tuple-to-userset parents, the relations of userset subject types; subtracted branches excluded). `canReach` is
 * then graph reachability, answered per subject kind by one reverse walk from the relations that admit the kind
 * directly (cached), instead of a fixpoint over every relation's full kind set (quadratic in the types).
 */
function build(program: Program): ProgramAnalysis {
  const computedParents = new Map<string, ComputedParent[]>();
  const ttuParents = new Map<string, TtuParent[]>();
  const tuplesets = new Set<string>();

  // Types holding a relation of a given name: the parents a tupleset without subject restrictions may lead to.
  const typesWithRelation = new Map<string, string[]>();
  const ids = new Map<string, number>();
  const nodes: string[] = [];
  for (const [typeName, type] of program.types) {
    for (const name of type.relations.keys()) {
      ids.set(`${typeName}#${name}`, ids.size);
      nodes.push(`${typeName}#${name}`);
      push(typesWithRelation, name, typeName);
    }
  }
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

  const markTuplesets = (rewrite: Rewrite, typeName: string): void => {
    const stack = [rewrite];
    while (stack.length > 0) {
      const rw = stack.pop()!;
      if (rw.kind === "ttu") tuplesets.add(`${typeName}#${rw.tupleset}`);
      else if (rw.kind === "union" || rw.kind === "intersection") stack.push(...rw.children);
      else if (rw.kind === "exclusion") stack.push(rw.base, rw.subtract);
    }
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
      const visit = (rewrite: Rewrite): void => {
        switch (rewrite.kind) {
          case "direct":
            if (relation.directSubjects === undefined) {
              kinds.add(ANY);
              return;
            }
            for (const s of relation.directSubjects) {
              if (s.relation === undefined) {
                kinds.add(s.type);
              } else {
                kinds.add(`${s.type}#${s.relation}`);
                include(id, `${s.type}#${s.relation}`);
              }
            }
            return;
          case "computed":
            push(computedParents, `${typeName}#${rewrite.relation}`, {
              type: typeName,
              relation: relation.name,
            });
            include(id, `${typeName}#${rewrite.relation}`);
            return;
          case "ttu":
            tuplesets.add(`${typeName}#${rewrite.tupleset}`);
            for (const parentType of parentTypesOf(typeName, rewrite.tupleset, rewrite.computed)) {
              push(ttuParents, `${parentType}#${rewrite.computed}`, {
                type: typeName,
                relation: relation.name,
                tupleset: rewrite.tupleset,
              });
              include(id, `${parentType}#${rewrite.computed}`);
            }
            return;
          case "union":
          case "intersection":
            for (const child of rewrite.children) visit(child);
            return;
          case "exclusion":
            // A subtracted relation never grants (its tuplesets are still tuplesets).
            visit(rewrite.base);
            markTuplesets(rewrite.subtract, typeName);
            return;
          case "none":
            return;
        }
      };
      visit(relation.rewrite);
      for (const kind of kinds) push(kindIndex, kind, id);
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

  const none: readonly never[] = [];
  return {
    canReach(type, relation, kind) {
      const id = ids.get(`${type}#${relation}`);
      return id !== undefined && reached(kind)[id] === 1;
    },
    relationsReachedBy(kind) {
      const marks = reached(kind);
      return nodes.filter((_, id) => marks[id] === 1);
    },
    computedParents: (type, relation) => computedParents.get(`${type}#${relation}`) ?? none,
    ttuParents: (type, relation) => ttuParents.get(`${type}#${relation}`) ?? none,
    isTupleset: (type, relation) => tuplesets.has(`${type}#${relation}`),
  };
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
