/**
 * createEngine's options, checked before anything opens, and what they ask for: the default store, the WASM
 * evaluator (where its kernel loads), and the check chain's layers. `cache: false` is the chain with every layer
 * off (the same path: validation, the revision choice, the evaluator); any other value, the layers it names over
 * the engine's defaults.
 */

import type { ChangeFeed } from "../changes/feed.js";
import type { Program } from "../model/program.js";
import { requestObject } from "../request/requests.js";
import { checkLimits, DEFAULT_QUANTIZATION_WINDOW_MS } from "../request/validate.js";
import { MemoryTupleStore } from "../tuples/memory.js";
import type { TupleStore } from "../tuples/types.js";
import { describe, NexusError } from "../util/errors.js";
import { ready } from "../wasm/loader.js";
import { WasmEvaluator } from "../wasm-eval/evaluator.js";
import type { EngineCacheOptions, EngineOptions } from "./types.js";

/** Every field of EngineOptions (createEngine refuses others, naming the closest). */
const ENGINE_OPTION_FIELDS: ReadonlySet<string> = new Set<keyof EngineOptions>([
  "model",
  "format",
  "store",
  "clock",
  "quantizationWindowMs",
  "maxResolutionDepth",
  "maxContextualTuples",
  "changelog",
  "evaluator",
  "cache",
  "limits",
]);
const CHANGELOG_FIELDS: ReadonlySet<string> = new Set(["maxEntries", "maxAgeMs"]);

const CACHE_LAYERS = [
  "resultCache",
  "bloom",
  "singleflight",
  "crossTenant",
  "tiger",
  "warming",
  "watch",
] as const;

/** `cache: false`: every layer off, and no change feed for them. */
const NO_LAYERS: EngineCacheOptions = {
  resultCache: false,
  bloom: false,
  singleflight: false,
  crossTenant: false,
  tiger: false,
  warming: false,
  watch: false,
};

/**
 * Checks createEngine's options (not the model, which compiling checks).
 * @throws NexusError "invalid_argument" naming the first bad option.
 */
export function checkEngineOptions(options: EngineOptions): void {
  requestObject(options, "engine options", ENGINE_OPTION_FIELDS);
  if (options.changelog !== undefined) {
    requestObject(options.changelog, "engine options' changelog", CHANGELOG_FIELDS);
  }
  if (options.evaluator !== undefined && options.evaluator !== "wasm" && options.evaluator !== "reference") {
    throw new NexusError(
      "invalid_argument",
      `evaluator must be "wasm" or "reference", got ${describe(options.evaluator)}`,
    );
  }
  checkLimits(options);
  if (options.clock !== undefined && typeof options.clock !== "function") {
    throw new NexusError("invalid_argument", `clock must be a function returning epoch milliseconds`);
  }
}

/** The layer switches and options the engine's chain is opened with. */
export function layerOptionsOf(cache: EngineOptions["cache"]): EngineCacheOptions {
  return cache === false ? NO_LAYERS : withEngineDefaults(cacheOptionsOf(cache));
}

/**
 * The engine's layer defaults over what the caller gave: Tiger on, materialising in the background (one at a
 * time) through the WASM evaluator for listings (`filter`) only. Materialising runs a list objects: started from
 * check demand, a mixed check-and-write load kept rebuilding bitmaps (bench/soak.ts, checks under writes, ran at
 * about 178 checks/s that way, against about 24K with filter-only materialising).
 */
function withEngineDefaults(cache: EngineCacheOptions): EngineCacheOptions {
  if (cache.tiger === false) return cache;
  const tiger = {
    background: true,
    checkThroughInner: true,
    // Listings only: checks use a bitmap a listing built, but never start one.
    materializeAfter: Number.MAX_SAFE_INTEGER,
    ...(typeof cache.tiger === "object" ? cache.tiger : {}),
  };
  return { ...cache, tiger };
}

/** The chain options `cache` asks for (only the layer switches: nothing else can reach the chain). */
function cacheOptionsOf(cache: EngineCacheOptions | undefined): EngineCacheOptions {
  if (cache === undefined) return {};
  if (typeof cache !== "object" || cache === null || Array.isArray(cache)) {
    throw new NexusError(
      "invalid_argument",
      `cache must be false or an object of layer options, got ${describe(cache)}`,
    );
  }
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(cache)) {
    if (!(CACHE_LAYERS as readonly string[]).includes(key)) {
      throw new NexusError(
        "invalid_argument",
        `cache.${key} is not a cache layer (expected one of ${CACHE_LAYERS.join(", ")})`,
      );
    }
    picked[key] = (cache as Record<string, unknown>)[key];
  }
  return picked as EngineCacheOptions;
}

/** The in-memory store an engine creates when it is given none (closed with the engine). */
export function defaultStore(options: EngineOptions): MemoryTupleStore {
  const window = options.quantizationWindowMs ?? DEFAULT_QUANTIZATION_WINDOW_MS;
  return new MemoryTupleStore({
    ...(options.clock !== undefined ? { clock: options.clock } : {}),
    // Old versions must outlive the window a minimize_latency read may look back.
    snapshotRetentionMs: Math.max(10_000, window * 2),
    ...(options.changelog?.maxEntries !== undefined
      ? { changelogMaxEntries: options.changelog.maxEntries }
      : {}),
    ...(options.changelog?.maxAgeMs !== undefined ? { changelogMaxAgeMs: options.changelog.maxAgeMs } : {}),
  });
}

/**
 * The WASM evaluator, following `feed`; undefined where the kernel cannot load and the caller did not ask for it
 * ("wasm" asked for is an error there).
 */
export async function openKernel(
  options: EngineOptions,
  parts: { program: Program; store: TupleStore; maxDepth: number; feed: ChangeFeed | undefined },
): Promise<WasmEvaluator | undefined> {
  try {
    await ready();
    const { program, store, maxDepth, feed } = parts;
    // A batch's fact for a question's own node answers only that question asked again, which the result cache
    // answers first: with the cache on, batches skip keeping them (first-pass kernel time about 15% lower).
    const questionFacts = layerOptionsOf(options.cache).resultCache === false;
    return new WasmEvaluator({
      program,
      store,
      maxDepth,
      questionFacts,
      ...(feed !== undefined ? { feed } : {}),
    });
  } catch (error) {
    if (options.evaluator === "wasm") throw error;
    return undefined;
  }
}

export function isProgram(model: unknown): model is Program {
  return typeof model === "object" && model !== null && (model as Program).types instanceof Map;
}
