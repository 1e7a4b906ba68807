/**
 * The engine: a model, a tuple store and the queries over them (check, list objects, list users, expand, read),
 * writes with consistency tokens, and change streams. Runtime-neutral (browsers, workers, edge runtimes, Node).
 *
 * ```ts
 * const engine = await createEngine({ model: `model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]` });
 * const { token } = await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "doc:1" }] });
 * await engine.check({ user: "user:anne", relation: "viewer", object: "doc:1", consistency: { atLeastAsFresh: token } }); // true
 * await engine.close();
 * ```
 *
 * Every query goes one way: the engine hands it to its CheckChain (src/pipeline/chain.ts), which validates it,
 * pins its revision and sends it through the cache layers (none with `cache: false`) to the evaluator. The engine
 * itself adds paging (pages.ts), batchCheck's shape (batch.ts), writes, reads, change streams (watch.ts) and the
 * cross-tenant grant queries (grants.ts). It opens one change feed (src/changes/feed.ts) when anything follows
 * changes: the layers, a watch stream, the grant index; all of them subscribe to that one.
 *
 * Tenants: every tuple and request has a tenant (default "default"), and nothing crosses tenants except
 * cross-tenant grants: a tuple whose `subjectTenant` differs from its `tenant`, allowed only on relations the model
 * marks shareable (Nexus's `shared-*`). A request names the subject's tenant with `subjectTenant` (default: its
 * own tenant): `check({ tenant: "acme", subjectTenant: "globex", user: "user:bob", relation: "viewer",
 * object: "doc:1" })` asks whether globex's bob may view acme's doc:1, which only a grant written in acme can
 * allow. Evaluation that follows a grant's subject (a userset like `team:eng#member`, or a parent object)
 * continues in the subject's tenant.
 *
 * Errors are NexusError with a stable code naming the bad input (see src/request/requests.ts); condition
 * evaluation yields "condition_missing_parameter" as OpenFGA does; too deep a resolution is
 * "resolution_too_complex".
 */

import { ChangeFeed } from "../changes/feed.js";
import { compileModelAsync, loadConditions } from "../model/index.js";
import type { Program } from "../model/program.js";
import { validateProgram } from "../model/validate.js";
import { CheckChain } from "../pipeline/chain.js";
import { kernelListingWarmed } from "../pipeline/listing.js";
import { checkDetailed, type DetailedCheckResult } from "../reference/detailed.js";
import { DEFAULT_MAX_DEPTH } from "../reference/evaluation.js";
import type { UsersetTree } from "../reference/expand.js";
import { type Consistency, KnownRevision, snapshotAtLeast } from "../request/consistency.js";
import { REQUEST_FIELDS, requestObject, tenantOf } from "../request/requests.js";
import { DEFAULT_QUANTIZATION_WINDOW_MS } from "../request/validate.js";
import { encodeToken } from "../tuples/token.js";
import type { TupleKey } from "../tuples/tuple.js";
import type { TupleStore } from "../tuples/types.js";
import { anySignal } from "../util/any-signal.js";
import { describe, NexusError } from "../util/errors.js";
import {
  type PermissionChange,
  type PermissionRevision,
  type PermissionSource,
  type PermissionWatchRequest,
  watchPermissionRevisions,
  watchPermissions,
} from "../views/permissions.js";
import type { WasmEvaluator } from "../wasm-eval/evaluator.js";
import { batchAnswer, checkOf, MAX_BATCH_CHECKS, namedChecks } from "./batch.js";
import { EngineGrants, type GrantQueries } from "./grants.js";
import { checkEngineOptions, defaultStore, isProgram, layerOptionsOf, openKernel } from "./options.js";
import { ListingCache, listingPage, type PagedSource, type PageRequest } from "./pages.js";
import { byTupleKey, readTuples, tenantsOf, tupleOrderKey, writeOfInSlices } from "./tuples.js";
import type {
  BatchCheckItem,
  BatchCheckOptions,
  BatchCheckRequest,
  BatchCheckResponse,
  CheckOptions,
  CheckRequest,
  EngineOptions,
  EngineStats,
  ExpandRequest,
  FilterRequest,
  ListObjectsPage,
  ListObjectsRequest,
  ListUsersPage,
  ListUsersRequest,
  ReadPage,
  ReadRequest,
  WatchRequest,
  WriteRequest,
  WriteResponse,
} from "./types.js";
import { type Change, changeStream, watchStart } from "./watch.js";

export type { ForeignSubject, UsersetLeaf, UsersetNode, UsersetTree } from "../reference/expand.js";
export type { UserFilter } from "../reference/list-users.js";
export type { Consistency } from "../request/consistency.js";
export type { PermissionChange, PermissionRevision, PermissionWatchRequest } from "../views/permissions.js";
export type { BatchCheckError, BatchCheckSingleResponse } from "./batch.js";
export type { GrantQueries, GrantsOnQuery, GrantsToQuery } from "./grants.js";
export type { PageRequest } from "./pages.js";
export type * from "./types.js";
export type { Change } from "./watch.js";

/** The options of a call that gave none (one shared object: a check allocates nothing for them). */
const NO_OPTIONS: CheckOptions = Object.freeze({});

/** What createEngine hands the engine it builds. */
interface EngineParts {
  readonly program: Program;
  readonly store: TupleStore;
  readonly ownsStore: boolean;
  readonly clock: () => number;
  readonly maxDepth: number;
  readonly known: KnownRevision;
  readonly wasm: WasmEvaluator | undefined;
  readonly chain: CheckChain;
  /** Whether the chain has its layers (stats() reports them); false with `cache: false`. */
  readonly layered: boolean;
  /** The change feed the layers follow, when they do (else opened on demand). */
  readonly feed: ChangeFeed | undefined;
}

export class Engine implements AsyncDisposable {
  readonly program: Program;
  readonly store: TupleStore;
  readonly #ownsStore: boolean;
  readonly #clock: () => number;
  readonly #maxDepth: number;
  /** The latest revision this engine wrote or its change feed delivered: default reads never see less. */
  readonly #known: KnownRevision;
  readonly #closing = new AbortController();
  /** Set with #closing's abort: what every call checks (a plain field, where the signal's getter validates). */
  #closed = false;
  readonly #wasm: WasmEvaluator | undefined;
  /** The one path of every query. */
  readonly #chain: CheckChain;
  readonly #layered: boolean;
  /** The engine's one change feed, once anything follows changes. */
  #feed: Promise<ChangeFeed> | undefined;
  readonly #grants: EngineGrants;
  /** The listings pages are being cut from (src/engine/pages.ts). */
  readonly #listings = new ListingCache();
  readonly #pages: PagedSource;

  /** Use createEngine(). */
  constructor(parts: EngineParts) {
    this.program = parts.program;
    this.store = parts.store;
    this.#ownsStore = parts.ownsStore;
    this.#clock = parts.clock;
    this.#maxDepth = parts.maxDepth;
    this.#known = parts.known;
    this.#wasm = parts.wasm;
    this.#chain = parts.chain;
    this.#layered = parts.layered;
    if (parts.feed !== undefined) this.#feed = Promise.resolve(parts.feed);
    this.#pages = {
      store: parts.store,
      listings: this.#listings,
      revisionFor: (consistency) => this.revisionFor(consistency as Consistency),
    };
    this.#grants = new EngineGrants(parts.chain.crossTenant?.index, {
      program: parts.program,
      store: parts.store,
      clock: parts.clock,
      feed: () => this.#changeFeed(),
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Which evaluator answers checks ("wasm" routes what it does not evaluate to "reference"). */
  get evaluator(): "wasm" | "reference" {
    return this.#wasm === undefined ? "reference" : "wasm";
  }

  /**
   * The cross-tenant grant queries (`grantsTo({ subjectTenant, user })`: what other tenants shared with a
   * subject; `grantsOn({ tenant, object })`: who outside the tenant may reach an object), with or without the
   * cache layers (src/engine/grants.ts).
   */
  get crossTenantIndex(): GrantQueries {
    return this.#grants;
  }

  /** The WASM evaluator (counters, memory), when it is in use. */
  get wasmEvaluator(): WasmEvaluator | undefined {
    return this.#wasm;
  }

  /**
   * Writes and deletes tuples atomically: all of them at one new revision, or none (the error says which). A large
   * write is validated in slices with the event loop turning between them: its tuple objects are read as it goes,
   * so change none of them until the returned promise settles.
   */
  async write(request: WriteRequest): Promise<WriteResponse> {
    this.#assertOpen();
    // Validated in slices, the event loop's other tasks run between them (a 10k-tuple write held it 40-80 ms).
    const { writes, deletes } = await writeOfInSlices(this.program, request);
    // close() may have run while the write was validated: a closed engine writes nothing.
    this.#assertOpen();
    const result = await this.store.write({
      writes,
      deletes,
      onDuplicate: request.onDuplicate ?? "error",
      onMissing: request.onMissing ?? "error",
    });
    // Read-your-writes: every read from now on sees this revision (no store call needed to learn it).
    this.#known.advance(result.revision);
    // The WASM graphs take the write now, in slices, so no later request waits for it (or for a first build).
    await this.#wasm?.follow(tenantsOf(writes, deletes), result.revision);
    const token = encodeToken(this.store.id, result.revision);
    // The first read with this token then peeks its revision rather than awaiting the store inside the request.
    // Best effort: the write has committed, so a failed lookup (a flaky store, a close() meanwhile) must not turn
    // it into an error; the first read makes the lookup itself then.
    await this.#chain.primeReads(token, result.revision).catch(() => undefined);
    return { token, revision: result.revision };
  }

  /**
   * Whether `user` has `relation` on `object`. `options.signal` abandons this request alone (NexusError
   * "aborted"); an evaluation it shares with identical requests goes on for them.
   */
  check(request: CheckRequest, options?: CheckOptions): Promise<boolean> {
    // Not async: a cached answer is handed back as the chain's settled promise, without another one around it
    // (the chain turns whatever it throws into a rejection). The common call (an open engine, no options) is kept
    // this short on purpose: V8 compiles a function this small early (its "small function" rule), where at 120
    // bytes of bytecode it still ran unoptimized through most of a 2,000-check second pass.
    if (options === undefined && !this.#closed) return this.#chain.check(request, NO_OPTIONS);
    // Only a missing argument is no options: null is refused as checkBulk refuses it.
    return this.#checkWith(request, options === undefined ? NO_OPTIONS : options);
  }

  /** check on a closed engine or with options: whatever is thrown here reaches the caller as a rejection. */
  #checkWith(request: CheckRequest, options: CheckOptions): Promise<boolean> {
    try {
      this.#assertOpen();
      if (options !== NO_OPTIONS) requestObject(options, "check options", REQUEST_FIELDS.callOptions);
      return this.#chain.check(request, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `check` with SpiceDB's third answer: `{ allowed, conditional?: { missingParameters } }`. A SpiceDB schema's
   * check that depends on caveat parameters the request did not give is reported as conditional (where `check`
   * rejects with "condition_missing_parameter"); see src/reference/detailed.ts.
   */
  checkDetailed(request: CheckRequest, options: CheckOptions = {}): Promise<DetailedCheckResult> {
    return checkDetailed((r: CheckRequest) => this.check(r, options), request);
  }

  /**
   * Checks many requests as one batch; the answers come in request order. The first invalid or failing request
   * rejects the call, naming its index.
   */
  async checkBulk(requests: readonly CheckRequest[], options: CheckOptions = NO_OPTIONS): Promise<boolean[]> {
    this.#assertOpen();
    if (options !== NO_OPTIONS) requestObject(options, "checkBulk options", REQUEST_FIELDS.callOptions);
    return this.#chain.checkMany(requests, options);
  }

  /**
   * OpenFGA's BatchCheck, shaped as `@openfga/sdk`'s `batchCheck`: every check is answered in request order,
   * `{ correlationId, request, allowed }`, or `{ ..., allowed: false, error }` (a NexusError) for a check that
   * fails alone (bad relation, missing condition parameter, ...). Correlation ids (OpenFGA's rule: 1 to 36
   * letters, digits, "_" or "-") are generated where absent. The checks run as checkBulk's one batch
   * (src/engine/batch.ts). `tenant`, `subjectTenant` and `consistency` are defaults for the items.
   * @throws NexusError "invalid_argument" for more than `options.maxChecks` (10,000) checks, or a malformed or
   *   duplicated correlation id (details.reason "duplicate_correlation_id"); "aborted" when `signal` aborts.
   */
  async batchCheck(request: BatchCheckRequest, options: BatchCheckOptions = {}): Promise<BatchCheckResponse> {
    this.#assertOpen();
    requestObject(options, "batchCheck options", REQUEST_FIELDS.batchCheckOptions);
    const { maxChecks = MAX_BATCH_CHECKS, ...callOptions } = options;
    if (typeof maxChecks !== "number" || !Number.isInteger(maxChecks) || maxChecks < 1) {
      throw new NexusError(
        "invalid_argument",
        `maxChecks must be an integer ≥ 1, got ${describe(maxChecks)}`,
      );
    }
    const named = namedChecks<BatchCheckItem>(request, maxChecks);
    const { checks: _, ...defaults } = request;
    const requests = named.map(({ item }) => checkOf(item, defaults) as CheckRequest);
    return batchAnswer(named, await this.#chain.checkManySettled(requests, callOptions));
  }

  /**
   * The objects (in input order) of `objects`, all of one type, on which `user` has `relation`: one call filters
   * a directory listing (Nexus's filter_list). Served from the Tiger bitmap of (user, relation, type) when that
   * layer has it, else as one batch of checks.
   */
  async filter(request: FilterRequest, options: CheckOptions = {}): Promise<string[]> {
    this.#assertOpen();
    requestObject(options, "filter options", REQUEST_FIELDS.callOptions);
    return this.#chain.filter(request, options);
  }

  /** The objects of `type` on which `user` has `relation` (each passes check), sorted. */
  async listObjects(request: ListObjectsRequest, options: CheckOptions = {}): Promise<string[]> {
    this.#assertOpen();
    requestObject(options, "listObjects options", REQUEST_FIELDS.callOptions);
    return this.#chain.listObjects(request, options);
  }

  /**
   * listObjects a page at a time: `{ objects, continuationToken }` ("" after the last page). Every page reads the
   * revision the first one chose, so the pages make up exactly one listing (src/engine/pages.ts).
   * @throws NexusError "invalid_continuation_token" for a token that is not this listing's or has expired.
   */
  async listObjectsPage(
    request: ListObjectsRequest & PageRequest,
    options: CheckOptions = {},
  ): Promise<ListObjectsPage> {
    this.#assertOpen();
    requestObject(options, "listObjectsPage options", REQUEST_FIELDS.callOptions);
    const { pageSize: _, continuationToken: __, ...query } = requestObject(request, "a list objects request");
    const page = await listingPage(
      this.#pages,
      "list-objects",
      request,
      query,
      (revision) => this.#chain.listObjects(query, options, revision),
      (object) => object,
    );
    return { objects: page.items, continuationToken: page.continuationToken };
  }

  /**
   * The subjects that have `relation` on `object`, in the string forms of the filters: `user:anne`, `user:*`
   * (everyone of the type), `group:eng#member`. Each passes check.
   */
  async listUsers(request: ListUsersRequest): Promise<string[]> {
    this.#assertOpen();
    return this.#chain.listUsers(request);
  }

  /** listUsers a page at a time, pages as listObjectsPage's: `{ users, continuationToken }`. */
  async listUsersPage(request: ListUsersRequest & PageRequest): Promise<ListUsersPage> {
    this.#assertOpen();
    const { pageSize: _, continuationToken: __, ...query } = requestObject(request, "a list users request");
    const page = await listingPage(
      this.#pages,
      "list-users",
      request,
      query,
      (revision) => this.#chain.listUsers(query, revision),
      (user) => user,
    );
    return { users: page.items, continuationToken: page.continuationToken };
  }

  /** One level of the userset tree of `object#relation` (OpenFGA's Expand). */
  async expand(request: ExpandRequest): Promise<UsersetTree> {
    this.#assertOpen();
    return this.#chain.expand(request);
  }

  /**
   * The tuples of a tenant that count now, filtered by object (`type:id` or `type:`), relation and user, in no
   * particular order (two reads may list them differently): readPage lists them in a stable order.
   */
  async read(request: ReadRequest = {}): Promise<TupleKey[]> {
    this.#assertOpen();
    return this.#read(request);
  }

  /**
   * read a page at a time, pages as listObjectsPage's: `{ tuples, continuationToken }`, tuples ordered by
   * object, relation, subject tenant and user.
   */
  async readPage(request: ReadRequest & PageRequest = {}): Promise<ReadPage> {
    this.#assertOpen();
    const { pageSize: _, continuationToken: __, ...query } = requestObject(request, "a read request");
    const page = await listingPage(
      this.#pages,
      "read",
      request,
      query,
      async (revision) => (await this.#read(query, revision)).sort(byTupleKey),
      tupleOrderKey,
    );
    return { tuples: page.items, continuationToken: page.continuationToken };
  }

  /** The tuples `request` asks for, at exactly `atRevision` when given, else at its consistency's revision. */
  async #read(request: ReadRequest, atRevision?: number): Promise<TupleKey[]> {
    return readTuples(request, async (filter) => {
      const now = this.#clock();
      const snapshot =
        atRevision === undefined
          ? await snapshotAtLeast(this.store, await this.#chain.revisionFor(request.consistency))
          : await this.store.snapshot(atRevision);
      try {
        return { tuples: await snapshot.read(filter), now };
      } finally {
        snapshot.release();
      }
    });
  }

  /** The latest revision's token (a watch from it sees only later changes). */
  async token(): Promise<string> {
    this.#assertOpen();
    return encodeToken(this.store.id, await this.store.currentRevision());
  }

  /**
   * Streams a tenant's changes after `after` (default: from now on), in revision order, with no gap and no
   * duplicate, from the engine's change feed (src/engine/watch.ts). The loop ends on close() or when `signal`
   * aborts.
   * @throws NexusError "invalid_token" when `after` is garbage, from another store, or older than the changelog keeps.
   */
  async *watch(request: WatchRequest = {}): AsyncGenerator<Change, void, undefined> {
    this.#assertOpen();
    requestObject(request, "a watch request", REQUEST_FIELDS.watch);
    const tenant = tenantOf(request.tenant);
    const after = await watchStart(this.store, request.after);
    const stop = anySignal([this.#closing.signal, request.signal]);
    try {
      yield* changeStream(await this.#changeFeed(), tenant, after, stop);
    } catch (error) {
      // The store (or the engine) closing under a waiting stream ends it quietly.
      if (!(error instanceof NexusError && error.code === "closed" && (stop.aborted || this.store.closed))) {
        throw error;
      }
    }
  }

  /**
   * Streams changes of a computed permission (who gained or lost `relation` on objects of `type`), exact and
   * gapless from `after`; see src/views/permissions.ts for which subjects count. Ends on close() or `signal`.
   */
  async *watchPermissions(
    request: PermissionWatchRequest,
  ): AsyncGenerator<PermissionChange, void, undefined> {
    yield* watchPermissions(await this.#permissionSource(), request);
  }

  /** watchPermissions as one batch per revision, empty ones included (materialized views apply these). */
  async *watchPermissionRevisions(
    request: PermissionWatchRequest,
  ): AsyncGenerator<PermissionRevision, void, undefined> {
    yield* watchPermissionRevisions(await this.#permissionSource(), request);
  }

  /** What permission streams read: the model, the store and the engine's change feed. */
  async #permissionSource(): Promise<PermissionSource> {
    const { program, store } = this;
    // A closed engine's streams end at once (its stop signal); they need no feed.
    const feed = this.closed ? undefined : await this.#changeFeed();
    return {
      program,
      store,
      maxDepth: this.#maxDepth,
      stop: this.#closing.signal,
      ...(feed ? { feed } : {}),
    };
  }

  /** Counters of the check chain's layers and of the WASM evaluator. */
  stats(): EngineStats {
    this.#assertOpen();
    return {
      evaluator: this.evaluator,
      ...(this.#layered ? { chain: this.#chain.stats() } : {}),
      ...(this.#wasm !== undefined ? { wasm: structuredClone(this.#wasm.stats) } : {}),
    };
  }

  /** Resolves once every cache has applied every change up to the store's current revision. */
  async caughtUp(): Promise<void> {
    this.#assertOpen();
    await this.#chain.caughtUp();
  }

  /**
   * Ends every watch, stops the change feed and every layer, and closes the store if the engine created it.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    this.#listings.clear();
    await this.#grants.close();
    // The chain owns the WASM evaluator (its innermost layer).
    await this.#chain.close();
    const feed = await this.#feed?.catch(() => undefined);
    await feed?.close();
    if (this.#ownsStore) await this.store.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal The revision a consistency preference resolves to now (for tests and caches). */
  revisionFor(consistency?: Consistency): Promise<number> {
    return this.#chain.revisionFor(consistency);
  }

  // --- internals ---

  #assertOpen(): void {
    if (this.#closed) throw new NexusError("closed", "the engine is closed");
  }

  /**
   * The engine's one change feed (src/changes/feed.ts): the layers' when they follow changes, else opened on
   * first need. For followers outside the engine (NexusFS's permission events): subscribe with `{ after }` from
   * your own cursor and unsubscribe when done; the engine closes the feed on close().
   * @throws NexusError "closed" after close().
   */
  changeFeed(): Promise<ChangeFeed> {
    return this.#changeFeed();
  }

  #changeFeed(): Promise<ChangeFeed> {
    this.#assertOpen();
    if (this.#feed === undefined) {
      const opening = ChangeFeed.open(this.store);
      this.#feed = opening;
      // A failed open is retried by the next follower.
      opening.catch(() => {
        if (this.#feed === opening) this.#feed = undefined;
      });
    }
    return this.#feed;
  }
}

/**
 * Creates an engine: compiles the model (detecting its language unless `format` says it), opens the store, the
 * WASM evaluator (where its kernel loads), the change feed when the layers follow changes, and the check chain.
 * @throws NexusError "invalid_model" (and friends) naming what is wrong with the model; "invalid_argument" for options.
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  checkEngineOptions(options);
  // A Program handed over may hold conditions, which validating it compiles: the CEL runtime first.
  if (
    isProgram(options.model) &&
    options.model.conditions instanceof Map &&
    options.model.conditions.size > 0
  ) {
    await loadConditions();
  }
  const program = isProgram(options.model)
    ? validateProgram(options.model)
    : await compileModelAsync(options.model, options.format, options.limits);
  const window = options.quantizationWindowMs ?? DEFAULT_QUANTIZATION_WINDOW_MS;
  const maxDepth = options.maxResolutionDepth ?? DEFAULT_MAX_DEPTH;
  const ownsStore = options.store === undefined;
  const store = options.store ?? defaultStore(options);
  // What this engine knows exists: the store as it is now (so a new engine over a used store reads it at once),
  // then its own writes and its feed's deliveries.
  const known = new KnownRevision(await store.currentRevision());
  let feed: ChangeFeed | undefined;
  let wasm: WasmEvaluator | undefined;
  let chain: CheckChain;
  try {
    const layers = layerOptionsOf(options.cache);
    const wantsKernel = options.evaluator !== "reference";
    // The one feed: the layers follow it, and so do the WASM evaluator's graphs.
    if (layers.watch !== false || wantsKernel) feed = await ChangeFeed.open(store);
    if (wantsKernel) wasm = await openKernel(options, { program, store, maxDepth, feed });
    chain = await CheckChain.open({
      ...layers,
      program,
      store,
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
      quantizationWindowMs: window,
      knownRevision: known,
      ...(options.maxResolutionDepth !== undefined ? { maxResolutionDepth: options.maxResolutionDepth } : {}),
      ...(options.maxContextualTuples !== undefined
        ? { maxContextualTuples: options.maxContextualTuples }
        : {}),
      ...(wasm !== undefined ? { wasm } : {}),
      ...(feed !== undefined && layers.watch !== false ? { feed } : {}),
    });
    // The kernel listing's import and warm-up (src/pipeline/listing.ts), started by the chain, run now rather than
    // as tasks inside the first request (a load's first write carried both). Once a process; it never rejects.
    if (wasm !== undefined) await kernelListingWarmed();
  } catch (error) {
    await wasm?.close();
    await feed?.close();
    if (ownsStore) await store.close();
    throw error;
  }
  return new Engine({
    program,
    store,
    ownsStore,
    clock: options.clock ?? Date.now,
    maxDepth,
    known,
    wasm,
    chain,
    layered: options.cache !== false,
    feed,
  });
}
