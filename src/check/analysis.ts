/**
 * Facts derived once per Program (cached in a WeakMap) that every query needs:
 * - which subject kinds can ever reach a relation (OpenFGA's PathExists): a check whose subject cannot reach the
 *   relation is false without reading a tuple, and list users skips filters that cannot match;
 * - the reverse edges list objects walks (which relations a relation feeds through computed usersets and
 *   tuple-to-usersets);
 * - which relations are tuplesets (their tuples must name plain objects).
 */
import type { Program, RelationDef, Rewrite } from "../model/program.js";

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
  /** Relations on the same type whose rewrite includes `type#relation` positively (computed usersets). */
  computedParents(type: string, relation: string): readonly ComputedParent[];
  /** Relations that reach `type#relation` through a tuple-to-userset whose tupleset may hold `type` objects. */
  ttuParents(type: string, relation: string): readonly TtuParent[];
  /** Whether `type#relation` is used as a tupleset by some tuple-to-userset of `type`. */
  isTupleset(type: string, relation: string): boolean;
}

const ANY = "*any*";
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

function build(program: Program): ProgramAnalysis {
  const reach = new Map<string, Set<SubjectKind>>();
  const computedParents = new Map<string, ComputedParent[]>();
  const ttuParents = new Map<string, TtuParent[]>();
  const tuplesets = new Set<string>();
  const relations: [string, RelationDef][] = [];
  for (const [typeName, type] of program.types) {
    for (const relation of type.relations.values()) {
      relations.push([typeName, relation]);
      // A relation's own usersets are in it (`group:eng#member` is in group:eng#member), and so are the
      // usersets of every relation it includes, which the fixpoint below adds.
      reach.set(`${typeName}#${relation.name}`, new Set([`${typeName}#${relation.name}`]));
    }
  }

  // Reverse edges (positive positions only: a subtracted relation never grants).
  const addEdges = (typeName: string, relation: RelationDef, rewrite: Rewrite): void => {
    switch (rewrite.kind) {
      case "computed":
        push(computedParents, `${typeName}#${rewrite.relation}`, { type: typeName, relation: relation.name });
        return;
      case "ttu": {
        tuplesets.add(`${typeName}#${rewrite.tupleset}`);
        const tupleset = program.types.get(typeName)?.relations.get(rewrite.tupleset);
        const parentTypes =
          tupleset?.directSubjects === undefined
            ? [...program.types.keys()]
            : [...new Set(tupleset.directSubjects.map((s) => s.type))];
        for (const parentType of parentTypes) {
          if (program.types.get(parentType)?.relations.has(rewrite.computed)) {
            push(ttuParents, `${parentType}#${rewrite.computed}`, {
              type: typeName,
              relation: relation.name,
              tupleset: rewrite.tupleset,
            });
          }
        }
        return;
      }
      case "union":
      case "intersection":
        for (const child of rewrite.children) addEdges(typeName, relation, child);
        return;
      case "exclusion":
        addEdges(typeName, relation, rewrite.base);
        return;
      default:
        return;
    }
  };
  for (const [typeName, relation] of relations) addEdges(typeName, relation, relation.rewrite);

  // Reachable subject kinds: a least fixpoint over the rewrites.
  const reachOf = (
    typeName: string,
    relation: RelationDef,
    rewrite: Rewrite,
    out: Set<SubjectKind>,
  ): void => {
    switch (rewrite.kind) {
      case "direct":
        if (relation.directSubjects === undefined) {
          out.add(ANY);
          return;
        }
        for (const s of relation.directSubjects) {
          if (s.relation === undefined) {
            out.add(s.type);
          } else {
            const kind = `${s.type}#${s.relation}`;
            out.add(kind);
            for (const k of reach.get(kind) ?? []) out.add(k);
          }
        }
        return;
      case "computed":
        for (const k of reach.get(`${typeName}#${rewrite.relation}`) ?? []) out.add(k);
        return;
      case "ttu": {
        const tupleset = program.types.get(typeName)?.relations.get(rewrite.tupleset);
        const parentTypes =
          tupleset?.directSubjects === undefined
            ? [...program.types.keys()]
            : tupleset.directSubjects.map((s) => s.type);
        for (const parentType of parentTypes) {
          for (const k of reach.get(`${parentType}#${rewrite.computed}`) ?? []) out.add(k);
        }
        return;
      }
      case "union":
      case "intersection":
        for (const child of rewrite.children) reachOf(typeName, relation, child, out);
        return;
      case "exclusion":
        reachOf(typeName, relation, rewrite.base, out);
        return;
      case "none":
        return;
    }
  };
  let changed = true;
  while (changed) {
    changed = false;
    for (const [typeName, relation] of relations) {
      const set = reach.get(`${typeName}#${relation.name}`)!;
      const before = set.size;
      reachOf(typeName, relation, relation.rewrite, set);
      if (set.size !== before) changed = true;
    }
  }

  const none: readonly never[] = [];
  return {
    canReach(type, relation, kind) {
      const set = reach.get(`${type}#${relation}`);
      if (set === undefined) return false;
      return set.has(ANY) || set.has(kind);
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
