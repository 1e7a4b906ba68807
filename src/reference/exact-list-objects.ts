/**
 * List objects by reverse expansion alone, where that is exact: in a union-only program the objects the expansion
 * reaches from the subject are exactly the ones check allows, so no candidate needs a check (the pipeline's
 * listing falls back to checking the reference's candidates otherwise: src/pipeline/listing.ts). Plain TypeScript
 * over a tuple snapshot; runtime-neutral.
 */

import { analyze, type TtuParent } from "../model/analysis.js";
import type { Program, Rewrite } from "../model/program.js";
import { isValidTuple } from "../model/tuple-rules.js";
import type { SubjectKey, TupleSnapshot } from "../tuples/types.js";

/**
 * Whether the reverse expansion's candidates (src/reference/list-objects.ts) are exactly the answer of list objects
 * in this program, so no candidate needs a check: every rewrite is a union of direct, computed and
 * tuple-to-userset parts (no intersection, exclusion or `.all` arrow, which can take away what expansion
 * reached), and the program follows OpenFGA's rules (SpiceDB arrows over userset subjects are left to
 * per-candidate checks). Conditions may be declared: a conditional tuple's outcome depends on the request's
 * context, so the expansions give up when they meet one (exactListObjects returns undefined; the kernel's
 * declines a graph holding any), and tuples without a condition do not depend on it.
 * Each reverse step then mirrors a forward step of check: a candidate was reached along a chain of tuples that
 * check can walk back. Callers still need the subject to be a plain object in the request's own tenant, no
 * contextual tuples, and tuples shallower than the depth limit (or check could say resolution_too_complex).
 */
export function reverseExpansionIsExact(program: Program): boolean {
  if (program.format === "spicedb") return false;
  const unionOnly = (rw: Rewrite): boolean =>
    rw.kind === "union"
      ? rw.children.every(unionOnly)
      : rw.kind !== "intersection" && rw.kind !== "exclusion" && !(rw.kind === "ttu" && rw.all === true);
  for (const type of program.types.values()) {
    for (const relation of type.relations.values()) if (!unionOnly(relation.rewrite)) return false;
  }
  return true;
}

/** Subject keys per readBySubject call (one query each on a SQL store). */
const READ_CHUNK = 4096;
const usersetKindsCache = new WeakMap<Program, ReadonlySet<string> | "any">();

/** Every `type#relation` some relation accepts as a userset subject ("any": a relation accepts every subject). */
export function usersetKinds(program: Program): ReadonlySet<string> | "any" {
  let kinds = usersetKindsCache.get(program);
  if (kinds === undefined) {
    const set = new Set<string>();
    kinds = set;
    for (const type of program.types.values()) {
      for (const relation of type.relations.values()) {
        if (relation.directSubjects === undefined) kinds = "any";
        else
          for (const s of relation.directSubjects)
            if (s.relation !== undefined) set.add(`${s.type}#${s.relation}`);
      }
    }
    usersetKindsCache.set(program, kinds);
  }
  return kinds;
}

/**
 * List objects by reverse expansion alone, for a program where reverseExpansionIsExact holds and a plain object
 * subject (`user:anne`) in its own tenant: from the subject (and its type's wildcard) up through the tuples
 * naming it, a level at a time, each level's reads as one batched readBySubject. Only reads that can lead
 * somewhere are made: a userset `object#relation` is looked up only if some relation accepts such usersets, and a
 * tuple-to-userset parent only through its tupleset's tuples. Returns undefined (the caller then checks each
 * candidate) when a tuple on the way crosses tenants or carries a condition. Tuples the current model's type
 * restrictions no longer allow are skipped, as check skips them. Sorted, as Engine.listObjects.
 */
export async function exactListObjects(
  program: Program,
  snapshot: TupleSnapshot,
  query: { readonly tenant: string; readonly type: string; readonly relation: string; readonly user: string },
  now: number,
): Promise<string[] | undefined> {
  const analysis = analyze(program);
  const kinds = usersetKinds(program);
  const { tenant } = query;
  /** What to do at a node of one type#relation, worked out once per listing; `seen` holds its object ids. */
  interface Step {
    readonly type: string;
    readonly relation: string;
    readonly target: boolean;
    readonly computed: readonly string[];
    readonly ttu: readonly TtuParent[];
    readonly userset: boolean;
    readonly seen: Set<string>;
  }
  const steps = new Map<string, Map<string, Step>>();
  const stepOf = (type: string, relation: string): Step => {
    let byRelation = steps.get(type);
    if (byRelation === undefined) {
      byRelation = new Map();
      steps.set(type, byRelation);
    }
    let step = byRelation.get(relation);
    if (step === undefined) {
      step = {
        type,
        relation,
        target: type === query.type && relation === query.relation,
        computed: analysis.computedParents(type, relation).map((p) => p.relation),
        ttu: analysis.ttuParents(type, relation),
        userset: kinds === "any" || kinds.has(`${type}#${relation}`),
        seen: new Set(),
      };
      byRelation.set(relation, step);
    }
    return step;
  };
  const found: string[] = [];
  let objects: string[] = [];
  let at: Step[] = [];
  const reach = (object: string, step: Step): void => {
    if (step.seen.has(object)) return;
    step.seen.add(object);
    objects.push(object);
    at.push(step);
  };
  // A read's tuples lead to their own object#relation (usersets, seeds), or to the object under a tuple-to-userset
  // parent's relation (`toRelation`).
  let keys: SubjectKey[] = [];
  let toRelation: (string | undefined)[] = [];
  const wildcard = `${query.user.slice(0, query.user.indexOf(":"))}:*`;
  for (const user of [query.user, wildcard]) {
    keys.push({ subjectTenant: tenant, user });
    toRelation.push(undefined);
  }
  while (keys.length > 0) {
    for (let i = 0; i < keys.length; i += READ_CHUNK) {
      const lists = await snapshot.readBySubject(keys.slice(i, i + READ_CHUNK));
      for (let k = 0; k < lists.length; k++) {
        const relation = toRelation[i + k];
        for (const t of lists[k]!) {
          if (t.expiresAt !== undefined && t.expiresAt <= now) continue;
          if (t.tenant !== tenant || t.subjectTenant !== tenant || t.condition !== undefined)
            return undefined;
          // A tuple written under an earlier model whose subject the relation no longer accepts counts for
          // nothing (as in check).
          if (!isValidTuple(program, t)) continue;
          reach(t.object, stepOf(t.objectType, relation ?? t.relation));
        }
      }
    }
    keys = [];
    toRelation = [];
    // Computed parents join the same level (no read); each node then asks for what points at it.
    for (let n = 0; n < objects.length; n++) {
      const object = objects[n]!;
      const step = at[n]!;
      if (step.target) found.push(object);
      for (const relation of step.computed) reach(object, stepOf(step.type, relation));
      for (const parent of step.ttu) {
        keys.push({
          subjectTenant: tenant,
          user: object,
          objectType: parent.type,
          relation: parent.tupleset,
        });
        toRelation.push(parent.relation);
      }
      if (step.userset) {
        keys.push({ subjectTenant: tenant, user: `${object}#${step.relation}` });
        toRelation.push(undefined);
      }
    }
    objects = [];
    at = [];
  }
  return found.sort();
}
