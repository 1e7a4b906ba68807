/**
 * OpenFGA's matrix (../shared/conformance/) through the unchanged @openfga/sdk over HTTP against `nexus-fast serve`:
 * the conformance runner drives an SDK-backed adapter (test/server/helpers.ts), so every model, tuple, check,
 * list-objects and list-users goes over the wire. Must pass 100%.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConformanceFile } from "../../src/conformance/runner.js";
import type { NexusServer } from "../../src/server/index.js";
import { sdkEngineFactory, startTestServer } from "./helpers.js";

const folder = fileURLToPath(new URL("../../../shared/conformance/openfga/", import.meta.url));
const present = existsSync(folder);

describe.skipIf(!present)("OpenFGA conformance through the SDK over HTTP", () => {
  let server: NexusServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.close();
  });

  for (const name of ["consolidated_1_1_tests.yaml", "abac_tests.yaml"]) {
    it(`passes every assertion of ${name}`, { timeout: 600_000 }, async () => {
      const started = performance.now();
      const report = await runConformanceFile(readFileSync(`${folder}${name}`, "utf8"), {
        createEngine: sdkEngineFactory(server),
      });
      const summary = report.failures.map(
        (f) => `${f.test} [${f.variant}] stage ${f.stage} ${f.kind}#${f.index}: ${f.message}`,
      );
      console.log(
        `${name}: ${report.passed}/${report.assertions} assertions, ${report.runs} runs, ${Math.round(performance.now() - started)} ms`,
      );
      expect(summary, `seed ${report.seed}`).toEqual([]);
      expect(report.passed).toBe(report.assertions);
      expect(report.assertions).toBeGreaterThan(100);
    });
  }
});
