/**
 * What the result cache's property tests share: a model of docs with two relations, a question in its resolved
 * form, and an inner resolver that answers every question by a rule at once (no evaluation).
 */
import type { BatchOutcome, CheckResolver, Resolution, ResolvedCheck } from "../../src/pipeline/types.js";

export const DOC_MODEL = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]
    define editor: [user]`;

/** `user` (user:<id>) asked for `relation` on `object` (doc:<id>) at `revision` and instant `now`. */
export function docQuestion(
  user: string,
  object: string,
  relation: string,
  revision: number,
  now = 1000,
): ResolvedCheck {
  return {
    tenant: "default",
    subjectTenant: "default",
    object,
    objectType: "doc",
    relation,
    subject: { kind: "object", type: "user", id: user.slice(5) },
    user,
    revision,
    now,
    context: undefined,
    contextualTuples: [],
    scope: relation,
  };
}

/** An inner layer answering each question by `answerOf`, synchronously and in batches alike. */
export function ruleResolver(answerOf: (c: ResolvedCheck) => Resolution): CheckResolver {
  return {
    layer: "truth",
    resolve: async (c) => answerOf(c),
    resolveNow: (c) => answerOf(c),
    resolveMany: async (cs) => cs.map(answerOf) as BatchOutcome[],
    resolveManyNow: (cs) => cs.map(answerOf) as BatchOutcome[],
    stats: () => [],
    close: async () => {},
  };
}
