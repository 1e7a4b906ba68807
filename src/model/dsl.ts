/**
 * OpenFGA's DSL tooling (@openfga/syntax-transformer, with its ANTLR runtime, ajv and yaml: about 360 KiB of a
 * minified browser bundle, a third of the root entry) is loaded on first need, behind a dynamic import. A bundler
 * then puts it in its own chunk, fetched only by an app that hands over DSL text or an fga.mod; JSON models,
 * SpiceDB schemas and Nexus configs never load it.
 *
 * The async paths (createEngine, compileModelAsync) load it themselves. The synchronous compilers use it once it
 * is loaded, and otherwise fail with "not_ready", the same contract the kernels have with ready().
 */
import { OnDemand } from "../util/on-demand.js";

type SyntaxTransformer = typeof import("@openfga/syntax-transformer");

const dsl = new OnDemand<SyntaxTransformer>(
  () => import("@openfga/syntax-transformer"),
  "the OpenFGA DSL parser",
  "OpenFGA DSL needs its parser, which loads on demand: use createEngine or compileModelAsync, or await loadOpenFgaDsl() before compiling DSL synchronously (OpenFGA JSON, SpiceDB and Nexus models need nothing)",
);

/** Loads OpenFGA's DSL parser and validator. Safe to call many times and concurrently. */
export function loadOpenFgaDsl(): Promise<void> {
  return dsl.load();
}

/** Whether the DSL parser is loaded (synchronous DSL compiles work). */
export function isOpenFgaDslLoaded(): boolean {
  return dsl.loaded;
}

/**
 * The loaded DSL tooling.
 * @throws NexusError "not_ready" before loadOpenFgaDsl() has settled, naming the async ways in.
 */
export function openFgaDsl(): SyntaxTransformer {
  return dsl.get();
}
