/**
 * Test helpers: the reference evaluator's answer for a query at a store revision, in the same shape as the fast
 * path's (boolean, or the NexusError code), and the queries a generated model allows.
 */

import type { Program } from "../../src/model/program.js";
import { type CheckQuery, checkOutcome, TRUE } from "../../src/reference/check.js";
import { Evaluation } from "../../src/reference/evaluation.js";
import { TupleReader } from "../../src/reference/reader.js";
import { DEFAULT_TENANT, parseSubject } from "../../src/tuples/tuple.js";
import type { TupleStore } from "../../src/tuples/types.js";
import { NexusError } from "../../src/util/errors.js";
import type { WasmAnswer } from "../../src/wasm-eval/evaluator.js";

export type Comparable = boolean | string | "routed";

export function comparable(answer: WasmAnswer): Comparable {
  if (answer === undefined) return "routed";
  if (answer instanceof NexusError) return `error:${answer.code}:${answer.message}`;
  return answer;
}

/** Reference answers for `queries` at `revision` (one Evaluation per query, as the engine does). */
export async function referenceAnswers(
  store: TupleStore,
  program: Program,
  revision: number,
  queries: readonly CheckQuery[],
  maxDepth: number,
  context?: Record<string, unknown>,
): Promise<Comparable[]> {
  const snapshot = await store.snapshot(revision);
  try {
    const out: Comparable[] = [];
    for (const q of queries) {
      const reader = new TupleReader(snapshot, program, [], Date.now());
      const ev = new Evaluation(reader, { maxDepth, ...(context !== undefined ? { context } : {}) });
      const outcome = await checkOutcome(ev, q);
      out.push(outcome instanceof NexusError ? `error:${outcome.code}:${outcome.message}` : outcome === TRUE);
    }
    return out;
  } finally {
    snapshot.release();
  }
}

export function query(object: string, relation: string, user: string, tenant = DEFAULT_TENANT): CheckQuery {
  const subject = parseSubject(user);
  if (subject === undefined) throw new Error(`bad subject ${user}`);
  return { tenant, subjectTenant: tenant, object, relation, user, subject };
}
