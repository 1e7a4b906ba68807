/**
 * @marcbachmann/cel-js, the CEL runtime behind conditions (OpenFGA) and caveats (SpiceDB): 83 KiB of a minified
 * browser bundle, a sixth of the root entry, which only models with conditions or caveats need. It is loaded on
 * first need behind a dynamic import, as OpenFGA's DSL tooling is (src/model/dsl.ts), so a bundler puts it in a
 * chunk of its own that an app without conditions never fetches.
 *
 * The async paths (createEngine, compileModelAsync) load it themselves when a model names a condition or a caveat.
 * The synchronous compilers and evaluators use it once it is loaded, and otherwise fail with "not_ready".
 */
import { OnDemand } from "../util/on-demand.js";

const cel = new OnDemand(
  () => import("@marcbachmann/cel-js"),
  "the CEL runtime for conditions",
  "conditions and caveats need the CEL runtime: `await loadConditions()` first, or compile with " +
    "compileModelAsync or createEngine, which load it",
);

/** Loads the CEL runtime conditions and caveats run on. Safe to call many times and concurrently. */
export function loadConditions(): Promise<void> {
  return cel.load();
}

/** Whether the CEL runtime is loaded (synchronous compiles of models with conditions or caveats work). */
export function isConditionsLoaded(): boolean {
  return cel.loaded;
}

/**
 * The CEL runtime.
 * @throws NexusError "not_ready" before loadConditions() (createEngine and compileModelAsync call it).
 */
export function celJs(): typeof import("@marcbachmann/cel-js") {
  return cel.get();
}
