/**
 * The runtime tests drive the BUILT package (dist/), exactly as a consumer resolves it through package.json
 * "exports"/"imports". They never build it themselves: a silent build would hide a stale or broken dist/ and
 * blow the time budget. CI builds it in `npm ci` (the prepare script).
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
export const distDir = fileURLToPath(new URL("../../dist/", import.meta.url));

/** The kernels the shared scenario exercises; their .wasm must be in dist/wasm/. */
export const scenarioKernels = ["bloom", "intern"] as const;
/** The root exports the shared scenario uses besides ready(). */
const scenarioExports = ["BloomFilter", "Interner", "MemoTable"] as const;

const entryFiles = [
  "index.js",
  "wasm/loader.js",
  "wasm/source.asset.js",
  "wasm/source.browser.js",
  "wasm/source.inline.js",
  "wasm/source.node.js",
  "wasm/source.workerd.js",
  "wasm/generated/inline.js",
  "wasm/generated/names.js",
  "wasm/generated/urls.js",
  "wasm/generated/workerd.js",
];

/**
 * Throws, naming what is missing, unless dist/ holds a build the runtime tests can load. With `scenario` (the
 * default) it must also carry what the shared scenario uses: the kernels' .wasm and the root's exports.
 */
export function assertDistBuilt({ scenario = true }: { scenario?: boolean } = {}): void {
  const kernels = scenario ? scenarioKernels.map((k) => `wasm/${k}.wasm`) : [];
  const missing = [...entryFiles, ...kernels].filter((file) => !existsSync(`${distDir}${file}`));
  if (missing.length > 0) {
    throw new Error(
      `dist/ is missing ${missing.map((f) => `dist/${f}`).join(", ")}: run \`npm run build\` first ` +
        "(the runtime tests load the built package; `npm ci` builds it through the prepare script)",
    );
  }
  if (!scenario) return;
  const names = readFileSync(`${distDir}wasm/generated/names.js`, "utf8");
  const unlisted = scenarioKernels.filter((k) => !names.includes(`"${k}"`));
  if (unlisted.length > 0) {
    throw new Error(
      `dist/wasm/generated/names.js does not list kernel(s) ${unlisted.join(", ")}: dist/ is stale, ` +
        "run `npm run build`",
    );
  }
  const built = readFileSync(`${distDir}index.js`, "utf8");
  const source = readFileSync(`${repoRoot}src/index.ts`, "utf8");
  for (const name of scenarioExports) {
    if (!source.includes(name)) {
      throw new Error(
        `the package root (src/index.ts) does not export ${name}, which the runtime scenario uses`,
      );
    }
    if (!built.includes(name)) {
      throw new Error(`dist/index.js does not export ${name} (src/index.ts does): run \`npm run build\``);
    }
  }
}

/** Every kernel dist/ lists (scalar fallbacks excluded: SIMD is on in every runtime tested here). */
export function builtKernels(): string[] {
  const names = readFileSync(`${distDir}wasm/generated/names.js`, "utf8");
  const list = names.match(/kernelFiles\s*=\s*(\[[^\]]*\])/);
  if (list?.[1] === undefined) throw new Error("dist/wasm/generated/names.js has no kernelFiles list");
  return (JSON.parse(list[1]) as string[]).filter((file) => !file.endsWith(".scalar")).sort();
}
