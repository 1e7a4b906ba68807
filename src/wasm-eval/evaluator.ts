/**
 * The WASM evaluator of check: a private evaluator kernel holding the model (compiled to bytecode) and one
 * compiled tuple graph per tenant, each kept at a store revision by the changes the change feed delivers
 * (tenant-graphs.ts). Answers equal the reference evaluator's (src/reference/check.ts); what the kernel does not evaluate is routed back to the reference,
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
 * The subject rule (given by the caller as `unknownSubject`, the chain's WasmResolver): a question whose plain or
 * wildcard subject and its type's wildcard were never interned is answered FALSE without running the kernel, when
 * the tenant's graph holds no flagged tuple and the caller says the question's (type, relation) can neither
 * evaluate a condition nor reach the depth limit. Why that is exact: TRUE for such a subject needs a tuple naming it
 * or its type's wildcard (src/pipeline/bloom-negative.ts reads this off the reference), and every unflagged tuple's
 * subject is interned when its graph applies it (flagged ones are not: hence no flagged tuple), by this tenant's
 * graph at the question's revision or before; the interner, shared by every tenant and never shrinking, is a
 * superset of what this tenant's tuples name. With no such tuple the kernel's walk could only end FALSE, or
 * "resolution_too_complex" (what the depth guard excludes).
 *
 * Runtime-neutral (browsers, workerd, Node): no `node:` import; everything is single-threaded in the caller's realm.
 */

import type { ChangeSource } from "../changes/feed.js";
import { evaluateAbi } from "../kernels/abi/evaluate.js";
import type { Program } from "../model/program.js";
import { getParallelThreshold } from "../parallel/thresholds.js";
import type { CheckQuery } from "../reference/check.js";
import { DEFAULT_MAX_DEPTH, tooDeepError, tooManyStepsError } from "../reference/evaluation.js";
import type { Revision, TupleStore } from "../tuples/types.js";
import { NexusError } from "../util/errors.js";
import { yieldToLoop } from "../util/yield.js";
import {
  encodeCheck,
  encodeCheckWith,
  RECORD_WORDS,
  subjectText,
  W_KIND,
  W_OBJECT,
  W_RELATION,
  W_SUBJECT,
  W_SUBJECT_RELATION,
  W_TYPE,
  W_USERSET,
  W_WILDCARD,
} from "./check-encoding.js";
import { ABSENT, type CompiledProgram, compileProgram } from "./compile.js";
import type { TupleGraph } from "./graph.js";
import { type EvaluateKernel, instantiateEvaluateKernel, Outcome } from "./kernel.js";
import { Symbols } from "./symbols.js";
import { TenantGraphs } from "./tenant-graphs.js";

/** The subject word of a request whose subject was never interned (src/wasm-eval/check-encoding.ts). */
const { UNKNOWN_SUBJECT } = evaluateAbi.constants;

/**
 * Bits of eval_check_many's flags (the numbers assembly/evaluate.ts declares as BATCH_SHARE and
 * BATCH_NO_QUESTION_FACTS).
 */
const BATCH_SHARE = 1;
const BATCH_NO_QUESTION_FACTS = 2;

/** Questions of a batch the evaluator keeps buffers for between batches (request records, symbols, positions). */
const KEPT_BATCH = 4096;

export type RouteReason = "cross_tenant" | "unsupported" | "stale_revision" | "unknown";

export interface WasmEvaluatorStats {
  /** Checks answered by the kernel. */
  answered: number;
  /** Checks handed to the reference, by reason. */
  readonly routed: Record<RouteReason, number>;
  /** Graphs built from a snapshot. */
  graphBuilds: number;
  /** Changelog entries applied to graphs. */
  changesApplied: number;
  /** Batches (per tenant) sent to the worker pool. */
  parallelBatches: number;
  /** Checks (counted in `answered`) denied by the subject rule without running the kernel. */
  unknownSubjects: number;
}

export interface WasmEvaluatorOptions {
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
   * tuple-to-usersets follow, short edge lists) for a node checks reach from another object (a parent, a userset),
   * built at the second visit and replayed by every later subject; invalidated with the facts. CLOCK replacement
   * at the cap, as the facts.
   */
  readonly planLimit?: number;
  /**
   * Whether a batch keeps each question's own node as a fact (default true). Such a fact was computed at depth 0,
   * so it answers only the same question asked again; false suits an evaluator behind a result cache, which
   * answers repeats itself: a first-pass batch then skips a fact write per question (kernel time of first-pass
   * batches of the 100k peer workload about 15% lower), at the cost of re-evaluating a repeat that reaches the
   * kernel (second-pass kernel time about 40% higher). Answers are the same either way. Single checks keep them.
   */
  readonly questionFacts?: boolean;
  /**
   * The change feed the graphs follow (the engine's; or, in a worker, the replica: src/wasm-eval/replica.ts).
   * Default: the evaluator opens a feed of its own over `store` at its first graph build.
   */
  readonly feed?: ChangeSource;
}

/** A check's answer from the fast path: a boolean, a NexusError (resolution_too_complex), or undefined (route). */
export type WasmAnswer = boolean | NexusError | undefined;

/**
 * Whether the subject rule may deny `query` (asked only for a question whose subject and its type's wildcard no
 * tuple names, in a tenant without flagged tuples): its (type, relation) can evaluate no condition and no check of
 * it can reach the depth limit, at the revision asked.
 */
export type UnknownSubjectRule<Q extends CheckQuery> = (query: Q) => boolean;

/**
 * Runs a large batch elsewhere (the Node worker pool: src/wasm-eval/parallel.ts); answers in the order of `queries`,
 * or undefined to evaluate here after all.
 */
export interface ParallelBulkRunner {
  run(tenant: string, queries: readonly CheckQuery[], revision: Revision): Promise<WasmAnswer[] | undefined>;
  close(): Promise<void>;
}

/** The question as the reference's check names it in its errors (src/reference/check.ts). */
const checkNamed = (query: CheckQuery): string => `${query.object}#${query.relation} for ${query.user}`;

/** The error the reference gives when a check needs more nested lookups than `maxDepth`. */
export function tooComplexError(query: CheckQuery, maxDepth: number): NexusError {
  return tooDeepError(checkNamed(query), maxDepth);
}

/** The error the reference gives when a check takes more than MAX_RESOLUTION_STEPS steps. */
export function tooManyStepsCheckError(query: CheckQuery): NexusError {
  return tooManyStepsError(checkNamed(query));
}

export class WasmEvaluator implements Disposable, AsyncDisposable {
  readonly compiled: CompiledProgram;
  readonly store: TupleStore;
  readonly kernel: EvaluateKernel;
  readonly stats: WasmEvaluatorStats = {
    answered: 0,
    routed: { cross_tenant: 0, unsupported: 0, stale_revision: 0, unknown: 0 },
    graphBuilds: 0,
    changesApplied: 0,
    parallelBatches: 0,
    unknownSubjects: 0,
  };
  /** Where batches above getParallelThreshold("bulkCheck") go (set by src/wasm-eval/parallel.ts; Node only). */
  parallel: ParallelBulkRunner | undefined;
  readonly #symbols: Symbols;
  readonly #graphs: TenantGraphs;
  /** One encoded request (its last word stays 0, as eval_check_many's records want). */
  readonly #scratch = new Uint32Array(RECORD_WORDS);
  /**
   * A batch's request records, encoded before they go into kernel memory in one copy, and its other buffers: each
   * question's subject (#lookUp), the symbols found, the positions encoded. Reused from batch to batch up to
   * KEPT_BATCH questions (a larger batch's are dropped after it).
   */
  #recordBuffer = new Uint32Array(RECORD_WORDS * 64);
  #subjectAt = new Int32Array(64);
  #subjectKept = new Uint32Array(64);
  #found = new Uint32Array(128);
  #encoded = new Int32Array(64);
  #programPtr: number;
  /** eval_check_many's BATCH_NO_QUESTION_FACTS bit, or 0 (options.questionFacts). */
  readonly #questionFactsFlag: number;
  #closed = false;

  /** Requires `await ready()` (src/wasm/loader.js); throws "kernel_unavailable" where the kernel cannot load. */
  constructor(options: WasmEvaluatorOptions) {
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
    this.#questionFactsFlag = options.questionFacts === false ? BATCH_NO_QUESTION_FACTS : 0;
    this.#symbols = new Symbols(this.kernel);
    this.#graphs = new TenantGraphs(
      this.store,
      this.kernel,
      this.compiled,
      this.#symbols,
      this.stats,
      options.feed,
    );
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
    for (const graph of this.#graphs.graphs()) {
      graphs += graph.memoryBytes;
      leopard += graph.leopardBytes;
      tuples += graph.tuples + graph.flagged;
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
    return this.#graphs.graphAt(tenant, revision);
  }

  /**
   * The change source the graphs follow, opened if need be (from `after` when the evaluator opens its own feed):
   * other followers of the same changes (the worker pool's replicas) subscribe to it.
   */
  changeSource(after: Revision): Promise<ChangeSource> {
    this.#assertOpen();
    return this.#graphs.source(after);
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
    for (const graph of this.#graphs.graphs()) {
      factsHeld += graph.facts;
      factsInvalidated += graph.invalidated;
      plansHeld += graph.plans;
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
    for (const graph of this.#graphs.graphs()) this.kernel.exports.graph_clear_facts(graph.pointer);
  }

  /** Forgets every object plan (to measure cold checks; answers never need it). */
  clearPlans(): void {
    for (const graph of this.#graphs.graphs()) this.kernel.exports.graph_clear_plans(graph.pointer);
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
      const at = this.#graphs.graphRevision(tenant);
      if (at !== undefined && at >= revision) continue;
      await this.graphAt(tenant, revision);
      if (this.#closed) return;
    }
  }

  /** The revision of the tenant's graph, undefined before it is built. */
  graphRevision(tenant: string): Revision | undefined {
    return this.#graphs.graphRevision(tenant);
  }

  /** The graph of `tenant` if it is at `revision` now (no waiting). */
  graphIfCurrent(tenant: string, revision: Revision): TupleGraph | undefined {
    return this.#graphs.graphIfCurrent(tenant, revision);
  }

  /** The kernel's interned symbols (list objects in the kernel looks its subject up and maps results back). */
  get symbols(): Symbols {
    return this.#symbols;
  }

  /** Checks one query at `revision` (with the subject rule when `unknownSubject` is given: see the header). */
  async check<Q extends CheckQuery>(
    query: Q,
    revision: Revision,
    unknownSubject?: UnknownSubjectRule<Q>,
  ): Promise<WasmAnswer> {
    if (query.subjectTenant !== query.tenant) {
      this.stats.routed.cross_tenant++;
      return undefined;
    }
    // The graph at the revision (no await when it is there already, the common case); read after any wait and
    // evaluated before the next one: another request may have moved the graph on meanwhile.
    let graph = this.graphIfCurrent(query.tenant, revision);
    if (graph === undefined) {
      await this.graphAt(query.tenant, revision);
      graph = this.graphIfCurrent(query.tenant, revision);
    }
    if (graph === undefined) {
      this.stats.routed.stale_revision++;
      return undefined;
    }
    return this.checkOn(graph, query, unknownSubject);
  }

  /**
   * check without a promise when the tenant's graph is at `revision` already (the common case: graphs follow
   * writes as they are acknowledged): the answer itself, else check's promise.
   */
  checkNow<Q extends CheckQuery>(
    query: Q,
    revision: Revision,
    unknownSubject?: UnknownSubjectRule<Q>,
  ): WasmAnswer | Promise<WasmAnswer> {
    if (query.subjectTenant !== query.tenant) {
      this.stats.routed.cross_tenant++;
      return undefined;
    }
    const graph = this.graphIfCurrent(query.tenant, revision);
    return graph === undefined
      ? this.check(query, revision, unknownSubject)
      : this.checkOn(graph, query, unknownSubject);
  }

  /**
   * checkMany without a promise for a batch in one tenant whose graph is at `revision` (and not sent to the worker
   * pool): the answers themselves, else checkMany's promise.
   */
  checkManyNow<Q extends CheckQuery>(
    queries: readonly Q[],
    revision: Revision,
    unknownSubject?: UnknownSubjectRule<Q>,
  ): WasmAnswer[] | Promise<WasmAnswer[]> {
    const count = queries.length;
    if (count === 0) return [];
    const tenant = queries[0]!.tenant;
    for (let i = 0; i < count; i++) {
      const q = queries[i]!;
      if (q.tenant !== tenant || q.subjectTenant !== tenant) {
        return this.checkMany(queries, revision, unknownSubject);
      }
    }
    if (this.parallel !== undefined && count > getParallelThreshold("bulkCheck")) {
      return this.checkMany(queries, revision, unknownSubject);
    }
    const graph = this.graphIfCurrent(tenant, revision);
    if (graph === undefined) return this.checkMany(queries, revision, unknownSubject);
    const answers: WasmAnswer[] = new Array(count).fill(undefined);
    this.#checkOn(graph, queries, undefined, count, answers, unknownSubject);
    return answers;
  }

  /** Checks one query on a graph (synchronous: one kernel call, none when the subject rule denies). */
  checkOn<Q extends CheckQuery>(
    graph: TupleGraph,
    query: Q,
    unknownSubject?: UnknownSubjectRule<Q>,
  ): WasmAnswer {
    if (this.#reachesIntersectionArrow(query)) {
      this.stats.routed.unsupported++;
      return undefined;
    }
    const q = this.#scratch;
    if (!encodeCheck(this.compiled, this.#symbols, query, q, 0)) {
      this.stats.routed.unknown++;
      return undefined;
    }
    if (unknownSubject !== undefined && this.#subjectUnknown(q, 0, graph) && unknownSubject(query)) {
      this.stats.answered++;
      this.stats.unknownSubjects++;
      return false;
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
  async checkMany<Q extends CheckQuery>(
    queries: readonly Q[],
    revision: Revision,
    unknownSubject?: UnknownSubjectRule<Q>,
  ): Promise<WasmAnswer[]> {
    const answers: WasmAnswer[] = new Array(queries.length).fill(undefined);
    // Grouped by tenant; a batch in one tenant (the common case) with no Map lookup per query.
    const byTenant = new Map<string, number[]>();
    let lastTenant: string | undefined;
    let lastList: number[] | undefined;
    for (let i = 0; i < queries.length; i++) {
      const q = queries[i]!;
      if (q.subjectTenant !== q.tenant) {
        this.stats.routed.cross_tenant++;
        continue;
      }
      if (q.tenant === lastTenant) {
        lastList!.push(i);
        continue;
      }
      let list = byTenant.get(q.tenant);
      if (list === undefined) {
        list = [];
        byTenant.set(q.tenant, list);
      }
      list.push(i);
      lastTenant = q.tenant;
      lastList = list;
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
            else this.stats.answered++;
          }
          continue;
        }
      }
      let graph = this.graphIfCurrent(tenant, revision);
      if (graph === undefined) {
        await this.graphAt(tenant, revision);
        graph = this.graphIfCurrent(tenant, revision);
      }
      if (graph === undefined) {
        this.stats.routed.stale_revision += indices.length;
        continue;
      }
      this.checkManyOn(graph, queries, indices, answers, unknownSubject);
    }
    return answers;
  }

  /** The synchronous core of checkMany for one tenant's graph: fills `answers` at `indices`. */
  checkManyOn<Q extends CheckQuery>(
    graph: TupleGraph,
    queries: readonly Q[],
    indices: readonly number[],
    answers: WasmAnswer[],
    unknownSubject?: UnknownSubjectRule<Q>,
  ): void {
    this.#checkOn(graph, queries, indices, indices.length, answers, unknownSubject);
  }

  /** checkManyOn of the queries at `indices`, or of the first `count` queries when `indices` is undefined. */
  #checkOn<Q extends CheckQuery>(
    graph: TupleGraph,
    queries: readonly Q[],
    indices: readonly number[] | undefined,
    count: number,
    answers: WasmAnswer[],
    unknownSubject: UnknownSubjectRule<Q> | undefined,
  ): void {
    if (count === 0) return;
    const ex = this.kernel.exports;
    const recordBytes = RECORD_WORDS * 4;
    const ptr = ex.alloc(count * recordBytes + count) >>> 0;
    try {
      const found = this.#lookUp(queries, indices, count);
      const n = this.#encode(graph, queries, indices, count, answers, unknownSubject, found);
      if (n === 0) return;
      this.kernel.views.u32.set(this.#recordBuffer.subarray(0, n * RECORD_WORDS), ptr >>> 2);
      const out = ptr + n * recordBytes;
      ex.eval_check_many(
        graph.pointer,
        ptr,
        n,
        out,
        (this.compiled.monotone ? BATCH_SHARE : 0) | this.#questionFactsFlag,
      );
      const u8 = this.kernel.views.u8;
      const encoded = this.#encoded;
      for (let j = 0; j < n; j++) {
        const i = encoded[j]!;
        answers[i] = this.#answer(u8[out + j]!, queries[i]!);
      }
    } finally {
      ex.free(ptr);
      this.#trimBatchBuffers();
    }
  }

  /**
   * Every question's object and subject symbols in one kernel call (a lookup each cost several times as much: a
   * copy and a call per string), into #found: the objects first (found[k] for question k), then the subjects, a
   * run of questions with one subject (a folder's files for one user) sharing one lookup, and a subject the
   * symbols' subject memo holds (one asking lately) needing none. #subjectAt[k] is question k's subject's index
   * in #found, or -1 when #subjectKept[k] is its symbol already.
   */
  #lookUp<Q extends CheckQuery>(
    queries: readonly Q[],
    indices: readonly number[] | undefined,
    count: number,
  ): Uint32Array {
    const symbols = this.#symbols;
    this.#reserveBatch(count);
    const subjectAt = this.#subjectAt;
    const subjectKept = this.#subjectKept;
    const texts: string[] = [];
    for (let k = 0; k < count; k++) texts.push(queries[indices === undefined ? k : indices[k]!]!.object);
    let lastSubject: string | undefined;
    let lastAt = -1;
    let lastKept = 0;
    for (let k = 0; k < count; k++) {
      const text = subjectText(queries[indices === undefined ? k : indices[k]!]!);
      if (text !== lastSubject) {
        lastSubject = text;
        const kept = symbols.keptSubject(text);
        if (kept === undefined) {
          texts.push(text);
          lastAt = texts.length - 1;
        } else {
          lastAt = -1;
          lastKept = kept;
        }
      }
      subjectAt[k] = lastAt;
      subjectKept[k] = lastKept;
    }
    if (this.#found.length < texts.length) this.#found = new Uint32Array(2 * texts.length);
    const found = symbols.lookupMany(texts, this.#found);
    const missing = Symbols.MISSING;
    for (let j = count; j < texts.length; j++) {
      if (found[j] !== missing) symbols.rememberSubject(texts[j]!, found[j]!);
    }
    return found;
  }

  /**
   * Encodes the looked-up questions in request order into #recordBuffer (then copied into kernel memory at once:
   * encoding may look a string up in kernel memory and grow it, so no view is held across it), their positions
   * into #encoded; returns how many. Those the model does not know are left out (routed), as are those the subject
   * rule denies (answered here).
   */
  #encode<Q extends CheckQuery>(
    graph: TupleGraph,
    queries: readonly Q[],
    indices: readonly number[] | undefined,
    count: number,
    answers: WasmAnswer[],
    unknownSubject: UnknownSubjectRule<Q> | undefined,
    found: Uint32Array,
  ): number {
    const records = this.#records(count);
    const encoded = this.#encoded;
    const subjectAt = this.#subjectAt;
    const subjectKept = this.#subjectKept;
    const missing = Symbols.MISSING;
    let n = 0;
    for (let k = 0; k < count; k++) {
      const i = indices === undefined ? k : indices[k]!;
      const query = queries[i]!;
      if (this.#reachesIntersectionArrow(query)) {
        this.stats.routed.unsupported++;
        answers[i] = undefined;
        continue;
      }
      const object = found[k]!;
      const at = subjectAt[k]!;
      const subject = at < 0 ? subjectKept[k]! : found[at]!;
      const record = n * RECORD_WORDS;
      if (
        !encodeCheckWith(
          this.compiled,
          this.#symbols,
          query,
          records,
          record,
          object === missing ? undefined : object,
          subject === missing ? undefined : subject,
        )
      ) {
        this.stats.routed.unknown++;
        answers[i] = undefined;
        continue;
      }
      if (
        unknownSubject !== undefined &&
        subject === missing &&
        this.#subjectUnknown(records, record, graph) &&
        unknownSubject(query)
      ) {
        // Denied by the subject rule: its record is left to be overwritten by the next one.
        this.stats.answered++;
        this.stats.unknownSubjects++;
        answers[i] = false;
        continue;
      }
      encoded[n++] = i;
    }
    return n;
  }

  /** Room in the batch buffers (#subjectAt, #subjectKept, #encoded) for `count` questions. */
  #reserveBatch(count: number): void {
    if (this.#encoded.length >= count) return;
    const size = Math.max(count, 2 * this.#encoded.length);
    this.#subjectAt = new Int32Array(size);
    this.#subjectKept = new Uint32Array(size);
    this.#encoded = new Int32Array(size);
  }

  /**
   * Gives back batch buffers a batch past the kept size grew: one 100k-question batch must not pin megabytes for
   * the evaluator's lifetime.
   */
  #trimBatchBuffers(): void {
    if (this.#encoded.length > KEPT_BATCH) {
      this.#subjectAt = new Int32Array(0);
      this.#subjectKept = new Uint32Array(0);
      this.#encoded = new Int32Array(0);
    }
    if (this.#found.length > 2 * KEPT_BATCH) this.#found = new Uint32Array(0);
    if (this.#recordBuffer.length > KEPT_BATCH * RECORD_WORDS) this.#recordBuffer = new Uint32Array(0);
  }

  /**
   * Frees the kernel's graphs, stops following changes (closing the evaluator's own feed) and ends the worker pool
   * of parallel batches, if any. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const parallel = this.parallel;
    this.parallel = undefined;
    const graphs = this.#graphs.close();
    this.#symbols.dispose();
    this.kernel.exports.free(this.#programPtr);
    this.#programPtr = 0;
    return Promise.all([graphs, parallel?.close()]).then(() => {});
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

  /** #recordBuffer with room for `count` request records (zeroed: each record's last word stays 0). */
  #records(count: number): Uint32Array {
    const words = count * RECORD_WORDS;
    if (this.#recordBuffer.length < words) {
      this.#recordBuffer = new Uint32Array(Math.max(words, this.#recordBuffer.length * 2));
    }
    return this.#recordBuffer;
  }

  /**
   * Whether the request encoded at `words[at]` has a plain or wildcard subject that, with its type's wildcard, was
   * never interned, on a graph holding no flagged tuple (whose subjects are not interned): the subject rule's
   * part that the symbols answer.
   */
  #subjectUnknown(words: Uint32Array, at: number, graph: TupleGraph): boolean {
    return (
      words[at + W_USERSET] === 0 &&
      words[at + W_SUBJECT] === UNKNOWN_SUBJECT &&
      words[at + W_WILDCARD] === ABSENT &&
      graph.flagged === 0
    );
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

  #answer(outcome: number, query: CheckQuery): WasmAnswer {
    switch (outcome) {
      case Outcome.TRUE:
        this.stats.answered++;
        return true;
      case Outcome.FALSE:
      case Outcome.CYCLE:
        this.stats.answered++;
        return false;
      case Outcome.TOO_COMPLEX:
        this.stats.answered++;
        return tooComplexError(query, this.compiled.maxDepth);
      case Outcome.TOO_MANY_STEPS:
        this.stats.answered++;
        return tooManyStepsCheckError(query);
      default:
        this.stats.routed.unsupported++;
        return undefined;
    }
  }
}
