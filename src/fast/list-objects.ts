/**
 * List objects with the fast path's checks: the reference's candidates (its reverse expansion from the subject,
 * a superset of the answer), each checked by the kernel over the compiled graph at the evaluation's revision;
 * a candidate the kernel routes is checked by the reference. Same answer as src/check/list-objects.ts, which checks
 * every candidate with the reference instead. Runtime-neutral.
 */
import { check } from "../check/check.js";
import type { Evaluation } from "../check/evaluation.js";
import { candidateObjects, type ListObjectsQuery } from "../check/list-objects.js";
import { NexusError } from "../errors.js";
import type { Program, Rewrite } from "../model/program.js";
import type { FastEvaluator } from "./evaluator.js";

export async function listObjectsFast(
  fast: FastEvaluator,
  ev: Evaluation,
  query: ListObjectsQuery,
): Promise<string[]> {
  const candidates = await candidateObjects(ev, query);
  const revision = ev.reader.revision;
  const sameTenant = query.subjectTenant === query.tenant;
  if (sameTenant) await fast.graphAt(query.tenant, revision);
  const result: string[] = [];
  for (const object of candidates) {
    const q = { ...query, object };
    // Taken per candidate: a reference check below awaits, and the graph may move on meanwhile.
    const graph = sameTenant ? fast.graphIfCurrent(query.tenant, revision) : undefined;
    let allowed = graph === undefined ? undefined : fast.checkOn(graph, q);
    if (allowed instanceof NexusError) throw allowed;
    if (allowed === undefined) allowed = await check(ev, q);
    if (allowed) result.push(object);
  }
  return result.sort();
}

/**
 * Whether the reverse expansion's candidates (src/check/list-objects.ts) are exactly the answer of list objects
 * in this program, so no candidate needs a check: every rewrite is a union of direct, computed and
 * tuple-to-userset parts (no intersection, exclusion or `.all` arrow, which can take away what expansion
 * reached), no condition exists (a conditional tuple's outcome depends on the request's context), and the
 * program follows OpenFGA's rules (SpiceDB arrows over userset subjects are left to per-candidate checks).
 * Each reverse step then mirrors a forward step of check: a candidate was reached along a chain of tuples that
 * check can walk back. Callers still need the subject to be a plain object in the request's own tenant, no
 * contextual tuples, and tuples shallower than the depth limit (or check could say resolution_too_complex).
 */
export function reverseExpansionIsExact(program: Program): boolean {
  if (program.format === "spicedb" || program.conditions.size > 0) return false;
  const unionOnly = (rw: Rewrite): boolean =>
    rw.kind === "union"
      ? rw.children.every(unionOnly)
      : rw.kind !== "intersection" && rw.kind !== "exclusion" && !(rw.kind === "ttu" && rw.all === true);
  for (const type of program.types.values()) {
    for (const relation of type.relations.values()) if (!unionOnly(relation.rewrite)) return false;
  }
  return true;
}
