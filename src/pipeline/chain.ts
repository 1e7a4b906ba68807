/**
 * The check path, assembled: validate → choose the snapshot revision (consistency, quantization) → result cache
 * → Bloom negative cache → singleflight → Tiger bitmaps (off by default) → evaluator, with one change feed (src/changes/) fanning out to every cache.
 * Every layer is switched by an option and counted in stats(); with all of them off the chain is the plain
 * reference evaluation, which the tests compare it against.
 *
 * ```ts
 * await using chain = await CheckChain.open({ program: engine.program, store: engine.store });
 * await chain.check({ user: "user:anne", relation: "viewer", object: "doc:1" });
 * ```
 *
 * The chain answers exactly as Engine.check does for the same request at the same revision (same validation,
 * same errors, same consistency rules), so the engine can delegate check / checkBulk to it.
 *
 * Owner: CheckChain owns its feed (one loop), its layers and their WASM filters; close() releases all of them.
 * The store and program are the caller's.
 */

import { TupleDepthBound, type TupleDepthBoundStats } from "../changes/depth.js";
import { ChangeFeed, type ChangeFeedStats } from "../changes/feed.js";
import { type InfluenceMap, influenceOf } from "../changes/influence.js";
import type { ConditionContext } from "../conditions/cel.js";
import type { Program } from "../model/program.js";
import { DEFAULT_MAX_DEPTH, Evaluation } from "../reference/evaluation.js";
import { candidateObjects, type ListObjectsQuery } from "../reference/list-objects.js";
import { TupleReader } from "../reference/reader.js";
import { type Consistency, KnownRevision } from "../request/consistency.js";
import { contextText, questionKey } from "../request/key.js";
import {
  contextOf,
  contextualTuplesOf,
  objectOf,
  REQUEST_FIELDS,
  relationOfType,
  requestObject,
  subjectOf,
  subjectTenantOf,
  tenantOf,
  typeOf,
} from "../request/requests.js";
import type { TupleKey } from "../tuples/tuple.js";
import { DEFAULT_TENANT } from "../tuples/tuple.js";
import type { Revision, TupleStore } from "../tuples/types.js";
import { atBatchIndex, describe, NexusError } from "../util/errors.js";
import type { FastEvaluator } from "../wasm-eval/evaluator.js";
import { exactListObjects, reverseExpansionIsExact } from "../wasm-eval/list-objects.js";
import { type BloomNegativeOptions, BloomNegativeResolver } from "./bloom-negative.js";
import { type CrossTenantOptions, CrossTenantResolver } from "./cross-tenant.js";
import { FastResolver } from "./fast.js";
import { ReferenceResolver, snapshotAt } from "./reference.js";
import { ResultCacheResolver } from "./result-cache.js";
import { RevisionChooser, type RevisionStats } from "./revision.js";
import { SingleflightResolver } from "./singleflight.js";
import type { TigerOptions, TigerResolver } from "./tiger/index.js";
import type { CheckResolver, DepthGuard, LayerStats, ResolvedCheck } from "./types.js";
import {
  Warmer,
  type WarmerOptions,
  type WarmerStats,
  type WarmTarget,
  warmThrough,
} from "./warming/index.js";

const CHECK_FIELDS = REQUEST_FIELDS.check;

/** A check request, as Engine.check takes it. */
export interface ChainCheckRequest {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly tenant?: string;
  readonly subjectTenant?: string;
  readonly contextualTuples?: readonly TupleKey[];
  readonly context?: ConditionContext;
  readonly consistency?: Consistency;
}

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
   * The innermost resolver (default: the TypeScript reference evaluator, or the WASM one when `fast` is given).
   * Any CheckResolver answering at exactly the question's revision; the chain closes it.
   */
  readonly evaluator?: CheckResolver;
  /**
   * The WASM fast path: the innermost layer becomes a FastResolver over it, handing what the kernel does not
   * evaluate to the reference. The chain closes it.
   */
  readonly fast?: FastEvaluator;
  /** The result cache (default on). */
  readonly resultCache?: boolean | { readonly maxEntries?: number };
  /** The Bloom negative cache (default on; needs the change feed). */
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
   * within a budget (src/pipeline/warming.ts). `via: "filter"` warms whole listings (Tiger bitmaps when that layer is
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

export interface ValidateStats {
  readonly layer: "validate";
  readonly requests: number;
  readonly rejected: number;
}

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

/** A check request that passed validation, before it is pinned to a revision. */
interface ValidCheck {
  readonly request: ChainCheckRequest;
  readonly tenant: string;
  readonly subjectTenant: string;
  readonly objectType: string;
  readonly subject: ResolvedCheck["subject"];
  readonly user: string;
  readonly context: ConditionContext | undefined;
  readonly contextualTuples: ResolvedCheck["contextualTuples"];
}

/** A list objects request, as Engine.listObjects takes it. */
export interface ChainListObjectsRequest {
  readonly user: string;
  readonly relation: string;
  readonly type: string;
  readonly tenant?: string;
  readonly subjectTenant?: string;
  readonly contextualTuples?: readonly TupleKey[];
  readonly context?: ConditionContext;
  readonly consistency?: Consistency;
}

/** A filter request: which of `objects` (all of one type) may `user` access with `relation`. */
export interface FilterRequest {
  readonly user: string;
  readonly relation: string;
  /** `type:id` strings of one type. */
  readonly objects: readonly string[];
  readonly tenant?: string;
  readonly subjectTenant?: string;
  readonly consistency?: Consistency;
}

export interface CheckOptions {
  /** Abandons this request (NexusError "aborted"); work shared with others goes on for them. */
  readonly signal?: AbortSignal;
}

export class CheckChain implements AsyncDisposable {
  readonly program: Program;
  readonly store: TupleStore;
  /** The change feed every cache follows (undefined with `watch: false`). */
  readonly feed: ChangeFeed | undefined;
  /** The cross-tenant grant index (grantsTo / grantsOn), undefined when the layer is off. */
  readonly crossTenant: CrossTenantResolver | undefined;
  readonly #clock: () => number;
  readonly #maxContextual: number;
  readonly #maxDepth: number;
  readonly #revisions: RevisionChooser;
  readonly #outer: CheckResolver;
  readonly #tiger: TigerResolver | undefined;
  /** The outermost layer when on (checks whose key is plain are looked up before validation). */
  readonly #resultCache: ResultCacheResolver | undefined;
  #warmer: Warmer | undefined;
  readonly #depth: TupleDepthBound | undefined;
  /** Whether a listing's candidates are its answer (given a plain subject and shallow tuples): see listObjects. */
  #exactListing: boolean | undefined;
  #depthGuard: DepthGuard | undefined;
  readonly #disabled: readonly LayerStats[];
  readonly #unsubscribe: (() => void)[];
  #requests = 0;
  #rejected = 0;
  #closed = false;

  private constructor(
    options: CheckChainOptions,
    parts: {
      feed: ChangeFeed | undefined;
      revisions: RevisionChooser;
      outer: CheckResolver;
      tiger: TigerResolver | undefined;
      resultCache: ResultCacheResolver | undefined;
      crossTenant: CrossTenantResolver | undefined;
      depth: TupleDepthBound | undefined;
      disabled: LayerStats[];
      unsubscribe: (() => void)[];
    },
  ) {
    this.#tiger = parts.tiger;
    this.#resultCache = parts.resultCache;
    this.crossTenant = parts.crossTenant;
    this.#depth = parts.depth;
    this.program = options.program;
    this.store = options.store;
    this.#clock = options.clock ?? Date.now;
    this.#maxContextual = options.maxContextualTuples ?? 1000;
    this.#maxDepth = options.maxResolutionDepth ?? DEFAULT_MAX_DEPTH;
    this.feed = parts.feed;
    this.#revisions = parts.revisions;
    this.#outer = parts.outer;
    this.#disabled = parts.disabled;
    this.#unsubscribe = parts.unsubscribe;
  }

  /** Builds the chain the options ask for and starts its change feed. */
  static async open(options: CheckChainOptions): Promise<CheckChain> {
    requestObject(options, "check chain options");
    const window = options.quantizationWindowMs ?? 5000;
    for (const [name, value, min] of [
      ["quantizationWindowMs", window, 0],
      ["maxResolutionDepth", options.maxResolutionDepth, 1],
      ["maxContextualTuples", options.maxContextualTuples, 0],
    ] as const) {
      if (value !== undefined && (typeof value !== "number" || !Number.isInteger(value) || value < min)) {
        throw new NexusError(
          "invalid_argument",
          `${name} must be an integer ≥ ${min}, got ${describe(value)}`,
        );
      }
    }
    const { program, store } = options;
    const clock = options.clock ?? Date.now;
    const influence = influenceOf(program);
    const disabled: LayerStats[] = [];
    const off = (layer: string): LayerStats => ({
      layer,
      enabled: false,
      requests: 0,
      hits: 0,
      misses: 0,
      shared: 0,
      evaluations: 0,
      invalidations: 0,
    });
    const feed = options.watch === false ? undefined : await ChangeFeed.open(store);
    const maxDepth = options.maxResolutionDepth ?? DEFAULT_MAX_DEPTH;
    // The longest chain of tuples, kept from the feed: with it, shortcuts may deny on recursive relations too
    // (where the data is shallower than the depth limit).
    const depth = feed === undefined ? undefined : await TupleDepthBound.open(store, feed);
    const depthGuard = depthGuardOf(influence, depth, maxDepth);
    const unsubscribe: (() => void)[] = [];
    let outer: CheckResolver | undefined;
    let tiger: TigerResolver | undefined;
    let resultCache: ResultCacheResolver | undefined;
    let crossTenant: CrossTenantResolver | undefined;
    try {
      let resolver: CheckResolver =
        options.evaluator ??
        new ReferenceResolver({
          program,
          store,
          maxResolutionDepth: options.maxResolutionDepth ?? DEFAULT_MAX_DEPTH,
        });
      if (options.evaluator === undefined && options.fast !== undefined) {
        resolver = new FastResolver(options.fast, resolver);
      }
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
          {
            program,
            store,
            influence,
            source: feed,
            maxResolutionDepth: maxDepth,
            depthGuard,
          },
          { clock, ...(typeof options.crossTenant === "object" ? options.crossTenant : {}) },
        );
        resolver = crossTenant;
      } else {
        disabled.push(off("cross-tenant"));
      }
      if (options.singleflight !== false) resolver = new SingleflightResolver(resolver);
      else disabled.push(off("singleflight"));
      if (options.bloom !== false && feed !== undefined) {
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
        const cache = new ResultCacheResolver(
          resolver,
          influence,
          typeof options.resultCache === "object" ? options.resultCache : {},
        );
        if (feed !== undefined) {
          unsubscribe.push(feed.subscribe(cache));
          cache.follow(feed);
        }
        resolver = cache;
        resultCache = cache;
      } else {
        disabled.push(off("result-cache"));
      }
      outer = resolver;
    } catch (error) {
      for (const u of unsubscribe) u();
      // The innermost layer opened closes the ones inside it.
      await (crossTenant ?? tiger)?.close();
      await depth?.close();
      await feed?.close();
      throw error;
    }
    const known = options.knownRevision ?? new KnownRevision();
    if (feed !== undefined) {
      // What the feed delivered exists: reads see it at once (the window only bounds what the feed has not).
      known.advance(feed.watermark);
      unsubscribe.push(
        feed.subscribe({
          onChanges: (_changes, watermark) => known.advance(watermark),
          onReset: (revision) => known.advance(revision),
        }),
      );
    }
    const revisions = new RevisionChooser({ store, clock, quantizationWindowMs: window, known });
    const chain = new CheckChain(options, {
      feed,
      revisions,
      outer,
      tiger,
      resultCache,
      crossTenant,
      depth,
      disabled,
      unsubscribe,
    });
    if (options.warming !== false && feed !== undefined) {
      const { via, ...warming } = typeof options.warming === "object" ? options.warming : {};
      // Warm calls go to the entry points that do not observe: the warmer must not learn from its own traffic.
      const quiet: WarmTarget = {
        checkMany: (requests, o) => chain.#checkMany(requests, o ?? {}),
        filter: (request, o) => chain.#filter(request, o ?? {}),
      };
      try {
        // Reads see a change as soon as the feed delivers it (the known revision), so refreshes run at once.
        const warmer = new Warmer({
          ...warming,
          warm: warmThrough(quiet, { via: via ?? "checkMany" }),
          clock,
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

  /** Whether `user` has `relation` on `object` (as Engine.check). */
  async check(request: ChainCheckRequest, options: CheckOptions = {}): Promise<boolean> {
    this.#assertOpen();
    const now = this.#clock();
    let allowed = this.#cachedAnswer(request, now);
    if (allowed === undefined) {
      const resolved = await this.#resolved(request, now);
      allowed = (await this.#outer.resolve(resolved, options.signal)).allowed;
    }
    this.#warmer?.observe(request);
    return allowed;
  }

  /**
   * Checks many requests as one batch (answers in request order). The first failing request rejects the whole
   * call, with its index (as Engine.checkBulk).
   */
  async checkMany(requests: readonly ChainCheckRequest[], options: CheckOptions = {}): Promise<boolean[]> {
    const answers = (await this.#checkMany(requests, options)) as boolean[];
    const warmer = this.#warmer;
    if (warmer !== undefined) for (const request of requests) warmer.observe(request);
    return answers;
  }

  /**
   * checkMany answering every request: a failing one gets its error in its place (not indexed) instead of
   * rejecting the batch (Engine.batchCheck). Only answered requests teach the warmer.
   */
  async checkManySettled(
    requests: readonly ChainCheckRequest[],
    options: CheckOptions = {},
  ): Promise<(boolean | Error)[]> {
    const answers = await this.#checkMany(requests, options, true);
    const warmer = this.#warmer;
    if (warmer !== undefined) {
      for (const [i, request] of requests.entries())
        if (typeof answers[i] === "boolean") warmer.observe(request);
    }
    return answers;
  }

  async #checkMany(
    requests: readonly ChainCheckRequest[],
    options: CheckOptions,
    settled = false,
  ): Promise<(boolean | Error)[]> {
    this.#assertOpen();
    if (!Array.isArray(requests)) {
      throw new NexusError("invalid_argument", `requests must be an array, got ${describe(requests)}`);
    }
    const now = this.#clock();
    const answers: (boolean | Error)[] = new Array(requests.length);
    const resolved: ResolvedCheck[] = [];
    const positions: number[] = [];
    // Each distinct consistency is resolved once for the batch (all of it is read at one instant).
    const revisions = new Map<unknown, Revision>();
    for (let index = 0; index < requests.length; index++) {
      const request = requests[index] as ChainCheckRequest;
      const hit = this.#cachedAnswer(request, now);
      if (hit !== undefined) {
        answers[index] = hit;
        continue;
      }
      try {
        const valid = this.#validated(request);
        const consistency = request.consistency;
        let revision = this.#revisions.peek(consistency, now);
        if (revision === undefined) {
          const key =
            typeof consistency === "object" && consistency !== null
              ? `token:${String((consistency as { atLeastAsFresh?: unknown }).atLeastAsFresh)}`
              : consistency;
          revision = revisions.get(key);
          if (revision === undefined) {
            revision = await this.#revisions.revisionFor(consistency, now);
            revisions.set(key, revision);
          }
        }
        resolved.push(this.#pinned(valid, revision, now));
        positions.push(index);
      } catch (error) {
        if (!settled || !(error instanceof Error)) throw atBatchIndex(error, index);
        answers[index] = error;
      }
    }
    if (resolved.length === 0) return answers;
    const outcomes = await this.#outer.resolveMany(resolved, options.signal);
    for (let k = 0; k < outcomes.length; k++) {
      const outcome = outcomes[k]!;
      if (outcome instanceof Error) {
        if (!settled) throw atBatchIndex(outcome, positions[k]!);
        answers[positions[k]!] = outcome;
        continue;
      }
      answers[positions[k]!] = outcome.allowed;
    }
    return answers;
  }

  /**
   * The objects (in input order) on which `user` has `relation`: from the Tiger bitmap when the layer is on and
   * the question is eligible (no condition on the way), else one batch through the chain.
   */
  async filter(request: FilterRequest, options: CheckOptions = {}): Promise<string[]> {
    const allowed = await this.#filter(request, options);
    this.#warmer?.observeListing(request);
    return allowed;
  }

  async #filter(request: FilterRequest, options: CheckOptions): Promise<string[]> {
    this.#assertOpen();
    requestObject(request, "a filter request", REQUEST_FIELDS.filter);
    if (!Array.isArray(request.objects)) {
      throw new NexusError("invalid_argument", `objects must be an array, got ${describe(request.objects)}`);
    }
    const { objects, ...question } = request as FilterRequest;
    if (objects.length === 0) return [];
    const now = this.#clock();
    const base = { ...question, object: objects[0]! };
    const first = await this.#resolved(base, now);
    // Each object must be `type:id` of the first one's type (checked without parsing: this is the hot path).
    const prefix = `${first.objectType}:`;
    const wildcard = `${prefix}*`;
    const validate = (object: unknown, index: number): void => {
      if (
        typeof object !== "string" ||
        object.length <= prefix.length ||
        !object.startsWith(prefix) ||
        object === wildcard ||
        object.includes("\u0000")
      ) {
        objectOf(this.program, object, `objects[${index}]`); // throws the engine's error for a malformed one
        throw new NexusError(
          "invalid_argument",
          `objects must all be of one type: objects[${index}] ${describe(object)} is not a ${first.objectType}`,
          { index },
        );
      }
    };
    // Tiger validates only the objects it has no id for (an object with an id is a stored one of this type), so
    // the first malformed object is still the one reported.
    const fromTiger = await this.#tiger?.filterObjects(first, objects, validate);
    if (fromTiger !== undefined) return fromTiger;
    for (let index = 0; index < objects.length; index++) validate(objects[index], index);
    const allowed = await this.#checkMany(
      objects.map((object) => ({ ...question, object })),
      options,
    );
    return objects.filter((_, i) => allowed[i] === true);
  }

  /**
   * The objects of `type` on which `user` has `relation`, sorted (as Engine.listObjects). The candidates come
   * from the reference's reverse expansion at the chosen revision (a superset of the answer); each is then asked
   * as one batch through the chain, so list objects shares the result cache, Bloom, singleflight, Tiger and the
   * evaluator with checks (and leaves its answers in the cache for the checks that follow a listing).
   */
  async listObjects(
    request: ChainListObjectsRequest,
    options: CheckOptions = {},
    /** Lists at exactly this revision instead of the one `consistency` picks (a page of a paged listing). */
    atRevision?: number,
  ): Promise<string[]> {
    this.#assertOpen();
    const now = this.#clock();
    requestObject(request, "a list objects request", REQUEST_FIELDS.listObjects);
    this.#requests++;
    let tenant: string;
    let subjectTenant: string;
    let subject: ResolvedCheck["subject"];
    let user: string;
    let context: ConditionContext | undefined;
    let contextualTuples: ResolvedCheck["contextualTuples"];
    const type = request.type;
    try {
      tenant = tenantOf(request.tenant);
      subjectTenant = subjectTenantOf(request.subjectTenant, tenant);
      typeOf(this.program, type);
      relationOfType(this.program, type, request.relation);
      ({ subject, user } = subjectOf(this.program, request.user));
      context = contextOf(request.context);
      contextualTuples = contextualTuplesOf(
        this.program,
        request.contextualTuples,
        tenant,
        this.#maxContextual,
      );
    } catch (error) {
      this.#rejected++;
      throw error;
    }
    const revision = atRevision ?? (await this.#revisions.revisionFor(request.consistency, now));
    // In a union-only program the reverse expansion reaches exactly the allowed objects: list by it alone (no
    // per-candidate checks) when nothing could make check disagree; else, or if it meets a cross-tenant or
    // conditional tuple, the candidates are checked one by one below.
    this.#exactListing ??= reverseExpansionIsExact(this.program);
    this.#depthGuard ??= depthGuardOf(influenceOf(this.program), this.#depth, this.#maxDepth);
    if (
      this.#exactListing &&
      subject.kind === "object" &&
      subjectTenant === tenant &&
      contextualTuples.length === 0 &&
      this.#depthGuard({ objectType: type, relation: request.relation, revision } as ResolvedCheck)
    ) {
      const snapshot = await snapshotAt(this.store, revision);
      try {
        const query = { tenant, type, relation: request.relation, user };
        const listed = await exactListObjects(this.program, snapshot, query, now);
        if (listed !== undefined) return listed;
      } finally {
        snapshot.release();
      }
    }
    const candidates = await candidatesAt(
      this.program,
      this.store,
      this.#maxDepth,
      { tenant, subjectTenant, type, relation: request.relation, subject, user },
      { revision, now, context, contextualTuples },
    );
    const valid = { tenant, subjectTenant, objectType: type, subject, user, context, contextualTuples };
    const checks: ResolvedCheck[] = [];
    for (const object of candidates) {
      const candidate = { user: request.user, relation: request.relation, object };
      checks.push(this.#pinned({ ...valid, request: candidate }, revision, now));
    }
    const outcomes = await this.#outer.resolveMany(checks, options.signal);
    const allowed: string[] = [];
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!;
      if (outcome instanceof Error) throw outcome;
      if (outcome.allowed) allowed.push(checks[i]!.object);
    }
    return allowed.sort();
  }

  stats(): ChainStats {
    const layers = this.#outer.stats();
    const order = [
      "result-cache",
      "bloom-negative",
      "singleflight",
      "cross-tenant",
      "tiger",
      "wasm-evaluator",
      "evaluator",
    ];
    const all = [...layers, ...this.#disabled].sort((a, b) => rank(order, a.layer) - rank(order, b.layer));
    return {
      validate: { layer: "validate", requests: this.#requests, rejected: this.#rejected },
      revision: { ...this.#revisions.stats(), quantizationWindowMs: this.#revisions.quantizationWindowMs },
      layers: all,
      ...(this.feed !== undefined ? { feed: this.feed.stats() } : {}),
      ...(this.#warmer !== undefined ? { warming: this.#warmer.stats() } : {}),
      ...(this.#depth !== undefined ? { depth: this.#depth.stats() } : {}),
    };
  }

  /** Resolves once every cache has seen every change up to `revision` (default: the store's current one). */
  async caughtUp(revision?: number, signal?: AbortSignal): Promise<void> {
    await this.feed?.caughtUp(revision, signal);
  }

  /** Stops the feed, closes every layer (freeing their WASM memory). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // First: its warm calls in flight go through the layers closed below.
    await this.#warmer?.close();
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    await this.#depth?.close();
    await this.feed?.close();
    await this.#outer.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the check chain is closed");
  }

  /**
   * The result cache's answer for a plain request (strings only; no context, contextual tuples or explicit
   * consistency) in the memoized window, found by its key alone, before validation: an entry exists only for a
   * question that was validated, and validation depends on nothing but these strings. Undefined otherwise.
   */
  #cachedAnswer(request: ChainCheckRequest, now: number): boolean | undefined {
    const cache = this.#resultCache;
    if (cache === undefined || typeof request !== "object" || request === null) return undefined;
    const { user, relation, object, tenant, subjectTenant } = request;
    if (
      typeof user !== "string" ||
      typeof relation !== "string" ||
      typeof object !== "string" ||
      (tenant !== undefined && typeof tenant !== "string") ||
      (subjectTenant !== undefined && typeof subjectTenant !== "string") ||
      request.context !== undefined ||
      (request.contextualTuples !== undefined &&
        (!Array.isArray(request.contextualTuples) || request.contextualTuples.length > 0)) ||
      (request.consistency !== undefined && request.consistency !== "minimize_latency")
    ) {
      return undefined;
    }
    // A field no check has is refused by validation, never answered around it.
    for (const field in request) if (!CHECK_FIELDS.has(field)) return undefined;
    const revision = this.#revisions.peekWindow(now);
    if (revision === undefined) return undefined;
    const t = tenant ?? DEFAULT_TENANT;
    const answer = cache.hit(questionKey(t, subjectTenant ?? t, object, relation, user, ""), revision, now);
    if (answer === undefined) return undefined;
    this.#requests++;
    this.#revisions.countWindowHit();
    return answer.allowed;
  }

  /** Validates a request (Engine.check's rules and errors) and pins it to its revision. */
  async #resolved(request: ChainCheckRequest, now: number): Promise<ResolvedCheck> {
    const valid = this.#validated(request);
    const revision =
      this.#revisions.peek(request.consistency, now) ??
      (await this.#revisions.revisionFor(request.consistency, now));
    return this.#pinned(valid, revision, now);
  }

  /** Validates a request with Engine.check's rules and errors (counted in stats: requests, rejected). */
  #validated(request: ChainCheckRequest): ValidCheck {
    this.#requests++;
    try {
      requestObject(request, "a check request", REQUEST_FIELDS.check);
      const tenant = tenantOf(request.tenant);
      const subjectTenant = subjectTenantOf(request.subjectTenant, tenant);
      const objectType = objectOf(this.program, request.object).type;
      relationOfType(this.program, objectType, request.relation);
      const { subject, user } = subjectOf(this.program, request.user);
      const context = contextOf(request.context);
      const contextualTuples = contextualTuplesOf(
        this.program,
        request.contextualTuples,
        tenant,
        this.#maxContextual,
      );
      return { request, tenant, subjectTenant, objectType, subject, user, context, contextualTuples };
    } catch (error) {
      this.#rejected++;
      throw error;
    }
  }

  #pinned(valid: ValidCheck, revision: Revision, now: number): ResolvedCheck {
    const { request, tenant, subjectTenant, context, contextualTuples, user } = valid;
    const text = contextualTuples.length > 0 ? undefined : contextText(context);
    return {
      tenant,
      subjectTenant,
      object: request.object,
      objectType: valid.objectType,
      relation: request.relation,
      subject: valid.subject,
      user,
      revision,
      now,
      context,
      contextualTuples,
      key:
        text === undefined
          ? undefined
          : questionKey(tenant, subjectTenant, request.object, request.relation, user, text),
    };
  }
}

/** The reverse expansion's candidates for a list objects question, read at exactly `revision`. */
async function candidatesAt(
  program: Program,
  store: TupleStore,
  maxDepth: number,
  query: ListObjectsQuery,
  at: {
    revision: Revision;
    now: number;
    context: ConditionContext | undefined;
    contextualTuples: ResolvedCheck["contextualTuples"];
  },
): Promise<Set<string>> {
  const snapshot = await snapshotAt(store, at.revision);
  try {
    const reader = new TupleReader(snapshot, program, at.contextualTuples, at.now);
    const ev = new Evaluation(reader, {
      ...(at.context !== undefined ? { context: at.context } : {}),
      maxDepth,
    });
    return await candidateObjects(ev, query);
  } finally {
    snapshot.release();
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
  return (c) => {
    const cls = c.objectType + "#" + c.relation;
    let most = hops.get(cls);
    if (most === undefined) {
      most = influence.maxHops(c.objectType, c.relation);
      hops.set(cls, most);
    }
    return most < maxDepth || bound?.safeBelow(maxDepth, c.revision) === true;
  };
}

function rank(order: readonly string[], layer: string): number {
  const i = order.indexOf(layer);
  return i < 0 ? order.length : i;
}
