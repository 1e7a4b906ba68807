/**
 * TupleKey (caller input) -> RelationTuple (what stores hold), checking everything that does not depend on the
 * model: string forms, tenant names, the condition's shape, the expiry instant. Model rules live in
 * check/tuple-rules.ts.
 */
import { describe } from "../errors.js";
import {
  DEFAULT_TENANT,
  formatSubject,
  isTenantName,
  parseObject,
  parseSubject,
  type RelationTuple,
  type TupleCondition,
  type TupleIdentity,
  type TupleKey,
} from "./tuple.js";

/** The normalized tuple, or why the input is not a tuple. */
export type Normalized<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly problem: string };

/**
 * Normalizes one tuple. `tenant` is the request's tenant, used when the tuple names none.
 * A tuple naming another tenant than `requiredTenant` (when given) is refused (contextual tuples belong to the
 * request's tenant).
 */
export function normalizeTuple(
  key: TupleKey,
  tenant: string,
  requiredTenant?: string,
): Normalized<RelationTuple> {
  if (key === null || typeof key !== "object") return fail(`a tuple must be an object, got ${describe(key)}`);
  const identity = normalizeIdentity(key, tenant, requiredTenant);
  if (!identity.ok) return identity;
  const { value } = identity;
  const object = parseObject(value.object)!;
  const subject = parseSubject(value.user)!;
  let condition: TupleCondition | undefined;
  if (key.condition !== undefined && key.condition !== null) {
    const c = key.condition as unknown;
    if (typeof c !== "object" || c === null || typeof (c as TupleCondition).name !== "string") {
      return fail(`condition must be { name, context? }, got ${describe(c)}`);
    }
    const { name, context } = c as TupleCondition;
    if (name === "") return fail("condition name is empty");
    if (context !== undefined && context !== null) {
      if (typeof context !== "object" || Array.isArray(context)) {
        return fail(`condition context must be an object, got ${describe(context)}`);
      }
      condition = { name, context };
    } else {
      condition = { name };
    }
  }
  let expiresAt: number | undefined;
  if (key.expiresAt !== undefined && key.expiresAt !== null) {
    const raw = key.expiresAt as unknown;
    const time =
      raw instanceof Date
        ? raw.getTime()
        : typeof raw === "string" && /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}/.test(raw)
          ? Date.parse(raw)
          : Number.NaN;
    if (Number.isNaN(time)) return fail(`expiresAt must be an RFC 3339 time or a Date, got ${describe(raw)}`);
    expiresAt = time;
  }
  return {
    ok: true,
    value: {
      tenant: value.tenant,
      object: value.object,
      objectType: object.type,
      objectId: object.id,
      relation: value.relation,
      user: formatSubject(subject),
      subject,
      subjectTenant: value.subjectTenant,
      ...(condition !== undefined ? { condition } : {}),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    },
  };
}

/** Normalizes what identifies a tuple (for deletes: condition and expiry are ignored). */
export function normalizeIdentity(
  key: Pick<TupleKey, "object" | "relation" | "user" | "tenant" | "subjectTenant">,
  tenant: string,
  requiredTenant?: string,
): Normalized<TupleIdentity> {
  if (key === null || typeof key !== "object") return fail(`a tuple must be an object, got ${describe(key)}`);
  const tupleTenant = key.tenant ?? tenant;
  if (!isTenantName(tupleTenant))
    return fail(`tenant must be a non-empty string, got ${describe(key.tenant)}`);
  if (requiredTenant !== undefined && tupleTenant !== requiredTenant) {
    return fail(
      `the tuple's tenant ${describe(tupleTenant)} is not the request's tenant ${describe(requiredTenant)}`,
    );
  }
  const subjectTenant = key.subjectTenant ?? tupleTenant;
  if (!isTenantName(subjectTenant)) {
    return fail(`subjectTenant must be a non-empty string, got ${describe(key.subjectTenant)}`);
  }
  const object = parseObject(key.object);
  if (object === undefined) return fail(`object must be "type:id", got ${describe(key.object)}`);
  if (object.id === "*") return fail(`object cannot be a wildcard, got ${describe(key.object)}`);
  if (
    typeof key.relation !== "string" ||
    !/^[^\s:#@]+$/.test(key.relation) ||
    key.relation.includes("\u0000")
  ) {
    return fail(`relation must be a relation name, got ${describe(key.relation)}`);
  }
  const subject = parseSubject(key.user);
  if (subject === undefined) {
    return fail(`user must be "type:id", "type:*" or "type:id#relation", got ${describe(key.user)}`);
  }
  return {
    ok: true,
    value: {
      tenant: tupleTenant,
      object: key.object,
      relation: key.relation,
      user: formatSubject(subject),
      subjectTenant,
    },
  };
}

export function defaultTenant(tenant: unknown): string | undefined {
  if (tenant === undefined) return DEFAULT_TENANT;
  return isTenantName(tenant) ? tenant : undefined;
}

function fail(problem: string): { ok: false; problem: string } {
  return { ok: false, problem };
}
