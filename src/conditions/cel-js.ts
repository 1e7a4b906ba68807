/**
 * @marcbachmann/cel-js, the CEL runtime behind conditions (OpenFGA) and caveats (SpiceDB): 83 KiB of a minified
 * browser bundle, a sixth of the root entry, which only models with conditions or caveats need. It is loaded on
 * first need behind a dynamic import, as OpenFGA's DSL tooling is (src/model/dsl.ts), so a bundler puts it in a
 * chunk of its own that an app without conditions never fetches.
 *
 * The async paths (createEngine, compileModelAsync) load it themselves when a model names a condition or a caveat.
 * The synchronous compilers and evaluators use it once it is loaded, and otherwise fail with "not_ready".
 */
import { NexusError } from "../util/errors.js";

type CelJs = typeof import("@marcbachmann/cel-js");

let loaded: CelJs | undefined;
let loading: Promise<CelJs> | undefined;

/** Loads the CEL runtime conditions and caveats run on. Safe to call many times and concurrently. */
export async function loadConditions(): Promise<void> {
  if (loaded !== undefined) return;
  loading ??= import("@marcbachmann/cel-js").then(
    (module) => {
      loaded = module;
      return module;
    },
    (cause: unknown) => {
      loading = undefined; // a failed chunk fetch may succeed when asked again
      throw new NexusError(
        "unavailable",
        `cannot load the CEL runtime for conditions: ${(cause as Error).message}`,
        undefined,
        { cause },
      );
    },
  );
  await loading;
}

/** Whether the CEL runtime is loaded (synchronous compiles of models with conditions or caveats work). */
export function isConditionsLoaded(): boolean {
  return loaded !== undefined;
}

/**
 * The CEL runtime.
 * @throws NexusError "not_ready" before loadConditions() (createEngine and compileModelAsync call it).
 */
export function celJs(): CelJs {
  if (loaded === undefined) {
    throw new NexusError(
      "not_ready",
      "conditions and caveats need the CEL runtime: `await loadConditions()` first, or compile with " +
        "compileModelAsync or createEngine, which load it",
    );
  }
  return loaded;
}
