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
 * A SpiceDB program (Evaluation.spicedb) follows SpiceDB's rules where they differ (src/model/program.ts):
 * - a tuple's caveat is a conjunct of the path through the tuple, evaluated after the path's own outcome is known
 *   not to be FALSE; a caveat that needs a missing parameter is unknown (src/reference/caveat.ts), and outcomes gain
 *   CONDITIONAL (a Conditional with the parameters it needs): union: TRUE, else an error, else CONDITIONAL, else
 *   CYCLE, else FALSE; intersection: FALSE, else CYCLE, else an error, else CONDITIONAL, else TRUE; exclusion:
 *   FALSE when the base is FALSE or the subtraction TRUE, else CYCLE, else an error, else CONDITIONAL (the
 *   parameters of both sides), else TRUE; a tuple: FALSE when its caveat or its path is, else an error, else
 *   CONDITIONAL, else the path's outcome. Kleene's three-valued logic, as SpiceDB evaluates caveat expressions;
 * - arrows follow userset subjects' objects too, and `.all()` arrows need every tupleset tuple to lead to the
 *   computed relation (and at least one tuple).
 * The boolean check turns CONDITIONAL into the error "condition_missing_parameter" with `details.conditional`
 * and `details.missingParameters` (src/reference/detailed.ts reads it back as a conditional answer).
 *
 * A check that evaluates more than MAX_RESOLUTION_STEPS rewrites (a step: a `resolve` past the depth limit, the
 * cycle check, the userset-itself rule and the memo) stops and answers "resolution_too_complex", whatever the
 * outcomes so far: the kernel counts steps at the same point against the same budget (its shortcuts skip some).
 *
 * Within one check, TRUE and cycle-free FALSE results are memoized per node, with the depth they were computed
 * at (a result holds for any shallower depth); CYCLE and errors never are, so a node that was false only because
 * of the path it was reached on is evaluated again on other paths.
 */

import { type SubjectKind, subjectKind } from "../model/analysis.js";
import type { RelationDef, Rewrite } from "../model/program.js";
import { NexusError } from "../util/errors.js";
import { type CaveatOutcome, Unknown } from "./caveat.js";
import { type Evaluation, MAX_RESOLUTION_STEPS, type SubjectRef } from "./evaluation.js";

export const FALSE = 0;
export const TRUE = 1;
export const CYCLE = 2;
/** SpiceDB's CONDITIONAL: the answer depends on caveat parameters the request did not give. */
export class Conditional {
  constructor(readonly missing: ReadonlySet<string>) {}
}
export type Outcome = typeof FALSE | typeof TRUE | typeof CYCLE | NexusError | Conditional;

export interface CheckQuery extends SubjectRef {
  readonly tenant: string;
  readonly object: string;
  readonly relation: string;
}

interface Path {
  readonly key: string;
  readonly next: Path | undefined;
  /** Nodes on the path (this one included). */
  readonly length: number;
}

/**
 * A chain of computed relations nests `resolve` once per relation without reading a tuple (and without counting
 * depth), thousands deep in a generated model: every this many nodes on a path, `resolve` yields to the microtask
 * queue so the stack unwinds instead of overflowing. Never reached by ordinary models.
 */
const YIELD_EVERY = 64;

interface Run {
  readonly ev: Evaluation;
  readonly query: CheckQuery;
  readonly kind: SubjectKind;
  readonly wildcard: string | undefined;
  readonly memo: Map<string, { outcome: typeof TRUE | typeof FALSE; depth: number }>;
  /** Rewrites evaluated so far (the step budget, MAX_RESOLUTION_STEPS). */
  steps: number;
  /** Set once the check took more steps than the budget: every resolve then answers it, and so does the check. */
  exhausted: NexusError | undefined;
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
  if (outcome instanceof Conditional) throw conditionalError(query, outcome);
  return outcome === TRUE;
}

/** The boolean check's answer to a CONDITIONAL outcome (read back by src/reference/detailed.ts). */
export function conditionalError(query: CheckQuery, outcome: Conditional): NexusError {
  const missingParameters = [...outcome.missing].sort();
  return new NexusError(
    "condition_missing_parameter",
    `${query.object}#${query.relation} for ${query.user} is conditional: it depends on the missing context parameter${
      missingParameters.length > 1 ? "s" : ""
    } ${missingParameters.join(", ")}`,
    { conditional: true, missingParameters },
  );
}

/** Checks one query and returns the raw outcome (TRUE, FALSE, CYCLE or an error). */
export function checkOutcome(ev: Evaluation, query: CheckQuery): Promise<Outcome> {
  const run: Run = {
    ev,
    query,
    kind: subjectKind(query.subject),
    wildcard: query.subject.kind === "userset" ? undefined : `${query.subject.type}:*`,
    memo: new Map(),
    steps: 0,
    exhausted: undefined,
  };
  return resolve(run, query.tenant, query.object, query.relation, 0, undefined).then((outcome) =>
    run.exhausted !== undefined ? run.exhausted : outcome,
  );
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
  if (run.exhausted !== undefined) return run.exhausted;
  if (depth >= ev.maxDepth) return ev.tooComplex(`${query.object}#${query.relation} for ${query.user}`);
  const key = tenant + SEP + object + SEP + relation;
  for (let p = path; p !== undefined; p = p.next) if (p.key === key) return CYCLE;
  if (path !== undefined && path.length % YIELD_EVERY === 0) await Promise.resolve();
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
  // The step budget (counted as the kernel counts it, assembly/evaluate.ts): a recursive model can make the
  // path-dependent cycle check enumerate paths for seconds; past the budget the whole check is too complex.
  if (++run.steps > MAX_RESOLUTION_STEPS) {
    run.exhausted = ev.tooManySteps(`${query.object}#${query.relation} for ${query.user}`);
    return run.exhausted;
  }
  const outcome = await rewrite(run, rel, rel.rewrite, {
    tenant,
    object,
    relation,
    depth,
    path: { key, next: path, length: (path?.length ?? 0) + 1 },
  });
  if (outcome === TRUE || outcome === FALSE) {
    if (memo === undefined || memo.depth < depth) run.memo.set(key, { outcome, depth });
  }
  return outcome;
}

async function rewrite(run: Run, rel: RelationDef, rw: Rewrite, frame: Frame): Promise<Outcome> {
  switch (rw.kind) {
    case "direct":
      return run.ev.spicedb ? directSpiceDb(run, frame) : direct(run, frame);
    case "computed":
      return resolve(run, frame.tenant, frame.object, rw.relation, frame.depth, frame.path);
    case "ttu":
      if (run.ev.spicedb) return arrowSpiceDb(run, frame, rw.tupleset, rw.computed, rw.all === true);
      return tupleToUserset(run, frame, rw.tupleset, rw.computed);
    case "union": {
      const acc = new UnionAccumulator();
      for (const child of rw.children) {
        if (acc.add(await rewrite(run, rel, child, frame))) return TRUE;
      }
      return acc.result();
    }
    case "intersection": {
      const acc = new IntersectionAccumulator();
      for (const child of rw.children) {
        if (acc.add(await rewrite(run, rel, child, frame))) return FALSE;
      }
      return acc.result();
    }
    case "exclusion": {
      const base = await rewrite(run, rel, rw.base, frame);
      if (base === FALSE) return FALSE;
      const subtract = await rewrite(run, rel, rw.subtract, frame);
      if (subtract === TRUE) return FALSE;
      if (base === CYCLE || subtract === CYCLE) return CYCLE;
      if (base instanceof NexusError) return base;
      if (subtract instanceof NexusError) return subtract;
      if (base instanceof Conditional || subtract instanceof Conditional) return merge(base, subtract);
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

/** `direct` with SpiceDB's rules: each tuple's caveat is a conjunct of its path (see the header). */
async function directSpiceDb(run: Run, frame: Frame): Promise<Outcome> {
  const { ev, query } = run;
  const tuples = await ev.reader.byObject(frame.tenant, frame.object, frame.relation);
  const acc = new UnionAccumulator();
  const usersets = [];
  // The subject itself or its type's wildcard first: they need no further lookup.
  for (const t of tuples) {
    const matches =
      t.subjectTenant === query.subjectTenant && (t.user === query.user || t.user === run.wildcard);
    if (matches && acc.add(conjoin(ev.caveatOutcome(t), TRUE))) return TRUE;
    if (t.subject.kind === "userset") usersets.push(t);
  }
  for (const t of usersets) {
    const s = t.subject;
    if (s.kind !== "userset") continue;
    const outcome = await throughTuple(ev.caveatOutcome(t), () =>
      resolve(run, t.subjectTenant, `${s.type}:${s.id}`, s.relation, frame.depth + 1, frame.path),
    );
    if (acc.add(outcome)) return TRUE;
  }
  return acc.result();
}

/**
 * SpiceDB's arrows (`->`, `.any()`, `.all()`): every tupleset tuple leads to its subject's object (a userset
 * subject's relation is ignored), whose `computed` is checked; `.any()` is their union, `.all()` their
 * intersection (FALSE without tuples; a parent whose type lacks `computed` is FALSE).
 */
async function arrowSpiceDb(
  run: Run,
  frame: Frame,
  tupleset: string,
  computed: string,
  all: boolean,
): Promise<Outcome> {
  const { ev } = run;
  const tuples = await ev.reader.byObject(frame.tenant, frame.object, tupleset);
  const any = new UnionAccumulator();
  const every = new IntersectionAccumulator();
  for (const t of tuples) {
    const s = t.subject;
    // A wildcard cannot be a tupleset's subject in SpiceDB (validate.ts refuses such schemas).
    const parent = s.kind === "wildcard" ? undefined : `${s.type}:${s.id}`;
    const outcome =
      parent === undefined || !ev.program.types.get(s.type)?.relations.has(computed)
        ? FALSE
        : await throughTuple(ev.caveatOutcome(t), () =>
            resolve(run, t.subjectTenant, parent, computed, frame.depth + 1, frame.path),
          );
    if (all ? every.add(outcome) : any.add(outcome)) return all ? FALSE : TRUE;
  }
  if (!all) return any.result();
  return tuples.length === 0 ? FALSE : every.result();
}

/** A path through a tuple: its caveat's outcome and the outcome beyond it, resolved unless the caveat is false. */
async function throughTuple(caveat: CaveatOutcome, beyond: () => Promise<Outcome>): Promise<Outcome> {
  if (caveat === false) return FALSE;
  return conjoin(caveat, await beyond());
}

/** A caveat's outcome AND a path's outcome (Kleene). */
function conjoin(caveat: CaveatOutcome, path: Outcome): Outcome {
  if (caveat === false || path === FALSE) return FALSE;
  if (caveat instanceof NexusError) return caveat;
  if (path === CYCLE || path instanceof NexusError) return path;
  if (caveat instanceof Unknown) {
    return path instanceof Conditional
      ? merge(new Conditional(caveat.missing), path)
      : new Conditional(caveat.missing);
  }
  return path;
}

/** The CONDITIONAL needing the parameters of every conditional outcome given. */
function merge(...outcomes: Outcome[]): Conditional {
  const missing = new Set<string>();
  for (const o of outcomes) if (o instanceof Conditional) for (const name of o.missing) missing.add(name);
  return new Conditional(missing);
}

/** Union semantics: TRUE wins; otherwise an error; otherwise CONDITIONAL; otherwise CYCLE if any; otherwise FALSE. */
class UnionAccumulator {
  #error: NexusError | undefined;
  #conditional: Conditional | undefined;
  #cycle = false;

  /** Adds an outcome; true when it is TRUE (the union is decided). */
  add(outcome: Outcome): boolean {
    if (outcome === TRUE) return true;
    if (outcome === CYCLE) this.#cycle = true;
    else if (outcome instanceof NexusError) this.#error ??= outcome;
    else if (outcome instanceof Conditional) this.#conditional = merge(this.#conditional ?? FALSE, outcome);
    return false;
  }

  result(): Outcome {
    return this.#error ?? this.#conditional ?? (this.#cycle ? CYCLE : FALSE);
  }
}

/** Intersection semantics: FALSE wins; otherwise CYCLE if any; otherwise an error; otherwise CONDITIONAL; otherwise TRUE. */
class IntersectionAccumulator {
  #error: NexusError | undefined;
  #conditional: Conditional | undefined;
  #cycle = false;

  /** Adds an outcome; true when it is FALSE (the intersection is decided). */
  add(outcome: Outcome): boolean {
    if (outcome === FALSE) return true;
    if (outcome === CYCLE) this.#cycle = true;
    else if (outcome instanceof NexusError) this.#error ??= outcome;
    else if (outcome instanceof Conditional) this.#conditional = merge(this.#conditional ?? TRUE, outcome);
    return false;
  }

  result(): Outcome {
    return this.#cycle ? CYCLE : (this.#error ?? this.#conditional ?? TRUE);
  }
}
