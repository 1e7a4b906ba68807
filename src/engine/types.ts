/**
 * What the engine takes and returns: its options and the shapes of writes, batch checks, pages, reads and watches.
 * The query shapes themselves (check, list objects, list users, expand, filter) are src/request/types.ts's, shared
 * with the pipeline; they are re-exported here so the engine's module names every type its methods use.
 */

import type { ModelLimits } from "../model/index.js";
import type { ModelFormat, Program } from "../model/program.js";
import type { ChainStats, CheckChainOptions } from "../pipeline/chain.js";
import type { Consistency } from "../request/consistency.js";
import type { CheckOptions, CheckRequest } from "../request/types.js";
import type { TupleKey } from "../tuples/tuple.js";
import type { TupleStore } from "../tuples/types.js";
import type { WasmEvaluatorStats } from "../wasm-eval/evaluator.js";
import type { BatchCheckSingleResponse } from "./batch.js";

export type {
  CheckOptions,
  CheckRequest,
  ExpandRequest,
  FilterRequest,
  ListObjectsRequest,
  ListUsersRequest,
  QueryOptions,
} from "../request/types.js";

export interface EngineOptions {
  /** OpenFGA DSL or JSON, a SpiceDB schema, Nexus namespace configs, or an already compiled Program. */
  readonly model: string | object | Program;
  /** The model's language; detected when omitted. */
  readonly format?: ModelFormat;
  /** Where tuples live (default: a new in-memory store, closed with the engine). A given store is not closed. */
  readonly store?: TupleStore;
  /** Epoch milliseconds (default Date.now): expiry, quantization and the default store's commit times. */
  readonly clock?: () => number;
  /**
   * How stale a default ("minimize_latency") read may be for writes made elsewhere (another engine or process
   * sharing the store): at most this many ms (default 5000; 0 reads the latest revision every time). Writes this
   * engine acknowledged, and changes its caches' feed delivered, are always seen at once.
   */
  readonly quantizationWindowMs?: number;
  /** Nested lookups before "resolution_too_complex" (default 25, OpenFGA's). */
  readonly maxResolutionDepth?: number;
  /** Contextual tuples allowed per request (default 1000). */
  readonly maxContextualTuples?: number;
  /** Changelog retention of the default in-memory store (watch tokens older than it are "invalid_token"). */
  readonly changelog?: { readonly maxEntries?: number; readonly maxAgeMs?: number };
  /**
   * Who answers checks: "wasm" (the default where the WASM kernel loads) evaluates over a compiled tuple graph
   * and hands what it does not evaluate (contextual tuples, conditional or expiring tuples on the path,
   * cross-tenant subjects) to "reference", the TypeScript evaluator; answers are the same either way.
   * Asking for "wasm" where the kernel cannot load is "kernel_unavailable".
   */
  readonly evaluator?: "wasm" | "reference";
  /**
   * The cache and index layers in front of the evaluator (src/pipeline/builder.ts): result cache keyed by the
   * quantized revision, Bloom negative cache, singleflight, cross-tenant grant index, Tiger bitmaps, each kept
   * exact by the store's change feed. Every layer is on by default except the Bloom layer over the WASM
   * evaluator, whose interner answers its rules (`{ bloom: true }` builds it); switch one off with
   * `{ resultCache: false }`, or all of them with `false` (queries then go from validation and the revision
   * choice straight to the evaluator). `engine.stats()` counts each layer.
   */
  readonly cache?: false | EngineCacheOptions;
  /**
   * Limits a model must keep to (src/model/limits.ts: source size, nesting, types, relations per type), checked
   * before parsing; past one, "invalid_model" names it. Defaults: DEFAULT_MODEL_LIMITS.
   */
  readonly limits?: Partial<ModelLimits>;
}

/** Per-layer switches and options of the engine's check chain (each defaults to on, but see `cache`). */
export type EngineCacheOptions = Pick<
  CheckChainOptions,
  "resultCache" | "bloom" | "singleflight" | "crossTenant" | "tiger" | "warming" | "watch"
>;

/** What engine.stats() reports. */
export interface EngineStats {
  readonly evaluator: "wasm" | "reference";
  /** The check chain's counters (validate, revision, then each layer outermost first); absent with `cache: false`. */
  readonly chain?: ChainStats;
  /** The WASM evaluator's counters (answered, routed by reason, graph builds), when it is in use. */
  readonly wasm?: WasmEvaluatorStats;
}

/** Tuples to delete: what identifies a tuple (a condition or expiry given is ignored). */
export type TupleToDelete = Pick<TupleKey, "user" | "relation" | "object" | "tenant" | "subjectTenant">;

export interface WriteRequest {
  readonly writes?: readonly TupleKey[];
  readonly deletes?: readonly TupleToDelete[];
  /** The tenant of tuples that name none (default "default"). */
  readonly tenant?: string;
  /** "error" (default): writing an existing tuple rejects the whole write. "ignore": an identical one is skipped. */
  readonly onDuplicate?: "error" | "ignore";
  /** "error" (default): deleting a missing tuple rejects the whole write. "ignore": it is skipped. */
  readonly onMissing?: "error" | "ignore";
}

export interface WriteResponse {
  /** Pass as `consistency: { atLeastAsFresh: token }` to read this write. */
  readonly token: string;
  readonly revision: number;
}

/** A check of a batchCheck: a check request with an optional correlation id (generated when absent). */
export interface BatchCheckItem extends Omit<CheckRequest, "consistency"> {
  readonly correlationId?: string;
}

export interface BatchCheckRequest {
  readonly checks: readonly BatchCheckItem[];
  /** Defaults for the items that name none. */
  readonly tenant?: string;
  readonly subjectTenant?: string;
  readonly consistency?: Consistency;
}

export interface BatchCheckOptions extends CheckOptions {
  /** Checks the call may hold (default 10,000); past it the call is "invalid_argument". */
  readonly maxChecks?: number;
}

/** In request order, one entry per check: `allowed`, or (with `allowed: false`) the item's `error`. */
export interface BatchCheckResponse {
  readonly result: BatchCheckSingleResponse<BatchCheckItem>[];
}

export interface ListObjectsPage {
  readonly objects: string[];
  /** The next page's token; "" after the last page. */
  readonly continuationToken: string;
}

export interface ListUsersPage {
  readonly users: string[];
  readonly continuationToken: string;
}

export interface ReadPage {
  readonly tuples: TupleKey[];
  readonly continuationToken: string;
}

export interface ReadRequest {
  readonly tenant?: string;
  /** `type:id`, or `type:` for every object of a type. */
  readonly object?: string;
  readonly relation?: string;
  readonly user?: string;
  readonly consistency?: Consistency;
}

export interface WatchRequest {
  readonly tenant?: string;
  /** Stream the changes after this token's revision (default: changes from now on). */
  readonly after?: string;
  /** Ends the stream. */
  readonly signal?: AbortSignal;
}
