/**
 * How the Tiger layer is configured: what it is given by the chain that builds it (`TigerContext`) and the
 * options a user may set (`TigerOptions`, the engine's `cache.tiger`), with the checks `TigerResolver.open`
 * applies to them.
 */
import type { InfluenceMap } from "../../changes/influence.js";
import type { Program } from "../../model/program.js";
import type { TupleStore } from "../../tuples/types.js";
import { NexusError } from "../../util/errors.js";
import type { DepthGuard } from "../types.js";

export interface TigerContext {
  readonly program: Program;
  readonly store: TupleStore;
  readonly influence: InfluenceMap;
  readonly maxResolutionDepth?: number;
  /**
   * Where no check can reach the depth limit (default: the (type, relation) cannot recurse that far). Elsewhere
   * the layer passes questions through: an object missing from a bitmap is a denial only where the reference
   * could not have failed with "resolution_too_complex" instead.
   */
  readonly depthGuard?: DepthGuard;
}

export interface TigerOptions {
  /** Most bitmaps kept (default 10,000; the least recently used is disposed beyond it). */
  readonly maxBitmaps?: number;
  /** Checks of one (subject, permission, type) before its bitmap is materialised (default 2; 1 = at once). */
  readonly materializeAfter?: number;
  /**
   * Bring stale bitmaps forward by re-checking only the objects a change can affect (default true); false
   * re-materialises a bitmap whenever a change touched what it reads.
   */
  readonly incremental?: boolean;
  /** Most objects one incremental update re-checks before it re-materialises instead (default 256). */
  readonly maxIncrementalRechecks?: number;
  /** Changes remembered for incremental updates (default 32,768; older bitmaps are re-materialised). */
  readonly maxLoggedChanges?: number;
  /**
   * Materialise and bring bitmaps forward in the background (default false): a question whose bitmap is not
   * ready passes through to the evaluator at once, and later questions use the bitmap once it lands. The
   * engine turns this on, so no request ever waits for a materialisation.
   */
  readonly background?: boolean;
  /**
   * Check the list-objects candidates of a materialisation through the layer's inner resolver (the WASM
   * evaluator in the engine) instead of the reference evaluator (default false).
   */
  readonly checkThroughInner?: boolean;
}

export type { ObjectValidator } from "../types.js";

/** @throws NexusError "invalid_argument" for an option of the wrong kind or out of range. */
export function checkTigerOptions(options: TigerOptions): void {
  for (const [name, value] of [
    ["maxBitmaps", options.maxBitmaps],
    ["materializeAfter", options.materializeAfter],
    ["maxIncrementalRechecks", options.maxIncrementalRechecks],
    ["maxLoggedChanges", options.maxLoggedChanges],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
      throw new NexusError("invalid_argument", `tiger.${name} must be an integer ≥ 1, got ${value}`);
    }
  }
  if (options.incremental !== undefined && typeof options.incremental !== "boolean") {
    throw new NexusError(
      "invalid_argument",
      `tiger.incremental must be a boolean, got ${options.incremental}`,
    );
  }
}
