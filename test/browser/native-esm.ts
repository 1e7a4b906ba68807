/**
 * What a browser needs to load dist/ unbundled, as native ES modules: an import map for the bare specifiers.
 *  - "nexus-fast" and "#wasm-source" come straight from package.json "exports"/"imports" under the browser
 *    conditions (what a browser-targeting resolver picks; the browser itself never reads package.json).
 *  - A third-party package whose browser build is ESM with only relative imports is served as is from
 *    node_modules/ (e.g. @assemblyscript/loader).
 *  - A package that is (or pulls in) CommonJS cannot load natively: it is pre-bundled into one ESM module exposing
 *    the names dist/ imports from it, the way a dev server (Vite's dependency pre-bundling) serves it.
 * dist/ itself stays unbundled, so the loader's `new URL("./NAME.wasm", import.meta.url)` points at dist/wasm/.
 */
import { readFileSync } from "node:fs";
import type { Metafile } from "esbuild";
import { bundle } from "../runtimes/bundle.js";
import { repoRoot } from "../runtimes/dist.js";

export interface NativeEsmPlan {
  importMap: { imports: Record<string, string> };
  /** Pre-bundled dependencies to serve: URL path -> module source. */
  prebundled: Map<string, string>;
}

/** Plans the import map from a browser bundle's metafile (which records how every bare import resolved). */
export async function planNativeEsm(metafile: Metafile): Promise<NativeEsmPlan> {
  const pkg = JSON.parse(readFileSync(`${repoRoot}package.json`, "utf8")) as {
    exports: Record<string, unknown>;
    imports: Record<string, unknown>;
  };
  const imports: Record<string, string> = {
    "nexus-fast": `/${pickBrowser(pkg.exports["."])}`,
    "#wasm-source": `/${pickBrowser(pkg.imports["#wasm-source"])}`,
  };
  const prebundled = new Map<string, string>();
  const thirdParty = new Map<string, string>(); // specifier -> resolved input path
  for (const [file, input] of Object.entries(metafile.inputs)) {
    if (!file.startsWith("dist/")) continue;
    for (const { path, original } of input.imports) {
      if (original !== undefined && !/^[./#]/.test(original) && original !== "nexus-fast") {
        thirdParty.set(original, path);
      }
    }
  }
  for (const [specifier, entry] of thirdParty) {
    if (nativeLoadable(metafile, entry)) {
      imports[specifier] = `/${entry}`;
      continue;
    }
    const names = await importedNames(metafile, specifier);
    const url = `/deps/${specifier.replace(/[^A-Za-z0-9._-]/g, "_")}.js`;
    const { code } = await bundle({
      entry: `import * as dependency from ${JSON.stringify(specifier)};\nexport const { ${names.join(", ")} } = dependency;\n`,
      platform: "browser",
    });
    prebundled.set(url, code);
    imports[specifier] = url;
  }
  return { importMap: { imports }, prebundled };
}

/** An ESM file whose whole import graph is ESM with relative imports only: a browser can load it as it is. */
function nativeLoadable(metafile: Metafile, entry: string): boolean {
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const input = metafile.inputs[file];
    if (input === undefined || input.format !== "esm") return false;
    for (const { path, original } of input.imports) {
      if (original === undefined || !/^\.{1,2}\//.test(original)) return false;
      pending.push(path);
    }
  }
  return true;
}

/**
 * The names dist/ imports from a package: from `import { a, b as c } from "pkg"`, or, for a package dist/ only
 * imports dynamically (`await import("pkg")`, whose names are picked off the namespace at run time), every name
 * the package exports as Node's ESM loader sees it.
 */
async function importedNames(metafile: Metafile, specifier: string): Promise<string[]> {
  const names = new Set<string>();
  let dynamic = false;
  const quoted = specifier.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  for (const file of Object.keys(metafile.inputs)) {
    if (!file.startsWith("dist/")) continue;
    const source = readFileSync(`${repoRoot}${file}`, "utf8");
    if (new RegExp(`import\\(\\s*["']${quoted}["']\\s*\\)`).test(source)) dynamic = true;
    for (const statement of source.matchAll(
      new RegExp(`import\\s*([^;]*?)\\s*from\\s*["']${quoted}["']`, "g"),
    )) {
      const clause = statement[1]!.trim();
      const named = /^\{([^}]*)\}$/.exec(clause);
      if (named === null) {
        throw new Error(
          `${file} imports ${specifier} as \`${clause}\`: extend importedNames() for this form`,
        );
      }
      for (const part of named[1]!.split(",")) {
        const name = part.trim().split(/\s+as\s+/)[0];
        if (name) names.add(name);
      }
    }
  }
  if (dynamic) {
    for (const name of Object.keys((await import(specifier)) as object)) {
      if (name !== "default" && /^[A-Za-z_$][\w$]*$/.test(name)) names.add(name);
    }
  }
  if (names.size === 0) throw new Error(`found no import of ${specifier} in dist/`);
  return [...names].sort();
}

/** Node's conditional-exports walk for the conditions ["browser", "import", "default"]; returns a repo path. */
function pickBrowser(target: unknown): string {
  if (typeof target === "string") return target.replace(/^\.\//, "");
  if (target !== null && typeof target === "object") {
    for (const [condition, value] of Object.entries(target)) {
      if (["browser", "import", "default"].includes(condition)) return pickBrowser(value);
    }
  }
  throw new Error(`package.json offers no browser target in ${JSON.stringify(target)}`);
}
