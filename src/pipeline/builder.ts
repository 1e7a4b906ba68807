/**
 * The pipeline's wiring, in one place: which layers stand between a validated, pinned question and the evaluator,
 * in what order, and what each one is given (the change feed, the model's influence map, the depth guard). Outermost
 * first: result cache → Bloom negative cache → singleflight → cross-tenant grant index → Tiger bitmaps → the WASM
 * evaluator → the reference evaluator (what the WASM one routes). Each layer wraps the next, as OpenFGA's
 * `internal/graph/builder.go` wraps its local checker in cached and dispatch throttling checkers; a layer switched
 * off (or lacking the change feed it needs) is simply not built and is reported `enabled: false` in stats.
 *
 * The Bloom negative cache is on by default only over the reference evaluator (or a caller's): over the WASM
 * evaluator both of its rules are answered by the kernel's interner, which every question looks its object and
 * subject up in anyway (an object no tuple names is FALSE at the kernel's first step; the subject rule is the
 * evaluator's, src/wasm-eval/evaluator.ts), so a filter repeating the interner only cost time (on the 100k peer
 * workload, where it never denied: ~100 ms of the load, ~1.5 µs a first-pass check). `bloom: true` or options
 * still build it.
 *
 * The same builder serves `cache: false`: every layer off leaves the evaluator alone behind validation and the
 * revision choice (src/pipeline/chain.ts).
 */

import type { TupleDepthBound } from "../changes/depth.js";
import type { ChangeFeed } from "../changes/feed.js";
import type { InfluenceMap } from "../changes/influence.js";
import type { Program } from "../model/program.js";
import { DEFAULT_MAX_DEPTH } from "../reference/evaluation.js";
import type { KnownRevision } from "../request/consistency.js";
import type { TupleStore } from "../tuples/types.js";
import type { WasmEvaluator } from "../wasm-eval/evaluator.js";
import { type BloomNegativeOptions, BloomNegativeResolver } from "./bloom-negative.js";
import { type CrossTenantOptions, CrossTenantResolver } from "./cross-tenant/index.js";
import { ReferenceResolver } from "./reference.js";
import { ResultCacheResolver } from "./result-cache.js";
import { SingleflightResolver } from "./singleflight.js";
import type { TigerOptions, TigerResolver } from "./tiger/index.js";
import type { CheckResolver, DepthGuard, FilterLayer, LayerStats } from "./types.js";
import type { WarmerOptions } from "./warming/index.js";
import { WasmResolver } from "./wasm.js";

export interface CheckChainOptions {
  readonly program: Program;
  readonly store: TupleStore;
  /** Epoch ms (default Date.now); must be the store's clock. */
  readonly clock?: () => number;
  /**
   * The staleness bound for changes this chain has not seen (made elsewhere): minimize_latency reads at least the
   * state at the start of the current window of this length (default 5000 ms; 0 reads the latest).
   */
  readonly quantizationWindowMs?: number;
  /**
   * The latest revision the caller knows (an engine's acknowledged writes); the chain advances it from its change
   * feed. minimize_latency never reads older than it. Default: a new one.
   */
  readonly knownRevision?: KnownRevision;
  /** Nested lookups before "resolution_too_complex" (default 25). */
  readonly maxResolutionDepth?: number;
  /** Contextual tuples allowed per request (default 1000). */
  readonly maxContextualTuples?: number;
  /**
   * The innermost resolver (default: the TypeScript reference evaluator, or the WASM one when `wasm` is given).
   * Any CheckResolver answering at exactly the question's revision; the chain closes it.
   */
  readonly evaluator?: CheckResolver;
  /**
   * The WASM evaluator: the innermost layer becomes a WasmResolver over it, handing what the kernel does not
   * evaluate to the reference. The chain closes it.
   */
  readonly wasm?: WasmEvaluator;
  /**
   * The change feed to follow (the caller's, left open by close()). Default: the chain opens its own when a layer
   * needs one (and `watch` is not false), and closes it.
   */
  readonly feed?: ChangeFeed;
  /** The result cache (default on). */
  readonly resultCache?: boolean | { readonly maxEntries?: number };
  /**
   * The Bloom negative cache (needs the change feed). Default: on over the reference evaluator or a caller's
   * `evaluator`; off over the WASM evaluator (`wasm`, without `evaluator`), whose interner answers both its rules.
   */
  readonly bloom?: boolean | BloomNegativeOptions;
  /**
   * The cross-tenant grant index (default on; needs the change feed): denies cross-tenant questions no grant can
   * reach without evaluating them, and lists grants (`crossTenant.grantsTo` / `grantsOn`).
   */
  readonly crossTenant?: boolean | CrossTenantOptions;
  /** Singleflight (default on). */
  readonly singleflight?: boolean;
  /**
   * The Tiger cache: per (subject, permission, type) bitmaps of the allowed objects, materialised on demand
   * (default off: materialising runs a list objects, worth it for subjects asked about many objects, and for
   * `filter`).
   */
  readonly tiger?: boolean | TigerOptions;
  /**
   * Predictive warming (default on; needs the change feed): an access tracker learns which directory a user moves
   * to next and which files sit together, and warms the caches with the questions it predicts, in the background
   * within a budget (src/pipeline/warming/). `via: "filter"` warms whole listings (Tiger bitmaps when that layer is
   * on); the default `"checkMany"` fills the result cache.
   */
  readonly warming?: boolean | WarmingOptions;
  /**
   * One change feed for every cache (default on). Off: the result cache still answers within a revision, the
   * Bloom layer is off.
   */
  readonly watch?: boolean;
}

/** Warmer options the chain passes through (it supplies `warm`, `clock` and the window itself). */
export type WarmingOptions = Omit<WarmerOptions, "warm" | "clock" | "quantizationWindowMs"> & {
  readonly via?: "filter" | "checkMany";
};

/** The layers `buildLayers` made, outermost first in `outer`, with the ones the pipeline asks directly. */
export interface Layers {
  /** The outermost layer: every question enters here. */
  readonly outer: CheckResolver;
  /** The layer that answers whole filters (Tiger, when on); the pipeline's filter asks it first. */
  readonly filter: FilterLayer | undefined;
  /** The result cache, when on: a plain repeated check is looked up by its key before validation. */
  readonly resultCache: ResultCacheResolver | undefined;
  /** The cross-tenant grant index, when on (grantsTo / grantsOn). */
  readonly crossTenant: CrossTenantResolver | undefined;
  /** Stats rows of the layers not built. */
  readonly disabled: readonly LayerStats[];
  /** Removes the layers' feed subscriptions (before the layers close). */
  readonly unsubscribe: readonly (() => void)[];
}

/** What every layer is given besides its own options. */
export interface LayerContext {
  readonly program: Program;
  readonly store: TupleStore;
  readonly clock: () => number;
  readonly influence: InfluenceMap;
  readonly feed: ChangeFeed | undefined;
  readonly depth: TupleDepthBound | undefined;
  readonly depthGuard: DepthGuard;
  readonly maxDepth: number;
}

/** Builds the layers the options ask for, innermost first. On failure closes what it opened and rethrows. */
export async function buildLayers(options: CheckChainOptions, context: LayerContext): Promise<Layers> {
  const { program, store, clock, influence, feed, depthGuard, maxDepth } = context;
  const disabled: LayerStats[] = [];
  const unsubscribe: (() => void)[] = [];
  let tiger: TigerResolver | undefined;
  let resultCache: ResultCacheResolver | undefined;
  let crossTenant: CrossTenantResolver | undefined;
  let resolver: CheckResolver = evaluatorOf(options, !noLayers(options), { influence, depthGuard });
  try {
    if (options.tiger !== undefined && options.tiger !== false) {
      // Loaded only when asked for: it brings roaring-wasm, which most deployments of the chain do not need.
      const { TigerResolver } = await import("./tiger/index.js");
      tiger = await TigerResolver.open(
        resolver,
        { program, store, influence, maxResolutionDepth: maxDepth, depthGuard },
        typeof options.tiger === "object" ? options.tiger : {},
      );
      if (feed !== undefined) {
        unsubscribe.push(feed.subscribe(tiger));
        tiger.follow(feed);
      }
      resolver = tiger;
    } else {
      disabled.push(off("tiger"));
    }
    if (options.crossTenant !== false && feed !== undefined) {
      // Subscribes itself to the feed as it opens (no gap), like the Bloom layer.
      crossTenant = await CrossTenantResolver.open(
        resolver,
        { program, store, influence, source: feed, maxResolutionDepth: maxDepth, depthGuard },
        { clock, ...(typeof options.crossTenant === "object" ? options.crossTenant : {}) },
      );
      resolver = crossTenant;
    } else {
      disabled.push(off("cross-tenant"));
    }
    if (options.singleflight !== false) resolver = new SingleflightResolver(resolver);
    else disabled.push(off("singleflight"));
    const overWasm = options.evaluator === undefined && options.wasm !== undefined;
    if (options.bloom === undefined && overWasm) {
      disabled.push(off("bloom-negative", BLOOM_OVER_WASM));
    } else if (options.bloom !== false && feed !== undefined) {
      resolver = await BloomNegativeResolver.open(
        resolver,
        { store, influence, source: feed },
        {
          maxResolutionDepth: maxDepth,
          depthGuard,
          ...(typeof options.bloom === "object" ? options.bloom : {}),
        },
      );
    } else {
      disabled.push(off("bloom-negative"));
    }
    if (options.resultCache !== false) {
      resultCache = new ResultCacheResolver(
        resolver,
        influence,
        typeof options.resultCache === "object" ? options.resultCache : {},
      );
      if (feed !== undefined) {
        unsubscribe.push(feed.subscribe(resultCache));
        resultCache.follow(feed);
      }
      resolver = resultCache;
    } else {
      disabled.push(off("result-cache"));
    }
  } catch (error) {
    for (const u of unsubscribe) u();
    // The innermost layer opened closes the ones inside it; before either opened, the evaluator stays the caller's.
    await (crossTenant ?? tiger)?.close();
    throw error;
  }
  return { outer: resolver, filter: tiger, resultCache, crossTenant, disabled, unsubscribe };
}

/**
 * The innermost resolver: the caller's, else the WASM evaluator over the reference, else the reference alone. The
 * reference records what each check read only for layers that reuse answers (`recordReads`).
 */
function evaluatorOf(
  options: CheckChainOptions,
  recordReads: boolean,
  subjectRule: { readonly influence: InfluenceMap; readonly depthGuard: DepthGuard },
): CheckResolver {
  if (options.evaluator !== undefined) return options.evaluator;
  const reference = new ReferenceResolver({
    program: options.program,
    store: options.store,
    maxResolutionDepth: options.maxResolutionDepth ?? DEFAULT_MAX_DEPTH,
    recordReads,
  });
  return options.wasm !== undefined ? new WasmResolver(options.wasm, reference, subjectRule) : reference;
}

/** Whether the options switch every layer off (the engine's `cache: false`). */
function noLayers(options: CheckChainOptions): boolean {
  return (
    options.resultCache === false &&
    options.bloom === false &&
    options.singleflight === false &&
    options.crossTenant === false &&
    (options.tiger === undefined || options.tiger === false)
  );
}

/** Why the Bloom layer is off by default over the WASM evaluator (its stats row's note). */
export const BLOOM_OVER_WASM =
  "off by default over the WASM evaluator: its interner answers both rules (an object no tuple names, a subject " +
  "no tuple names); cache.bloom: true builds it (with the change feed on: watch not false)";

function off(layer: string, note?: string): LayerStats {
  return {
    layer,
    enabled: false,
    requests: 0,
    hits: 0,
    misses: 0,
    shared: 0,
    evaluations: 0,
    invalidations: 0,
    ...(note !== undefined ? { extra: { note } } : {}),
  };
}
