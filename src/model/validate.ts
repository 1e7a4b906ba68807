/**
 * Checks a compiled Program for the rules every model language shares (referenced types and relations exist,
 * tuple-to-userset tuplesets are direct relations, no rewrite cycles without a direct path, conditions exist).
 * Each compiler (openfga.ts, spicedb.ts, nexus.ts) calls this last, so the rules live in one place.
 */
import type { Program } from "./program.js";

export function validateProgram(program: Program): Program {
  // Filled in by the engine work (issue 3): until then every compiled program is accepted as is.
  return program;
}
