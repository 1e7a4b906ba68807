/**
 * Test helpers: the reference evaluator's answer for a query at a store revision, in the same shape as the fast
 * path's (boolean, or the NexusError code), and the queries a generated model allows.
 */

import { expect } from "vitest";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import type { Program } from "../../src/model/program.js";
import { type CheckQuery, checkOutcome, TRUE } from "../../src/reference/check.js";
import { Evaluation } from "../../src/reference/evaluation.js";
import { TupleReader } from "../../src/reference/reader.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import { DEFAULT_TENANT, parseSubject, type RelationTuple, type TupleKey } from "../../src/tuples/tuple.js";
import type { TupleStore } from "../../src/tuples/types.js";
import { NexusError } from "../../src/util/errors.js";
import type { WasmAnswer, WasmEvaluator } from "../../src/wasm-eval/evaluator.js";

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

/** A tuple key normalized in the default tenant (a malformed one throws). */
export function normalized(key: TupleKey): RelationTuple {
  const r = normalizeTuple(key, DEFAULT_TENANT);
  if (!r.ok) throw new Error(r.problem);
  return r.value;
}

/** `group#member: [user, group#member]`: the recursive relation the Leopard index serves. */
export async function groupsProgram(): Promise<Program> {
  await loadOpenFgaDsl();
  return compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
`);
}

/** Every query's WASM answer at the store's current revision is the reference evaluator's. */
export async function expectReference(
  fast: WasmEvaluator,
  store: TupleStore,
  program: Program,
  qs: readonly CheckQuery[],
  maxDepth: number,
): Promise<void> {
  const revision = await store.currentRevision();
  const expected = await referenceAnswers(store, program, revision, qs, maxDepth);
  for (const [i, q] of qs.entries()) {
    expect(
      comparable(await fast.check(q, revision)),
      `${q.object}#${q.relation}@${q.user} rev ${revision}`,
    ).toEqual(expected[i]);
  }
}
