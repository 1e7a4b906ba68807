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
