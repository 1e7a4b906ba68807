/**
 * The Piscina task behind parallel bulk checks (Node only: it runs in a worker of src/parallel/pool.ts). A task
 * carries a replica of one tenant (a shared base snapshot and the changes after it, see replica.ts), the program,
 * the revision and a slice of the batch. The worker keeps one WasmEvaluator per replica base, so the graph is
 * built once per worker and then only advanced; it answers at exactly the task's revision (an evaluator whose
 * graph is already newer is rebuilt from the base rather than answer from another revision).
 */

import { loadConditions } from "../conditions/cel-js.js";
import type { Program } from "../model/program.js";
import type { CheckQuery } from "../reference/check.js";
import { isTooManyStepsError } from "../reference/evaluation.js";
import { parseSubject } from "../tuples/tuple.js";
import type { Revision, StoredChange } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import { ready } from "../wasm/loader.js";
import { WasmEvaluator } from "./evaluator.js";
import { ReplayStore, type ReplicaBase } from "./replica.js";

export interface CheckTaskPayload {
  readonly program: Program;
  readonly maxDepth: number;
  readonly base: ReplicaBase;
  /** The tenant's changes after the base, up to (at least) `revision`. */
  readonly changes: readonly StoredChange[];
  readonly revision: Revision;
  /** The queries as flat [object, relation, user] triples (strings clone far faster than objects). */
  readonly requests: readonly string[];
}

/**
 * One byte per query: 0 false, 1 true, 2 resolution too complex by depth, 3 routed (the caller uses the reference),
 * 4 resolution too complex by the step budget (the two errors say different things; the caller rebuilds them).
 */
export const TASK_FALSE = 0;
export const TASK_TRUE = 1;
export const TASK_TOO_COMPLEX = 2;
export const TASK_ROUTED = 3;
export const TASK_TOO_MANY_STEPS = 4;

interface Replica {
  readonly store: ReplayStore;
  readonly fast: WasmEvaluator;
}

const replicas = new Map<string, Replica>();
/** Replicas kept per worker (older bases are dropped first). */
const MAX_REPLICAS = 8;

export async function checkBatch(payload: CheckTaskPayload): Promise<Uint8Array> {
  await ready();
  // The CEL runtime loads on demand, per thread: a worker holding a model with conditions loads its own before
  // the graph is built (building it compiles them for every conditional tuple; without the runtime that failed,
  // and every query of the batch went back to the caller's reference evaluator).
  if (payload.program.conditions.size > 0) await loadConditions();
  const { base, revision } = payload;
  let replica = replicas.get(base.id);
  if (replica !== undefined) {
    // A graph already past the revision cannot go back: start again from the base.
    const at = replica.fast.graphRevision(base.tenant);
    if (at !== undefined && at > revision) {
      replica.fast.close();
      replicas.delete(base.id);
      replica = undefined;
    }
  }
  if (replica === undefined) {
    const store = new ReplayStore(base);
    const fast = new WasmEvaluator({
      program: payload.program,
      store,
      maxDepth: payload.maxDepth,
      feed: store,
    });
    replica = { store, fast };
    replicas.set(base.id, replica);
    while (replicas.size > MAX_REPLICAS) {
      const oldest = replicas.keys().next().value!;
      replicas.get(oldest)!.fast.close();
      replicas.delete(oldest);
    }
  }
  replica.store.append(
    payload.changes.filter((c) => c.revision <= revision),
    revision,
  );
  const requests = payload.requests;
  const queries: CheckQuery[] = [];
  for (let i = 0; i < requests.length; i += 3) {
    const user = requests[i + 2]!;
    const subject = parseSubject(user);
    if (subject === undefined)
      throw new NexusError("invalid_argument", `bad subject ${user} in a check task`);
    queries.push({
      tenant: base.tenant,
      subjectTenant: base.tenant,
      object: requests[i]!,
      relation: requests[i + 1]!,
      user,
      subject,
    });
  }
  const answers = await replica.fast.checkMany(queries, revision);
  const out = new Uint8Array(answers.length);
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i];
    out[i] =
      a === true
        ? TASK_TRUE
        : a === false
          ? TASK_FALSE
          : a instanceof NexusError
            ? isTooManyStepsError(a)
              ? TASK_TOO_MANY_STEPS
              : TASK_TOO_COMPLEX
            : TASK_ROUTED;
  }
  return out;
}
