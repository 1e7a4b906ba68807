/**
 * The package in real headless Chromium, three ways, each compared with what Node answers for the same scenario:
 *  (a) bundled by esbuild for the browser (the usual app build: no .wasm asset is copied, so the loader's fetch
 *      404s and the kernels inlined at build time serve);
 *  (b) unbundled dist/ as native ES modules with an import map (the asset path: the loader stream-compiles
 *      dist/wasm/*.wasm; the inline copies are withheld so nothing else could satisfy ready()); CommonJS
 *      dependencies are pre-bundled to ESM as a dev server does (see native-esm.ts);
 *  (c) bundled into a dedicated module Web Worker whose .wasm assets sit next to it (a bundler that copies them).
 * Needs dist/ (`npm run build`) and Chromium (/usr/bin/chromium, or CHROMIUM_PATH).
 */
import { existsSync, readFileSync } from "node:fs";
import { stop as stopEsbuild, transform } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundle, scenarioEntry } from "../runtimes/bundle.js";
import { assertDistBuilt, builtKernels, distDir, repoRoot } from "../runtimes/dist.js";
import { runScenarioInNode } from "../runtimes/node-runner.js";
import { type RuntimeOutcome, unwrap } from "../runtimes/outcome.js";
import { activeResources, processesMentioning, settle } from "../runtimes/resources.js";
import type { ScenarioResult } from "../runtimes/scenario.js";
import { Chromium, chromiumPath } from "./chromium.js";
import { planNativeEsm } from "./native-esm.js";
import { StaticServer } from "./static-server.js";

/** Records the URL of every response WebAssembly.compileStreaming compiles, then compiles it unchanged. */
const compileStreamingSpy = `
const streamed = [];
const compileStreaming = WebAssembly.compileStreaming;
WebAssembly.compileStreaming = async (source) => {
  const response = await source;
  streamed.push(response.url);
  return compileStreaming.call(WebAssembly, response);
};
`;
const pageDelivery =
  "globalThis.__outcome = { ...(await runOutcome()), where: globalThis.constructor.name, streamed };";

let resourcesBefore: Map<string, number>;
let expected: ScenarioResult;
let server: StaticServer | undefined;
let browser: Chromium | undefined;
let bundledInputs: string[] = [];

beforeAll(async () => {
  assertDistBuilt();
  resourcesBefore = activeResources();
  const [node, app, worker] = await Promise.all([
    runScenarioInNode(),
    bundle({ entry: scenarioEntry(pageDelivery, compileStreamingSpy), platform: "browser" }),
    bundle({
      entry: scenarioEntry(
        "postMessage({ ...(await runOutcome()), where: globalThis.constructor.name, streamed });",
        compileStreamingSpy,
      ),
      platform: "browser",
    }),
  ]);
  expected = unwrap(node, "Node");
  bundledInputs = app.inputs;

  server = await StaticServer.start();
  // (a) the app bundle alone: no .wasm next to it.
  server.route("/bundled/app.js", app.code);
  server.route("/bundled/", page('<script type="module" src="/bundled/app.js"></script>'), html);
  // (b) dist/ as published, plus the page's own module and the scenario, transpiled but not bundled.
  server.mount("/dist/", distDir);
  server.mount("/node_modules/", `${repoRoot}node_modules`);
  server.route("/dist/wasm/generated/inline.js", "export const inlineKernels = {};\n");
  const native = await planNativeEsm(app.metafile);
  for (const [path, code] of native.prebundled) server.route(path, code);
  server.route("/runtimes/scenario.js", await transpile("test/runtimes/scenario.ts"));
  server.route(
    "/native/",
    page(
      `<script type="importmap">${JSON.stringify(native.importMap)}</script>
<script type="module">
import * as api from "nexus-fast";
import { runScenario } from "/runtimes/scenario.js";
${compileStreamingSpy}
const runOutcome = () =>
  runScenario(api).then(
    (result) => ({ ok: true, result }),
    (error) => ({ ok: false, error: String(error && error.stack ? error.stack : error) }),
  );
${pageDelivery}
</script>`,
    ),
    html,
  );
  // (c) a worker bundle deployed with its .wasm assets beside it.
  server.route("/assets/worker.js", worker.code);
  for (const kernel of builtKernels()) {
    server.route(`/assets/${kernel}.wasm`, readFileSync(`${distDir}wasm/${kernel}.wasm`));
  }
  server.route(
    "/worker/",
    page(`<script type="module">
const worker = new Worker("/assets/worker.js", { type: "module" });
globalThis.__outcome = await new Promise((resolve) => {
  worker.onmessage = (event) => resolve(event.data);
  worker.onerror = (event) => resolve({ ok: false, error: "worker error: " + event.message });
});
worker.terminate();
</script>`),
    html,
  );

  browser = await Chromium.launch();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await stopEsbuild();
});

// test/browser/setup-chromium.ts installs Chromium where it can, fails CI without it, and says loudly when it skips.
describe.skipIf(!existsSync(chromiumPath))("nexus-fast in headless Chromium", () => {
  it("(a) an esbuild browser bundle answers like Node, from the inlined kernels", async () => {
    // The browser conditions chose the browser kernel source; nothing Node- or workerd-specific came along.
    expect(bundledInputs).toContain("dist/wasm/source.browser.js");
    expect(bundledInputs).toContain("dist/wasm/generated/inline.js");
    expect(bundledInputs.filter((input) => /source\.(node|workerd)\.js$/.test(input))).toEqual([]);

    const outcome = await run("/bundled/");
    expect(outcome.where).toBe("Window");
    expect(unwrap(outcome, "Chromium (bundled)")).toEqual(expected);
    // The loader looked for the assets beside the bundle, found none, and compiled the inline copies instead.
    const wasmRequests = server!.requests(/^\/bundled\/.*\.wasm$/);
    expect(wasmRequests.map((r) => r.path).sort()).toEqual(builtKernels().map((k) => `/bundled/${k}.wasm`));
    expect(wasmRequests.every((r) => r.status === 404)).toBe(true);
    expect(outcome.streamed).toEqual([]);
  });

  it("(b) unbundled dist/ with an import map stream-compiles dist/wasm/*.wasm and answers like Node", async () => {
    const outcome = await run("/native/");
    expect(unwrap(outcome, "Chromium (native ESM)")).toEqual(expected);
    for (const kernel of builtKernels()) {
      expect(server!.requests(new RegExp(`^/dist/wasm/${kernel}\\.wasm$`))).toEqual([
        { method: "GET", path: `/dist/wasm/${kernel}.wasm`, status: 200, contentType: "application/wasm" },
      ]);
      expect(outcome.streamed).toContain(`${server!.origin}/dist/wasm/${kernel}.wasm`);
    }
    // Resolved through the import map built from package.json's browser conditions, not a bundler.
    expect(server!.requests(/^\/dist\/wasm\/source\.browser\.js$/)).toHaveLength(1);
    expect(server!.requests(/^\/dist\/wasm\/source\.(node|workerd)\.js$/)).toEqual([]);
  });

  it("(c) a dedicated Web Worker answers like Node, streaming the assets beside its bundle", async () => {
    const outcome = await run("/worker/");
    expect(outcome.where).toBe("DedicatedWorkerGlobalScope");
    expect(unwrap(outcome, "Chromium (Web Worker)")).toEqual(expected);
    expect(outcome.streamed?.sort()).toEqual(builtKernels().map((k) => `${server!.origin}/assets/${k}.wasm`));
  });

  it("closes the browser and the server, leaving nothing running", async () => {
    const profile = browser!.userDataDir;
    await browser!.close();
    await server!.close();
    await stopEsbuild();
    expect(server!.listening).toBe(false);
    expect(await settle(resourcesBefore)).toEqual({ leaks: [], children: [] });
    expect(processesMentioning(profile)).toEqual([]);
  });
});

/** Loads a page and waits for the outcome it publishes; on failure, says what the page reported. */
async function run(path: string): Promise<RuntimeOutcome> {
  const tab = await browser!.context.newPage();
  const reports: string[] = [];
  tab.on("pageerror", (error) => reports.push(`page error: ${error.message}`));
  tab.on("console", (message) => reports.push(`console.${message.type()}: ${message.text()}`));
  try {
    await tab.goto(`${server!.origin}${path}`);
    const published = await tab.waitForFunction(
      () => (globalThis as { __outcome?: unknown }).__outcome,
      undefined,
      { timeout: 20_000 },
    );
    return (await published.jsonValue()) as RuntimeOutcome;
  } catch (error) {
    throw new Error(`${path} published no outcome (${String(error)});\n${reports.join("\n")}`);
  } finally {
    await tab.close();
  }
}

const html = "text/html; charset=utf-8";

function page(body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>nexus-fast</title></head><body>${body}</body></html>`;
}

async function transpile(file: string): Promise<string> {
  const source = readFileSync(`${repoRoot}${file}`, "utf8");
  return (await transform(source, { loader: "ts", format: "esm", target: "es2022" })).code;
}
