/**
 * A check's answer with SpiceDB's third outcome: allowed, denied, or conditional on caveat parameters the request
 * did not give (SpiceDB's CONDITIONAL / PERMISSIONSHIP_CONDITIONAL_PERMISSION, with the missing parameter names).
 *
 * The boolean `check` has one rule for a conditional answer in every language: it rejects with the NexusError
 * "condition_missing_parameter". For an OpenFGA or Nexus model that is OpenFGA's own answer (a condition whose
 * parameter is missing, on a tuple no other path outweighs), and `checkDetailed` rejects with it too: OpenFGA has
 * no conditional answer. For a SpiceDB schema the error carries `details.conditional: true` and
 * `details.missingParameters` (sorted), and `checkDetailed` returns it as
 * `{ allowed: false, conditional: { missingParameters } }`: not allowed now, allowed or denied once those
 * parameters are given. So a caller of `check` never mistakes a conditional answer for a denial or a grant.
 *
 * The answer is the boolean check's (every cache layer and evaluator), read back: nothing is evaluated twice.
 */
import { NexusError } from "../util/errors.js";

export interface DetailedCheckResult {
  /** True only when the subject has the relation with the context given. */
  readonly allowed: boolean;
  /** Set when the answer depends on caveat parameters the request did not give (SpiceDB schemas only). */
  readonly conditional?: { readonly missingParameters: readonly string[] };
}

/** Runs `check` (the engine's boolean check) and reads a conditional answer back from its error. */
export async function checkDetailed<R>(
  check: (request: R) => Promise<boolean>,
  request: R,
): Promise<DetailedCheckResult> {
  try {
    return { allowed: await check(request) };
  } catch (error) {
    const missingParameters = conditionalParameters(error);
    if (missingParameters === undefined) throw error;
    return { allowed: false, conditional: { missingParameters } };
  }
}

/** The missing parameters of a conditional answer's error, or undefined for any other error. */
export function conditionalParameters(error: unknown): string[] | undefined {
  if (!(error instanceof NexusError) || error.code !== "condition_missing_parameter") return undefined;
  const details = error.details as { conditional?: unknown; missingParameters?: unknown } | undefined;
  if (details?.conditional !== true || !Array.isArray(details.missingParameters)) return undefined;
  return details.missingParameters.map(String);
}
