/**
 * The WASM evaluator as the chain's innermost layer: WasmEvaluator (src/wasm-eval/) answers what its kernel evaluates,
 * at exactly the question's revision, and hands the rest to the reference resolver. What goes to the reference: questions with contextual tuples (never given to the kernel), and whatever
 * the WASM evaluator routes itself (another subject tenant, a conditional / expiring / cross-tenant tuple on the way,
 * a revision older than its graph; see src/wasm-eval/evaluator.ts).
 *
 * A kernel answer never depends on time: a check that reads a node holding an expiring tuple is routed, so its
 * `validUntil` is Infinity. The kernel does not report which tuple lists it read, so caches above fall back to
 * the Program's class-level influence for its answers.
 *
 * Owner: closing the layer closes the WasmEvaluator (its kernel memory, and a worker pool if one was attached)
 * and the reference resolver.
 */
import type { WasmAnswer, WasmEvaluator } from "../wasm-eval/evaluator.js";
import { throwIfAborted } from "./reference.js";
import {
  type BatchOutcome,
  type CheckResolver,
  LayerCounters,
  type LayerStats,
  type Resolution,
  type ResolvedCheck,
  resolveRest,
} from "./types.js";

export class WasmResolver implements CheckResolver {
  readonly layer = "wasm-evaluator";
  readonly wasm: WasmEvaluator;
  readonly #reference: CheckResolver;
  readonly #counters = new LayerCounters();
  #sharedRevision = -1;
  #allowed: Resolution = { allowed: true, revision: -1, validUntil: Number.POSITIVE_INFINITY };
  #denied: Resolution = { allowed: false, revision: -1, validUntil: Number.POSITIVE_INFINITY };

  /** `reference` answers what the kernel does not (the chain's ReferenceResolver). */
  constructor(wasm: WasmEvaluator, reference: CheckResolver) {
    this.wasm = wasm;
    this.#reference = reference;
  }

  async resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    throwIfAborted(signal);
    this.#counters.requests++;
    if (check.contextualTuples.length === 0) {
      const answer = await this.wasm.check(check, check.revision);
      throwIfAborted(signal);
      const resolution = this.#resolution(answer, check);
      if (resolution instanceof Error) throw resolution;
      if (resolution !== undefined) return resolution;
    }
    this.#counters.misses++;
    return this.#reference.resolve(check, signal);
  }

  async resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    throwIfAborted(signal);
    this.#counters.requests += checks.length;
    const outcomes: (BatchOutcome | undefined)[] = new Array(checks.length).fill(undefined);
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
      );
      for (let k = 0; k < indexes.length; k++) {
        const i = indexes[k]!;
        outcomes[i] = this.#resolution(answers[k], checks[i]!);
      }
    }
    throwIfAborted(signal);
    const rest: number[] = [];
    for (let i = 0; i < checks.length; i++) if (outcomes[i] === undefined) rest.push(i);
    this.#counters.misses += rest.length;
    await resolveRest(this.#reference, checks, rest, outcomes as BatchOutcome[], signal);
    return outcomes as BatchOutcome[];
  }

  stats(): LayerStats[] {
    const s = this.wasm.stats;
    const k = this.wasm.kernelStats;
    const extra: Record<string, number> = {
      routedCrossTenant: s.routed.cross_tenant,
      routedUnsupported: s.routed.unsupported,
      routedStaleRevision: s.routed.stale_revision,
      routedUnknown: s.routed.unknown,
      graphBuilds: s.graphBuilds,
      changesApplied: s.changesApplied,
      parallelBatches: s.parallelBatches,
      factHits: k.factHits,
      factsHeld: k.factsHeld,
      factsInvalidated: k.factsInvalidated,
      memoHits: k.memoHits,
      leopardHits: k.leopardHits,
      leopardMisses: k.leopardMisses,
      planHits: k.planHits,
      plansBuilt: k.plansBuilt,
      plansHeld: k.plansHeld,
      memoryBytes: Object.values(this.wasm.memoryBytes).reduce((a, b) => a + b, 0),
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
