/**
 * The reference check (the oracle every fast path is tested against), following OpenFGA's local checker:
 *
 * - `direct`: the exact tuple, the subject type's wildcard (`user:*`, not for usersets), and every userset tuple
 *   (`group:eng#member`), each userset checked one level deeper. Conditions filter tuples; an evaluation error
 *   (e.g. a missing parameter) counts only when no tuple passed.
 * - computed usersets stay at the same depth; tuple-to-userset and userset hops go one level deeper; at the depth
 *   limit the answer is "resolution_too_complex".
 * - Outcomes are TRUE, FALSE, CYCLE (false because the path came back to a node it is resolving) or an error:
 *   union: TRUE if any child is, else an error if any, else CYCLE if any, else FALSE;
 *   intersection: FALSE if any child is, else CYCLE if any, else an error if any, else TRUE;
 *   exclusion: FALSE if the base is FALSE or the subtraction TRUE, else CYCLE if either is, else an error if
 *   either is, else TRUE. So a cycle is false, but a cycle under `but not` does not turn into a grant.
 * - `object#relation` checked for the userset `object#relation` itself is TRUE; a subject kind that cannot reach
 *   the relation at all is FALSE without reading (OpenFGA's PathExists).
 *
 * Within one check, TRUE and cycle-free FALSE results are memoized per node, with the depth they were computed
 * at (a result holds for any shallower depth); CYCLE and errors never are, so a node that was false only because
 * of the path it was reached on is evaluated again on other paths.
 */
import { NexusError } from "../errors.js";
import type { RelationDef, Rewrite } from "../model/program.js";
import { type SubjectKind, subjectKind } from "./analysis.js";
import type { Evaluation, SubjectRef } from "./evaluation.js";

export const FALSE = 0;
export const TRUE = 1;
export const CYCLE = 2;
export type Outcome = typeof FALSE | typeof TRUE | typeof CYCLE | NexusError;

export interface CheckQuery extends SubjectRef {
  readonly tenant: string;
  readonly object: string;
  readonly relation: string;
}

interface Path {
  readonly key: string;
  readonly next: Path | undefined;
}

interface Run {
  readonly ev: Evaluation;
  readonly query: CheckQuery;
  readonly kind: SubjectKind;
  readonly wildcard: string | undefined;
  readonly memo: Map<string, { outcome: typeof TRUE | typeof FALSE; depth: number }>;
}

interface Frame {
  readonly tenant: string;
  readonly object: string;
  readonly relation: string;
  readonly depth: number;
  readonly path: Path;
}

const SEP = "\u0000";

/** Checks one query; resolves true/false or rejects with the evaluation's NexusError. */
export async function check(ev: Evaluation, query: CheckQuery): Promise<boolean> {
  const outcome = await checkOutcome(ev, query);
  if (outcome instanceof NexusError) throw outcome;
  return outcome === TRUE;
}

/** Checks one query and returns the raw outcome (TRUE, FALSE, CYCLE or an error). */
export function checkOutcome(ev: Evaluation, query: CheckQuery): Promise<Outcome> {
  const run: Run = {
    ev,
    query,
    kind: subjectKind(query.subject),
    wildcard: query.subject.kind === "userset" ? undefined : `${query.subject.type}:*`,
    memo: new Map(),
  };
  return resolve(run, query.tenant, query.object, query.relation, 0, undefined);
}

async function resolve(
  run: Run,
  tenant: string,
  object: string,
  relation: string,
  depth: number,
  path: Path | undefined,
): Promise<Outcome> {
  const { ev, query } = run;
  if (depth >= ev.maxDepth) return ev.tooComplex(`${query.object}#${query.relation} for ${query.user}`);
  const key = tenant + SEP + object + SEP + relation;
  for (let p = path; p !== undefined; p = p.next) if (p.key === key) return CYCLE;
  const subject = query.subject;
  if (
    subject.kind === "userset" &&
    subject.relation === relation &&
    query.subjectTenant === tenant &&
    object === `${subject.type}:${subject.id}`
  ) {
    return TRUE;
  }
  const memo = run.memo.get(key);
  if (memo !== undefined && depth <= memo.depth) return memo.outcome;
  const objectType = object.slice(0, object.indexOf(":"));
  const rel = ev.program.types.get(objectType)?.relations.get(relation);
  if (rel === undefined || !ev.analysis.canReach(objectType, relation, run.kind)) return FALSE;
  const outcome = await rewrite(run, rel, rel.rewrite, {
    tenant,
    object,
    relation,
    depth,
    path: { key, next: path },
  });
  if (outcome === TRUE || outcome === FALSE) {
    if (memo === undefined || memo.depth < depth) run.memo.set(key, { outcome, depth });
  }
  return outcome;
}

async function rewrite(run: Run, rel: RelationDef, rw: Rewrite, frame: Frame): Promise<Outcome> {
  switch (rw.kind) {
    case "direct":
      return direct(run, frame);
    case "computed":
      return resolve(run, frame.tenant, frame.object, rw.relation, frame.depth, frame.path);
    case "ttu":
      return tupleToUserset(run, frame, rw.tupleset, rw.computed);
    case "union": {
      const acc = new UnionAccumulator();
      for (const child of rw.children) {
        if (acc.add(await rewrite(run, rel, child, frame))) return TRUE;
      }
      return acc.result();
    }
    case "intersection": {
      let cycle = false;
      let error: NexusError | undefined;
      for (const child of rw.children) {
        const outcome = await rewrite(run, rel, child, frame);
        if (outcome === FALSE) return FALSE;
        if (outcome === CYCLE) cycle = true;
        else if (outcome instanceof NexusError) error ??= outcome;
      }
      return cycle ? CYCLE : (error ?? TRUE);
    }
    case "exclusion": {
      const base = await rewrite(run, rel, rw.base, frame);
      if (base === FALSE) return FALSE;
      const subtract = await rewrite(run, rel, rw.subtract, frame);
      if (subtract === TRUE) return FALSE;
      if (base === CYCLE || subtract === CYCLE) return CYCLE;
      if (base instanceof NexusError) return base;
      if (subtract instanceof NexusError) return subtract;
      return TRUE;
    }
    case "none":
      return FALSE;
  }
}

async function direct(run: Run, frame: Frame): Promise<Outcome> {
  const { ev, query } = run;
  const tuples = await ev.reader.byObject(frame.tenant, frame.object, frame.relation);
  const exact = [];
  const wildcard = [];
  const usersets = [];
  for (const t of tuples) {
    if (t.subjectTenant === query.subjectTenant) {
      if (t.user === query.user) exact.push(t);
      else if (t.user === run.wildcard) wildcard.push(t);
    }
    if (t.subject.kind === "userset") usersets.push(t);
  }
  const acc = new UnionAccumulator();
  for (const group of [exact, wildcard]) {
    if (group.length === 0) continue;
    const { passed, error } = ev.filterByCondition(group);
    if (passed.length > 0) return TRUE;
    if (error !== undefined) acc.add(error);
  }
  if (usersets.length > 0) {
    const { passed, error } = ev.filterByCondition(usersets);
    if (error !== undefined) acc.add(error);
    for (const t of passed) {
      const s = t.subject;
      if (s.kind !== "userset") continue;
      const outcome = await resolve(
        run,
        t.subjectTenant,
        `${s.type}:${s.id}`,
        s.relation,
        frame.depth + 1,
        frame.path,
      );
      if (acc.add(outcome)) return TRUE;
    }
  }
  return acc.result();
}

async function tupleToUserset(run: Run, frame: Frame, tupleset: string, computed: string): Promise<Outcome> {
  const { ev } = run;
  const tuples = (await ev.reader.byObject(frame.tenant, frame.object, tupleset)).filter(
    (t) => t.subject.kind === "object",
  );
  const { passed, error } = ev.filterByCondition(tuples);
  const acc = new UnionAccumulator();
  if (error !== undefined) acc.add(error);
  for (const t of passed) {
    const parentType = t.subject.type;
    // A parent whose type lacks the computed relation contributes nothing (not an error).
    if (!ev.program.types.get(parentType)?.relations.has(computed)) continue;
    const parent = t.user;
    const outcome = await resolve(run, t.subjectTenant, parent, computed, frame.depth + 1, frame.path);
    if (acc.add(outcome)) return TRUE;
  }
  return acc.result();
}

/** Union semantics: TRUE wins; otherwise an error; otherwise CYCLE if any; otherwise FALSE. */
class UnionAccumulator {
  #error: NexusError | undefined;
  #cycle = false;

  /** Adds an outcome; true when it is TRUE (the union is decided). */
  add(outcome: Outcome): boolean {
    if (outcome === TRUE) return true;
    if (outcome === CYCLE) this.#cycle = true;
    else if (outcome instanceof NexusError) this.#error ??= outcome;
    return false;
  }

  result(): Outcome {
    return this.#error ?? (this.#cycle ? CYCLE : FALSE);
  }
}
