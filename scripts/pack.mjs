// Packs the built package (dist/ must be built: `npm ci` does it) into a tarball an app installs with
// `npm install ./nexus-fast-<version>.tgz`. The tarball's package.json leaves out what only a checkout uses: the
// scripts (above all `prepare`, the build: npm 11 lists a file tarball's `prepare` among the install scripts the
// app must approve through allowScripts, although it never runs it for a tarball), devDependencies, overrides and
// allowScripts (both read only in the root project). Everything else, and the files, are what `npm pack` takes.
// Usage: node scripts/pack.mjs [--pack-destination DIR]   (prints the tarball's path)
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const at = args.indexOf("--pack-destination");
const destination = resolve(at >= 0 && args[at + 1] !== undefined ? args[at + 1] : process.cwd());

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
if (!existsSync(join(root, "dist", "index.js")) || !existsSync(join(root, "dist", "wasm", "bloom.wasm"))) {
  console.error("pack: dist/ is not built; run `npm run build` (npm ci does) first");
  process.exit(1);
}
const { scripts, devDependencies, overrides, allowScripts, ...published } = pkg;

const stage = mkdtempSync(join(tmpdir(), "nexus-fast-pack-"));
try {
  writeFileSync(join(stage, "package.json"), `${JSON.stringify(published, null, 2)}\n`);
  for (const entry of pkg.files) cpSync(join(root, entry), join(stage, entry), { recursive: true });
  const out = execFileSync(
    "npm",
    ["pack", "--json", "--ignore-scripts", "--pack-destination", destination, stage],
    { cwd: stage, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  );
  const [{ filename }] = JSON.parse(out);
  console.log(join(destination, filename));
} finally {
  rmSync(stage, { recursive: true, force: true });
}
