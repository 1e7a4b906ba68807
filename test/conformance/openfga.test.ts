/**
 * OpenFGA's own matrix tests (consolidated_1_1_tests.yaml, abac_tests.yaml), run as OpenFGA's runner runs them:
 * shuffled tuples, a contextual-tuple variant for small single-stage tests, list results re-checked.
 */
import { describe, expect, it } from "vitest";
import { runConformanceFile } from "../../src/conformance/runner.js";
import { readConformanceFile } from "./data.js";

describe("OpenFGA conformance", () => {
  for (const name of ["consolidated_1_1_tests.yaml", "abac_tests.yaml"]) {
    it(`passes every assertion of ${name}`, async () => {
      const report = await runConformanceFile(readConformanceFile(name));
      const summary = report.failures.map(
        (f) => `${f.test} [${f.variant}] stage ${f.stage} ${f.kind}#${f.index}: ${f.message}`,
      );
      expect(summary, `seed ${report.seed}`).toEqual([]);
      expect(report.passed).toBe(report.assertions);
      expect(report.assertions).toBeGreaterThan(100);
    });
  }
});
