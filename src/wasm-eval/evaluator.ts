/**
 * The WASM fast path of check: a private evaluator kernel holding the model (compiled to bytecode) and one
 * compiled tuple graph per tenant, each kept at a store revision by applying the changelog. Answers equal the
 * reference evaluator's (src/reference/check.ts); what the kernel does not evaluate is routed back to the reference,
 * explicitly (`undefined` from check, counted in `stats.routed` by reason):
 * - "cross_tenant": the subject's tenant differs from the request's (grants across tenants);
 * - "unsupported": the check read a node holding a tuple with a condition, an expiry or a cross-tenant subject (or,
 *   in a SpiceDB program, a userset subject on a relation arrows follow), or its relation can reach a SpiceDB
 *   intersection arrow (`parent.all(view)`), which the kernel does not evaluate;
 * - "stale_revision": the request's revision is older than the graph's (graphs only move forward), or the store
 *   no longer retains the snapshot needed to build the graph;
 * - "unknown": the request names a type or relation the compiled model does not know (the engine validates
 *   requests first, so this does not happen through it).
 * Contextual tuples are the caller's to route (the engine sends such requests to the reference).
 *
 * Runtime-neutral (browsers, workerd, Node): no `node:` import; everything is single-threaded in the caller's realm.
 */

import type { Program } from "../model/program.js";
import { getParallelThreshold } from "../parallel/thresholds.js";
import type { CheckQuery } from "../reference/check.js";
import { DEFAULT_MAX_DEPTH } from "../reference/evaluation.js";
import type { Revision, StoredChange, TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import { ABSENT, type CompiledProgram, compileProgram, NO_REL } from "./compile.js";
import { TupleGraph } from "./graph.js";
import { type EvaluateKernel, instantiateEvaluateKernel, Outcome } from "./kernel.js";
import { Symbols } from "./symbols.js";

/** Placeholders for a request's object / subject object that no tuple names (never interned symbols). */
const UNKNOWN_OBJECT = 0xfffffffe;
const UNKNOWN_SUBJECT = 0xfffffffd;
/** Words per request record of eval_check_many. */
const RECORD_WORDS = 9;
const CHANGES_PAGE = 4096;
/** Tuples a build applies between returns to the event loop (a slice takes a few milliseconds). */
const BUILD_SLICE = 4096;
/** A graph's revision while a revision's changes are half applied (no request's revision equals it). */
const MID_REVISION = -1;

/**
 * Back to the event loop (a macrotask, so timers and I/O run) between slices of a build or an advance:
 * setImmediate where there is one (Node), else setTimeout (browsers, workers, workerd).
 */
const yieldToLoop = (): Promise<void> =>
  new Promise((resolve) => {
    const immediate = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;
    if (immediate !== undefined) immediate(resolve);
    else setTimeout(resolve, 0);
  });

export type RouteReason = "cross_tenant" | "unsupported" | "stale_revision" | "unknown";

export interface FastEvaluatorStats {
  /** Checks answered by the kernel. */
  fast: number;
  /** Checks handed to the reference, by reason. */
  readonly routed: Record<RouteReason, number>;
  /** Graphs built from a snapshot. */
  graphBuilds: number;
  /** Changelog entries applied to graphs. */
  changesApplied: number;
  /** Batches (per tenant) sent to the worker pool. */
  parallelBatches: number;
}

export interface FastEvaluatorOptions {
  readonly program: Program;
  readonly store: TupleStore;
  /** Nested lookups before "resolution_too_complex" (default 25, as the reference). */
  readonly maxDepth?: number;
  /**
   * Subproblem facts kept per tenant graph across checks, at most (default 262 144, rounded down to a power of
   * two; 0 turns them off). Kept for the relations whose evaluation reaches no intersection or exclusion (all of
   * them in a model without either). At the cap a new fact replaces one that has not been read since the
   * replacement hand last passed it (CLOCK, within a 4-way set).
   */
  readonly factLimit?: number;
  /**
   * Object plans kept per tenant graph, at most (default 32 768, rounded down to a power of two; 0 turns them
   * off): a node's rewrite with its object's structure read in (which relations hold tuples, the parents its
   * tuple-to-usersets follow, short edge lists), built at the second question about the node and replayed by
   * every later subject; invalidated with the facts. CLOCK replacement at the cap, as the facts.
   */
  readonly planLimit?: number;
}

/** A check's answer from the fast path: a boolean, a NexusError (resolution_too_complex), or undefined (route). */
export type FastAnswer = boolean | NexusError | undefined;

/**
 * Runs a large batch elsewhere (the Node worker pool: src/wasm-eval/parallel.ts); answers in the order of `queries`,
 * or undefined to evaluate here after all.
 */
export interface ParallelBulkRunner {
  run(tenant: string, queries: readonly CheckQuery[], revision: Revision): Promise<FastAnswer[] | undefined>;
  close(): Promise<void>;
}

/** The error the reference gives when a check needs more nested lookups than `maxDepth`. */
export function tooComplexError(query: CheckQuery, maxDepth: number): NexusError {
  return new NexusError(
    "resolution_too_complex",
    `resolving ${query.object}#${query.relation} for ${query.user} needs more than ${maxDepth} nested lookups`,
    { maxDepth },
  );
}

interface TenantState {
  graph: TupleGraph | undefined;
  pending: Promise<void> | undefined;
}

/** Word offsets of an encoded request (eval_check's arguments after the graph; eval_check_many's record). */
const W_OBJECT = 0;
const W_TYPE = 1;
const W_RELATION = 2;
const W_SUBJECT = 3;
const W_SUBJECT_RELATION = 4;
const W_WILDCARD = 5;
const W_KIND = 6;
const W_USERSET = 7;

export class FastEvaluator implements Disposable, AsyncDisposable {
  readonly compiled: CompiledProgram;
  readonly store: TupleStore;
  readonly kernel: EvaluateKernel;
  readonly stats: FastEvaluatorStats = {
    fast: 0,
    routed: { cross_tenant: 0, unsupported: 0, stale_revision: 0, unknown: 0 },
    graphBuilds: 0,
    changesApplied: 0,
    parallelBatches: 0,
  };
  /** Where batches above getParallelThreshold("bulkCheck") go (set by src/wasm-eval/parallel.ts; Node only). */
  parallel: ParallelBulkRunner | undefined;
  readonly #symbols: Symbols;
  readonly #tenants = new Map<string, TenantState>();
  /** One encoded request (its last word stays 0, as eval_check_many's records want). */
  readonly #scratch = new Uint32Array(RECORD_WORDS);
  #programPtr: number;
  #closed = false;

  /** Requires `await ready()` (src/wasm/loader.js); throws "kernel_unavailable" where the kernel cannot load. */
  constructor(options: FastEvaluatorOptions) {
    this.compiled = compileProgram(options.program, options.maxDepth ?? DEFAULT_MAX_DEPTH);
    this.store = options.store;
    this.kernel = instantiateEvaluateKernel();
    const e = this.kernel.exports;
    const block = this.compiled.block;
    this.#programPtr = e.alloc(block.byteLength) >>> 0;
    this.kernel.views.u32.set(block, this.#programPtr >>> 2);
    e.eval_set_program(this.#programPtr);
    const factLimit = options.factLimit ?? 1 << 18;
    if (!Number.isInteger(factLimit) || factLimit < 0 || factLimit > 0xffffffff) {
      throw new NexusError("invalid_argument", `factLimit must be an integer ≥ 0, got ${factLimit}`);
    }
    e.eval_set_fact_limit(factLimit);
    const planLimit = options.planLimit ?? 1 << 15;
    if (!Number.isInteger(planLimit) || planLimit < 0 || planLimit > 0xffffffff) {
      throw new NexusError("invalid_argument", `planLimit must be an integer ≥ 0, got ${planLimit}`);
    }
    e.eval_set_plan_limit(planLimit);
    this.#symbols = new Symbols(this.kernel);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Interned symbols (objects ever written, across tenants). */
  get symbolCount(): number {
    return this.#symbols.size;
  }

  /** Bytes of kernel memory held: graphs, symbols. */
  get memoryBytes(): { graphs: number; leopard: number; symbols: number; tuples: number; kernel: number } {
    let graphs = 0;
    let leopard = 0;
    let tuples = 0;
    for (const state of this.#tenants.values()) {
      if (state.graph === undefined) continue;
      graphs += state.graph.memoryBytes;
      leopard += state.graph.leopardBytes;
      tuples += state.graph.tuples + state.graph.flagged;
    }
    return {
      graphs,
      leopard,
      symbols: this.#symbols.memoryBytes,
      tuples,
      kernel: this.kernel.memory.buffer.byteLength,
    };
  }

  /**
   * The tenant's graph at exactly `revision`, building or advancing it; undefined when it cannot be had. The
   * graph may move on to a later revision at the caller's next await: check `graph.revision` (or use
   * graphIfCurrent) right before evaluating.
   */
  async graphAt(tenant: string, revision: Revision): Promise<TupleGraph | undefined> {
    this.#assertOpen();
    let state = this.#tenants.get(tenant);
    if (state === undefined) {
      state = { graph: undefined, pending: undefined };
      this.#tenants.set(tenant, state);
    }
    for (;;) {
      const graph = state.graph;
      if (graph !== undefined && graph.revision === revision) return graph;
      if (graph !== undefined && graph.revision > revision) return undefined;
      if (state.pending !== undefined) {
        await state.pending;
        continue;
      }
      const s = state;
      let failed = false;
      s.pending = this.#advance(s, tenant, revision)
        .catch(() => {
          failed = true;
        })
        .finally(() => {
          s.pending = undefined;
        });
      await s.pending;
      if (failed || this.#closed) return undefined;
      if (s.graph === undefined) return undefined;
    }
  }

  /**
   * Kernel counters over the evaluator's life: nodes resolved by walking, memo hits (within a check, or across
   * a subject's requests in a batch), kept facts used, held and invalidated, object plans replayed, built and
   * held, and membership questions the Leopard index decided (hits) or left to the walk (misses: the relation
   * was not clean, or the answer needed more depth than the budget).
   */
  get kernelStats(): {
    resolved: number;
    memoHits: number;
    factHits: number;
    factsHeld: number;
    factsInvalidated: number;
    planHits: number;
    plansBuilt: number;
    plansHeld: number;
    leopardHits: number;
    leopardMisses: number;
  } {
    const e = this.kernel.exports;
    let factsHeld = 0;
    let factsInvalidated = 0;
    let plansHeld = 0;
    for (const state of this.#tenants.values()) {
      if (state.graph === undefined) continue;
      factsHeld += state.graph.facts;
      factsInvalidated += state.graph.invalidated;
      plansHeld += state.graph.plans;
    }
    return {
      factHits: Number(e.eval_fact_hits()),
      factsHeld,
      factsInvalidated,
      planHits: Number(e.eval_plan_hits()),
      plansBuilt: Number(e.eval_plans_built()),
      plansHeld,
      resolved: Number(e.eval_resolved()),
      memoHits: Number(e.eval_memo_hits()),
      leopardHits: Number(e.eval_leopard_decided()),
      leopardMisses: Number(e.eval_leopard_undecided()),
    };
  }

  /** Forgets every kept fact (to measure cold checks; answers never need it). */
  clearFacts(): void {
    for (const state of this.#tenants.values()) {
      if (state.graph !== undefined) this.kernel.exports.graph_clear_facts(state.graph.pointer);
    }
  }

  /** Forgets every object plan (to measure cold checks; answers never need it). */
  clearPlans(): void {
    for (const state of this.#tenants.values()) {
      if (state.graph !== undefined) this.kernel.exports.graph_clear_plans(state.graph.pointer);
    }
  }

  /**
   * Brings the graphs of `tenants` to `revision` right after a write (the engine calls it before acknowledging
   * one), so the changes are applied in slices at write time and no later request pays for them or for a first
   * build. A tenant without a graph gets one, built in slices that yield to the event loop. Errors are left to the
   * next request's own graphAt (which retries or routes), never thrown here: the write itself succeeded.
   */
  async follow(tenants: Iterable<string>, revision: Revision): Promise<void> {
    if (this.#closed) return;
    // Once back to the event loop per write: a caller loading in a loop of awaited writes would otherwise hold
    // it for the whole load (promise continuations never let timers or I/O run).
    await yieldToLoop();
    if (this.#closed) return;
    for (const tenant of new Set(tenants)) {
      const graph = this.#tenants.get(tenant)?.graph;
      if (graph !== undefined && graph.revision >= revision) continue;
      await this.graphAt(tenant, revision);
      if (this.#closed) return;
    }
  }

  /** The revision of the tenant's graph, undefined before it is built. */
  graphRevision(tenant: string): Revision | undefined {
    return this.#tenants.get(tenant)?.graph?.revision;
  }

  /** The graph of `tenant` if it is at `revision` now (no waiting). */
  graphIfCurrent(tenant: string, revision: Revision): TupleGraph | undefined {
    const graph = this.#tenants.get(tenant)?.graph;
    return graph !== undefined && graph.revision === revision ? graph : undefined;
  }

  /** Checks one query at `revision`. */
  async check(query: CheckQuery, revision: Revision): Promise<FastAnswer> {
    if (query.subjectTenant !== query.tenant) {
      this.stats.routed.cross_tenant++;
      return undefined;
    }
    await this.#reach(query.tenant, revision);
    // Read after the wait, evaluated before the next one: another request may have moved the graph on meanwhile.
    const graph = this.graphIfCurrent(query.tenant, revision);
    if (graph === undefined) {
      this.stats.routed.stale_revision++;
      return undefined;
    }
    return this.checkOn(graph, query);
  }

  /** Checks one query on a graph (synchronous: one kernel call). */
  checkOn(graph: TupleGraph, query: CheckQuery): FastAnswer {
    if (this.#reachesIntersectionArrow(query)) {
      this.stats.routed.unsupported++;
      return undefined;
    }
    const q = this.#scratch;
    if (!this.#encode(query, q, 0)) {
      this.stats.routed.unknown++;
      return undefined;
    }
    const outcome = this.kernel.exports.eval_check(
      graph.pointer,
      q[W_OBJECT]!,
      q[W_TYPE]!,
      q[W_RELATION]!,
      q[W_SUBJECT]!,
      q[W_SUBJECT_RELATION]!,
      q[W_WILDCARD]!,
      q[W_KIND]!,
      q[W_USERSET]!,
    );
    return this.#answer(outcome, query);
  }

  /**
   * Checks many queries at `revision`, answers in request order: one kernel call per tenant, identical requests
   * evaluated once, the kept subproblem facts (a subject's memberships, an object's grants for a subject) shared
   * by every request, and in models without intersection and exclusion a subject's per-check memo carried over
   * its consecutive requests. No size limit.
   */
  async checkMany(queries: readonly CheckQuery[], revision: Revision): Promise<FastAnswer[]> {
    const answers: FastAnswer[] = new Array(queries.length).fill(undefined);
    const byTenant = new Map<string, number[]>();
    for (let i = 0; i < queries.length; i++) {
      const q = queries[i]!;
      if (q.subjectTenant !== q.tenant) {
        this.stats.routed.cross_tenant++;
        continue;
      }
      const list = byTenant.get(q.tenant);
      if (list === undefined) byTenant.set(q.tenant, [i]);
      else list.push(i);
    }
    for (const [tenant, indices] of byTenant) {
      if (this.parallel !== undefined && indices.length > getParallelThreshold("bulkCheck")) {
        const slice = indices.map((i) => queries[i]!);
        const remote = await this.parallel.run(tenant, slice, revision);
        if (remote !== undefined) {
          this.stats.parallelBatches++;
          for (const [k, i] of indices.entries()) {
            answers[i] = remote[k];
            if (remote[k] === undefined) this.stats.routed.unsupported++;
            else this.stats.fast++;
          }
          continue;
        }
      }
      await this.#reach(tenant, revision);
      const graph = this.graphIfCurrent(tenant, revision);
      if (graph === undefined) {
        this.stats.routed.stale_revision += indices.length;
        continue;
      }
      this.checkManyOn(graph, queries, indices, answers);
    }
    return answers;
  }

  /** The synchronous core of checkMany for one tenant's graph: fills `answers` at `indices`. */
  checkManyOn(
    graph: TupleGraph,
    queries: readonly CheckQuery[],
    indices: readonly number[],
    answers: FastAnswer[],
  ): void {
    const count = indices.length;
    if (count === 0) return;
    const ex = this.kernel.exports;
    const recordBytes = RECORD_WORDS * 4;
    const ptr = ex.alloc(count * recordBytes + count) >>> 0;
    try {
      // Encoded in request order; those the model does not know are left out (routed). Encoding may look a
      // string up in kernel memory and grow it: the view is taken afresh for every record.
      const scratch = this.#scratch;
      const base = ptr >>> 2;
      const encoded: number[] = [];
      for (const i of indices) {
        if (this.#reachesIntersectionArrow(queries[i]!)) {
          this.stats.routed.unsupported++;
          answers[i] = undefined;
          continue;
        }
        if (!this.#encode(queries[i]!, scratch, 0)) {
          this.stats.routed.unknown++;
          answers[i] = undefined;
          continue;
        }
        this.kernel.views.u32.set(scratch, base + encoded.length * RECORD_WORDS);
        encoded.push(i);
      }
      const n = encoded.length;
      if (n === 0) return;
      const out = ptr + n * recordBytes;
      ex.eval_check_many(graph.pointer, ptr, n, out, this.compiled.monotone ? 1 : 0);
      const u8 = this.kernel.views.u8;
      for (let j = 0; j < n; j++) {
        const i = encoded[j]!;
        answers[i] = this.#answer(u8[out + j]!, queries[i]!);
      }
    } finally {
      ex.free(ptr);
    }
  }

  /** Frees the kernel's graphs and ends the worker pool of parallel batches, if any. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const parallel = this.parallel;
    this.parallel = undefined;
    for (const state of this.#tenants.values()) state.graph?.dispose();
    this.#tenants.clear();
    this.#symbols.dispose();
    this.kernel.exports.free(this.#programPtr);
    this.#programPtr = 0;
    return parallel === undefined ? Promise.resolve() : parallel.close();
  }

  dispose(): void {
    void this.close();
  }

  [Symbol.dispose](): void {
    void this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- internals ---

  /**
   * Brings the tenant's graph to `revision` if it is behind. Callers then take graphIfCurrent() synchronously and
   * evaluate before their next await: another request may advance the graph while this one waits.
   */
  async #reach(tenant: string, revision: Revision): Promise<void> {
    if (this.graphIfCurrent(tenant, revision) === undefined) await this.graphAt(tenant, revision);
  }

  /** Whether the query's relation can reach a SpiceDB intersection arrow (its check goes to the reference). */
  #reachesIntersectionArrow(query: CheckQuery): boolean {
    const routed = this.compiled.routedRelations;
    if (routed.size === 0) return false;
    return routed.has(`${query.object.slice(0, query.object.indexOf(":"))}#${query.relation}`);
  }

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the fast evaluator is closed");
  }

  #answer(outcome: number, query: CheckQuery): FastAnswer {
    switch (outcome) {
      case Outcome.TRUE:
        this.stats.fast++;
        return true;
      case Outcome.FALSE:
      case Outcome.CYCLE:
        this.stats.fast++;
        return false;
      case Outcome.TOO_COMPLEX:
        this.stats.fast++;
        return tooComplexError(query, this.compiled.maxDepth);
      default:
        this.stats.routed.unsupported++;
        return undefined;
    }
  }

  /**
   * Writes the query's 8 words (W_* offsets) into `out` at `at` (a JavaScript array: a symbol lookup may grow
   * kernel memory); false when the model does not know its type or relation. Only Map lookups of the query's own
   * strings and array reads: the object's type comes from its symbol, the wildcard from the subject type.
   */
  #encode(query: CheckQuery, out: Uint32Array, at: number): boolean {
    const { typeIds, relationIds, rids } = this.compiled;
    const symbols = this.#symbols;
    const relation = relationIds.get(query.relation);
    const s = query.subject;
    const subjectType = typeIds.get(s.type);
    if (relation === undefined || subjectType === undefined) return false;
    let object = symbols.lookup(query.object);
    let type: number | undefined;
    if (object === undefined) {
      object = UNKNOWN_OBJECT;
      type = typeIds.get(query.object.slice(0, query.object.indexOf(":")));
      if (type === undefined) return false;
    } else {
      type = symbols.typeOf(object);
    }
    out[at + W_OBJECT] = object;
    out[at + W_TYPE] = type;
    out[at + W_RELATION] = relation;
    if (s.kind === "userset") {
      const subjectRelation = relationIds.get(s.relation);
      const rid = rids.get(`${s.type}#${s.relation}`);
      if (subjectRelation === undefined || rid === undefined) return false;
      const text = `${s.type}:${s.id}`;
      out[at + W_SUBJECT] = symbols.lookup(text) ?? (text === query.object ? object : UNKNOWN_SUBJECT);
      out[at + W_SUBJECT_RELATION] = subjectRelation;
      out[at + W_WILDCARD] = ABSENT;
      out[at + W_KIND] = typeIds.size + rid;
      out[at + W_USERSET] = 1;
      return true;
    }
    const subject = symbols.lookup(query.user) ?? (query.user === query.object ? object : UNKNOWN_SUBJECT);
    out[at + W_SUBJECT] = subject;
    out[at + W_SUBJECT_RELATION] = NO_REL;
    out[at + W_WILDCARD] =
      s.kind === "wildcard"
        ? subject === UNKNOWN_SUBJECT
          ? ABSENT
          : subject
        : symbols.wildcardOf(subjectType);
    out[at + W_KIND] = subjectType;
    out[at + W_USERSET] = 0;
    return true;
  }

  async #advance(state: TenantState, tenant: string, revision: Revision): Promise<void> {
    const graph = state.graph;
    if (graph === undefined) {
      state.graph = await this.#build(tenant, revision);
      return;
    }
    let after = graph.revision;
    while (after < revision) {
      let changes: StoredChange[];
      try {
        changes = await this.store.changesAfter(after, CHANGES_PAGE);
      } catch (error) {
        if (error instanceof NexusError && error.code === "invalid_token") {
          // The changelog no longer reaches back to the graph: build it again from a snapshot.
          graph.dispose();
          state.graph = undefined;
          state.graph = await this.#build(tenant, revision);
          return;
        }
        throw error;
      }
      if (this.#closed || graph.disposed) return;
      if (changes.length === 0) break;
      try {
        let applied = 0;
        for (const change of changes) {
          if (change.revision > revision) break;
          if (change.tuple.tenant === tenant) {
            graph.apply(change.tuple, change.op);
            this.stats.changesApplied++;
            if (++applied % BUILD_SLICE === 0) {
              // A write of many tuples is one revision: apply it in slices, back to the event loop between
              // them. Meanwhile the graph is between revisions, so it answers none (MID_REVISION): requests wait
              // for this advance in graphAt.
              graph.revision = MID_REVISION;
              await yieldToLoop();
              if (this.#closed || graph.disposed) return;
            }
          }
          after = change.revision;
        }
      } catch (error) {
        // A trap (memory could not grow) mid-update: the graph is no longer a revision's; drop it.
        graph.dispose();
        state.graph = undefined;
        throw error;
      }
      // Pages never split a revision, so the graph is exactly at `after` now.
      graph.revision = after;
      if (changes[changes.length - 1]!.revision >= revision) break;
      await yieldToLoop();
      if (this.#closed || graph.disposed) return;
    }
    // Every change up to `revision` is applied (revisions without a change to this tenant included).
    graph.revision = revision;
  }

  async #build(tenant: string, revision: Revision): Promise<TupleGraph | undefined> {
    let snapshot: Awaited<ReturnType<TupleStore["snapshot"]>>;
    try {
      snapshot = await this.store.snapshot(revision);
    } catch (error) {
      if (error instanceof NexusError && error.code === "invalid_token") return undefined;
      throw error;
    }
    try {
      const tuples = await snapshot.read({ tenant });
      if (this.#closed) return undefined;
      const graph = new TupleGraph(this.kernel, this.compiled, this.#symbols, tenant, revision);
      // A bulk load: the Leopard index is built once, at its first question, not edge by edge.
      graph.deferLeopard();
      try {
        // In slices: a million tuples applied in one go held the event loop for seconds.
        for (let i = 0; i < tuples.length; i++) {
          graph.apply(tuples[i]!, "write");
          if ((i + 1) % BUILD_SLICE === 0) {
            await yieldToLoop();
            if (this.#closed) {
              graph.dispose();
              return undefined;
            }
          }
        }
      } catch (error) {
        graph.dispose();
        throw error;
      }
      this.stats.graphBuilds++;
      return graph;
    } finally {
      snapshot.release();
    }
  }
}
