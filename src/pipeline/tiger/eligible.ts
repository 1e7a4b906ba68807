/**
 * Which questions the Tiger layer may answer from a bitmap at all. A bitmap is one evaluation without a request
 * context, so questions with contextual tuples or a condition context pass through, as do questions on a relation
 * whose evaluation may read a tuple condition (it could fail on a missing parameter instead). So do questions
 * the depth guard rejects: an object missing from a bitmap is a denial only where the reference evaluator could
 * not have failed with "resolution_too_complex" instead.
 */
import type { InfluenceMap } from "../../changes/influence.js";
import type { DepthGuard, ResolvedCheck } from "../types.js";

export class Eligibility {
  readonly #influence: InfluenceMap;
  readonly #depthGuard: DepthGuard;
  /** type → relation → whether a check of it may be answered from a bitmap (memo of the model part). */
  readonly #byClass = new Map<string, Map<string, boolean>>();
  #lastType = "";
  #lastRelation = "";
  #lastEligible = false;

  constructor(influence: InfluenceMap, depthGuard: DepthGuard) {
    this.#influence = influence;
    this.#depthGuard = depthGuard;
  }

  /** Whether `check` may be answered from a bitmap. */
  test(check: ResolvedCheck): boolean {
    if (check.contextualTuples.length !== 0 || check.context !== undefined) return false;
    // Batches ask about one (type, relation) at a time: remember the last answer.
    if (check.objectType === this.#lastType && check.relation === this.#lastRelation)
      return this.#lastEligible && this.#depthGuard(check);
    let relations = this.#byClass.get(check.objectType);
    if (relations === undefined) {
      relations = new Map();
      this.#byClass.set(check.objectType, relations);
    }
    let ok = relations.get(check.relation);
    if (ok === undefined) {
      ok = !this.#influence.mayEvaluateConditions(check.objectType, check.relation);
      relations.set(check.relation, ok);
    }
    this.#lastType = check.objectType;
    this.#lastRelation = check.relation;
    this.#lastEligible = ok;
    return ok && this.#depthGuard(check);
  }
}
