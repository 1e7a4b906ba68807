// Measures what the package costs in a browser bundle: esbuild (minified, browser conditions, as an app would
// bundle it) for the whole root entry and for an app that imports createEngine alone, plus the playground bundle;
// raw and gzipped bytes, and the inputs that weigh most. Needs `npm run build`. Usage: node scripts/bundle-size.mjs
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;

async function measure(name, contents) {
  const result = await build({
    stdin: { contents, resolveDir: root, loader: "js" },
    bundle: true,
    minify: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    metafile: true,
    outfile: "out.js",
    logLevel: "silent",
  });
  const code = result.outputFiles[0].contents;
  console.log(`${name}: ${kib(code.length)} minified, ${kib(gzipSync(code).length)} gzipped`);
  const byPackage = new Map();
  for (const [input, { bytesInOutput }] of Object.entries(Object.values(result.metafile.outputs)[0].inputs)) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
    const key = match
      ? match[1]
      : input.startsWith("dist/wasm/generated/inline")
        ? "WASM kernels (inline base64)"
        : "nexus-fast (dist/)";
    byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
  }
  for (const [key, bytes] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
    console.log(`  ${kib(bytes).padStart(9)}  ${key}`);
  }
}

await measure('root entry (import * from "nexus-fast")', 'export * from "nexus-fast";');
await measure(
  'createEngine only (import { createEngine } from "nexus-fast")',
  'export { createEngine } from "nexus-fast";',
);
{
  // With code splitting, what the engine loads on demand (the Tiger bitmap layer and roaring-wasm) is its own chunk.
  const split = await build({
    stdin: { contents: 'export { createEngine } from "nexus-fast";', resolveDir: root, loader: "js" },
    bundle: true,
    minify: true,
    splitting: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outdir: join(root, "out"),
    logLevel: "silent",
  });
  console.log("createEngine only, esbuild --splitting:");
  for (const file of split.outputFiles) {
    const name = file.path.slice(join(root, "out").length + 1);
    console.log(
      `  ${name}: ${kib(file.contents.length)} minified, ${kib(gzipSync(file.contents).length)} gzipped`,
    );
  }
}
const playground = join(root, "dist", "playground", "bundle.js");
if (existsSync(playground)) {
  const code = readFileSync(playground);
  console.log(
    `playground (dist/playground/bundle.js): ${kib(code.length)} minified, ${kib(gzipSync(code).length)} gzipped`,
  );
}
