/**
 * The Tiger layer's reverse index of the model: the edges `affectedObjects` walks backwards from a changed tuple
 * list to the objects whose answers it can change. Derived once per Program (cached in a WeakMap).
 *
 * Unlike the list-objects edges in src/model/analysis.ts, every position counts here, subtracted and intersected
 * branches included: a tuple under `but not` changes answers too.
 */
import type { Program, RelationDef, Rewrite } from "../../model/program.js";

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
export interface ReverseIndex {
  listReaders(type: string, relation: string): readonly string[];
  computedParents(type: string, relation: string): readonly string[];
  ttuParents(type: string, relation: string): readonly { type: string; relation: string; tupleset: string }[];
  /** Whether some relation may hold usersets `T#r` (else no tuple names `object#r`). */
  usersetSubject(type: string, relation: string): boolean;
  reaches(from: Class, to: Class): boolean;
}

const reverseIndexes = new WeakMap<Program, ReverseIndex>();

/** The reverse index of `program` (built on first use, then shared by every layer and caller). */
export function reverseIndexOf(program: Program): ReverseIndex {
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
