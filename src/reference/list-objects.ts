/**
 * Reference list objects: every object of a type on which the subject has the relation, i.e. exactly the objects
 * for which check is true.
 *
 * Candidates come from walking the model backwards from the subject (OpenFGA's reverse expansion): tuples naming
 * the subject (or its type's wildcard), then relations that include a reached relation (computed usersets), tuples
 * naming a reached userset, and tuple-to-usersets whose tupleset points at a reached object. Only positive
 * positions are followed (intersection operands, exclusion bases). A tuple whose condition is false is not
 * followed; one whose condition cannot be evaluated (a missing parameter) makes the request fail, as in OpenFGA (in a
 * SpiceDB schema a caveat that cannot be decided is followed, and the check of the candidate decides). SpiceDB's
 * arrows also follow tupleset tuples naming a userset of a reached object.
 * Every candidate is then checked, so the answer never holds an object check would deny.
 */
import { formatSubject } from "../tuples/tuple.js";
import { type CheckQuery, check } from "./check.js";
import type { Evaluation, SubjectRef } from "./evaluation.js";

export interface ListObjectsQuery extends SubjectRef {
  readonly tenant: string;
  readonly type: string;
  readonly relation: string;
}

const SEP = "\u0000";

export async function listObjects(ev: Evaluation, query: ListObjectsQuery): Promise<string[]> {
  const candidates = await candidateObjects(ev, query);
  const result: string[] = [];
  for (const object of candidates) {
    const q: CheckQuery = { ...query, object };
    if (await check(ev, q)) result.push(object);
  }
  return result.sort();
}

/** The relations `rel` of `objectType` whose usersets (`object#rel`) the tuplesets of `parents` admit. */
function arrowUsersetRelations(
  ev: Evaluation,
  objectType: string,
  parents: readonly { type: string; tupleset: string }[],
): Set<string> {
  const relations = new Set<string>();
  for (const p of parents) {
    const tupleset = ev.program.types.get(p.type)?.relations.get(p.tupleset);
    for (const s of tupleset?.directSubjects ?? []) {
      if (s.type === objectType && s.relation !== undefined) relations.add(s.relation);
    }
  }
  return relations;
}

/** Objects of the queried type and tenant that may hold the relation (a superset of the answer). */
export async function candidateObjects(ev: Evaluation, query: ListObjectsQuery): Promise<Set<string>> {
  const { reader, analysis } = ev;
  const visited = new Set<string>();
  const queue: [tenant: string, object: string, relation: string][] = [];
  const candidates = new Set<string>();
  let firstError: Error | undefined;

  const reach = (tenant: string, object: string, relation: string): void => {
    const key = tenant + SEP + object + SEP + relation;
    if (visited.has(key)) return;
    visited.add(key);
    queue.push([tenant, object, relation]);
  };
  const passes = (t: Parameters<Evaluation["conditionOutcome"]>[0]): boolean => {
    const outcome = ev.conditionOutcome(t);
    if (outcome === true) return true;
    if (outcome !== false) firstError ??= outcome;
    return false;
  };

  const subject = query.subject;
  if (subject.kind === "userset") {
    reach(query.subjectTenant, `${subject.type}:${subject.id}`, subject.relation);
  }
  const seeds = [formatSubject(subject)];
  if (subject.kind === "object") seeds.push(`${subject.type}:*`);
  for (const user of seeds) {
    for (const t of await reader.bySubject(query.subjectTenant, user)) {
      if (passes(t)) reach(t.tenant, t.object, t.relation);
    }
  }

  for (let head = 0; head < queue.length; head++) {
    const [tenant, object, relation] = queue[head]!;
    const objectType = object.slice(0, object.indexOf(":"));
    if (tenant === query.tenant && objectType === query.type && relation === query.relation) {
      candidates.add(object);
    }
    for (const parent of analysis.computedParents(objectType, relation))
      reach(tenant, object, parent.relation);
    const ttuParents = analysis.ttuParents(objectType, relation);
    if (ttuParents.length > 0) {
      const pointing = [...(await reader.bySubject(tenant, object))];
      // SpiceDB's arrows also follow a tupleset tuple whose subject is a userset of the object (`object#rel`).
      if (ev.spicedb) {
        for (const rel of arrowUsersetRelations(ev, objectType, ttuParents)) {
          pointing.push(...(await reader.bySubject(tenant, `${object}#${rel}`)));
        }
      }
      for (const parent of ttuParents) {
        for (const t of pointing) {
          if (t.objectType === parent.type && t.relation === parent.tupleset && passes(t)) {
            reach(t.tenant, t.object, parent.relation);
          }
        }
      }
    }
    for (const t of await reader.bySubject(tenant, `${object}#${relation}`)) {
      if (passes(t)) reach(t.tenant, t.object, t.relation);
    }
  }
  if (firstError !== undefined) throw firstError;
  return candidates;
}
