/**
 * OpenFGA's own matrix tests (consolidated_1_1_tests.yaml, abac_tests.yaml), run as OpenFGA's runner runs them:
 * shuffled tuples, a contextual-tuple variant for small single-stage tests, list results re-checked.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runConformanceFile } from "../../src/conformance/runner.js";

const folder = fileURLToPath(new URL("../../../shared/conformance/openfga/", import.meta.url));
const present = existsSync(folder);
if (!present) console.log(`conformance data not found at ${folder}: skipping the OpenFGA matrix tests`);

describe.skipIf(!present)("OpenFGA conformance", () => {
  for (const name of ["consolidated_1_1_tests.yaml", "abac_tests.yaml"]) {
    it(`passes every assertion of ${name}`, async () => {
      const report = await runConformanceFile(readFileSync(`${folder}${name}`, "utf8"));
      const summary = report.failures.map(
        (f) => `${f.test} [${f.variant}] stage ${f.stage} ${f.kind}#${f.index}: ${f.message}`,
      );
      expect(summary, `seed ${report.seed}`).toEqual([]);
      expect(report.passed).toBe(report.assertions);
      expect(report.assertions).toBeGreaterThan(100);
    });
  }
});
