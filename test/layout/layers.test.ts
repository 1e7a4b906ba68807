// The source layout as the README states it: top-level folders of src/ form layers, and a file imports only from
// its own folder or a lower one (type-only imports count: they couple the code a reader must know just the same),
// and no two files import each other, directly or around a loop.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

/** Lowest first. "(entry)" stands for the files directly in src/ (index.ts, node.ts): the package's entries. */
const LAYERS = [
  "util",
  "io",
  "wasm",
  "kernels",
  "parallel",
  "conditions",
  "tuples",
  "model",
  "request",
  "changes",
  "reference",
  "wasm-eval",
  "pipeline",
  "views",
  "engine",
  "conformance",
  "postgres",
  "blobs",
  "fs",
  "cluster",
  "(entry)",
  "playground",
  "server",
  "cli",
] as const;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" ? [] : sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

const IMPORT =
  /(?:import|export)\s(?:type\s)?[^'"]*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;

/** Each source file (relative to src/) with the source files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const files = sourceFiles(SRC);
  const known = new Set(files.map((file) => relative(SRC, file)));
  for (const file of files) {
    const from = relative(SRC, file);
    const targets: string[] = [];
    for (const match of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const target = normalize(join(dirname(from), match[1] ?? match[2] ?? "")).replace(/\.js$/, ".ts");
      if (known.has(target)) targets.push(target);
    }
    graph.set(from, targets);
  }
  return graph;
}

const layerOf = (file: string): string => (file.includes("/") ? file.slice(0, file.indexOf("/")) : "(entry)");

describe("source layout", () => {
  const graph = importGraph();

  it("puts every top-level folder of src/ in a layer", () => {
    const folders = new Set([...graph.keys()].map(layerOf));
    expect([...folders].filter((folder) => !(LAYERS as readonly string[]).includes(folder))).toEqual([]);
  });

  it("has no import from a lower folder to a higher one", () => {
    const rank = (file: string): number => (LAYERS as readonly string[]).indexOf(layerOf(file));
    const upward: string[] = [];
    for (const [from, targets] of graph) {
      for (const target of targets) if (rank(target) > rank(from)) upward.push(`${from} -> ${target}`);
    }
    expect(upward).toEqual([]);
  });

  it("has no import cycle between files", () => {
    // Tarjan's strongly connected components: any component of more than one file is a loop.
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const loops: string[][] = [];
    let next = 0;
    const visit = (file: string): void => {
      index.set(file, next);
      low.set(file, next);
      next++;
      stack.push(file);
      onStack.add(file);
      for (const target of graph.get(file) ?? []) {
        if (!index.has(target)) {
          visit(target);
          low.set(file, Math.min(low.get(file)!, low.get(target)!));
        } else if (onStack.has(target)) low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
      if (low.get(file) === index.get(file)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== file);
        if (component.length > 1) loops.push(component.sort());
      }
    };
    for (const file of graph.keys()) if (!index.has(file)) visit(file);
    expect(loops).toEqual([]);
  });
});
