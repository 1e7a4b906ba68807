/**
 * The package in real workerd (through miniflare 3), compared with what Node answers for the same scenario.
 * The worker is bundled the way Wrangler-style tooling does for Workers: platform neutral, the workerd/worker/
 * browser conditions, .wasm imports left external. workerd refuses to compile WebAssembly from bytes at run
 * time, so the package's workerd kernel source imports each kernel as a pre-compiled module ("CompiledWasm").
 * Needs dist/ (`npm run build`).
 */
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import { stop as stopEsbuild } from "esbuild";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bundle, bundle, scenarioEntry } from "../runtimes/bundle.js";
import { assertDistBuilt, builtKernels, distDir } from "../runtimes/dist.js";
import { keepsDynamicRequire, nodeBuiltinReferences } from "../runtimes/node-builtins.js";
import { runScenarioInNode } from "../runtimes/node-runner.js";
import { type RuntimeOutcome, unwrap } from "../runtimes/outcome.js";
import { activeResources, settle } from "../runtimes/resources.js";
import type { ScenarioResult } from "../runtimes/scenario.js";

/** Where the worker module sits in workerd's module namespace; its `../NAME.wasm` imports resolve beside it. */
const modulesRoot = "/nexus-fast-worker";
const workerPath = `${modulesRoot}/worker/index.js`;

let resourcesBefore: Map<string, number>;
let expected: ScenarioResult;
let worker: Bundle;
let wasmModules: { specifier: string; path: string; kernel: string }[] = [];
let miniflare: Miniflare | undefined;

beforeAll(async () => {
  assertDistBuilt();
  resourcesBefore = activeResources();
  const [node, built] = await Promise.all([
    runScenarioInNode(),
    bundle({
      // The scenario runs per request: workerd forbids most async work at a module's top level.
      entry: scenarioEntry(`export default {
  async fetch() {
    return Response.json({ ...(await runOutcome()), where: globalThis.constructor.name });
  },
};`),
      platform: "neutral",
      mainFields: ["module", "main"],
      conditions: ["workerd", "worker", "browser"],
      external: ["*.wasm"],
    }),
  ]);
  expected = unwrap(node, "Node");
  worker = built;
  // The bundle keeps each `import x from "../NAME.wasm"` as the package's generated table wrote it (relative to
  // dist/wasm/generated/), now relative to the bundle: give workerd each kernel at that path.
  wasmModules = [...worker.code.matchAll(/\bfrom\s*"([^"]+\.wasm)"/g)].map(([, specifier]) => ({
    specifier: specifier!,
    path: posix.join(posix.dirname(workerPath), specifier!),
    kernel: posix.basename(specifier!, ".wasm"),
  }));
  miniflare = new Miniflare({
    compatibilityDate: "2025-06-01",
    modulesRoot,
    modules: [
      { type: "ESModule", path: workerPath, contents: worker.code },
      ...wasmModules.map(({ path, kernel }) => ({
        type: "CompiledWasm" as const,
        path,
        contents: readFileSync(`${distDir}wasm/${kernel}.wasm`),
      })),
    ],
  });
  await miniflare.ready;
});

afterAll(async () => {
  await miniflare?.dispose();
  await stopEsbuild();
});

describe("nexus-fast in workerd (miniflare 3)", () => {
  it("bundles with the workerd kernel source and every kernel as a .wasm module import", () => {
    expect(worker.inputs).toContain("dist/wasm/source.workerd.js");
    expect(worker.inputs).toContain("dist/wasm/generated/workerd.js");
    expect(
      worker.inputs.filter((input) => /source\.(node|browser)\.js$|generated\/inline\.js$/.test(input)),
    ).toEqual([]);
    expect(nodeBuiltinReferences(worker.code)).toEqual([]);
    expect(keepsDynamicRequire(worker.code)).toBe(false);
    // Every kernel dist/ lists is imported (scalar fallbacks too: the table holds all of them).
    const kernels = wasmModules.map((m) => m.kernel);
    expect(kernels.filter((k) => !k.endsWith(".scalar")).sort()).toEqual(builtKernels());
  });

  it("runs the scenario on fetch and answers like Node", async () => {
    const response = await miniflare!.dispatchFetch("http://nexus-fast.test/");
    expect(response.status).toBe(200);
    const outcome = (await response.json()) as RuntimeOutcome;
    expect(outcome.where).toBe("ServiceWorkerGlobalScope");
    expect(unwrap(outcome, "workerd")).toEqual(expected);
  });

  it("disposes workerd, leaving nothing running", async () => {
    await miniflare!.dispose();
    miniflare = undefined;
    await stopEsbuild();
    expect(await settle(resourcesBefore)).toEqual({ leaks: [], children: [] });
  });
});
