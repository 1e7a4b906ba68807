/**
 * A real Vite production build of a tiny app that imports "nexus-fast" by name, as a user's app would (the app
 * links the package from node_modules; no Vite configuration at all):
 *  - every WASM kernel is in the output exactly once, as an emitted .wasm file or (Vite inlines files under
 *    4 KiB) as base64 in the JS: the `production` condition picked the asset source, so no inline copy came along;
 *  - the OpenFGA DSL parser and roaring-wasm are in chunks loaded on demand, not in the entry's static graph;
 *  - the built app answers in headless Chromium from those assets, DSL model and all;
 *  - the same app under Vite's dev server (the package pre-bundled, as an installed one is) answers from the
 *    inlined kernels (the `development` condition), with no 404 and no warning from Vite.
 * Needs dist/ (`npm run build`).
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build, createLogger, createServer, type Rolldown } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Chromium, chromiumPath } from "../browser/chromium.js";
import { StaticServer } from "../browser/static-server.js";
import { assertDistBuilt, distDir, repoRoot } from "../runtimes/dist.js";

const app = mkdtempSync(join(tmpdir(), "nexus-fast-vite-"));
const out = join(app, "out");
let chunks: Rolldown.OutputChunk[] = [];

const main = `
import { createEngine } from "nexus-fast";
try {
  const engine = await createEngine({ model: \`model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]\` });
  await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "doc:readme" }] });
  const allowed = await engine.check({ user: "user:anne", relation: "viewer", object: "doc:readme" });
  const listed = await engine.listObjects({ user: "user:anne", relation: "viewer", type: "doc" });
  await engine.close();
  globalThis.__outcome = { ok: true, allowed, listed };
} catch (error) {
  globalThis.__outcome = { ok: false, error: String(error && error.stack ? error.stack : error) };
}
`;

beforeAll(async () => {
  assertDistBuilt({ scenario: false });
  mkdirSync(join(app, "node_modules"));
  symlinkSync(repoRoot, join(app, "node_modules", "nexus-fast"), "dir");
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  writeFileSync(join(app, "index.html"), '<!doctype html><script type="module" src="./main.js"></script>\n');
  writeFileSync(join(app, "main.js"), main);
  // `vite build` from a shell runs with NODE_ENV=production, which selects the `production` export condition;
  // vitest has set NODE_ENV=test, so the build gets the shell's value for its duration.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = "production";
  let result: Awaited<ReturnType<typeof build>>;
  try {
    result = await build({ root: app, configFile: false, logLevel: "silent", build: { outDir: out } });
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
  const outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => ("output" in r ? r.output : []));
  chunks = outputs.filter((o): o is Rolldown.OutputChunk => o.type === "chunk");
});

afterAll(() => rmSync(app, { recursive: true, force: true }));

/** Every kernel the build made (dist/wasm/*.wasm), with its bytes. */
function kernels(): { name: string; bytes: Buffer }[] {
  return readdirSync(join(distDir, "wasm"))
    .filter((file) => file.endsWith(".wasm"))
    .map((file) => ({
      name: file.slice(0, -".wasm".length),
      bytes: readFileSync(join(distDir, "wasm", file)),
    }));
}

function outputFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** The entry chunk and every chunk it imports statically: what the page loads before any dynamic import. */
function eagerChunks(): Rolldown.OutputChunk[] {
  const byName = new Map(chunks.map((c) => [c.fileName, c]));
  const seen = new Set<string>();
  const pending = chunks.filter((c) => c.isEntry).map((c) => c.fileName);
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    pending.push(...(byName.get(name)?.imports ?? []));
  }
  return chunks.filter((c) => seen.has(c.fileName));
}

describe("a Vite 8 production build of an app using nexus-fast", () => {
  it("ships each WASM kernel exactly once", () => {
    const files = outputFiles(out);
    const texts = files.filter((f) => /\.(js|html|css)$/.test(f)).map((f) => readFileSync(f, "latin1"));
    const counts = Object.fromEntries(
      kernels().map(({ name, bytes }) => {
        const asFiles = files.filter((f) => readFileSync(f).equals(bytes)).length;
        const base64 = bytes.toString("base64");
        const inlined = texts.reduce((n, text) => n + text.split(base64).length - 1, 0);
        return [name, asFiles + inlined];
      }),
    );
    expect(Object.keys(counts).length).toBeGreaterThanOrEqual(5);
    expect(counts).toEqual(Object.fromEntries(Object.keys(counts).map((name) => [name, 1])));
    // The asset source was chosen; the esbuild-oriented one (with the inline table) was not bundled at all.
    const modules = chunks.flatMap((c) => c.moduleIds);
    expect(modules.some((id) => id.endsWith("dist/wasm/source.asset.js"))).toBe(true);
    expect(modules.filter((id) => /dist\/wasm\/(source\.browser|generated\/inline)\.js$/.test(id))).toEqual(
      [],
    );
  });

  it("keeps the OpenFGA DSL parser and roaring-wasm out of the entry's static graph", () => {
    const eager = eagerChunks().flatMap((c) => c.moduleIds);
    const lazy = chunks.filter((c) => !eagerChunks().includes(c)).flatMap((c) => c.moduleIds);
    const heavy = /node_modules\/(@openfga\/syntax-transformer|antlr4|ajv|roaring-wasm|yaml)\//;
    expect(eager.filter((id) => heavy.test(id))).toEqual([]);
    expect(lazy.some((id) => id.includes("node_modules/@openfga/syntax-transformer/"))).toBe(true);
    expect(lazy.some((id) => id.includes("node_modules/roaring-wasm/"))).toBe(true);
  });

  // test/browser/setup-chromium.ts installs Chromium where it can, fails CI without it, and says loudly when it skips.
  it.skipIf(!existsSync(chromiumPath))(
    "answers in headless Chromium from the emitted assets, loading the DSL parser on demand",
    async () => {
      await using server = await StaticServer.start();
      server.route("/", readFileSync(join(out, "index.html")), "text/html; charset=utf-8");
      server.mount("/assets/", join(out, "assets"));
      await using browser = await Chromium.launch();
      const tab = await browser.context.newPage();
      const reports: string[] = [];
      tab.on("pageerror", (error) => reports.push(error.message));
      await tab.goto(`${server.origin}/`);
      const outcome = await (
        await tab.waitForFunction(() => (globalThis as { __outcome?: unknown }).__outcome, undefined, {
          timeout: 20_000,
        })
      ).jsonValue();
      expect(outcome, reports.join("\n")).toMatchObject({ ok: true, listed: ["doc:readme"] });
      const allowed = (outcome as { allowed: unknown }).allowed;
      expect(allowed === true || (allowed as { allowed?: unknown }).allowed === true).toBe(true);
      // Every emitted kernel was fetched once, as application/wasm (the ones Vite inlined need no request).
      const emitted = readdirSync(join(out, "assets")).filter(
        (f) => f.endsWith(".wasm") && !f.includes("scalar"),
      );
      expect(emitted.length).toBeGreaterThan(0);
      for (const file of emitted) {
        expect(server.requests(new RegExp(`^/assets/${file.replace(".", "\\.")}$`))).toEqual([
          { method: "GET", path: `/assets/${file}`, status: 200, contentType: "application/wasm" },
        ]);
      }
      expect(server.requests(/\.wasm$/).every((r) => r.status === 200)).toBe(true);
    },
  );

  it.skipIf(!existsSync(chromiumPath))(
    "answers under the dev server, pre-bundled, from the inlined kernels without a 404 or a warning",
    async () => {
      const warnings: string[] = [];
      const logger = createLogger("warn");
      logger.warn = (message) => warnings.push(message);
      logger.error = (message) => warnings.push(message);
      // vitest's NODE_ENV=test is not "production", so the dev server resolves the `development` condition, as
      // `vite` (dev) from a shell does. optimizeDeps.include pre-bundles the linked package as if installed.
      const server = await createServer({
        root: app,
        configFile: false,
        customLogger: logger,
        cacheDir: join(app, ".vite"),
        optimizeDeps: { include: ["nexus-fast"] },
        server: { host: "127.0.0.1", port: 0 },
      });
      try {
        await server.listen();
        const url = server.resolvedUrls?.local[0];
        expect(url).toBeDefined();
        await using browser = await Chromium.launch();
        const tab = await browser.context.newPage();
        const failed: string[] = [];
        tab.on("response", (response) => {
          if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
        });
        await tab.goto(url!);
        const outcome = await (
          await tab.waitForFunction(() => (globalThis as { __outcome?: unknown }).__outcome, undefined, {
            timeout: 60_000,
          })
        ).jsonValue();
        expect(outcome).toMatchObject({ ok: true, listed: ["doc:readme"] });
        expect(failed.filter((line) => !line.endsWith("/favicon.ico"))).toEqual([]);
        expect(warnings).toEqual([]);
      } finally {
        await server.close();
      }
    },
  );
});
