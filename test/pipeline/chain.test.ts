/**
 * The chain against the plain reference: random models, tuples and write sequences (fast-check); after every
 * step, every question through the chain (any combination of layers, single and batch entry points, the change
 * feed caught up or lagging) answers exactly what Engine.check answers at the same revision, errors included.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { CheckChain } from "../../src/pipeline/chain.js";
import { ReferenceResolver } from "../../src/pipeline/reference.js";
import type { BatchOutcome, CheckResolver, Resolution, ResolvedCheck } from "../../src/pipeline/types.js";
import { KnownRevision } from "../../src/request/consistency.js";
import type { CheckRequest } from "../../src/request/types.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { isNexusError } from "../../src/util/errors.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { type GeneratedModel, IDS, scenarioArb, subjectsOf } from "../reference/random-models.js";

/** Layer activity over every run, so the test shows the layers really answered (not just passed through). */
const totals = {
  cacheHits: 0,
  crossRevisionHits: 0,
  bloomHits: 0,
  tigerHits: 0,
  invalidations: 0,
  wasmAnswers: 0,
};

function questionsOf(model: GeneratedModel): CheckRequest[] {
  const out: CheckRequest[] = [];
  const subjects = subjectsOf(model);
  for (const type of model.types) {
    for (const relation of model.program.types.get(type)!.relations.keys()) {
      for (const id of IDS)
        for (const user of subjects) out.push({ object: `${type}:${id}`, relation, user });
    }
  }
  return out;
}

async function answerOf(run: () => Promise<boolean>): Promise<boolean | string> {
  try {
    return await run();
  } catch (error) {
    return isNexusError(error) ? `error:${error.code}` : `error:${String(error)}`;
  }
}

const stepArb = fc.record({
  toggle: fc.uniqueArray(fc.nat(200), { maxLength: 4 }),
  advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2500 })),
  waitForFeed: fc.boolean(),
  withContext: fc.boolean(),
  batch: fc.boolean(),
  consistency: fc.constantFrom("minimize_latency", "minimize_latency", "fully_consistent", "token"),
});

const layersArb = fc.record({
  // Tiny bounds exercise eviction and the forgetting of read sets.
  resultCache: fc.oneof(fc.boolean(), fc.constant({ maxEntries: 5, maxTrackedLists: 9 })),
  bloom: fc.boolean(),
  singleflight: fc.boolean(),
  watch: fc.boolean(),
  /** An evaluator that does not report its reads: the result cache falls back to class-level influence. */
  opaqueEvaluator: fc.boolean(),
  /** The WASM evaluator innermost (as the engine's default), the reference behind it for what it routes. */
  wasm: fc.boolean(),
  tiger: fc.oneof(
    fc.constant(false),
    fc.constant({ materializeAfter: 1 }),
    fc.constant({ maxBitmaps: 2 }),
    // The engine's default: built in the background, candidates checked by the inner evaluator.
    fc.constant({ materializeAfter: 1, background: true, checkThroughInner: true }),
  ),
});

/** The reference evaluator without `reads` in its answers (as an evaluator that cannot tell would be). */
class OpaqueResolver implements CheckResolver {
  readonly layer = "evaluator";
  readonly #inner: ReferenceResolver;
  constructor(inner: ReferenceResolver) {
    this.#inner = inner;
  }
  async resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    const { reads: _, ...rest } = await this.#inner.resolve(check, signal);
    return rest;
  }
  async resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    return (await this.#inner.resolveMany(checks, signal)).map((o) => {
      if (o instanceof Error) return o;
      const { reads: _, ...rest } = o;
      return rest;
    });
  }
  stats() {
    return this.#inner.stats();
  }
  close() {
    return this.#inner.close();
  }
}

describe("CheckChain equals the reference", () => {
  it("on random models, tuples and write sequences, for every combination of layers", async () => {
    await ready();
    await fc.assert(
      fc.asyncProperty(
        scenarioArb(),
        fc.array(stepArb, { minLength: 2, maxLength: 8 }),
        fc.oneof(
          fc.constant({
            resultCache: true,
            bloom: true,
            singleflight: true,
            watch: true,
            opaqueEvaluator: false,
            wasm: true,
          }),
          layersArb,
        ),
        async ({ model, tuples }, steps, layers) => {
          let time = 1_000_000;
          const clock = () => time;
          await using engine = await createEngine({
            model: model.program,
            clock,
            maxResolutionDepth: 200,
            // The oracle: the plain reference evaluator, no caches.
            evaluator: "reference",
            cache: false,
          });
          let token = (await engine.write({ writes: [{ user: "user:u0", relation: "r0", object: "t0:zz" }] }))
            .token;
          if (tuples.length > 0) token = (await engine.write({ writes: tuples })).token;
          const present = new Set(tuples.map((t) => JSON.stringify(t)));
          const { opaqueEvaluator, wasm, ...switches } = layers;
          // The chain knows the oracle's writes as an engine knows its own (so both read the same revision).
          const known = new KnownRevision(await engine.store.currentRevision());
          await using chain = await CheckChain.open({
            program: model.program,
            store: engine.store,
            clock,
            knownRevision: known,
            maxResolutionDepth: 200,
            ...switches,
            ...(wasm && !opaqueEvaluator
              ? { wasm: new WasmEvaluator({ program: model.program, store: engine.store, maxDepth: 200 }) }
              : {}),
            ...(opaqueEvaluator
              ? {
                  evaluator: new OpaqueResolver(
                    new ReferenceResolver({
                      program: model.program,
                      store: engine.store,
                      maxResolutionDepth: 200,
                    }),
                  ),
                }
              : {}),
          });
          const questions = questionsOf(model);
          for (const step of steps) {
            token = await toggle(engine, model, step.toggle, present, token);
            known.advance(await engine.store.currentRevision());
            time += step.advanceMs;
            if (step.waitForFeed) await chain.caughtUp();
            const consistency =
              step.consistency === "token"
                ? { atLeastAsFresh: token }
                : (step.consistency as "minimize_latency" | "fully_consistent");
            const requests = questions.map((q) => ({
              ...q,
              consistency,
              ...(step.withContext ? { context: { x: 3 } } : {}),
            }));
            const expected: (boolean | string)[] = [];
            for (const r of requests) expected.push(await answerOf(() => engine.check(r)));
            let actual: (boolean | string)[];
            if (step.batch && expected.every((a) => typeof a === "boolean")) {
              actual = await chain.checkMany(requests);
            } else {
              actual = [];
              for (const r of requests) actual.push(await answerOf(() => chain.check(r)));
            }
            for (let i = 0; i < requests.length; i++) {
              const q = requests[i]!;
              expect(actual[i], `${q.object}#${q.relation}@${q.user} (${JSON.stringify(step)})`).toBe(
                expected[i],
              );
            }
            // Asked again (now mostly from caches), still the same.
            for (let i = 0; i < requests.length; i += 3) {
              expect(await answerOf(() => chain.check(requests[i]!))).toBe(expected[i]);
            }
            // filter: per (subject, relation, type), the allowed objects in input order.
            const groups = new Map<string, number[]>();
            requests.forEach((r, i) => {
              const key = `${r.user}|${r.relation}|${r.object.slice(0, r.object.indexOf(":"))}`;
              groups.set(key, [...(groups.get(key) ?? []), i]);
            });
            for (const indexes of groups.values()) {
              if (indexes.some((i) => typeof expected[i] !== "boolean")) continue;
              const first = requests[indexes[0]!]!;
              const objects = indexes.map((i) => requests[i]!.object).reverse();
              const allowed = indexes.filter((i) => expected[i] === true).map((i) => requests[i]!.object);
              const filtered = await chain.filter({
                user: first.user,
                relation: first.relation,
                objects,
                consistency,
              });
              expect(filtered, `filter ${first.relation}@${first.user}`).toEqual(allowed.reverse());
            }
          }
          for (const layer of chain.stats().layers) {
            if (layer.layer === "result-cache") {
              totals.cacheHits += layer.hits;
              totals.crossRevisionHits += Number(layer.extra?.crossRevisionHits ?? 0);
              totals.invalidations += layer.invalidations;
            }
            if (layer.layer === "bloom-negative") totals.bloomHits += layer.hits;
            if (layer.layer === "tiger") totals.tigerHits += layer.hits;
            if (layer.layer === "wasm-evaluator") totals.wasmAnswers += layer.hits;
          }
        },
      ),
      { numRuns: 100 },
    );
    expect(totals.cacheHits).toBeGreaterThan(0);
    expect(totals.crossRevisionHits).toBeGreaterThan(0);
    expect(totals.invalidations).toBeGreaterThan(0);
    expect(totals.bloomHits).toBeGreaterThan(0);
    expect(totals.tigerHits).toBeGreaterThan(0);
    expect(totals.wasmAnswers).toBeGreaterThan(0);
  });
});

async function toggle(
  engine: Engine,
  model: GeneratedModel,
  picks: readonly number[],
  present: Set<string>,
  token: string,
): Promise<string> {
  if (model.slots.length === 0 || picks.length === 0) return token;
  const writes: TupleKey[] = [];
  const deletes: TupleKey[] = [];
  const seen = new Set<string>();
  for (const pick of picks) {
    const slot = model.slots[pick % model.slots.length]!;
    const identity = `${slot.object}#${slot.relation}@${slot.user}`;
    if (seen.has(identity)) continue;
    seen.add(identity);
    const text = JSON.stringify(slot);
    if (present.has(text)) {
      deletes.push({ object: slot.object, relation: slot.relation, user: slot.user });
      present.delete(text);
    } else {
      writes.push(slot);
      present.add(text);
    }
  }
  return (await engine.write({ writes, deletes })).token;
}
