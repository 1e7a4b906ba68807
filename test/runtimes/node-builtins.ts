/**
 * Finds Node builtins a bundle still references. Every `import ... from "x"`, `export ... from "x"`,
 * `import("x")` and `require("x")` in the text counts, even inside strings (over-reporting is the safe side):
 * a builtin must not be named at all.
 */
import { builtinModules } from "node:module";

/** Every way a Node builtin can be named: "node:fs", "fs", "fs/promises", ... */
const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

export function isNodeBuiltin(specifier: string): boolean {
  return builtins.has(specifier) || specifier.startsWith("node:");
}

/** Module specifiers the code imports or requires. */
export function moduleSpecifiers(code: string): string[] {
  const patterns = [
    /\bimport\s*(?:[\w*{}\s,$]+\s*from\s*)?["']([^"']+)["']/g,
    /\bexport\s*[\w*{}\s,$]*\s*from\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return patterns.flatMap((pattern) => [...code.matchAll(pattern)].map((match) => match[1]!));
}

/** The Node builtins the code names as modules, plus any "node:" string at all; [] when clean. */
export function nodeBuiltinReferences(code: string): string[] {
  const named = moduleSpecifiers(code).filter(isNodeBuiltin);
  const prefixed = [...code.matchAll(/["'`](node:[\w/]+)/g)].map((match) => match[1]!);
  return [...new Set([...named, ...prefixed])].sort();
}

/** esbuild's shim for a require() it could not bundle; it throws "Dynamic require of ..." in a browser. */
export function keepsDynamicRequire(code: string): boolean {
  return code.includes("Dynamic require of");
}
