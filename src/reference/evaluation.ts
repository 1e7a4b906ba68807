/**
 * One request's evaluation scope: the tuples it sees (TupleReader), the request's condition context, the depth
 * limit, and each tuple's condition outcome computed once. Check, list objects, list users and expand all run
 * inside one.
 */
import { type ConditionContext, compileConditions } from "../conditions/cel.js";
import { evaluateAbi } from "../kernels/abi/evaluate.js";
import { analyze, type ProgramAnalysis } from "../model/analysis.js";
import { followsSpiceDb, type Program } from "../model/program.js";
import { describeTuple, type RelationTuple, type Subject } from "../tuples/tuple.js";
import { NexusError } from "../util/errors.js";
import { type CaveatOutcome, evaluateCaveat } from "./caveat.js";
import type { TupleReader } from "./reader.js";

/** OpenFGA's default resolution depth. */
export const DEFAULT_MAX_DEPTH = 25;

/**
 * Steps one check may take (a step: a `resolve` that evaluates a rewrite) before it answers "resolution_too_complex":
 * about 1 s here, 16 ms in the kernel, which counts the same way (shared through the kernel's contract).
 */
export const MAX_RESOLUTION_STEPS: number = evaluateAbi.constants.MAX_RESOLUTION_STEPS;

/** Who is asking: a subject (object, wildcard or userset) of a tenant. */
export interface SubjectRef {
  readonly subject: Subject;
  /** The subject's string form. */
  readonly user: string;
  readonly subjectTenant: string;
}

export interface EvaluationOptions {
  readonly context?: ConditionContext;
  /** Nested lookups allowed before "resolution_too_complex" (default 25, OpenFGA's). */
  readonly maxDepth?: number;
}

export interface ConditionFilterResult {
  readonly passed: RelationTuple[];
  /** Set when no tuple passed and at least one failed to evaluate (OpenFGA reports the error then). */
  readonly error: NexusError | undefined;
}

export class Evaluation {
  readonly reader: TupleReader;
  readonly program: Program;
  readonly analysis: ProgramAnalysis;
  readonly context: ConditionContext | undefined;
  readonly maxDepth: number;
  /** SpiceDB's rules (arrows over userset subjects, `.all()`, caveats as conjuncts that may be unknown). */
  readonly spicedb: boolean;
  readonly #conditions;
  readonly #outcomes = new Map<RelationTuple, boolean | NexusError>();
  readonly #caveats = new Map<RelationTuple, CaveatOutcome>();

  constructor(reader: TupleReader, options: EvaluationOptions = {}) {
    this.reader = reader;
    this.program = reader.program;
    this.analysis = analyze(reader.program);
    this.context = options.context;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.spicedb = followsSpiceDb(reader.program);
    this.#conditions = compileConditions(reader.program);
  }

  /**
   * Whether the tuple's condition holds (true without one), or the error evaluating it. For a SpiceDB program
   * (whose checks use caveatOutcome) this says whether a walk for candidates may follow the tuple: true unless
   * the caveat is false, since a caveat that cannot be decided here only makes the check conditional.
   */
  conditionOutcome(tuple: RelationTuple): boolean | NexusError {
    if (tuple.condition === undefined) return true;
    if (this.spicedb) return this.caveatOutcome(tuple) !== false;
    let outcome = this.#outcomes.get(tuple);
    if (outcome === undefined) {
      const compiled = this.#conditions.get(tuple.condition.name);
      if (compiled === undefined) {
        outcome = new NexusError("invalid_condition", `condition ${tuple.condition.name} is not defined`, {
          tuple: describeTuple(tuple),
        });
      } else {
        try {
          outcome = compiled.evaluate(this.context, tuple.condition.context, describeTuple(tuple));
        } catch (error) {
          if (!(error instanceof NexusError)) throw error;
          outcome = error;
        }
      }
      this.#outcomes.set(tuple, outcome);
    }
    return outcome;
  }

  /** SpiceDB's outcome of the tuple's caveat (true without one): true, false, unknown (missing parameters), error. */
  caveatOutcome(tuple: RelationTuple): CaveatOutcome {
    if (tuple.condition === undefined) return true;
    let outcome = this.#caveats.get(tuple);
    if (outcome === undefined) {
      const compiled = this.#conditions.get(tuple.condition.name);
      outcome =
        compiled === undefined
          ? new NexusError("invalid_condition", `caveat ${tuple.condition.name} is not defined`, {
              tuple: describeTuple(tuple),
            })
          : evaluateCaveat(compiled, this.context, tuple.condition.context, describeTuple(tuple));
      this.#caveats.set(tuple, outcome);
    }
    return outcome;
  }

  /**
   * The tuples whose condition holds. As OpenFGA's condition-filtered iterator: an evaluation error counts only
   * when no tuple passed at all.
   */
  filterByCondition(tuples: readonly RelationTuple[]): ConditionFilterResult {
    const passed: RelationTuple[] = [];
    let error: NexusError | undefined;
    for (const t of tuples) {
      const outcome = this.conditionOutcome(t);
      if (outcome === true) passed.push(t);
      else if (outcome instanceof NexusError) error = outcome;
    }
    return { passed, error: passed.length === 0 ? error : undefined };
  }

  /** The error of a check that took more than MAX_RESOLUTION_STEPS steps. */
  tooManySteps(what: string): NexusError {
    return tooManyStepsError(what);
  }

  /** The error of a resolution that needs more nested lookups than maxDepth. */
  tooComplex(what: string): NexusError {
    return tooDeepError(what, this.maxDepth);
  }
}

// The two "resolution_too_complex" errors, built here for every evaluator (the kernel's answers too, in
// src/wasm-eval) so that a check gets the same message and details whichever evaluator ran out of room.

/** The error of a check that took more than MAX_RESOLUTION_STEPS steps; `what` names the question. */
export function tooManyStepsError(what: string): NexusError {
  return new NexusError(
    "resolution_too_complex",
    `resolving ${what} needs more than ${MAX_RESOLUTION_STEPS} resolution steps`,
    { limit: "maxResolutionSteps", maxResolutionSteps: MAX_RESOLUTION_STEPS },
  );
}

/** Whether `error` is tooManyStepsError's (the step budget ran out, not the depth limit). */
export function isTooManyStepsError(error: NexusError): boolean {
  return error.code === "resolution_too_complex" && error.details?.limit === "maxResolutionSteps";
}

/** The error of a resolution that needs more than `maxDepth` nested lookups; `what` names the question. */
export function tooDeepError(what: string, maxDepth: number): NexusError {
  return new NexusError(
    "resolution_too_complex",
    `resolving ${what} needs more than ${maxDepth} nested lookups`,
    { maxDepth },
  );
}
