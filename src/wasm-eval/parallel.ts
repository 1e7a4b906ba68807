/**
 * Parallel bulk checks on the Node worker pool (Node only). Batches larger than getParallelThreshold("bulkCheck")
 * are split across the pool's workers; each worker holds the tenant's compiled graph at exactly the batch's
 * revision, built from a replica (replica.ts: a base snapshot shared through a SharedArrayBuffer, plus the changes
 * after it) and then only advanced. A replica collects its tenant's changes after the base by subscribing to the
 * change feed the evaluator's graphs follow, from the base revision on. The pool starts lazily at the first large
 * batch; closing the engine (or the evaluator) ends it.
 *
 * ```ts
 * const engine = await createEngine({ model });
 * enableParallelBulkCheck(engine);            // from "nexus-fast/node"
 * await engine.checkBulk(hundredThousandRequests);
 * await engine.close();                        // also ends the workers
 * ```
 */
import { availableParallelism } from "node:os";
import type { ChangeListener, ChangeSource } from "../changes/feed.js";
import { WorkerPool } from "../parallel/pool.js";
import type { CheckQuery } from "../reference/check.js";
import type { Revision, StoredChange } from "../tuples/types.js";
import {
  type CheckTaskPayload,
  TASK_FALSE,
  TASK_TOO_COMPLEX,
  TASK_TOO_MANY_STEPS,
  TASK_TRUE,
} from "./check-task.js";
import {
  type ParallelBulkRunner,
  tooComplexError,
  tooManyStepsCheckError,
  type WasmAnswer,
  type WasmEvaluator,
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
  readonly base: ReplicaBase;
  /** The tenant's changes after the base, in revision order, as the feed delivered them. */
  readonly changes: StoredChange[];
  /** Every change of the tenant up to here is in `changes`. */
  seen: Revision;
  /** The feed lost track (or the replay failed): take a new base. */
  lost: boolean;
  /** Resolves once the feed has replayed the changelog after the base to the replica. */
  readonly replayed: Promise<void>;
  readonly source: ChangeSource;
  readonly unsubscribe: () => void;
}

export class ParallelBulkChecker implements ParallelBulkRunner {
  readonly pool: WorkerPool;
  readonly #ownsPool: boolean;
  readonly #wasm: WasmEvaluator;
  readonly #tenants = new Map<string, TenantReplica>();
  readonly #threads: number;

  constructor(fast: WasmEvaluator, options: ParallelBulkOptions = {}) {
    this.#wasm = fast;
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
  ): Promise<WasmAnswer[] | undefined> {
    const replica = await this.#replicaAt(tenant, revision);
    if (replica === undefined) return undefined;
    const chunks = this.#threads;
    const size = Math.ceil(queries.length / chunks);
    const compiled = this.#wasm.compiled;
    const parts: Promise<Uint8Array>[] = [];
    for (let start = 0; start < queries.length; start += size) {
      const payload: CheckTaskPayload = {
        program: compiled.program,
        maxDepth: compiled.maxDepth,
        base: replica.base,
        changes: upTo(replica.changes, revision),
        revision,
        requests: flatten(queries, start, Math.min(queries.length, start + size)),
      };
      parts.push(this.pool.run<Uint8Array>(task, "checkBatch", payload));
    }
    const results = await Promise.all(parts);
    const answers: WasmAnswer[] = new Array(queries.length);
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
                : code === TASK_TOO_MANY_STEPS
                  ? tooManyStepsCheckError(q)
                  : undefined;
      }
    }
    return answers;
  }

  /** The tenant's replica, extended to `revision`; undefined when the revision is older than its base. */
  async #replicaAt(tenant: string, revision: Revision): Promise<TenantReplica | undefined> {
    let replica = this.#tenants.get(tenant);
    if (replica !== undefined && replica.base.revision > revision) return undefined;
    if (replica !== undefined && !replica.lost && replica.seen < revision) {
      await replica.replayed;
      await replica.source.caughtUp(revision);
    }
    if (replica !== undefined && (replica.lost || replica.seen < revision)) {
      // The changelog no longer reaches back to the base (or the feed stopped): take a new base.
      this.#drop(tenant, replica);
      replica = undefined;
    }
    if (replica === undefined || replica.changes.length > REBASE_AFTER) {
      if (replica !== undefined) this.#drop(tenant, replica);
      const source = await this.#wasm.changeSource(revision);
      const snapshot = await this.#wasm.store.snapshot(revision);
      try {
        const tuples = await snapshot.read({ tenant });
        replica = this.#follow(tenant, encodeBase(tenant, revision, tuples), source);
        this.#tenants.set(tenant, replica);
      } finally {
        snapshot.release();
      }
    }
    return replica;
  }

  /** A replica over `base` that collects the tenant's changes after it from `source`. */
  #follow(tenant: string, base: ReplicaBase, source: ChangeSource): TenantReplica {
    const changes: StoredChange[] = [];
    let replica: TenantReplica | undefined;
    let seen = base.revision;
    let lost = false;
    const listener: ChangeListener = {
      onChanges(page, watermark) {
        for (const c of page) if (c.tuple.tenant === tenant) changes.push(c);
        if (replica === undefined) seen = watermark;
        else replica.seen = watermark;
      },
      onReset() {
        if (replica === undefined) lost = true;
        else replica.lost = true;
      },
    };
    const unsubscribe = source.subscribe(listener, { after: base.revision });
    const replayed = unsubscribe.replayed().then(
      () => {
        // Joined the live fan-out: every change up to the source's watermark has been delivered.
        if (replica !== undefined && source.watermark > replica.seen) replica.seen = source.watermark;
      },
      () => {
        if (replica !== undefined) replica.lost = true;
      },
    );
    replica = { base, changes, seen, lost, replayed, source, unsubscribe };
    return replica;
  }

  #drop(tenant: string, replica: TenantReplica): void {
    replica.unsubscribe();
    if (this.#tenants.get(tenant) === replica) this.#tenants.delete(tenant);
  }

  async close(): Promise<void> {
    for (const [tenant, replica] of this.#tenants) this.#drop(tenant, replica);
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
  readonly wasmEvaluator: WasmEvaluator | undefined;
}

export function enableParallelBulkCheck(
  engine: WithWasmEvaluator,
  options: ParallelBulkOptions = {},
): ParallelBulkChecker | undefined {
  const fast = engine.wasmEvaluator;
  if (fast === undefined) return undefined;
  const checker = new ParallelBulkChecker(fast, options);
  void fast.parallel?.close();
  fast.parallel = checker;
  return checker;
}

/** The changes at or before `revision` (a replica may hold later ones the feed has delivered already). */
function upTo(changes: readonly StoredChange[], revision: Revision): readonly StoredChange[] {
  let end = changes.length;
  while (end > 0 && changes[end - 1]!.revision > revision) end--;
  return end === changes.length ? changes : changes.slice(0, end);
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
