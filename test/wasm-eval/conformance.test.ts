/**
 * OpenFGA's matrix tests run through the WASM fast path (createEngine({ evaluator: "wasm", cache: false })), with
 * the engine helper's runner. The fast path must pass every assertion, and must itself answer most checks (not route
 * everything to the reference).
 */
import { describe, expect, it } from "vitest";
import { runConformanceFile } from "../../src/conformance/runner.js";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { readConformanceFile } from "../conformance/data.js";

describe("OpenFGA conformance through the WASM fast path", () => {
  for (const name of ["consolidated_1_1_tests.yaml", "abac_tests.yaml"]) {
    it(`passes every assertion of ${name}`, async () => {
      const engines: Engine[] = [];
      const report = await runConformanceFile(readConformanceFile(name), {
        createEngine: async (options) => {
          // Without the cache layers, so that every check reaches the evaluator.
          const engine = await createEngine({ ...options, evaluator: "wasm", cache: false });
          engines.push(engine);
          return engine;
        },
      });
      const summary = report.failures.map(
        (f) => `${f.test} [${f.variant}] stage ${f.stage} ${f.kind}#${f.index}: ${f.message}`,
      );
      expect(summary, `seed ${report.seed}`).toEqual([]);
      expect(report.passed).toBe(report.assertions);
      let fast = 0;
      const routed = { cross_tenant: 0, unsupported: 0, stale_revision: 0, unknown: 0 };
      for (const engine of engines) {
        expect(engine.evaluator).toBe("wasm");
        const stats = engine.wasmEvaluator!.stats;
        fast += stats.answered;
        for (const k of Object.keys(routed) as (keyof typeof routed)[]) routed[k] += stats.routed[k];
      }
      console.log(`${name}: ${fast} checks answered by the WASM evaluator; routed`, routed);
      expect(routed.stale_revision + routed.unknown + routed.cross_tenant).toBe(0);
      if (name.startsWith("consolidated")) expect(fast).toBeGreaterThan(500);
    });
  }
});
