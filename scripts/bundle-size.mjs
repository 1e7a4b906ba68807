// Measures what the package costs in a browser app, as the README's recipes build it (needs `npm run build`):
//  - esbuild (minified, browser conditions, --splitting), for `export * from "nexus-fast"` and for createEngine
//    alone: the eager part (the entry chunk and the chunks it imports statically) and each chunk loaded on demand;
//  - esbuild without --splitting (every dynamic import inlined: one file);
//  - a Vite production build of a one-check app (JS loaded at start, JS loaded on demand, .wasm assets);
//  - the playground bundle.
// Raw and gzipped bytes, and the packages that weigh most in each chunk.
// Usage: node scripts/bundle-size.mjs [package folder, default this checkout]
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const self = join(dirname(fileURLToPath(import.meta.url)), "..");
const root = resolve(process.argv[2] ?? self);
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
const sizes = (bytes) => `${kib(bytes.length)} minified, ${kib(gzipSync(bytes).length)} gzipped`;

/** The packages (or nexus-fast's own code, or the inlined kernels) that fill a chunk, heaviest first. */
function packagesOf(inputs) {
  const byPackage = new Map();
  for (const [input, { bytesInOutput }] of Object.entries(inputs)) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
    const key = match ? match[1] : /generated\/inline/.test(input) ? "WASM kernels (inline)" : "nexus-fast";
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  return [...byPackage]
    .filter(([, bytes]) => bytes >= 1024)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([key, bytes]) => `${key} ${kib(bytes)}`)
    .join(", ");
}

async function esbuild(name, contents, splitting) {
  const outdir = join(root, "out");
  const result = await build({
    stdin: { contents, resolveDir: root, loader: "js" },
    bundle: true,
    minify: true,
    splitting,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    metafile: true,
    absWorkingDir: root,
    outdir,
    logLevel: "silent",
  });
  const outputs = result.metafile.outputs;
  const code = new Map(result.outputFiles.map((f) => [f.path.slice(root.length + 1), f.contents]));
  const entry = Object.keys(outputs).find((o) => outputs[o].entryPoint === "<stdin>");
  const eager = new Set();
  const pending = [entry];
  while (pending.length > 0) {
    const output = pending.pop();
    if (eager.has(output)) continue;
    eager.add(output);
    for (const i of outputs[output].imports) if (i.kind === "import-statement") pending.push(i.path);
  }
  const concat = (set) => Buffer.concat([...set].map((o) => code.get(o)));
  console.log(`${name}${splitting ? ", esbuild --splitting" : ", esbuild (one file)"}`);
  console.log(`  loaded at start: ${sizes(concat(eager))}`);
  for (const o of eager)
    console.log(`    ${o.slice(4)}: ${packagesOf(outputs[o].inputs) || "(under 1 KiB)"}`);
  for (const [o, meta] of Object.entries(outputs)) {
    if (eager.has(o) || code.get(o).length < 1024) continue;
    console.log(`  on demand ${o.slice(4)}: ${sizes(code.get(o))} — ${packagesOf(meta.inputs)}`);
  }
}

async function vite() {
  let viteBuild;
  try {
    ({ build: viteBuild } = await import("vite"));
  } catch {
    console.log("Vite: not installed, skipped");
    return;
  }
  const app = mkdtempSync(join(tmpdir(), "nexus-fast-size-"));
  try {
    mkdirSync(join(app, "node_modules"));
    symlinkSync(root, join(app, "node_modules", "nexus-fast"), "dir");
    writeFileSync(join(app, "index.html"), '<script type="module" src="./main.js"></script>\n');
    writeFileSync(
      join(app, "main.js"),
      `import { createEngine } from "nexus-fast";
const engine = await createEngine({ model: "model\\n  schema 1.1\\ntype user\\ntype doc\\n  relations\\n    define viewer: [user]\\n" });
console.log(await engine.check({ user: "user:a", relation: "viewer", object: "doc:1" }));\n`,
    );
    process.env.NODE_ENV = "production"; // as `vite build` runs from a shell
    const result = await viteBuild({
      root: app,
      configFile: false,
      logLevel: "silent",
      build: { outDir: "out" },
    });
    const output = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
    const chunks = output.filter((o) => o.type === "chunk");
    const byName = new Map(chunks.map((c) => [c.fileName, c]));
    const eager = new Set();
    const pending = chunks.filter((c) => c.isEntry).map((c) => c.fileName);
    while (pending.length > 0) {
      const name = pending.pop();
      if (eager.has(name)) continue;
      eager.add(name);
      pending.push(...byName.get(name).imports);
    }
    const bytes = (list) =>
      Buffer.concat(list.map((o) => Buffer.from(o.type === "chunk" ? o.code : o.source)));
    console.log("Vite production build of a one-check app (DSL model)");
    console.log(`  JS loaded at start: ${sizes(bytes(chunks.filter((c) => eager.has(c.fileName))))}`);
    console.log(`  JS on demand: ${sizes(bytes(chunks.filter((c) => !eager.has(c.fileName))))}`);
    const wasm = output.filter((o) => o.type === "asset" && o.fileName.endsWith(".wasm"));
    console.log(`  .wasm assets: ${wasm.length} files, ${sizes(bytes(wasm))}`);
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
}

console.log(`measuring ${root}`);
await esbuild('root entry (export * from "nexus-fast")', 'export * from "nexus-fast";', true);
await esbuild("createEngine alone", 'export { createEngine } from "nexus-fast";', true);
await esbuild('root entry (export * from "nexus-fast")', 'export * from "nexus-fast";', false);
await vite();
const playground = join(root, "dist", "playground", "bundle.js");
if (existsSync(playground))
  console.log(`playground (dist/playground/bundle.js): ${sizes(readFileSync(playground))}`);
