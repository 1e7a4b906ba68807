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
 * Tenants: every tuple and request has a tenant (default "default"), and nothing crosses tenants except
 * cross-tenant grants: a tuple whose `subjectTenant` differs from its `tenant`, allowed only on relations the model
 * marks shareable (Nexus's `shared-*`). A request names the subject's tenant with `subjectTenant` (default: its
 * own tenant): `check({ tenant: "acme", subjectTenant: "globex", user: "user:bob", relation: "viewer",
 * object: "doc:1" })` asks whether globex's bob may view acme's doc:1, which only a grant written in acme can
 * allow. Evaluation that follows a grant's subject (a userset like `team:eng#member`, or a parent object)
 * continues in the subject's tenant.
 *
 * Errors are NexusError with a stable code naming the bad input (see requests.ts); condition evaluation yields
 * "condition_missing_parameter" as OpenFGA does; too deep a resolution is "resolution_too_complex".
 */

import type { ConditionContext } from "../conditions/cel.js";
import { compileModelAsync, type ModelLimits } from "../model/index.js";
import type { ModelFormat, Program } from "../model/program.js";
import { validateProgram } from "../model/validate.js";
import {
  type ChainStats,
  CheckChain,
  type CheckChainOptions,
  type CheckOptions,
  type FilterRequest,
} from "../pipeline/chain.js";
import type { CrossTenantResolver } from "../pipeline/cross-tenant/index.js";
import { type CheckQuery, check } from "../reference/check.js";
import { checkDetailed, type DetailedCheckResult } from "../reference/detailed.js";
import { DEFAULT_MAX_DEPTH, Evaluation } from "../reference/evaluation.js";
import { expand, type UsersetTree } from "../reference/expand.js";
import { listObjects } from "../reference/list-objects.js";
import { listUsers, type UserFilter } from "../reference/list-users.js";
import { TupleReader } from "../reference/reader.js";
import { type Consistency, KnownRevision, openSnapshot, revisionFor } from "../request/consistency.js";
import {
  contextOf,
  contextualTuplesOf,
  objectOf,
  onlyKnownFields,
  REQUEST_FIELDS,
  relationOfType,
  requestObject,
  subjectOf,
  subjectTenantOf,
  tenantOf,
  typeOf,
  validTuple,
} from "../request/requests.js";
import { MemoryTupleStore } from "../tuples/memory.js";
import { normalizeIdentity } from "../tuples/normalize.js";
import { decodeToken, encodeToken } from "../tuples/token.js";
import {
  parseObject,
  type RelationTuple,
  type TupleIdentity,
  type TupleKey,
  toTupleKey,
} from "../tuples/tuple.js";
import type { TupleSnapshot, TupleStore } from "../tuples/types.js";
import { anySignal } from "../util/any-signal.js";
import { atBatchIndex, describe, NexusError } from "../util/errors.js";
import {
  type PermissionChange,
  type PermissionRevision,
  type PermissionSource,
  type PermissionWatchRequest,
  watchPermissionRevisions,
  watchPermissions,
} from "../views/permissions.js";
import { ready } from "../wasm/loader.js";
import { FastEvaluator, type FastEvaluatorStats } from "../wasm-eval/evaluator.js";
import { listObjectsFast } from "../wasm-eval/list-objects.js";
import {
  type BatchCheckSingleResponse,
  batchAnswer,
  checkOf,
  MAX_BATCH_CHECKS,
  namedChecks,
} from "./batch.js";
import {
  atPinnedRevision,
  ListingCache,
  type PageKind,
  type PageRequest,
  pageOf,
  pagePosition,
  questionOf,
} from "./pages.js";
import { type Change, changeStream } from "./watch.js";

export type { CheckOptions, FilterRequest } from "../pipeline/chain.js";
export type { Consistency } from "../request/consistency.js";
export type { PermissionChange, PermissionRevision, PermissionWatchRequest } from "../views/permissions.js";
export type { BatchCheckError, BatchCheckSingleResponse } from "./batch.js";
export type { PageRequest } from "./pages.js";
export type { Change } from "./watch.js";

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
   * The cache and index layers in front of the evaluator (src/pipeline/chain.ts): result cache keyed by the
   * quantized revision, Bloom negative cache, singleflight, cross-tenant grant index, Tiger bitmaps, each kept
   * exact by the store's change feed. Every layer is on by default; switch one off with `{ bloom: false }`, or
   * all of them with `false` (checks then go straight to the evaluator). `engine.stats()` counts each layer.
   */
  readonly cache?: false | EngineCacheOptions;
  /**
   * Limits a model must keep to (src/model/limits.ts: source size, nesting, types, relations per type), checked
   * before parsing; past one, "invalid_model" names it. Defaults: DEFAULT_MODEL_LIMITS.
   */
  readonly limits?: Partial<ModelLimits>;
}

/** Per-layer switches and options of the engine's check chain (each defaults to on). */
export type EngineCacheOptions = Pick<
  CheckChainOptions,
  "resultCache" | "bloom" | "singleflight" | "crossTenant" | "tiger" | "warming" | "watch"
>;

/** What engine.stats() reports. */
export interface EngineStats {
  readonly evaluator: "wasm" | "reference";
  /** The check chain's counters (validate, revision, then each layer outermost first); absent with `cache: false`. */
  readonly chain?: ChainStats;
  /** The WASM fast path's counters (answered, routed by reason, graph builds), when it is in use. */
  readonly fast?: FastEvaluatorStats;
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

interface QueryOptions {
  readonly tenant?: string;
  /** The subject's tenant (default: `tenant`); a different one only sees cross-tenant grants. */
  readonly subjectTenant?: string;
  readonly contextualTuples?: readonly TupleKey[];
  /** Values for condition parameters. */
  readonly context?: ConditionContext;
  readonly consistency?: Consistency;
}

export interface CheckRequest extends QueryOptions {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
}

export interface ListObjectsRequest extends QueryOptions {
  readonly user: string;
  readonly relation: string;
  readonly type: string;
}

export interface ListUsersRequest extends QueryOptions {
  readonly object: string;
  readonly relation: string;
  /** Which subjects to list: `{ type: "user" }` (users and `user:*`) or `{ type: "group", relation: "member" }`. */
  readonly userFilters: readonly UserFilter[];
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

export interface ExpandRequest {
  readonly object: string;
  readonly relation: string;
  readonly tenant?: string;
  readonly contextualTuples?: readonly TupleKey[];
  readonly consistency?: Consistency;
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

export type { ForeignSubject, UsersetLeaf, UsersetNode, UsersetTree } from "../reference/expand.js";
export type { UserFilter } from "../reference/list-users.js";

export class Engine implements AsyncDisposable {
  readonly program: Program;
  readonly store: TupleStore;
  readonly #ownsStore: boolean;
  readonly #clock: () => number;
  readonly #window: number;
  /** The latest revision this engine wrote or its change feed delivered: default reads never see less. */
  readonly #known: KnownRevision;
  readonly #maxDepth: number;
  readonly #maxContextual: number;
  readonly #closing = new AbortController();
  readonly #fast: FastEvaluator | undefined;
  readonly #chain: CheckChain | undefined;
  /** The listings pages are being cut from (src/engine/pages.ts). */
  readonly #listings = new ListingCache();

  /** Use createEngine(). */
  constructor(
    program: Program,
    store: TupleStore,
    ownsStore: boolean,
    options: EngineOptions,
    fast?: FastEvaluator,
    chain?: CheckChain,
    known: KnownRevision = new KnownRevision(),
  ) {
    this.#known = known;
    this.#fast = fast;
    this.#chain = chain;
    this.program = program;
    this.store = store;
    this.#ownsStore = ownsStore;
    this.#clock = options.clock ?? Date.now;
    this.#window = options.quantizationWindowMs ?? 5000;
    this.#maxDepth = options.maxResolutionDepth ?? DEFAULT_MAX_DEPTH;
    this.#maxContextual = options.maxContextualTuples ?? 1000;
  }

  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /** Which evaluator answers checks ("wasm" routes what it does not evaluate to "reference"). */
  get evaluator(): "wasm" | "reference" {
    return this.#fast === undefined ? "reference" : "wasm";
  }

  /**
   * The cross-tenant grant index (`grantsTo({ subjectTenant, user })`: what other tenants shared with a subject;
   * `grantsOn({ tenant, object })`: who outside the tenant may reach an object), when the layer is on.
   */
  get crossTenantIndex(): CrossTenantResolver | undefined {
    return this.#chain?.crossTenant;
  }

  /** The WASM fast path (counters, memory), when it is in use. */
  get fastPath(): FastEvaluator | undefined {
    return this.#fast;
  }

  /** Writes and deletes tuples atomically: all of them at one new revision, or none (the error says which). */
  async write(request: WriteRequest): Promise<WriteResponse> {
    this.#assertOpen();
    requestObject(request, "a write request", REQUEST_FIELDS.write);
    const tenant = tenantOf(request.tenant);
    const writes = arrayOf(request.writes, "writes");
    const deletes = arrayOf(request.deletes, "deletes");
    if (writes.length === 0 && deletes.length === 0) {
      throw new NexusError("invalid_write", "a write needs at least one tuple to write or delete");
    }
    for (const [name, value] of [
      ["onDuplicate", request.onDuplicate],
      ["onMissing", request.onMissing],
    ] as const) {
      if (value !== undefined && value !== "error" && value !== "ignore") {
        throw new NexusError(
          "invalid_argument",
          `${name} must be "error" or "ignore", got ${describe(value)}`,
        );
      }
    }
    const normalizedWrites: RelationTuple[] = writes.map((key, i) =>
      validTuple(this.program, key as TupleKey, tenant, `write ${i}`),
    );
    const normalizedDeletes: TupleIdentity[] = deletes.map((key, i) => {
      if (key !== null && typeof key === "object") onlyKnownFields(key, REQUEST_FIELDS.tuple, `delete ${i}`);
      const identity = normalizeIdentity(key as TupleToDelete, tenant);
      if (!identity.ok) {
        throw new NexusError(
          "invalid_tuple",
          `delete ${i} ${describe(key)} is invalid: ${identity.problem}`,
          {
            tuple: key,
          },
        );
      }
      return identity.value;
    });
    const result = await this.store.write({
      writes: normalizedWrites,
      deletes: normalizedDeletes,
      onDuplicate: request.onDuplicate ?? "error",
      onMissing: request.onMissing ?? "error",
    });
    // Read-your-writes: every read from now on sees this revision (no store call needed to learn it).
    this.#known.advance(result.revision);
    // The WASM graphs take the write now, in slices, so no later request waits for it (or for a first build).
    await this.#fast?.follow(
      [...normalizedWrites, ...normalizedDeletes].map((t) => t.tenant),
      result.revision,
    );
    return { token: encodeToken(this.store.id, result.revision), revision: result.revision };
  }

  /**
   * Whether `user` has `relation` on `object`. `options.signal` abandons this request alone (NexusError
   * "aborted"); an evaluation it shares with identical requests goes on for them.
   */
  async check(request: CheckRequest, options: CheckOptions = {}): Promise<boolean> {
    this.#assertOpen();
    requestObject(options, "check options", REQUEST_FIELDS.callOptions);
    if (this.#chain !== undefined) return this.#chain.check(request, options);
    return this.#check(request, true);
  }

  async #check(request: CheckRequest, tryFast: boolean): Promise<boolean> {
    this.#assertOpen();
    requestObject(request, "a check request", REQUEST_FIELDS.check);
    const { query, options } = this.#checkQuery(request);
    if (tryFast && this.#fast !== undefined && !hasContextualTuples(options)) {
      contextOf(options.context); // the same validation as the reference path
      const revision = await this.revisionFor(options.consistency);
      const answer = await this.#fast.check(query, revision);
      if (answer instanceof NexusError) throw answer;
      if (answer !== undefined) return answer;
    }
    return this.#evaluate(query.tenant, options, (ev) => check(ev, query));
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
  async checkBulk(requests: readonly CheckRequest[], options: CheckOptions = {}): Promise<boolean[]> {
    this.#assertOpen();
    requestObject(options, "checkBulk options", REQUEST_FIELDS.callOptions);
    if (this.#chain !== undefined) return this.#chain.checkMany(requests, options);
    const answers = await this.#checkEach(arrayOf(requests, "requests") as CheckRequest[]);
    for (const [index, answer] of answers.entries()) {
      if (answer instanceof Error) throw atBatchIndex(answer, index);
    }
    return answers as boolean[];
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
    const answers =
      this.#chain !== undefined
        ? await this.#chain.checkManySettled(requests, callOptions)
        : await this.#checkEach(requests);
    return batchAnswer(named, answers);
  }

  /** checkBulk without the chain, every request answered: its boolean or its error, in request order. */
  async #checkEach(list: readonly CheckRequest[]): Promise<(boolean | Error)[]> {
    const fastAnswers = this.#fast === undefined ? undefined : await this.#fastBulk(list);
    const answers: (boolean | Error)[] = [];
    for (const [index, request] of list.entries()) {
      const fast = fastAnswers?.[index];
      if (fast !== undefined) {
        answers.push(fast);
        continue;
      }
      // Requests the batch did not answer (routed, or with contextual tuples) go through the reference.
      try {
        answers.push(await this.#check(request, fastAnswers === undefined));
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        answers.push(error);
      }
    }
    return answers;
  }

  /**
   * The objects (in input order) of `objects`, all of one type, on which `user` has `relation`: one call filters
   * a directory listing (Nexus's filter_list). Served from the Tiger bitmap of (user, relation, type) when it is
   * materialised, else as one batch through the check chain.
   */
  async filter(request: FilterRequest, options: CheckOptions = {}): Promise<string[]> {
    this.#assertOpen();
    requestObject(options, "filter options", REQUEST_FIELDS.callOptions);
    if (this.#chain !== undefined) return this.#chain.filter(request, options);
    requestObject(request, "a filter request", REQUEST_FIELDS.filter);
    const objects = arrayOf(request.objects, "objects") as string[];
    const { objects: _, ...rest } = request;
    const allowed = await this.checkBulk(objects.map((object) => ({ ...rest, object })));
    return objects.filter((_, i) => allowed[i]);
  }

  /** The objects of `type` on which `user` has `relation` (each passes check), sorted. */
  async listObjects(request: ListObjectsRequest, options: CheckOptions = {}): Promise<string[]> {
    this.#assertOpen();
    requestObject(options, "listObjects options", REQUEST_FIELDS.callOptions);
    return this.#listObjects(request, options);
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
    const page = await this.#paged(
      "list-objects",
      request,
      query,
      (revision) => this.#listObjects(query, options, revision),
      (object) => object,
    );
    return { objects: page.items, continuationToken: page.continuationToken };
  }

  async #listObjects(
    request: ListObjectsRequest,
    options: CheckOptions,
    atRevision?: number,
  ): Promise<string[]> {
    if (this.#chain !== undefined) return this.#chain.listObjects(request, options, atRevision);
    requestObject(request, "a list objects request", REQUEST_FIELDS.listObjects);
    const tenant = tenantOf(request.tenant);
    const subjectTenant = subjectTenantOf(request.subjectTenant, tenant);
    const type = typeOf(this.program, request.type);
    relationOfType(this.program, type, request.relation);
    const { subject, user } = subjectOf(this.program, request.user);
    const query = { tenant, type, relation: request.relation, subject, user, subjectTenant };
    const fast = this.#fast;
    return this.#evaluate(
      tenant,
      request,
      (ev) =>
        fast !== undefined && !hasContextualTuples(request)
          ? listObjectsFast(fast, ev, query)
          : listObjects(ev, query),
      atRevision,
    );
  }

  /**
   * The subjects that have `relation` on `object`, in the string forms of the filters: `user:anne`, `user:*`
   * (everyone of the type), `group:eng#member`. Each passes check.
   */
  async listUsers(request: ListUsersRequest): Promise<string[]> {
    this.#assertOpen();
    return this.#listUsers(request);
  }

  /** listUsers a page at a time, pages as listObjectsPage's: `{ users, continuationToken }`. */
  async listUsersPage(request: ListUsersRequest & PageRequest): Promise<ListUsersPage> {
    this.#assertOpen();
    const { pageSize: _, continuationToken: __, ...query } = requestObject(request, "a list users request");
    const page = await this.#paged(
      "list-users",
      request,
      query,
      (revision) => this.#listUsers(query, revision),
      (user) => user,
    );
    return { users: page.items, continuationToken: page.continuationToken };
  }

  async #listUsers(request: ListUsersRequest, atRevision?: number): Promise<string[]> {
    requestObject(request, "a list users request", REQUEST_FIELDS.listUsers);
    const tenant = tenantOf(request.tenant);
    const subjectTenant = subjectTenantOf(request.subjectTenant, tenant);
    const object = objectOf(this.program, request.object);
    relationOfType(this.program, object.type, request.relation);
    const filters = arrayOf(request.userFilters, "userFilters") as UserFilter[];
    if (filters.length === 0)
      throw new NexusError("invalid_argument", "userFilters needs at least one filter");
    for (const filter of filters) {
      requestObject(filter, "a user filter", REQUEST_FIELDS.userFilter);
      typeOf(this.program, filter.type, "userFilters.type");
      if (filter.relation !== undefined)
        relationOfType(this.program, filter.type, filter.relation, "userFilters.relation");
    }
    return this.#evaluate(
      tenant,
      request,
      async (ev) => {
        const users = new Set<string>();
        for (const filter of filters) {
          const found = await listUsers(ev, {
            tenant,
            object: request.object,
            relation: request.relation,
            filter,
            subjectTenant,
          });
          for (const u of found) users.add(u);
        }
        return [...users].sort();
      },
      atRevision,
    );
  }

  /** One level of the userset tree of `object#relation` (OpenFGA's Expand). */
  async expand(request: ExpandRequest): Promise<UsersetTree> {
    this.#assertOpen();
    requestObject(request, "an expand request", REQUEST_FIELDS.expand);
    const tenant = tenantOf(request.tenant);
    const object = objectOf(this.program, request.object);
    relationOfType(this.program, object.type, request.relation);
    return this.#evaluate(tenant, request, (ev) =>
      expand(ev, { tenant, object: request.object, relation: request.relation }),
    );
  }

  /** The tuples of a tenant that count now, filtered by object (`type:id` or `type:`), relation and user. */
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
    const page = await this.#paged(
      "read",
      request,
      query,
      async (revision) => (await this.#read(query, revision)).sort(byTupleKey),
      tupleOrderKey,
    );
    return { tuples: page.items, continuationToken: page.continuationToken };
  }

  async #read(request: ReadRequest, atRevision?: number): Promise<TupleKey[]> {
    requestObject(request, "a read request", REQUEST_FIELDS.read);
    const tenant = tenantOf(request.tenant);
    let object: string | undefined;
    let objectType: string | undefined;
    if (request.object !== undefined) {
      if (typeof request.object === "string" && /^[^:#@\s]+:$/.test(request.object)) {
        objectType = request.object.slice(0, -1);
      } else if (parseObject(request.object) !== undefined) {
        object = request.object;
        objectType = parseObject(request.object)!.type;
      } else {
        throw new NexusError(
          "invalid_argument",
          `object must be "type:id" or "type:", got ${describe(request.object)}`,
        );
      }
    }
    for (const field of ["relation", "user"] as const) {
      if (request[field] !== undefined && typeof request[field] !== "string") {
        throw new NexusError(
          "invalid_argument",
          `${field} must be a string, got ${describe(request[field])}`,
        );
      }
    }
    const now = this.#clock();
    const snapshot =
      atRevision === undefined
        ? await this.#snapshot(request.consistency, now)
        : await this.store.snapshot(atRevision);
    try {
      const tuples = await snapshot.read({
        tenant,
        ...(object !== undefined ? { object } : {}),
        ...(objectType !== undefined ? { objectType } : {}),
        ...(request.relation !== undefined ? { relation: request.relation } : {}),
        ...(request.user !== undefined ? { user: request.user } : {}),
      });
      return tuples.filter((t) => t.expiresAt === undefined || t.expiresAt > now).map(toTupleKey);
    } finally {
      snapshot.release();
    }
  }

  /** The latest revision's token (a watch from it sees only later changes). */
  async token(): Promise<string> {
    this.#assertOpen();
    return encodeToken(this.store.id, await this.store.currentRevision());
  }

  /**
   * Streams a tenant's changes after `after` (default: from now on), in revision order, with no gap and no
   * duplicate. The loop ends on close() or when `signal` aborts.
   * @throws NexusError "invalid_token" when `after` is garbage, from another store, or older than the changelog keeps.
   */
  async *watch(request: WatchRequest = {}): AsyncGenerator<Change, void, undefined> {
    this.#assertOpen();
    requestObject(request, "a watch request", REQUEST_FIELDS.watch);
    const tenant = tenantOf(request.tenant);
    let after: number;
    if (request.after === undefined) {
      after = await this.store.currentRevision();
    } else {
      const token = decodeToken(request.after);
      if (token.storeId !== this.store.id || token.revision > (await this.store.currentRevision())) {
        throw new NexusError(
          "invalid_token",
          `watch token ${describe(request.after, 60)} was not issued by this store`,
        );
      }
      after = token.revision;
      // Fail now, not at the first page, when the changelog no longer reaches back that far.
      await this.store.changesAfter(after, 0);
    }
    const stop = anySignal([this.#closing.signal, request.signal]);
    try {
      yield* changeStream(this.store, tenant, after, stop);
    } catch (error) {
      // The store closing under a waiting stream ends it quietly.
      if (!(error instanceof NexusError && error.code === "closed" && (stop.aborted || this.store.closed))) {
        throw error;
      }
    }
  }

  /**
   * Streams changes of a computed permission (who gained or lost `relation` on objects of `type`), exact and
   * gapless from `after`; see src/views/permissions.ts for which subjects count. Ends on close() or `signal`.
   */
  watchPermissions(request: PermissionWatchRequest): AsyncGenerator<PermissionChange, void, undefined> {
    return watchPermissions(this.#permissionSource(), request);
  }

  /** watchPermissions as one batch per revision, empty ones included (materialized views apply these). */
  watchPermissionRevisions(
    request: PermissionWatchRequest,
  ): AsyncGenerator<PermissionRevision, void, undefined> {
    return watchPermissionRevisions(this.#permissionSource(), request);
  }

  #permissionSource(): PermissionSource {
    const { program, store } = this;
    return { program, store, maxDepth: this.#maxDepth, stop: this.#closing.signal };
  }

  /** Counters of the check chain's layers and of the WASM fast path. */
  stats(): EngineStats {
    this.#assertOpen();
    return {
      evaluator: this.evaluator,
      ...(this.#chain !== undefined ? { chain: this.#chain.stats() } : {}),
      ...(this.#fast !== undefined ? { fast: structuredClone(this.#fast.stats) } : {}),
    };
  }

  /** Resolves once every cache has applied every change up to the store's current revision. */
  async caughtUp(): Promise<void> {
    this.#assertOpen();
    await this.#chain?.caughtUp();
  }

  /** Ends every watch, stops the caches' change feed, and closes the store if the engine created it. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    this.#closing.abort();
    this.#listings.clear();
    // The chain owns the fast path once it has one.
    if (this.#chain !== undefined) await this.#chain.close();
    else await this.#fast?.close();
    if (this.#ownsStore) await this.store.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- internals ---

  #assertOpen(): void {
    if (this.#closing.signal.aborted) throw new NexusError("closed", "the engine is closed");
  }

  /**
   * The fast path's answers for a batch, in request order: a boolean, an error to report for that request
   * (invalid request, or resolution too complex), or undefined (the request goes through check()). Requests are
   * grouped by the revision their consistency resolves to (each distinct consistency resolved once), then each
   * group is one fast-path batch.
   */
  async #fastBulk(list: readonly CheckRequest[]): Promise<(boolean | Error | undefined)[]> {
    const fast = this.#fast!;
    const out: (boolean | Error | undefined)[] = new Array(list.length).fill(undefined);
    // Each distinct consistency is resolved once, then requests are grouped without awaiting per request.
    const revisions = new Map<unknown, Promise<number | Error>>();
    const pending: { index: number; query: CheckQuery; key: unknown }[] = [];
    for (const [index, request] of list.entries()) {
      let query: CheckQuery;
      let options: QueryOptions;
      try {
        requestObject(request, "a check request", REQUEST_FIELDS.check);
        ({ query, options } = this.#checkQuery(request));
        if (hasContextualTuples(options)) continue;
        contextOf(options.context);
      } catch (error) {
        out[index] = error as Error;
        continue;
      }
      const c = options.consistency;
      const key = typeof c === "object" && c !== null ? `token:${String(c.atLeastAsFresh)}` : c;
      if (!revisions.has(key)) {
        // Caught at once: a rejection must not go unhandled while an earlier revision is awaited.
        revisions.set(
          key,
          this.revisionFor(c).catch((error: unknown) =>
            error instanceof Error ? error : new Error(String(error)),
          ),
        );
      }
      pending.push({ index, query, key });
    }
    const resolved = new Map<unknown, number | Error>();
    for (const [key, revision] of revisions) resolved.set(key, await revision);
    const groups = new Map<number, { queries: CheckQuery[]; indices: number[] }>();
    for (const { index, query, key } of pending) {
      const value = resolved.get(key)!;
      if (value instanceof Error) {
        out[index] = value;
        continue;
      }
      const group = groups.get(value);
      if (group === undefined) groups.set(value, { queries: [query], indices: [index] });
      else {
        group.queries.push(query);
        group.indices.push(index);
      }
    }
    for (const [revision, group] of groups) {
      const answers = await fast.checkMany(group.queries, revision);
      for (const [k, index] of group.indices.entries()) out[index] = answers[k];
    }
    return out;
  }

  #checkQuery(request: CheckRequest): { query: CheckQuery; options: QueryOptions } {
    const tenant = tenantOf(request.tenant);
    const subjectTenant = subjectTenantOf(request.subjectTenant, tenant);
    const object = objectOf(this.program, request.object);
    relationOfType(this.program, object.type, request.relation);
    const { subject, user } = subjectOf(this.program, request.user);
    return {
      query: { tenant, object: request.object, relation: request.relation, subject, user, subjectTenant },
      options: request,
    };
  }

  async #snapshot(consistency: unknown, now: number): Promise<TupleSnapshot> {
    return openSnapshot(consistency, {
      store: this.store,
      now,
      quantizationWindowMs: this.#window,
      known: this.#known.latest,
    });
  }

  /** One page of a listing: its position from the request's token (or consistency), then the slice. */
  async #paged<T>(
    kind: PageKind,
    request: PageRequest,
    query: { readonly consistency?: Consistency },
    list: (revision: number) => Promise<readonly T[]>,
    keyOf: (item: T) => string,
  ): Promise<{ items: T[]; continuationToken: string }> {
    const { consistency, ...question } = query;
    const asked = questionOf([kind, question]);
    const at = { kind, storeId: this.store.id, question: asked.fingerprint };
    const position = await pagePosition(
      request,
      { ...at, currentRevision: () => this.store.currentRevision() },
      () => this.revisionFor(consistency),
    );
    const all = await atPinnedRevision(position, async () => {
      // Held open while listing: refuses a revision the store no longer keeps (some layers would read a newer
      // one instead) and keeps it from being collected meanwhile.
      const pin = await this.store.snapshot(position.revision);
      try {
        return await this.#listings.get(`${position.revision}\u0000${asked.text}`, () =>
          list(position.revision),
        );
      } finally {
        pin.release();
      }
    });
    return pageOf(all, keyOf, position, at);
  }

  async #evaluate<T>(
    tenant: string,
    options: Pick<QueryOptions, "contextualTuples" | "context" | "consistency">,
    run: (ev: Evaluation) => Promise<T>,
    /** Read exactly this revision (a page of a paged listing) instead of the one `consistency` picks. */
    atRevision?: number,
  ): Promise<T> {
    const context = contextOf(options.context);
    const contextual = contextualTuplesOf(
      this.program,
      options.contextualTuples,
      tenant,
      this.#maxContextual,
    );
    const now = this.#clock();
    const snapshot =
      atRevision === undefined
        ? await this.#snapshot(options.consistency, now)
        : await this.store.snapshot(atRevision);
    try {
      const reader = new TupleReader(snapshot, this.program, contextual, now);
      return await run(
        new Evaluation(reader, { ...(context !== undefined ? { context } : {}), maxDepth: this.#maxDepth }),
      );
    } finally {
      snapshot.release();
    }
  }

  /** @internal The revision a consistency preference resolves to now (for tests and caches). */
  revisionFor(consistency?: Consistency): Promise<number> {
    return revisionFor(consistency, {
      store: this.store,
      now: this.#clock(),
      quantizationWindowMs: this.#window,
      known: this.#known.latest,
    });
  }
}

/**
 * Creates an engine: compiles the model (detecting its language unless `format` says it) and opens the store.
 * @throws NexusError "invalid_model" (and friends) naming what is wrong with the model; "invalid_argument" for options.
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
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
  for (const [name, value, min] of [
    ["quantizationWindowMs", options.quantizationWindowMs, 0],
    ["maxResolutionDepth", options.maxResolutionDepth, 1],
    ["maxContextualTuples", options.maxContextualTuples, 0],
  ] as const) {
    if (value !== undefined && (typeof value !== "number" || !Number.isInteger(value) || value < min)) {
      throw new NexusError(
        "invalid_argument",
        `${name} must be an integer ≥ ${min}, got ${describe(value)}`,
        {
          [name]: value,
        },
      );
    }
  }
  if (options.clock !== undefined && typeof options.clock !== "function") {
    throw new NexusError("invalid_argument", `clock must be a function returning epoch milliseconds`);
  }
  const program = isProgram(options.model)
    ? validateProgram(options.model)
    : await compileModelAsync(options.model, options.format, options.limits);
  const window = options.quantizationWindowMs ?? 5000;
  const store =
    options.store ??
    new MemoryTupleStore({
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
      // Old versions must outlive the window a minimize_latency read may look back.
      snapshotRetentionMs: Math.max(10_000, window * 2),
      ...(options.changelog?.maxEntries !== undefined
        ? { changelogMaxEntries: options.changelog.maxEntries }
        : {}),
      ...(options.changelog?.maxAgeMs !== undefined ? { changelogMaxAgeMs: options.changelog.maxAgeMs } : {}),
    });
  // What this engine knows exists: the store as it is now (so a new engine over a used store reads it at once),
  // then its own writes and its feed's deliveries.
  const known = new KnownRevision(await store.currentRevision());
  let fast: FastEvaluator | undefined;
  if (options.evaluator !== "reference") {
    try {
      await ready();
      fast = new FastEvaluator({
        program,
        store,
        maxDepth: options.maxResolutionDepth ?? DEFAULT_MAX_DEPTH,
      });
    } catch (error) {
      // Where the kernel cannot load, the default quietly uses the reference; an explicit "wasm" is an error.
      if (options.evaluator === "wasm") {
        if (options.store === undefined) await store.close();
        throw error;
      }
    }
  }
  let chain: CheckChain | undefined;
  if (options.cache !== false) {
    try {
      chain = await CheckChain.open({
        ...chainOptionsOf(cacheOptionsOf(options.cache)),
        program,
        store,
        ...(options.clock !== undefined ? { clock: options.clock } : {}),
        quantizationWindowMs: window,
        knownRevision: known,
        ...(options.maxResolutionDepth !== undefined
          ? { maxResolutionDepth: options.maxResolutionDepth }
          : {}),
        ...(options.maxContextualTuples !== undefined
          ? { maxContextualTuples: options.maxContextualTuples }
          : {}),
        ...(fast !== undefined ? { fast } : {}),
      });
    } catch (error) {
      await fast?.close();
      if (options.store === undefined) await store.close();
      throw error;
    }
  }
  return new Engine(program, store, options.store === undefined, options, fast, chain, known);
}

/**
 * The engine's layer defaults over what the caller gave: Tiger on, materialising in the background (one at a time)
 * through the WASM evaluator for listings (`filter`) only. Materialising runs a list objects: started from check
 * demand, a mixed check-and-write load kept rebuilding bitmaps (178 checks/s in the soak instead of about 24K).
 */
function chainOptionsOf(cache: EngineCacheOptions): EngineCacheOptions {
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

/** A total order of a tenant's tuples for readPage (a tuple's identity, as one sortable string). */
function tupleOrderKey(t: TupleKey): string {
  return JSON.stringify([t.object, t.relation, t.subjectTenant ?? "", t.user]);
}

function byTupleKey(a: TupleKey, b: TupleKey): number {
  const x = tupleOrderKey(a);
  const y = tupleOrderKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function hasContextualTuples(options: QueryOptions): boolean {
  const c = options.contextualTuples;
  return c !== undefined && (!Array.isArray(c) || c.length > 0);
}

function isProgram(model: unknown): model is Program {
  return typeof model === "object" && model !== null && (model as Program).types instanceof Map;
}

function arrayOf(value: unknown, field: string): readonly unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    throw new NexusError("invalid_argument", `${field} must be an array, got ${describe(value)}`);
  return value;
}
