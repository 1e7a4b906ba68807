// Bundles the playground page (src/playground/, compiled by `build:ts` into dist/playground/) for the browser:
// one minified ES module, dist/playground/bundle.js, holding the whole engine (the WASM kernels come inlined, so
// the page needs no other asset), next to index.html. esbuild resolves the package's "browser" conditions as a
// consumer's bundler would. Run after build:ts; `npm run build` chains it.
import { copyFileSync, existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "dist", "playground");
const entry = join(outDir, "app.js");
if (!existsSync(entry)) {
  console.error(`build-playground: ${entry} is missing; run build:ts first`);
  process.exit(1);
}
await build({
  entryPoints: [entry],
  outfile: join(outDir, "bundle.js"),
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  logLevel: "warning",
});
copyFileSync(join(root, "src", "playground", "index.html"), join(outDir, "index.html"));
const kb = (statSync(join(outDir, "bundle.js")).size / 1024).toFixed(0);
console.log(`build-playground: dist/playground/index.html + bundle.js (${kb} KiB)`);
