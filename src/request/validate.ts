/**
 * Validation of whole queries: each entry point (check, list objects, list users, expand, filter) turns what the
 * caller wrote into checked fields here, once, before any revision is chosen or any layer runs. The field rules
 * and error codes are requests.ts's; this file fixes the order they run in for each query (the first bad field is
 * the one reported), so every path reports the same error for the same request.
 */

import type { ConditionContext } from "../conditions/cel.js";
import type { Program } from "../model/program.js";
import type { RelationTuple, Subject } from "../tuples/tuple.js";
import { describe, NexusError } from "../util/errors.js";
import { isWellFormed } from "../util/well-formed.js";
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
} from "./requests.js";
import type {
  CheckRequest,
  ExpandRequest,
  ListObjectsRequest,
  ListUsersRequest,
  UserFilter,
} from "./types.js";

/** Contextual tuples allowed per request unless the engine's options say otherwise. */
export const DEFAULT_MAX_CONTEXTUAL_TUPLES = 1000;
/** The quantization window (ms) unless the engine's options say otherwise. */
export const DEFAULT_QUANTIZATION_WINDOW_MS = 5000;

/**
 * The largest maxResolutionDepth an engine takes. The WASM kernel evaluates a nested lookup by recursion, and V8's
 * stack is the bound: a chain of `viewer from parent` (three rewrites a level) checked at depth 2,500 overflowed it
 * (a RangeError instead of an answer) where 1,000 answered as the reference does. OpenFGA's default is 25.
 */
export const MAX_RESOLUTION_DEPTH = 1000;

/** The numeric limits an engine and a check chain both take. */
export interface QueryLimits {
  readonly quantizationWindowMs?: number;
  readonly maxResolutionDepth?: number;
  readonly maxContextualTuples?: number;
}

/** @throws NexusError "invalid_argument" naming the first limit that is not an integer in range. */
export function checkLimits(options: QueryLimits): void {
  for (const [name, value, min, max] of [
    ["quantizationWindowMs", options.quantizationWindowMs, 0, Number.MAX_SAFE_INTEGER],
    ["maxResolutionDepth", options.maxResolutionDepth, 1, MAX_RESOLUTION_DEPTH],
    ["maxContextualTuples", options.maxContextualTuples, 0, Number.MAX_SAFE_INTEGER],
  ] as const) {
    if (
      value !== undefined &&
      (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    ) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
      throw new NexusError(
        "invalid_argument",
        `${name} must be an integer ${range}, got ${describe(value)}`,
        {
          [name]: value,
        },
      );
    }
  }
}

/** What every validated question about a subject holds. */
interface ValidSubjectQuery {
  readonly tenant: string;
  readonly subjectTenant: string;
  readonly subject: Subject;
  /** The subject's string form. */
  readonly user: string;
  readonly context: ConditionContext | undefined;
  readonly contextualTuples: readonly RelationTuple[];
}

/**
 * A check that passed validation, before it is pinned to a revision. Made with the fields pinning fills in
 * (`revision`, `now`, `scope`: -1, undefined and undefined until then), in the order of a pinned check, so the
 * pipeline pins it in place (one object per check, not two); only the pipeline writes them, once.
 */
export interface ValidCheck extends ValidSubjectQuery {
  readonly objectType: string;
  /** The request's object and relation, validated. */
  readonly object: string;
  readonly relation: string;
  revision: number;
  now: number;
  scope: string | undefined;
}

export interface ValidListObjects extends ValidSubjectQuery {
  readonly type: string;
  readonly relation: string;
}

export interface ValidListUsers {
  readonly tenant: string;
  readonly subjectTenant: string;
  readonly object: string;
  readonly relation: string;
  readonly filters: readonly UserFilter[];
  readonly context: ConditionContext | undefined;
  readonly contextualTuples: readonly RelationTuple[];
}

export interface ValidExpand {
  readonly tenant: string;
  readonly object: string;
  readonly relation: string;
  readonly contextualTuples: readonly RelationTuple[];
}

/**
 * @throws NexusError naming the first bad field (requests.ts codes). `fieldsKnown`: the caller has just seen that
 * `request` is an object holding only a check's fields (the pipeline's cache shortcut looks at that before its
 * lookup), so they are not enumerated again.
 */
export function validCheck(
  program: Program,
  request: CheckRequest,
  maxContextual: number,
  fieldsKnown = false,
): ValidCheck {
  if (!fieldsKnown) requestObject(request, "a check request", REQUEST_FIELDS.check);
  const tenant = tenantOf(request.tenant);
  const subjectTenant = subjectTenantOf(request.subjectTenant, tenant);
  const objectType = checkObjectType(program, request.object);
  checkRelation(program, objectType, request.relation);
  const { subject, user } = checkSubject(program, request.user);
  const context = contextOf(request.context);
  const contextualTuples = tuplesOf(program, request.contextualTuples, tenant, maxContextual);
  return {
    tenant,
    subjectTenant,
    object: request.object,
    objectType,
    relation: request.relation,
    subject,
    user,
    revision: -1,
    now: UNPINNED,
    context,
    contextualTuples,
    scope: undefined,
  };
}

/**
 * `now` before pinning: undefined rather than NaN. V8 gives a field an object is made with as a number beyond the
 * small integers (NaN, an epoch-ms instant) a number box of its own in every object (16 bytes more a check); made
 * undefined, the field takes the request's instant, already a number object, as it is.
 */
const UNPINNED = undefined as unknown as number;

/**
 * The last object type and subject validCheck accepted, per program: consecutive checks (a batch, a listing, one
 * user's requests) mostly repeat them, and then skip the parse, the type lookups and a new subject object. Subjects
 * are never mutated, so sharing one is safe; a different program or text takes the full path.
 */
let lastProgram: Program | undefined;
let lastType = "";
let lastUserText = "";
let lastSubject: { subject: Subject; user: string } | undefined;
/**
 * Subjects validCheck accepted for lastProgram, by text: a server's checks come from a working set of users, in
 * any order, and a parse costs two substrings, two objects and the type lookups. Emptied when full or when the
 * program changes (subjectOf depends on nothing else).
 */
const subjects = new Map<string, { subject: Subject; user: string }>();
const MAX_SUBJECTS = 4096;

/** The (type, relation) checkRelation accepted last, for lastProgram. */
let lastRelationType = "";
let lastRelation = "";

/** relationOfType(program, type, value), skipped when the pair is the one accepted last (a batch asks one). */
function checkRelation(program: Program, type: string, value: unknown): void {
  if (program === lastProgram && value === lastRelation && type === lastRelationType) return;
  relationOfType(program, type, value);
  // checkObjectType ran first for this program: lastProgram is it (a new program reset what it remembers).
  if (program === lastProgram) {
    lastRelationType = type;
    lastRelation = value as string;
  }
}

/** objectOf(program, value).type, skipping the parse when the type is the one accepted last. */
function checkObjectType(program: Program, value: unknown): string {
  if (program === lastProgram && typeof value === "string") {
    const type = lastType;
    const colon = type.length;
    // The same conditions as parseObject + objectOf for a text starting with an accepted `type:`: a non-empty id
    // that is not the wildcard, no NUL.
    if (
      value.length > colon + 1 &&
      value.charCodeAt(colon) === 58 && // ":"
      value.startsWith(type) &&
      value.indexOf(":") === colon &&
      !(value.length === colon + 2 && value.charCodeAt(colon + 1) === 42) && // "*"
      !value.includes("\u0000") &&
      isWellFormed(value)
    ) {
      return type;
    }
  }
  const type = objectOf(program, value).type;
  if (program !== lastProgram) {
    lastProgram = program;
    lastSubject = undefined;
    lastUserText = "";
    lastRelationType = "";
    lastRelation = "";
    subjects.clear();
  }
  lastType = type;
  return type;
}

/** subjectOf(program, value), the same object again when `value` is a text accepted before (the last, or kept). */
function checkSubject(program: Program, value: unknown): { subject: Subject; user: string } {
  if (program !== lastProgram) return subjectOf(program, value);
  if (value === lastUserText && lastSubject !== undefined) return lastSubject;
  let subject = typeof value === "string" ? subjects.get(value) : undefined;
  if (subject === undefined) {
    subject = subjectOf(program, value);
    if (subjects.size >= MAX_SUBJECTS) subjects.clear();
    subjects.set(value as string, subject);
  }
  lastUserText = value as string;
  lastSubject = subject;
  return subject;
}

/** @throws NexusError naming the first bad field. */
export function validListObjects(
  program: Program,
  request: ListObjectsRequest,
  maxContextual: number,
): ValidListObjects {
  requestObject(request, "a list objects request", REQUEST_FIELDS.listObjects);
  const tenant = tenantOf(request.tenant);
  const subjectTenant = subjectTenantOf(request.subjectTenant, tenant);
  const type = typeOf(program, request.type);
  relationOfType(program, type, request.relation);
  const { subject, user } = subjectOf(program, request.user);
  const context = contextOf(request.context);
  const contextualTuples = tuplesOf(program, request.contextualTuples, tenant, maxContextual);
  return {
    tenant,
    subjectTenant,
    type,
    relation: request.relation,
    subject,
    user,
    context,
    contextualTuples,
  };
}

/** @throws NexusError naming the first bad field ("invalid_argument" for no user filter). */
export function validListUsers(
  program: Program,
  request: ListUsersRequest,
  maxContextual: number,
): ValidListUsers {
  requestObject(request, "a list users request", REQUEST_FIELDS.listUsers);
  const tenant = tenantOf(request.tenant);
  const subjectTenant = subjectTenantOf(request.subjectTenant, tenant);
  const object = objectOf(program, request.object);
  relationOfType(program, object.type, request.relation);
  const filters = arrayOf(request.userFilters, "userFilters") as UserFilter[];
  if (filters.length === 0) throw new NexusError("invalid_argument", "userFilters needs at least one filter");
  for (const filter of filters) {
    requestObject(filter, "a user filter", REQUEST_FIELDS.userFilter);
    typeOf(program, filter.type, "userFilters.type");
    if (filter.relation !== undefined)
      relationOfType(program, filter.type, filter.relation, "userFilters.relation");
  }
  const context = contextOf(request.context);
  const contextualTuples = tuplesOf(program, request.contextualTuples, tenant, maxContextual);
  return {
    tenant,
    subjectTenant,
    object: request.object,
    relation: request.relation,
    filters,
    context,
    contextualTuples,
  };
}

/** @throws NexusError naming the first bad field. */
export function validExpand(program: Program, request: ExpandRequest, maxContextual: number): ValidExpand {
  requestObject(request, "an expand request", REQUEST_FIELDS.expand);
  const tenant = tenantOf(request.tenant);
  const object = objectOf(program, request.object);
  relationOfType(program, object.type, request.relation);
  const contextualTuples = tuplesOf(program, request.contextualTuples, tenant, maxContextual);
  return { tenant, object: request.object, relation: request.relation, contextualTuples };
}

/** No contextual tuples: one shared empty list (a request without any is the common case). */
const NO_TUPLES: readonly RelationTuple[] = Object.freeze([]);

function tuplesOf(program: Program, value: unknown, tenant: string, limit: number): readonly RelationTuple[] {
  return value === undefined ? NO_TUPLES : contextualTuplesOf(program, value, tenant, limit);
}

/** `value` as an array (undefined: empty). @throws NexusError "invalid_argument" for anything else. */
export function arrayOf(value: unknown, field: string): readonly unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    throw new NexusError("invalid_argument", `${field} must be an array, got ${describe(value)}`);
  return value;
}
