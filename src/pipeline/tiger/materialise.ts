/**
 * What a Tiger bitmap is built from: the objects of one type the subject may access at one revision, by the
 * reference list objects (exactly the objects check allows), or, with `checkThroughInner`, by the list-objects
 * candidates each checked by the layer's inner resolver. The snapshot is read through an `ExpiryObserver`, so
 * the result also says between which instants it holds.
 */
import type { Program } from "../../model/program.js";
import { Evaluation } from "../../reference/evaluation.js";
import { candidateObjects, listObjects } from "../../reference/list-objects.js";
import { TupleReader } from "../../reference/reader.js";
import type { Revision, TupleSnapshot, TupleStore } from "../../tuples/types.js";
import type { CheckResolver, ResolvedCheck } from "../types.js";
import { ExpiryObserver } from "./expiry.js";

export interface AllowedObjects {
  readonly objects: readonly string[];
  /** The revision they were read at (`check.revision`). */
  readonly revision: Revision;
  /** Request instants in [validFrom, validUntil) get the same objects. */
  readonly validFrom: number;
  readonly validUntil: number;
}

export interface MaterialiseContext {
  readonly program: Program;
  readonly store: TupleStore;
  readonly maxDepth: number;
  /** Checks the candidates when `checkThroughInner` is on. */
  readonly inner: CheckResolver;
  readonly checkThroughInner: boolean;
}

/**
 * The objects of `check.objectType` the subject of `check` may access at `check.revision` and `check.now`, or
 * undefined when they cannot be known here (the revision is not retained any more, the evaluation fails, e.g.
 * too deep, or an inner check fails): the question is then left to the evaluator.
 */
export async function allowedObjects(
  check: ResolvedCheck,
  context: MaterialiseContext,
): Promise<AllowedObjects | undefined> {
  let snapshot: TupleSnapshot;
  try {
    snapshot = await context.store.snapshot(check.revision);
  } catch {
    return undefined;
  }
  let objects: string[];
  const observed = new ExpiryObserver(snapshot, check.now);
  try {
    const reader = new TupleReader(observed, context.program, [], check.now);
    const ev = new Evaluation(reader, { maxDepth: context.maxDepth });
    const query = {
      tenant: check.tenant,
      type: check.objectType,
      relation: check.relation,
      subject: check.subject,
      user: check.user,
      subjectTenant: check.subjectTenant,
    };
    if (context.checkThroughInner) {
      // The candidates (reverse expansion, read through the observer), each checked by the inner resolver at
      // exactly this revision and instant; the earliest expiry an answer depends on bounds the bitmap.
      const candidates = [...(await candidateObjects(ev, query))];
      const outcomes = await context.inner.resolveMany(
        candidates.map((object) => ({ ...check, object, key: undefined })),
      );
      objects = [];
      for (let i = 0; i < outcomes.length; i++) {
        const outcome = outcomes[i]!;
        if (outcome instanceof Error || outcome.revision !== snapshot.revision) return undefined;
        if (outcome.validUntil < observed.validUntil) observed.validUntil = outcome.validUntil;
        if (outcome.allowed) objects.push(candidates[i]!);
      }
      // The inner answers say nothing of earlier instants: the bitmap holds from this one on.
      observed.validFrom = Math.max(observed.validFrom, check.now);
    } else {
      objects = await listObjects(ev, query);
    }
  } catch {
    return undefined;
  } finally {
    snapshot.release();
  }
  return {
    objects,
    revision: snapshot.revision,
    validFrom: observed.validFrom,
    validUntil: observed.validUntil,
  };
}
