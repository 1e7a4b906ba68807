/**
 * esbuild as a consumer's bundler would run it: entries import "nexus-fast" by name (the package self-reference,
 * resolved from the repo root), so package.json "exports"/"imports" conditions decide which dist/ files are used.
 * Entries are in-memory source strings; the shared scenario is bundled in from ./scenario.ts.
 */
import { fileURLToPath } from "node:url";
import { type BuildOptions, build, type Metafile } from "esbuild";

const runtimesDir = fileURLToPath(new URL(".", import.meta.url));

export interface BundleRequest {
  /** Source of the entry module (TypeScript allowed); relative imports resolve from test/runtimes/. */
  entry: string;
  platform: "browser" | "node" | "neutral";
  conditions?: string[];
  mainFields?: string[];
  external?: string[];
}

export interface Bundle {
  code: string;
  metafile: Metafile;
  /** Repo-relative paths of every file esbuild pulled in. */
  inputs: string[];
}

export async function bundle(request: BundleRequest): Promise<Bundle> {
  const options: BuildOptions = {
    stdin: { contents: request.entry, resolveDir: runtimesDir, sourcefile: "entry.ts", loader: "ts" },
    bundle: true,
    write: false,
    format: "esm",
    platform: request.platform,
    target: "es2022",
    metafile: true,
    logLevel: "silent",
    outfile: "out.js",
  };
  if (request.conditions !== undefined) options.conditions = request.conditions;
  if (request.mainFields !== undefined) options.mainFields = request.mainFields;
  if (request.external !== undefined) options.external = request.external;
  const result = await build(options);
  const file = result.outputFiles?.[0];
  const { metafile } = result;
  if (file === undefined || metafile === undefined) throw new Error("esbuild produced no output or metafile");
  return { code: file.text, metafile, inputs: Object.keys(metafile.inputs) };
}

/**
 * An entry module that imports the package by name and defines `runOutcome()`, which runs the scenario and
 * settles to a RuntimeOutcome (never rejects). `prelude` runs after every import has evaluated and before
 * anything calls ready(); `deliver` hands the outcome to the host (a global, postMessage, stdout, a Response).
 */
export function scenarioEntry(deliver: string, prelude = ""): string {
  return `
import * as api from "nexus-fast";
import { runScenario } from "./scenario.ts";
${prelude}
const runOutcome = () =>
  runScenario(api).then(
    (result) => ({ ok: true, result }),
    (error) => ({ ok: false, error: String(error && error.stack ? error.stack : error) }),
  );
${deliver}
`;
}
