/**
 * Which objects a tuple change can affect: the objects whose answer for one relation may differ now that some
 * tuple lists changed, found by walking the model's dependency edges (src/model/analysis.ts `dependents`)
 * backwards from each changed list over the tuples at the new revision. The Tiger layer re-checks only these
 * objects to bring a bitmap forward; src/views uses `objectsAffectedBy` to maintain its per-object answers the
 * same way.
 */
import { analyze, type DependentIndex } from "../../model/analysis.js";
import type { TupleReader } from "../../reference/reader.js";
import type { RelationTuple } from "../../tuples/tuple.js";
import { SEP } from "./bitmap.js";

/** A changed tuple list: the tuples of one (tenant, object, relation). */
export type ChangedList = Pick<RelationTuple, "tenant" | "object" | "objectType" | "relation">;

/** The relation whose objects are wanted: `relation` on objects of `objectType` in `tenant`. */
export type AffectedTarget = {
  readonly tenant: string;
  readonly objectType: string;
  readonly relation: string;
};

/**
 * The objects of `target`'s (tenant, type) whose `target.relation` may answer differently now that `lists`
 * changed, or undefined when there are more than `budget.objects` (or the walk visits more than `budget.nodes`).
 *
 * Why it is enough: a check is a function of the tuple lists it reads. If an object's answer changed, its
 * evaluation before the change read a changed list L, along a path of evaluation nodes joined by tuples; take the
 * first changed list on that path: the tuples before it are unchanged, so at the new revision the same path leads
 * from the object to a node reading that list. Walking back from every node that reads a changed list, over every
 * edge that could join two nodes (computed usersets, tuple-to-usersets through `bySubject(parent)`, userset
 * subjects through `bySubject(object#relation)`), therefore reaches every such object. Only nodes the target's
 * relation can continue into are followed.
 */
export async function affectedObjects(
  reader: TupleReader,
  index: DependentIndex,
  lists: readonly ChangedList[],
  target: AffectedTarget,
  budget: { objects: number; nodes: number },
): Promise<string[] | undefined> {
  const targetClass = `${target.objectType}#${target.relation}`;
  const seen = new Set<string>();
  const queue: [tenant: string, object: string, type: string, relation: string][] = [];
  const found = new Set<string>();
  const reach = (tenant: string, object: string, type: string, relation: string): void => {
    if (!index.reaches(targetClass, `${type}#${relation}`)) return;
    const key = tenant + SEP + object + SEP + relation;
    if (seen.has(key)) return;
    seen.add(key);
    queue.push([tenant, object, type, relation]);
  };
  for (const l of lists) {
    for (const r of index.listReaders(l.objectType, l.relation)) reach(l.tenant, l.object, l.objectType, r);
  }
  for (let head = 0; head < queue.length; head++) {
    if (head >= budget.nodes) return undefined;
    const [tenant, object, type, relation] = queue[head]!;
    if (tenant === target.tenant && type === target.objectType && relation === target.relation) {
      found.add(object);
      if (found.size > budget.objects) return undefined;
    }
    for (const parent of index.computedParents(type, relation)) reach(tenant, object, type, parent);
    const ttuParents = index.ttuParents(type, relation);
    if (ttuParents.length > 0) {
      for (const t of await reader.bySubject(tenant, object)) {
        for (const p of ttuParents) {
          if (t.objectType === p.type && t.relation === p.tupleset)
            reach(t.tenant, t.object, p.type, p.relation);
        }
      }
    }
    if (index.usersetSubject(type, relation)) {
      for (const t of await reader.bySubject(tenant, `${object}#${relation}`)) {
        for (const r of index.listReaders(t.objectType, t.relation))
          reach(t.tenant, t.object, t.objectType, r);
      }
    }
  }
  return [...found];
}

/**
 * `affectedObjects` for other maintainers of per-object answers (src/views): the objects of `target`'s (tenant,
 * type) whose `target.relation` may answer differently, for any subject, now that `lists` changed; `reader` reads
 * the new revision. No budget: every such object is returned.
 */
export function objectsAffectedBy(
  reader: TupleReader,
  lists: readonly ChangedList[],
  target: AffectedTarget,
): Promise<string[]> {
  const unbounded = { objects: Number.POSITIVE_INFINITY, nodes: Number.POSITIVE_INFINITY };
  const index = analyze(reader.program).dependents;
  return affectedObjects(reader, index, lists, target, unbounded) as Promise<string[]>;
}
