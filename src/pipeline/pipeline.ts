/**
 * The one path every query takes: validate (src/request/validate.ts) → pin a revision (RevisionChooser:
 * consistency and quantization) → the layers (src/pipeline/builder.ts, outermost first) → the evaluator. Check,
 * checkMany, filter and listObjects enter the layers; listUsers and expand, which no layer answers, go from the
 * revision straight to the reference evaluator (src/pipeline/listing.ts).
 *
 * Two shortcuts stay inside this path, each sparing the hottest calls work whose outcome is already known:
 * - a plain repeated check (strings only, default consistency or a token the revision chooser accepted before, in
 *   the memoized window) is looked up in the result cache by its key before validation: an entry exists only for
 *   a question that was validated, and validation depends on nothing but those strings;
 * - `filter` asks the filter layer (Tiger, when on) for the whole answer (one bitmap) before checking object by
 *   object.
 *
 * The pipeline does not observe its traffic (the Warmer learns from CheckChain's entry points and warms through
 * these), owns its layers (close() closes them) and not the feed, the store or the program.
 */

import type { Program } from "../model/program.js";
import type { UsersetTree } from "../reference/expand.js";
import { consistencyKey } from "../request/consistency.js";
import { contextText, questionScope } from "../request/key.js";
import { objectOf, REQUEST_FIELDS, requestObject } from "../request/requests.js";
import type {
  CheckOptions,
  CheckRequest,
  ExpandRequest,
  FilterRequest,
  ListObjectsRequest,
  ListUsersRequest,
} from "../request/types.js";
import {
  type ValidCheck,
  validCheck,
  validExpand,
  validListObjects,
  validListUsers,
} from "../request/validate.js";
import { DEFAULT_TENANT } from "../tuples/tuple.js";
import type { Revision, TupleStore } from "../tuples/types.js";
import { atBatchIndex, describe, NexusError } from "../util/errors.js";
import type { WasmEvaluator } from "../wasm-eval/evaluator.js";
import type { Layers } from "./builder.js";
import {
  expandAt,
  type ListingContext,
  listObjectsThrough,
  listUsersAt,
  preloadKernelListing,
} from "./listing.js";
import type { RevisionChooser } from "./revision.js";
import {
  type CheckResolver,
  type DepthGuard,
  promised,
  type Resolution,
  type ResolvedCheck,
  resolveManyNow,
} from "./types.js";

export interface ValidateStats {
  readonly layer: "validate";
  readonly requests: number;
  readonly rejected: number;
}

export interface PipelineParts {
  readonly program: Program;
  readonly store: TupleStore;
  readonly clock: () => number;
  readonly maxDepth: number;
  readonly maxContextual: number;
  readonly revisions: RevisionChooser;
  readonly layers: Layers;
  readonly depthGuard: DepthGuard;
  /** The WASM evaluator, when the engine has one: list objects walks its graphs in the kernel where that is exact. */
  readonly wasm?: WasmEvaluator | undefined;
}

export class Pipeline {
  readonly program: Program;
  readonly store: TupleStore;
  readonly layers: Layers;
  readonly revisions: RevisionChooser;
  readonly #clock: () => number;
  readonly #maxContextual: number;
  readonly #listing: ListingContext & { readonly depthGuard: DepthGuard };
  #requests = 0;
  #rejected = 0;
  #closed = false;
  /** checkNow's consistency memo, reset per call (a single check is read at its own instant). */
  readonly #single: ConsistencyMemo = { consistency: NOT_SEEN, revision: undefined, quantized: false };

  constructor(parts: PipelineParts) {
    this.program = parts.program;
    this.store = parts.store;
    this.layers = parts.layers;
    this.revisions = parts.revisions;
    this.#clock = parts.clock;
    this.#maxContextual = parts.maxContextual;
    this.#listing = {
      program: parts.program,
      store: parts.store,
      maxDepth: parts.maxDepth,
      depthGuard: parts.depthGuard,
      wasm: parts.wasm,
    };
    // The first listing then finds the kernel listing loaded and its code warm (src/pipeline/listing.ts).
    if (parts.wasm !== undefined) preloadKernelListing();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The revision a read with `consistency` uses now. @throws NexusError "invalid_argument" | "invalid_token" */
  revisionFor(consistency: unknown): Promise<Revision> {
    return this.revisions.revisionFor(consistency as CheckRequest["consistency"], this.#clock());
  }

  /** Whether `user` has `relation` on `object`. */
  check(request: CheckRequest, options: CheckOptions = {}): Promise<boolean> {
    const now = this.#clock();
    return promised(() => {
      const hit = this.cachedCheck(request, now);
      return typeof hit === "boolean" ? hit : this.checkNow(request, options, now, hit);
    });
  }

  /** The instant a request starting now is answered at (the pipeline's clock). */
  now(): number {
    return this.#clock();
  }

  /**
   * The answer of a plain repeated check straight from the result cache (see #cachedAnswer) at instant `now`:
   * MISSED when it was looked up and is not there (checkNow then pins the question to the revision the lookup
   * used), undefined when it could not be looked up this way. Lets a caller answer a hit without an async step.
   */
  cachedCheck(request: CheckRequest, now: number): boolean | typeof MISSED | undefined {
    if (this.#closed) return undefined;
    const memo = this.#single;
    memo.consistency = NOT_SEEN;
    return this.#cachedAnswer(request, now, memo);
  }

  /**
   * check after its cache shortcut did not answer (`hit`: what cachedCheck just returned for this request at
   * instant `now`), the answer itself when nothing had to be waited for: the layers and the kernel answered
   * synchronously, and the revision was known without the store. A first-pass check then costs no promise on the
   * way down or back. Throws (or rejects) what check rejects with.
   */
  checkNow(
    request: CheckRequest,
    options: CheckOptions,
    now: number,
    hit: typeof MISSED | undefined,
  ): boolean | Promise<boolean> {
    this.#assertOpen();
    const valid = this.#validated(request, hit === MISSED);
    let revision: Revision | undefined;
    if (hit === MISSED) {
      // The shortcut's revision (same consistency, same instant): not chosen twice.
      revision = this.#single.revision!;
      this.revisions.countPeek(request.consistency);
    } else {
      revision = this.revisions.peek(request.consistency, now);
    }
    const probed = hit === MISSED;
    if (revision === undefined) return this.#checkLater(valid, request, options, now, probed);
    return this.#allowed(pinnedInPlace(valid, revision, now), options, probed);
  }

  /** checkNow whose revision the store has to tell. */
  async #checkLater(
    valid: ValidCheck,
    request: CheckRequest,
    options: CheckOptions,
    now: number,
    probed: boolean,
  ): Promise<boolean> {
    const revision = await this.revisions.revisionFor(request.consistency, now);
    return this.#allowed(pinnedInPlace(valid, revision, now), options, probed);
  }

  /**
   * A pinned question through the layers: the answer itself when none of them had to wait. `probed`: the cache
   * shortcut looked the question up and missed, so the result cache need not look again (at worst an entry stored
   * in between is not used: the answer is evaluated, exactly as well).
   */
  #allowed(resolved: ResolvedCheck, options: CheckOptions, probed: boolean): boolean | Promise<boolean> {
    const cache = this.layers.resultCache;
    const resolution =
      probed && cache !== undefined && cache === this.layers.outer
        ? cache.resolveMissedNow(resolved, options.signal)
        : outerNow(this.layers.outer, resolved, options.signal);
    return resolution instanceof Promise ? resolution.then(allowedOf) : resolution.allowed;
  }

  /**
   * Checks many requests as one batch (answers in request order). Unless `settled`, the first failing request
   * rejects the whole call with its index; settled, a failing one gets its error in its place.
   */
  async checkMany(
    requests: readonly CheckRequest[],
    options: CheckOptions = {},
    settled = false,
  ): Promise<(boolean | Error)[]> {
    this.#assertOpen();
    if (!Array.isArray(requests)) {
      throw new NexusError("invalid_argument", `requests must be an array, got ${describe(requests)}`);
    }
    const now = this.#clock();
    const count = requests.length;
    const answers: (boolean | Error)[] = new Array(count);
    // First the cache, for the whole batch (a batch's requests usually share one consistency: resolved once).
    const memo: ConsistencyMemo = { consistency: NOT_SEEN, revision: undefined, quantized: false };
    const missed: number[] = [];
    // Whether every question left was looked up in the cache and missed (then the cache does not look again).
    let probed = true;
    for (let index = 0; index < count; index++) {
      const hit = this.#cachedAnswer(requests[index] as CheckRequest, now, memo);
      // Written for a miss too (its place is filled again below): a batch of hits then runs only code a batch of
      // misses ran before it, and V8's compiled loop is not thrown away at the first hit (see CheckChain.check).
      answers[index] = hit === true;
      if (typeof hit !== "boolean") {
        missed.push(index);
        if (hit !== MISSED) probed = false;
      }
    }
    if (missed.length === 0) return answers;
    const resolved: ResolvedCheck[] = [];
    const positions: number[] = [];
    // Each distinct consistency is resolved once for the batch (all of it is read at one instant).
    const revisions = new Map<unknown, Revision>();
    let lastConsistency: unknown = NOT_SEEN;
    let lastRevision: Revision = 0;
    // Indexed (a for-of here made an iterator result per question: this loop can await, so they were kept).
    for (let k = 0; k < missed.length; k++) {
      const index = missed[k]!;
      const request = requests[index] as CheckRequest;
      try {
        const valid = this.#validated(request, probed);
        const consistency = request.consistency;
        let revision: Revision | undefined;
        if (consistency === lastConsistency) {
          // The same consistency (by identity) as the request before: the same revision, counted as a peek.
          revision = lastRevision;
          this.revisions.countPeek(consistency);
        } else {
          revision = this.revisions.peek(consistency, now);
          if (revision === undefined) {
            const key = consistencyKey(consistency);
            revision = revisions.get(key);
            if (revision === undefined) {
              revision = await this.revisions.revisionFor(consistency, now);
              revisions.set(key, revision);
            }
          } else {
            lastConsistency = consistency;
            lastRevision = revision;
          }
        }
        resolved.push(pinnedInPlace(valid, revision, now));
        positions.push(index);
      } catch (error) {
        if (!settled || !(error instanceof Error)) throw atBatchIndex(error, index);
        answers[index] = error;
      }
    }
    if (resolved.length === 0) return answers;
    const cache = this.layers.resultCache;
    let outcomes =
      probed && cache !== undefined && cache === this.layers.outer
        ? cache.resolveManyMissedNow(resolved, options.signal)
        : resolveManyNow(this.layers.outer, resolved, options.signal);
    if (outcomes instanceof Promise) outcomes = await outcomes;
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
   * The objects (in input order) on which `user` has `relation`: from the filter layer (Tiger's bitmap) when it
   * holds the question (no condition on the way), else one batch through the layers.
   */
  async filter(request: FilterRequest, options: CheckOptions = {}): Promise<string[]> {
    this.#assertOpen();
    requestObject(request, "a filter request", REQUEST_FIELDS.filter);
    if (!Array.isArray(request.objects)) {
      throw new NexusError("invalid_argument", `objects must be an array, got ${describe(request.objects)}`);
    }
    const { objects, ...question } = request as FilterRequest;
    if (objects.length === 0) return [];
    const now = this.#clock();
    const first = await this.#resolved({ ...question, object: objects[0]! }, now);
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
    // The filter layer validates only the objects it has no id for (an object with an id is a stored one of this type), so
    // the first malformed object is still the one reported.
    const whole = await this.layers.filter?.filterObjects(first, objects, validate);
    if (whole !== undefined) return whole;
    for (let index = 0; index < objects.length; index++) validate(objects[index], index);
    const allowed = await this.checkMany(
      objects.map((object) => ({ ...question, object })),
      options,
    );
    return objects.filter((_, i) => allowed[i] === true);
  }

  /**
   * The objects of `type` on which `user` has `relation`, sorted (src/pipeline/listing.ts). `atRevision` lists at
   * exactly that revision instead of the one `consistency` picks (a page of a paged listing).
   */
  async listObjects(
    request: ListObjectsRequest,
    options: CheckOptions = {},
    atRevision?: number,
  ): Promise<string[]> {
    this.#assertOpen();
    const now = this.#clock();
    const query = this.#counted(() => validListObjects(this.program, request, this.#maxContextual));
    const revision = atRevision ?? (await this.revisions.revisionFor(request.consistency, now));
    const valid = { ...query, objectType: query.type };
    return listObjectsThrough(
      this.#listing,
      query,
      { revision, now, exact: false },
      this.layers.outer,
      (object) => pinned(valid, object, query.relation, revision, now),
      options.signal,
    );
  }

  /** The subjects that have `relation` on `object`, in the filters' string forms, sorted. */
  async listUsers(request: ListUsersRequest, atRevision?: number): Promise<string[]> {
    this.#assertOpen();
    const query = this.#counted(() => validListUsers(this.program, request, this.#maxContextual));
    const now = this.#clock();
    const revision = atRevision ?? (await this.revisions.revisionFor(request.consistency, now));
    return listUsersAt(this.#listing, query, { revision, now, exact: atRevision !== undefined });
  }

  /** One level of the userset tree of `object#relation` (OpenFGA's Expand). */
  async expand(request: ExpandRequest): Promise<UsersetTree> {
    this.#assertOpen();
    const query = this.#counted(() => validExpand(this.program, request, this.#maxContextual));
    const now = this.#clock();
    const revision = await this.revisions.revisionFor(request.consistency, now);
    return expandAt(this.#listing, query, { revision, now, exact: false });
  }

  validateStats(): ValidateStats {
    return { layer: "validate", requests: this.#requests, rejected: this.#rejected };
  }

  /** Removes the layers' feed subscriptions and closes every layer (freeing their WASM memory). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const unsubscribe of this.layers.unsubscribe) unsubscribe();
    await this.layers.outer.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the check chain is closed");
  }

  /** Runs a validation, counting it in stats (requests, rejected). */
  #counted<T>(validate: () => T): T {
    this.#requests++;
    try {
      return validate();
    } catch (error) {
      this.#rejected++;
      throw error;
    }
  }

  /**
   * validCheck, counted as #counted does (written out: this runs for every check). `probed`: the cache shortcut
   * looked the request up (MISSED), having seen it is an object of check fields only, which validation then skips.
   */
  #validated(request: CheckRequest, probed = false): ValidCheck {
    this.#requests++;
    try {
      return validCheck(this.program, request, this.#maxContextual, probed);
    } catch (error) {
      this.#rejected++;
      throw error;
    }
  }

  /** Validates a check and pins it to its revision. */
  async #resolved(request: CheckRequest, now: number): Promise<ResolvedCheck> {
    const valid = this.#validated(request);
    const revision =
      this.revisions.peek(request.consistency, now) ??
      (await this.revisions.revisionFor(request.consistency, now));
    return pinnedInPlace(valid, revision, now);
  }

  /**
   * The result cache's answer for a plain request (strings only; no context or contextual tuples; default
   * consistency, or `{ atLeastAsFresh }` with a token already accepted) in the memoized window, found by its
   * identity alone, before validation: an entry exists only for a question that was validated, and validation
   * depends on nothing but these strings. MISSED when it was looked up and is not there, undefined when it could
   * not be looked up this way. `memo` carries a batch's last consistency and its
   * revision (requests of a batch usually share one consistency object).
   */
  #cachedAnswer(
    request: CheckRequest,
    now: number,
    memo: ConsistencyMemo,
  ): boolean | typeof MISSED | undefined {
    const cache = this.layers.resultCache;
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
        (!Array.isArray(request.contextualTuples) || request.contextualTuples.length > 0))
    ) {
      return undefined;
    }
    // A field no check has is refused by validation, never answered around it.
    for (const field in request) if (!isCheckField(field)) return undefined;
    // The scope is NUL-separated text (questionScope): a relation or tenant holding a NUL could spell another
    // tenant's scope. Validation refuses them; only it may answer such a request.
    if (relation.includes("\u0000") || tenant?.includes("\u0000") || subjectTenant?.includes("\u0000")) {
      return undefined;
    }
    const { consistency } = request;
    if (memo.consistency !== consistency) {
      const quantized = consistency === undefined || consistency === "minimize_latency";
      // A token is taken here only once the revision chooser has accepted it (checked against the store) before.
      memo.revision = quantized
        ? this.revisions.peekWindow(now)
        : typeof consistency === "object"
          ? this.revisions.peekToken(consistency, now)
          : undefined;
      memo.quantized = quantized;
      memo.consistency = consistency;
    }
    // Read from the memo in either case: a single check (whose memo starts empty) then runs the reads a batch's
    // later requests run, and V8's compiled code does not meet them first in the first batch (it deoptimized there:
    // no type feedback for them).
    const revision = memo.revision;
    const quantized = memo.quantized;
    if (revision === undefined) return undefined;
    const t = tenant ?? DEFAULT_TENANT;
    const scope = questionScope(t, subjectTenant ?? t, relation, "")!;
    const allowed = cache.allowedAt(scope, user, object, revision, now);
    // A hit is counted as a validated request and a read of the memoized revision; a miss is counted by the path
    // that answers it. Written without a branch on the outcome: this code then runs the same for a miss as for a
    // hit, so a run of misses (a first pass) has readied it for the hits that follow (see CheckChain.check).
    const found = allowed === undefined ? 0 : 1;
    this.#requests += found;
    this.revisions.countShortcut(quantized, found);
    return allowed ?? MISSED;
  }
}

const allowedOf = (resolution: Resolution): boolean => resolution.allowed;

/** The outermost layer's resolveNow (a call site of its own: it sees the one outermost layer). */
function outerNow(
  outer: CheckResolver,
  check: ResolvedCheck,
  signal: AbortSignal | undefined,
): Resolution | Promise<Resolution> {
  return outer.resolveNow !== undefined ? outer.resolveNow(check, signal) : outer.resolve(check, signal);
}

/**
 * Whether `field` is one of a check request's (REQUEST_FIELDS.check), written as a switch: the cache shortcut asks
 * it of every field of every repeated check, and a Set's has() cost about 40 ns more a request of four fields
 * (measured in a tight loop: 26 against 65 ns). test/pipeline/hit-path.test.ts holds the two equal.
 */
export function isCheckField(field: string): boolean {
  switch (field) {
    case "user":
    case "relation":
    case "object":
    case "tenant":
    case "subjectTenant":
    case "contextualTuples":
    case "context":
    case "consistency":
      return true;
    default:
      return false;
  }
}

/** #cachedAnswer looked the question up and the cache has no answer for it. */
export const MISSED: unique symbol = Symbol("missed");

/** A stand-in for "no consistency seen yet" (undefined is a consistency: the default). */
const NOT_SEEN: unknown = Symbol("not seen");

/** A batch's last consistency (by identity) and the revision the cache shortcut found for it. */
interface ConsistencyMemo {
  consistency: unknown;
  revision: Revision | undefined;
  quantized: boolean;
}

/**
 * A validated check pinned to `revision` at instant `now`: the ValidCheck itself, its pinning fields filled in (it
 * was made for this; each is pinned once, right after its validation).
 */
function pinnedInPlace(valid: ValidCheck, revision: Revision, now: number): ResolvedCheck {
  const { tenant, subjectTenant, contextualTuples } = valid;
  const text = contextualTuples.length > 0 ? undefined : contextText(valid.context);
  valid.revision = revision;
  valid.now = now;
  valid.scope = questionScope(tenant, subjectTenant, valid.relation, text);
  return valid;
}

/** A validated question about `object`'s `relation`, pinned to `revision` at instant `now` (a new object). */
function pinned(
  valid: Omit<ValidCheck, "object" | "relation" | "revision" | "now" | "scope">,
  object: string,
  relation: string,
  revision: Revision,
  now: number,
): ResolvedCheck {
  const { tenant, subjectTenant, context, contextualTuples, user } = valid;
  const text = contextualTuples.length > 0 ? undefined : contextText(context);
  return {
    tenant,
    subjectTenant,
    object,
    objectType: valid.objectType,
    relation,
    subject: valid.subject,
    user,
    revision,
    now,
    context,
    contextualTuples,
    scope: questionScope(tenant, subjectTenant, relation, text),
  };
}
