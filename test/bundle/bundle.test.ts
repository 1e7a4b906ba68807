/**
 * The root entry is browser- and edge-safe: bundling "nexus-fast" for the browser pulls in no Node builtin, and
 * the Node-only entries cannot be bundled for the browser at all (their exports carry only a `node` condition,
 * so a browser resolver finds nothing: the build fails rather than shipping Node code).
 * Needs dist/ (`npm run build`): bundlers resolve the package through package.json to dist/.
 */
import { stop as stopEsbuild } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bundle, bundle } from "../runtimes/bundle.js";
import { assertDistBuilt } from "../runtimes/dist.js";
import {
  isNodeBuiltin,
  keepsDynamicRequire,
  moduleSpecifiers,
  nodeBuiltinReferences,
} from "../runtimes/node-builtins.js";

let root: Bundle;

beforeAll(async () => {
  assertDistBuilt({ scenario: false });
  root = await bundle({ entry: 'export * from "nexus-fast";', platform: "browser" });
});

afterAll(async () => {
  await stopEsbuild();
});

describe("browser bundle of the root entry", () => {
  it("contains no node: import and no require of a Node builtin", () => {
    // Every require("...") / import("...") in the output, even inside strings (ajv keeps `require("ajv/...")`
    // in its code-generation templates), is checked: none names a Node builtin, and no "node:" string exists.
    expect(nodeBuiltinReferences(root.code)).toEqual([]);
    // esbuild kept no require() it could not bundle.
    expect(keepsDynamicRequire(root.code)).toBe(false);
    // Self-contained: nothing left for the browser to resolve.
    const [output] = Object.values(root.metafile.outputs);
    expect(output?.imports).toEqual([]);
  });

  it("takes the browser kernel source and none of the Node-only modules", () => {
    expect(root.inputs).toContain("dist/index.js");
    expect(root.inputs).toContain("dist/wasm/source.browser.js");
    const nodeOnly = root.inputs.filter((input) =>
      /^dist\/(node\.js|parallel\/pool\.js|storage\/|cli\/|wasm\/source\.(node|workerd)\.js)|node_modules\/piscina\//.test(
        input,
      ),
    );
    expect(nodeOnly).toEqual([]);
    expect(root.inputs.filter((input) => isNodeBuiltin(input) || input.startsWith("<"))).toEqual([]);
  });

  it("the scanner itself sees builtins when they are there", () => {
    const code = 'import { readFile } from "node:fs/promises"; const p = require("path"); require("ajv/x");';
    expect(moduleSpecifiers(code)).toEqual(["node:fs/promises", "path", "ajv/x"]);
    expect(nodeBuiltinReferences(code)).toEqual(["node:fs/promises", "path"]);
    expect(nodeBuiltinReferences('const m = await import("worker_threads");')).toEqual(["worker_threads"]);
  });
});

describe("Node-only entries for the browser", () => {
  it.each(["nexus-fast/node", "nexus-fast/storage"])(
    "bundling %s for the browser fails to resolve",
    async (entry) => {
      await expect(bundle({ entry: `export * from "${entry}";`, platform: "browser" })).rejects.toThrow(
        new RegExp(`Could not resolve "${entry}"`),
      );
    },
  );

  it("the same entries do resolve for Node, so the failure above is the conditions at work", async () => {
    const node = await bundle({ entry: 'export * from "nexus-fast/node";', platform: "node" });
    expect(node.inputs).toContain("dist/node.js");
  });
});
