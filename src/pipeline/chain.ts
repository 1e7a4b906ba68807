/**
 * CheckChain: the query pipeline (src/pipeline/pipeline.ts: validate → pin a revision → layers → evaluator) with
 * what keeps its layers exact and warm: one change feed (src/changes/feed.ts) every layer follows, the tuple depth
 * bound that lets shortcuts deny on recursive relations, the known revision the feed advances, and the Warmer,
 * which learns from the requests answered here and warms predicted questions back through the pipeline. The
 * layers themselves are wired in builder.ts; every one is switched by an option and counted in stats(). With all
 * of them off (the engine's `cache: false`) the chain is validation, the revision choice and the evaluator.
 *
 * ```ts
 * await using chain = await CheckChain.open({ program: engine.program, store: engine.store });
 * await chain.check({ user: "user:anne", relation: "viewer", object: "doc:1" });
 * ```
 *
 * The engine answers every query through one of these (src/engine/engine.ts), so a chain opened beside an engine
 * answers exactly as it does for the same request at the same revision.
 *
 * Owner: CheckChain owns its layers, the depth bound, the Warmer and the feed it opened (one given in
 * `options.feed` stays open); close() releases them. The store and program are the caller's.
 */

import { TupleDepthBound, type TupleDepthBoundStats } from "../changes/depth.js";
import { ChangeFeed, type ChangeFeedStats } from "../changes/feed.js";
import { type InfluenceMap, influenceOf } from "../changes/influence.js";
import type { Program } from "../model/program.js";
import { sourceOnlyTypes } from "../model/tuple-rules.js";
import { DEFAULT_MAX_DEPTH } from "../reference/evaluation.js";
import type { UsersetTree } from "../reference/expand.js";
import { KnownRevision } from "../request/consistency.js";
import { requestObject } from "../request/requests.js";
import type {
  CheckOptions,
  CheckRequest,
  ExpandRequest,
  FilterRequest,
  ListObjectsRequest,
  ListUsersRequest,
} from "../request/types.js";
import {
  checkLimits,
  DEFAULT_MAX_CONTEXTUAL_TUPLES,
  DEFAULT_QUANTIZATION_WINDOW_MS,
} from "../request/validate.js";
import type { Revision, TupleStore } from "../tuples/types.js";
import { buildLayers, type CheckChainOptions } from "./builder.js";
import type { CrossTenantResolver } from "./cross-tenant/index.js";
import { Pipeline, type ValidateStats } from "./pipeline.js";
import { RevisionChooser, type RevisionStats } from "./revision.js";
import type { DepthGuard, LayerStats } from "./types.js";
import { Warmer, type WarmerStats, warmThrough } from "./warming/index.js";

export type { CheckOptions, FilterRequest } from "../request/types.js";
export type { CheckChainOptions, WarmingOptions } from "./builder.js";
export type { ValidateStats } from "./pipeline.js";

export interface ChainStats {
  readonly validate: ValidateStats;
  readonly revision: RevisionStats & { readonly quantizationWindowMs: number };
  /** Outermost first: result cache, Bloom, singleflight, evaluator (a layer switched off reports enabled: false). */
  readonly layers: readonly LayerStats[];
  readonly feed?: ChangeFeedStats;
  /** Predictive warming (absent when off). */
  readonly warming?: WarmerStats;
  /** The longest chain of tuples (what lets shortcuts deny on recursive relations), with the change feed. */
  readonly depth?: TupleDepthBoundStats;
}

/** The order stats() lists layers in: outermost first. */
const LAYER_ORDER = [
  "result-cache",
  "bloom-negative",
  "singleflight",
  "cross-tenant",
  "tiger",
  "wasm-evaluator",
  "evaluator",
];

export class CheckChain implements AsyncDisposable {
  readonly program: Program;
  readonly store: TupleStore;
  /** The change feed every cache follows (undefined with `watch: false`). */
  readonly feed: ChangeFeed | undefined;
  readonly #ownsFeed: boolean;
  readonly #pipeline: Pipeline;
  readonly #depth: TupleDepthBound | undefined;
  readonly #unsubscribe: (() => void)[] = [];
  #warmer: Warmer | undefined;
  #closed = false;

  private constructor(
    pipeline: Pipeline,
    feed: ChangeFeed | undefined,
    ownsFeed: boolean,
    depth?: TupleDepthBound,
  ) {
    this.#pipeline = pipeline;
    this.program = pipeline.program;
    this.store = pipeline.store;
    this.feed = feed;
    this.#ownsFeed = ownsFeed;
    this.#depth = depth;
  }

  /** Builds the chain the options ask for and starts following its change feed. */
  static async open(options: CheckChainOptions): Promise<CheckChain> {
    requestObject(options, "check chain options");
    checkLimits(options);
    const { program, store } = options;
    const clock = options.clock ?? Date.now;
    const window = options.quantizationWindowMs ?? DEFAULT_QUANTIZATION_WINDOW_MS;
    const maxDepth = options.maxResolutionDepth ?? DEFAULT_MAX_DEPTH;
    const influence = influenceOf(program);
    const ownsFeed = options.watch !== false && options.feed === undefined;
    const feed = options.watch === false ? undefined : (options.feed ?? (await ChangeFeed.open(store)));
    let depth: TupleDepthBound | undefined;
    let pipeline: Pipeline;
    try {
      // The longest chain of tuples, kept from the feed: with it, shortcuts may deny on recursive relations too
      // (where the data is shallower than the depth limit).
      depth =
        feed === undefined
          ? undefined
          : await TupleDepthBound.open(store, feed, { sourceOnlyTypes: sourceOnlyTypes(program) });
      const depthGuard = depthGuardOf(influence, depth, maxDepth);
      const layers = await buildLayers(options, {
        program,
        store,
        clock,
        influence,
        feed,
        depth,
        depthGuard,
        maxDepth,
      });
      const known = options.knownRevision ?? new KnownRevision();
      pipeline = new Pipeline({
        program,
        store,
        clock,
        maxDepth,
        maxContextual: options.maxContextualTuples ?? DEFAULT_MAX_CONTEXTUAL_TUPLES,
        revisions: new RevisionChooser({ store, clock, quantizationWindowMs: window, known }),
        layers,
        depthGuard,
        wasm: options.wasm,
      });
    } catch (error) {
      await depth?.close();
      if (ownsFeed) await feed?.close();
      throw error;
    }
    const chain = new CheckChain(pipeline, feed, ownsFeed, depth);
    if (feed === undefined) return chain;
    // What the feed delivered exists: reads see it at once (the window only bounds what the feed has not).
    const known = pipeline.revisions.known;
    known.advance(feed.watermark);
    chain.#unsubscribe.push(
      feed.subscribe({
        onChanges: (_changes, watermark) => known.advance(watermark),
        onReset: (revision) => known.advance(revision),
      }),
    );
    if (options.warming !== false) {
      const { via, ...warming } = typeof options.warming === "object" ? options.warming : {};
      try {
        // Warm calls go straight to the pipeline, which does not observe: the warmer must not learn from its own
        // traffic. Reads see a change as soon as the feed delivers it (the known revision), so refreshes run at once.
        const warmer = new Warmer({
          ...warming,
          warm: warmThrough(pipeline, { via: via ?? "checkMany" }),
          clock,
          // A change re-warms only the questions its tuples can affect.
          influence,
        });
        chain.#warmer = warmer;
        chain.#unsubscribe.push(feed.subscribe(warmer));
      } catch (error) {
        await chain.close();
        throw error;
      }
    }
    return chain;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The cross-tenant grant index (grantsTo / grantsOn), undefined when the layer is off. */
  get crossTenant(): CrossTenantResolver | undefined {
    return this.#pipeline.layers.crossTenant;
  }

  /** The revision a read with `consistency` uses now. @throws NexusError "invalid_argument" | "invalid_token" */
  revisionFor(consistency?: unknown): Promise<Revision> {
    return this.#pipeline.revisionFor(consistency);
  }

  /**
   * Whether `user` has `relation` on `object` (as Engine.check). A plain repeated check answered by the result
   * cache costs one settled promise, no async step; so does a first-time question the layers answer without
   * waiting.
   *
   * Both go down one path after the answer (the same observe and the same Promise.resolve): V8 compiles this
   * method once it is hot, from what its code has run so far, and a branch that had not run yet (the cache hits
   * of a second pass after a first pass of misses) would throw that code away and run unoptimized until it is
   * compiled again, longer than 2,000 repeated checks take (measured: 1.6-1.8 us a hit until then, 0.4 after).
   */
  check(request: CheckRequest, options: CheckOptions = {}): Promise<boolean> {
    const pipeline = this.#pipeline;
    let now: number;
    let answer: boolean | Promise<boolean>;
    try {
      now = pipeline.now();
      const hit = pipeline.cachedCheck(request, now);
      answer = typeof hit === "boolean" ? hit : pipeline.checkNow(request, options, now, hit);
    } catch (error) {
      // A request whose fields throw as they are read, an invalid one, a clock that throws: a rejection.
      return Promise.reject(error);
    }
    const warmer = this.#warmer;
    if (typeof answer === "boolean") {
      // Answered at `now` (the warmer's clock is the chain's: not read again).
      warmer?.observe(request, now);
      return Promise.resolve(answer);
    }
    if (warmer === undefined) return answer;
    return answer.then((allowed) => {
      warmer.observe(request);
      return allowed;
    });
  }

  /**
   * Checks many requests as one batch (answers in request order). The first failing request rejects the whole
   * call, with its index (as Engine.checkBulk).
   */
  async checkMany(requests: readonly CheckRequest[], options: CheckOptions = {}): Promise<boolean[]> {
    const answers = (await this.#pipeline.checkMany(requests, options)) as boolean[];
    const warmer = this.#warmer;
    if (warmer !== undefined) {
      // One clock read for the batch (the warmer's clock is the chain's). Indexed: a for-of made an iterator result
      // a request until V8 optimized this async function (about 20 KB a bulk of 1,000 in an allocation profile).
      const at = this.#pipeline.now();
      for (let i = 0; i < requests.length; i++) warmer.observe(requests[i]!, at);
    }
    return answers;
  }

  /**
   * checkMany answering every request: a failing one gets its error in its place (not indexed) instead of
   * rejecting the batch (Engine.batchCheck). Only answered requests teach the warmer.
   */
  async checkManySettled(
    requests: readonly CheckRequest[],
    options: CheckOptions = {},
  ): Promise<(boolean | Error)[]> {
    const answers = await this.#pipeline.checkMany(requests, options, true);
    const warmer = this.#warmer;
    if (warmer !== undefined) {
      for (let i = 0; i < requests.length; i++) {
        if (typeof answers[i] === "boolean") warmer.observe(requests[i]!);
      }
    }
    return answers;
  }

  /** The objects (in input order) on which `user` has `relation` (Tiger's bitmap when that layer has one). */
  async filter(request: FilterRequest, options: CheckOptions = {}): Promise<string[]> {
    const allowed = await this.#pipeline.filter(request, options);
    this.#warmer?.observeListing(request);
    return allowed;
  }

  /**
   * The objects of `type` on which `user` has `relation`, sorted (as Engine.listObjects; src/pipeline/listing.ts).
   * `atRevision` lists at exactly that revision instead of the one `consistency` picks (a page of a listing).
   */
  listObjects(
    request: ListObjectsRequest,
    options: CheckOptions = {},
    atRevision?: number,
  ): Promise<string[]> {
    return this.#pipeline.listObjects(request, options, atRevision);
  }

  /** The subjects that have `relation` on `object` (as Engine.listUsers), at `atRevision` when given. */
  listUsers(request: ListUsersRequest, atRevision?: number): Promise<string[]> {
    return this.#pipeline.listUsers(request, atRevision);
  }

  /** One level of the userset tree of `object#relation` (as Engine.expand). */
  expand(request: ExpandRequest): Promise<UsersetTree> {
    return this.#pipeline.expand(request);
  }

  stats(): ChainStats {
    const pipeline = this.#pipeline;
    const all = [...pipeline.layers.outer.stats(), ...pipeline.layers.disabled].sort(
      (a, b) => rank(a.layer) - rank(b.layer),
    );
    const revisions = pipeline.revisions;
    return {
      validate: pipeline.validateStats(),
      revision: { ...revisions.stats(), quantizationWindowMs: revisions.quantizationWindowMs },
      layers: all,
      ...(this.feed !== undefined ? { feed: this.feed.stats() } : {}),
      ...(this.#warmer !== undefined ? { warming: this.#warmer.stats() } : {}),
      ...(this.#depth !== undefined ? { depth: this.#depth.stats() } : {}),
    };
  }

  /**
   * Called by the engine after a write it issued `token` for: reads presenting it (or falling in the current
   * window) then find their revision without a store call (RevisionChooser.prime).
   */
  primeReads(token: string, revision: number): Promise<void> {
    return this.#pipeline.revisions.prime(token, revision);
  }

  /** Resolves once every cache has seen every change up to `revision` (default: the store's current one). */
  async caughtUp(revision?: number, signal?: AbortSignal): Promise<void> {
    await this.feed?.caughtUp(revision, signal);
  }

  /** Stops the warmer and the feed (if the chain opened it), closes every layer. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // First: its warm calls in flight go through the layers closed below.
    await this.#warmer?.close();
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    await this.#depth?.close();
    if (this.#ownsFeed) await this.feed?.close();
    await this.#pipeline.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The chain's depth guard: a (type, relation) that cannot recurse as far as `maxDepth`, or tuples that hold no
 * chain that long at the question's revision (`bound`, when there is one).
 */
export function depthGuardOf(
  influence: InfluenceMap,
  bound: TupleDepthBound | undefined,
  maxDepth: number,
): DepthGuard {
  const hops = new Map<string, number>();
  // The last class asked about, whose bound is reused without building its key (a batch mostly asks one class).
  let lastType: string | undefined;
  let lastRelation: string | undefined;
  let lastMost = 0;
  // The last revision the bound proved safe. The proof is about the tuples at that revision, which never change,
  // so it is not asked again for it (every shortcut asks per question; the bound's answer costs a scan).
  let safeRevision = -1;
  return (c) => {
    let most: number | undefined;
    if (c.objectType === lastType && c.relation === lastRelation) {
      most = lastMost;
    } else {
      const cls = c.objectType + "#" + c.relation;
      most = hops.get(cls);
      if (most === undefined) {
        most = influence.maxHops(c.objectType, c.relation);
        hops.set(cls, most);
      }
      lastType = c.objectType;
      lastRelation = c.relation;
      lastMost = most;
    }
    if (most < maxDepth || c.revision === safeRevision) return true;
    if (bound?.safeBelow(maxDepth, c.revision) !== true) return false;
    safeRevision = c.revision;
    return true;
  };
}

function rank(layer: string): number {
  const i = LAYER_ORDER.indexOf(layer);
  return i < 0 ? LAYER_ORDER.length : i;
}
