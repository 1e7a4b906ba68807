/**
 * Parallel bulk checks on the Node worker pool (Node only). Batches larger than getParallelThreshold("bulkCheck")
 * are split across the pool's workers; each worker holds the tenant's compiled graph at exactly the batch's
 * revision, built from a replica (replica.ts: a base snapshot shared through a SharedArrayBuffer, plus the changes
 * after it) and then only advanced. The pool starts lazily at the first large batch; closing the engine (or the
 * evaluator) ends it.
 *
 * ```ts
 * const engine = await createEngine({ model });
 * enableParallelBulkCheck(engine);            // from "nexus-fast/node"
 * await engine.checkBulk(hundredThousandRequests);
 * await engine.close();                        // also ends the workers
 * ```
 */
import { availableParallelism } from "node:os";
import { WorkerPool } from "../parallel/pool.js";
import type { CheckQuery } from "../reference/check.js";
import type { Revision, StoredChange } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import { type CheckTaskPayload, TASK_FALSE, TASK_TOO_COMPLEX, TASK_TRUE } from "./check-task.js";
import {
  type FastAnswer,
  type FastEvaluator,
  type ParallelBulkRunner,
  tooComplexError,
} from "./evaluator.js";
import { encodeBase, type ReplicaBase } from "./replica.js";

const task = new URL("./check-task.js", import.meta.url);
/** Past this many changes since the base, the next batch takes a new base snapshot. */
const REBASE_AFTER = 20_000;

export interface ParallelBulkOptions {
  /** The pool to use (default: a new one, closed with the evaluator). */
  readonly pool?: WorkerPool;
  /** Workers of the default pool (default: available parallelism). */
  readonly maxThreads?: number;
}

interface TenantReplica {
  base: ReplicaBase;
  changes: StoredChange[];
  /** Changes are fetched up to here. */
  fetched: Revision;
}

export class ParallelBulkChecker implements ParallelBulkRunner {
  readonly pool: WorkerPool;
  readonly #ownsPool: boolean;
  readonly #fast: FastEvaluator;
  readonly #tenants = new Map<string, TenantReplica>();
  readonly #threads: number;

  constructor(fast: FastEvaluator, options: ParallelBulkOptions = {}) {
    this.#fast = fast;
    this.#ownsPool = options.pool === undefined;
    this.pool =
      options.pool ??
      new WorkerPool(options.maxThreads !== undefined ? { maxThreads: options.maxThreads } : {});
    this.#threads = Math.max(1, Math.min(this.pool.maxThreads, availableParallelism()));
  }

  async run(
    tenant: string,
    queries: readonly CheckQuery[],
    revision: Revision,
  ): Promise<FastAnswer[] | undefined> {
    const replica = await this.#replicaAt(tenant, revision);
    if (replica === undefined) return undefined;
    const chunks = this.#threads;
    const size = Math.ceil(queries.length / chunks);
    const compiled = this.#fast.compiled;
    const parts: Promise<Uint8Array>[] = [];
    for (let start = 0; start < queries.length; start += size) {
      const payload: CheckTaskPayload = {
        program: compiled.program,
        maxDepth: compiled.maxDepth,
        base: replica.base,
        changes: replica.changes,
        revision,
        requests: flatten(queries, start, Math.min(queries.length, start + size)),
      };
      parts.push(this.pool.run<Uint8Array>(task, "checkBatch", payload));
    }
    const results = await Promise.all(parts);
    const answers: FastAnswer[] = new Array(queries.length);
    let i = 0;
    for (const codes of results) {
      for (const code of codes) {
        const q = queries[i]!;
        answers[i++] =
          code === TASK_TRUE
            ? true
            : code === TASK_FALSE
              ? false
              : code === TASK_TOO_COMPLEX
                ? tooComplexError(q, compiled.maxDepth)
                : undefined;
      }
    }
    return answers;
  }

  /** The tenant's replica, extended to `revision`; undefined when the revision is older than its base. */
  async #replicaAt(tenant: string, revision: Revision): Promise<TenantReplica | undefined> {
    let replica = this.#tenants.get(tenant);
    if (replica !== undefined && replica.base.revision > revision) return undefined;
    if (replica !== undefined && replica.fetched < revision) {
      try {
        let after = replica.fetched;
        while (after < revision) {
          const page = await this.#fast.store.changesAfter(after, 4096);
          if (page.length === 0) break;
          for (const c of page) {
            if (c.revision > revision) break;
            if (c.tuple.tenant === tenant) replica.changes.push(c);
            after = c.revision;
          }
          if (page[page.length - 1]!.revision >= revision) break;
        }
        replica.fetched = revision;
      } catch (error) {
        if (!(error instanceof NexusError && error.code === "invalid_token")) throw error;
        replica = undefined; // the changelog no longer reaches back: take a new base
      }
    }
    if (replica === undefined || replica.changes.length > REBASE_AFTER) {
      const snapshot = await this.#fast.store.snapshot(revision);
      try {
        const tuples = await snapshot.read({ tenant });
        replica = { base: encodeBase(tenant, revision, tuples), changes: [], fetched: revision };
        this.#tenants.set(tenant, replica);
      } finally {
        snapshot.release();
      }
    }
    return replica;
  }

  async close(): Promise<void> {
    this.#tenants.clear();
    if (this.#ownsPool) await this.pool.close();
  }
}

/**
 * Sends an engine's large bulk checks (above getParallelThreshold("bulkCheck")) to a worker pool. Returns the
 * checker (its `pool` says whether workers started); engine.close() ends the pool. No effect, returning
 * undefined, on an engine using the reference evaluator.
 */
/** What enableParallelBulkCheck needs of an engine (engine/engine.ts's Engine is one). */
export interface WithWasmEvaluator {
  readonly fastPath: FastEvaluator | undefined;
}

export function enableParallelBulkCheck(
  engine: WithWasmEvaluator,
  options: ParallelBulkOptions = {},
): ParallelBulkChecker | undefined {
  const fast = engine.fastPath;
  if (fast === undefined) return undefined;
  const checker = new ParallelBulkChecker(fast, options);
  void fast.parallel?.close();
  fast.parallel = checker;
  return checker;
}

function flatten(queries: readonly CheckQuery[], start: number, end: number): string[] {
  const out: string[] = new Array((end - start) * 3);
  let k = 0;
  for (let i = start; i < end; i++) {
    const q = queries[i]!;
    out[k++] = q.object;
    out[k++] = q.relation;
    out[k++] = q.user;
  }
  return out;
}
