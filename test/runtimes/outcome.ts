import type { ScenarioResult } from "./scenario.js";

/**
 * What every runtime entry hands back: the scenario's result, or the error it threw (with its stack). Entries
 * may add where they ran (the global scope's class), which URLs WebAssembly.compileStreaming compiled, and what
 * the runtime resolved the package's specifiers to.
 */
export type RuntimeOutcome = ({ ok: true; result: ScenarioResult } | { ok: false; error: string }) & {
  where?: string;
  streamed?: string[];
  resolved?: Record<string, string>;
};

/** The result, or a thrown Error carrying the runtime's own message and stack. */
export function unwrap(outcome: RuntimeOutcome, runtime: string): ScenarioResult {
  if (!outcome.ok) throw new Error(`the scenario failed in ${runtime}:\n${outcome.error}`);
  return outcome.result;
}
