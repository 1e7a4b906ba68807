/**
 * TupleKey (caller input) -> RelationTuple (what stores hold), checking everything that does not depend on the
 * model: string forms, tenant names, the condition's shape, the expiry instant. Model rules live in
 * src/model/tuple-rules.ts.
 */
import { describe } from "../util/errors.js";
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
    const time = instantOf(key.expiresAt);
    if (typeof time === "string") return fail(`expiresAt ${time}`);
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

/** Epoch ms the JavaScript Date range holds (±100,000,000 days). */
const MAX_EPOCH_MS = 8.64e15;

/** RFC 3339 date-time: full date, `T` (or `t` / space), full time with seconds, optional fraction, offset. */
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * An instant as epoch ms, from an RFC 3339 string (every field checked: `2030-02-30` is refused, not read as
 * March 2), a valid Date, or a finite number of epoch ms; otherwise the problem, as text.
 */
export function instantOf(raw: unknown): number | string {
  const problem = (why: string): string =>
    `must be an RFC 3339 time (2030-01-31T12:00:00Z), a Date or epoch milliseconds, got ${typeof raw === "number" ? String(raw) : describe(raw)}${why}`;
  if (raw instanceof Date) {
    const time = raw.getTime();
    return Number.isNaN(time) ? problem(" (an invalid Date)") : time;
  }
  if (typeof raw === "number") {
    return Number.isFinite(raw) && Math.abs(raw) <= MAX_EPOCH_MS ? raw : problem("");
  }
  if (typeof raw !== "string") return problem("");
  const m = RFC3339.exec(raw);
  if (m === null) return problem("");
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (days === undefined) return problem(" (no such month)");
  if (day < 1 || day > days) return problem(" (no such day in that month)");
  // A leap second (:60) has no epoch-ms instant of its own; it is refused rather than moved.
  if (hour > 23 || minute > 59 || second > 59) return problem(" (no such time of day)");
  if (m[7] !== undefined && (Number(m[8]) > 23 || Number(m[9]) > 59)) return problem(" (no such offset)");
  const time = Date.parse(raw.replace(" ", "T"));
  return Number.isNaN(time) ? problem("") : time;
}

export function defaultTenant(tenant: unknown): string | undefined {
  if (tenant === undefined) return DEFAULT_TENANT;
  return isTenantName(tenant) ? tenant : undefined;
}

function fail(problem: string): { ok: false; problem: string } {
  return { ok: false, problem };
}
