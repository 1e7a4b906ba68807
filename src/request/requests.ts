/**
 * Request validation for the engine: every input is checked before any work, and a bad one is a NexusError
 * naming it. Codes: a malformed string or option "invalid_argument"; a type or relation the model lacks
 * "type_not_found" / "relation_not_found"; a contextual tuple or written tuple that breaks the model
 * "invalid_tuple".
 */

import type { ConditionContext } from "../conditions/cel.js";
import type { Program, RelationDef } from "../model/program.js";
import { opaqueSubjectTypes, tupleProblem } from "../model/tuple-rules.js";
import { defaultTenant, normalizeTuple } from "../tuples/normalize.js";
import {
  describeTuple,
  parseObject,
  parseSubject,
  type RelationTuple,
  type Subject,
  type TupleKey,
} from "../tuples/tuple.js";
import { closest } from "../util/closest.js";
import { describe, NexusError } from "../util/errors.js";
import { isWellFormed } from "../util/well-formed.js";
import { canonicalContext, MAX_CONTEXT_DEPTH } from "./key.js";

export function tenantOf(value: unknown, field = "tenant"): string {
  const tenant = defaultTenant(value);
  if (tenant === undefined) {
    throw new NexusError("invalid_argument", `${field} must be a non-empty string, got ${describe(value)}`, {
      [field]: value,
    });
  }
  return tenant;
}

/** The subject's tenant: `subjectTenant` when given, else the request's tenant. */
export function subjectTenantOf(value: unknown, tenant: string): string {
  return value === undefined ? tenant : tenantOf(value, "subjectTenant");
}

/** Validates `type:id` naming a type of the model. */
/** An id with a lone surrogate has no UTF-8 form: the kernels compare ids as UTF-8 bytes and could not look it up. */
function notWellFormed(field: string, value: unknown): NexusError {
  return new NexusError(
    "invalid_argument",
    `${field} must be well-formed text (a lone surrogate), got ${describe(value)}`,
    {
      [field]: value,
    },
  );
}

export function objectOf(program: Program, value: unknown, field = "object"): { type: string; id: string } {
  const object = parseObject(value);
  if (object === undefined || object.id === "*") {
    throw new NexusError("invalid_argument", `${field} must be "type:id", got ${describe(value)}`, {
      [field]: value,
    });
  }
  if (!isWellFormed(value as string)) throw notWellFormed(field, value);
  typeOf(program, object.type, field);
  return object;
}

export function typeOf(program: Program, type: unknown, field = "type"): string {
  if (typeof type !== "string" || !program.types.has(type)) {
    throw new NexusError("type_not_found", `type ${describe(type)} (${field}) is not defined in the model`, {
      [field]: type,
    });
  }
  return type;
}

export function relationOfType(
  program: Program,
  type: string,
  relation: unknown,
  field = "relation",
): RelationDef {
  const def = typeof relation === "string" ? program.types.get(type)?.relations.get(relation) : undefined;
  if (def === undefined) {
    throw new NexusError(
      "relation_not_found",
      `relation ${describe(relation)} (${field}) is not defined on type ${describe(type)}`,
      { type, [field]: relation },
    );
  }
  return def;
}

/** Validates a subject string against the model: its type (and a userset's relation) must exist. */
export function subjectOf(
  program: Program,
  value: unknown,
  field = "user",
): { subject: Subject; user: string } {
  const subject = parseSubject(value);
  if (subject === undefined) {
    throw new NexusError(
      "invalid_argument",
      `${field} must be "type:id", "type:*" or "type:id#relation", got ${describe(value)}`,
      { [field]: value },
    );
  }
  if (!isWellFormed(value as string)) throw notWellFormed(field, value);
  if (!(opaqueSubjectTypes(program) && subject.kind !== "userset" && !program.types.has(subject.type))) {
    typeOf(program, subject.type, field);
  }
  if (subject.kind === "userset") relationOfType(program, subject.type, subject.relation, field);
  // parseSubject takes only the text formatSubject writes (it splits the text, never rewrites it), so the string
  // form is the text itself: no new string, and one whose hash V8 may already hold.
  return { subject, user: value as string };
}

/**
 * The request's condition context as the evaluator will read it: its canonical copy (src/request/key.ts), which is
 * also what the result cache keys on; the context as given when it has no canonical form (never cached then).
 * @throws NexusError "invalid_argument" for a context that is not an object, or nests too deep.
 */
export function contextOf(value: unknown): ConditionContext | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new NexusError("invalid_argument", `context must be an object, got ${describe(value)}`, {
      context: value,
    });
  }
  const canonical = canonicalContext(value);
  if (canonical === "too_deep") {
    throw new NexusError(
      "invalid_argument",
      `context nests deeper than ${MAX_CONTEXT_DEPTH} levels of objects and lists`,
      { limit: MAX_CONTEXT_DEPTH },
    );
  }
  return canonical ?? (value as ConditionContext);
}

/** Normalizes and validates contextual tuples: they belong to the request's tenant and must fit the model. */
export function contextualTuplesOf(
  program: Program,
  value: unknown,
  tenant: string,
  limit: number,
): RelationTuple[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw new NexusError("invalid_argument", `contextualTuples must be an array, got ${describe(value)}`);
  }
  if (value.length > limit) {
    throw new NexusError(
      "invalid_argument",
      `at most ${limit} contextual tuples are allowed per request, got ${value.length}`,
      { limit, count: value.length },
    );
  }
  return value.map((key: TupleKey, index) =>
    validTuple(program, key, tenant, `contextual tuple ${index}`, tenant),
  );
}

/** Normalizes a tuple and checks it against the model. @throws NexusError "invalid_tuple" naming it. */
export function validTuple(
  program: Program,
  key: TupleKey,
  tenant: string,
  what: string,
  requiredTenant?: string,
): RelationTuple {
  if (key !== null && typeof key === "object") {
    onlyKnownFields(key, REQUEST_FIELDS.tuple, what);
    const condition = (key as { condition?: unknown }).condition;
    if (condition !== null && typeof condition === "object") {
      onlyKnownFields(condition, REQUEST_FIELDS.condition, `${what}'s condition`);
    }
  }
  const normalized = normalizeTuple(key, tenant, requiredTenant);
  if (!normalized.ok) {
    throw new NexusError("invalid_tuple", `${what} ${describe(key)} is invalid: ${normalized.problem}`, {
      tuple: key,
    });
  }
  const problem = tupleProblem(program, normalized.value);
  if (problem !== undefined) {
    throw new NexusError(
      "invalid_tuple",
      `${what} ${describeTuple(normalized.value)} is invalid: ${problem}`,
      {
        tuple: key,
      },
    );
  }
  return normalized.value;
}

/** `value` as a request object; with `known`, one holding only those fields (see onlyKnownFields). */
export function requestObject<T>(value: T, what: string, known?: ReadonlySet<string>): T {
  if (value === null || typeof value !== "object") {
    throw new NexusError("invalid_argument", `${what} must be an object, got ${describe(value)}`);
  }
  if (known !== undefined) onlyKnownFields(value, known, what);
  return value;
}

/** The fields each request (and option object) may hold: anything else is a mistake worth naming. */
export const REQUEST_FIELDS = {
  check: fields("user relation object tenant subjectTenant contextualTuples context consistency"),
  batchCheck: fields("checks tenant subjectTenant consistency"),
  batchCheckOptions: fields("signal maxChecks"),
  filter: fields("user relation objects tenant subjectTenant consistency"),
  listObjects: fields("user relation type tenant subjectTenant contextualTuples context consistency"),
  listUsers: fields("object relation userFilters tenant subjectTenant contextualTuples context consistency"),
  userFilter: fields("type relation"),
  expand: fields("object relation tenant contextualTuples consistency"),
  read: fields("tenant object relation user consistency"),
  write: fields("writes deletes tenant onDuplicate onMissing"),
  tuple: fields("user relation object condition expiresAt tenant subjectTenant"),
  condition: fields("name context"),
  watch: fields("tenant after signal"),
  callOptions: fields("signal"),
  consistencyToken: fields("atLeastAsFresh"),
} as const;

function fields(names: string): ReadonlySet<string> {
  return new Set(names.split(" "));
}

/**
 * A request (or option object) that holds only `known` fields. A misspelt field would otherwise be ignored
 * silently (`consitency` answering with the default consistency).
 * @throws NexusError "invalid_argument" naming the field and, when one is close, the field meant.
 */
export function onlyKnownFields(value: object, known: ReadonlySet<string>, what: string): void {
  for (const field in value) {
    if (!known.has(field)) throw unknownField(field, known, what);
  }
}

export function unknownField(field: string, known: Iterable<string>, what: string): NexusError {
  const meant = closest(field, known);
  return new NexusError(
    "invalid_argument",
    `${what} has no field ${describe(field, 60)}${meant !== undefined ? ` (did you mean ${meant}?)` : ""}; known fields: ${[...known].join(", ")}`,
    { field, ...(meant !== undefined ? { suggestion: meant } : {}) },
  );
}
