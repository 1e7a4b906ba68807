/**
 * The WASM evaluator as the chain's innermost layer: WasmEvaluator (src/wasm-eval/) answers what its kernel evaluates,
 * at exactly the question's revision, and hands the rest to the reference resolver. What goes to the reference: questions with contextual tuples (never given to the kernel), and whatever
 * the WASM evaluator routes itself (another subject tenant, a conditional / expiring / cross-tenant tuple on the way,
 * a revision older than its graph; see src/wasm-eval/evaluator.ts).
 *
 * Given the model's influence map and the chain's depth guard, the layer hands the evaluator the subject rule's
 * part that the symbols cannot answer (src/wasm-eval/evaluator.ts): a question whose subject and its type's
 * wildcard no tuple names is denied without running the kernel when its (type, relation) can evaluate no condition
 * and passes the depth guard, as the Bloom layer's subject rule (src/pipeline/bloom-negative.ts). The object rule
 * needs nothing: the kernel answers a question about an object no tuple names FALSE at its first step.
 *
 * A kernel answer never depends on time: a check that reads a node holding an expiring tuple is routed, so its
 * `validUntil` is Infinity. The kernel does not report which tuple lists it read, so caches above fall back to
 * the Program's class-level influence for its answers.
 *
 * Owner: closing the layer closes the WasmEvaluator (its kernel memory, and a worker pool if one was attached)
 * and the reference resolver.
 */
import type { InfluenceMap } from "../changes/influence.js";
import type { UnknownSubjectRule, WasmAnswer, WasmEvaluator } from "../wasm-eval/evaluator.js";
import { throwIfAborted } from "./reference.js";
import {
  type BatchOutcome,
  type CheckResolver,
  type DepthGuard,
  LayerCounters,
  type LayerStats,
  promised,
  type Resolution,
  type ResolvedCheck,
  resolveRest,
} from "./types.js";

export class WasmResolver implements CheckResolver {
  readonly layer = "wasm-evaluator";
  readonly wasm: WasmEvaluator;
  readonly #reference: CheckResolver;
  readonly #counters = new LayerCounters();
  /** The subject rule's class test, undefined without the influence map and the depth guard. */
  readonly #unknownSubject: UnknownSubjectRule<ResolvedCheck> | undefined;
  #sharedRevision = -1;
  #allowed: Resolution = { allowed: true, revision: -1, validUntil: Number.POSITIVE_INFINITY };
  #denied: Resolution = { allowed: false, revision: -1, validUntil: Number.POSITIVE_INFINITY };

  /**
   * `reference` answers what the kernel does not (the chain's ReferenceResolver); `subjectRule` (the model's
   * influence map and the chain's depth guard) turns the subject rule on.
   */
  constructor(
    wasm: WasmEvaluator,
    reference: CheckResolver,
    subjectRule?: { readonly influence: InfluenceMap; readonly depthGuard: DepthGuard },
  ) {
    this.wasm = wasm;
    this.#reference = reference;
    if (subjectRule !== undefined) {
      const { influence, depthGuard } = subjectRule;
      // Asked only for a question whose subject no tuple names (rare): no answer kept between calls. The condition
      // test is the Bloom rule's; the evaluator's own test (no flagged tuple in the tenant, so no conditional one)
      // already implies it, so it only guards against that ever changing.
      this.#unknownSubject = (c) =>
        !influence.mayEvaluateConditions(c.objectType, c.relation) && depthGuard(c);
    }
  }

  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    return promised(() => this.resolveNow(check, signal));
  }

  /** The kernel's answer itself when the graph is current (no promise), else a promise of it or the reference's. */
  resolveNow(check: ResolvedCheck, signal?: AbortSignal): Resolution | Promise<Resolution> {
    throwIfAborted(signal);
    this.#counters.requests++;
    if (check.contextualTuples.length === 0) {
      const answer = this.wasm.checkNow(check, check.revision, this.#unknownSubject);
      if (answer instanceof Promise) {
        return answer.then((a) => {
          throwIfAborted(signal);
          return this.#settled(a, check, signal);
        });
      }
      return this.#settled(answer, check, signal);
    }
    this.#counters.misses++;
    return this.#reference.resolve(check, signal);
  }

  resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    return promised(() => this.resolveManyNow(checks, signal));
  }

  /**
   * The kernel's answers themselves for a batch at one revision on a current graph, with nothing routed (no
   * promise), else a promise of the outcomes.
   */
  resolveManyNow(
    checks: readonly ResolvedCheck[],
    signal?: AbortSignal,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    throwIfAborted(signal);
    const count = checks.length;
    this.#counters.requests += count;
    const outcomes: (BatchOutcome | undefined)[] = new Array(count).fill(undefined);
    if (count === 0) return outcomes as BatchOutcome[];
    // The common case: one revision, no contextual tuples: one kernel batch, in place.
    const revision = checks[0]!.revision;
    let plain = true;
    for (let i = 0; i < count; i++) {
      const c = checks[i]!;
      if (c.revision !== revision || c.contextualTuples.length > 0) {
        plain = false;
        break;
      }
    }
    if (!plain) return this.#resolveGrouped(checks, outcomes, signal);
    const answers = this.wasm.checkManyNow(checks, revision, this.#unknownSubject);
    if (answers instanceof Promise) {
      return answers.then((a) => {
        for (let i = 0; i < count; i++) outcomes[i] = this.#resolution(a[i], checks[i]!);
        return this.#rest(checks, outcomes, signal);
      });
    }
    for (let i = 0; i < count; i++) outcomes[i] = this.#resolution(answers[i], checks[i]!);
    return this.#rest(checks, outcomes, signal);
  }

  /** A batch of several revisions or with contextual tuples: one kernel batch per revision, then the rest. */
  async #resolveGrouped(
    checks: readonly ResolvedCheck[],
    outcomes: (BatchOutcome | undefined)[],
    signal: AbortSignal | undefined,
  ): Promise<BatchOutcome[]> {
    // One kernel batch per revision (a batch's questions usually share one).
    const byRevision = new Map<number, number[]>();
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      if (c.contextualTuples.length > 0) continue;
      const group = byRevision.get(c.revision);
      if (group === undefined) byRevision.set(c.revision, [i]);
      else group.push(i);
    }
    for (const [revision, indexes] of byRevision) {
      const answers = await this.wasm.checkMany(
        indexes.map((i) => checks[i]!),
        revision,
        this.#unknownSubject,
      );
      for (let k = 0; k < indexes.length; k++) {
        const i = indexes[k]!;
        outcomes[i] = this.#resolution(answers[k], checks[i]!);
      }
    }
    return this.#rest(checks, outcomes, signal);
  }

  /** What the kernel left (routed) goes to the reference; the outcomes themselves when nothing was left. */
  #rest(
    checks: readonly ResolvedCheck[],
    outcomes: (BatchOutcome | undefined)[],
    signal: AbortSignal | undefined,
  ): BatchOutcome[] | Promise<BatchOutcome[]> {
    throwIfAborted(signal);
    const rest: number[] = [];
    for (let i = 0; i < checks.length; i++) if (outcomes[i] === undefined) rest.push(i);
    if (rest.length === 0) return outcomes as BatchOutcome[];
    this.#counters.misses += rest.length;
    return resolveRest(this.#reference, checks, rest, outcomes as BatchOutcome[], signal).then(
      () => outcomes as BatchOutcome[],
    );
  }

  /** A kernel answer as the layer's: the resolution, the error thrown, or the reference's answer (routed). */
  #settled(
    answer: WasmAnswer,
    check: ResolvedCheck,
    signal: AbortSignal | undefined,
  ): Resolution | Promise<Resolution> {
    const resolution = this.#resolution(answer, check);
    if (resolution instanceof Error) throw resolution;
    if (resolution !== undefined) return resolution;
    this.#counters.misses++;
    return this.#reference.resolve(check, signal);
  }

  stats(): LayerStats[] {
    const s = this.wasm.stats;
    const k = this.wasm.kernelStats;
    const memory = this.wasm.memoryBytes;
    const extra: Record<string, number> = {
      routedCrossTenant: s.routed.cross_tenant,
      routedUnsupported: s.routed.unsupported,
      routedStaleRevision: s.routed.stale_revision,
      routedUnknown: s.routed.unknown,
      graphBuilds: s.graphBuilds,
      changesApplied: s.changesApplied,
      parallelBatches: s.parallelBatches,
      unknownSubjects: s.unknownSubjects,
      factHits: k.factHits,
      factsHeld: k.factsHeld,
      factsInvalidated: k.factsInvalidated,
      memoHits: k.memoHits,
      leopardHits: k.leopardHits,
      leopardMisses: k.leopardMisses,
      planHits: k.planHits,
      plansBuilt: k.plansBuilt,
      plansHeld: k.plansHeld,
      // The parts the kernel accounts for (graphs, Leopard indexes, symbols), and apart from them the kernel's
      // whole memory buffer, which holds those parts and the allocator's room to grow (never touched until used).
      // Their sum, with a tuple count added in, was reported before: 228 B/tuple at 1M where the kernel held 100.
      memoryBytes: memory.graphs + memory.leopard + memory.symbols,
      kernelBufferBytes: memory.kernel,
    };
    return [this.#counters.snapshot(this.layer, true, extra), ...this.#reference.stats()];
  }

  async close(): Promise<void> {
    await this.wasm.close();
    await this.#reference.close();
  }

  /** A kernel answer as a resolution, the error it stands for, or undefined (routed to the reference). */
  #resolution(answer: WasmAnswer, check: ResolvedCheck): Resolution | Error | undefined {
    if (answer === undefined) return undefined;
    this.#counters.evaluations++;
    this.#counters.hits++;
    if (answer instanceof Error) return answer;
    // Resolutions are read-only: the two of the last revision are shared by every answer at it (no object per
    // question; the result cache keeps them as they are).
    if (check.revision !== this.#sharedRevision) {
      this.#sharedRevision = check.revision;
      this.#allowed = { allowed: true, revision: check.revision, validUntil: Number.POSITIVE_INFINITY };
      this.#denied = { allowed: false, revision: check.revision, validUntil: Number.POSITIVE_INFINITY };
    }
    return answer ? this.#allowed : this.#denied;
  }
}
