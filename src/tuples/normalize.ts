/**
 * TupleKey (caller input) -> RelationTuple (what stores hold), checking everything that does not depend on the
 * model: string forms, tenant names, the condition's shape, the expiry instant. Model rules live in
 * src/model/tuple-rules.ts.
 */
import { describe } from "../util/errors.js";
import { isWellFormed } from "../util/well-formed.js";
import {
  DEFAULT_TENANT,
  isTenantName,
  parseSubject,
  type RelationTuple,
  StoredTuple,
  type Subject,
  type TupleCondition,
  type TupleIdentity,
  type TupleKey,
} from "./tuple.js";

/** The normalized tuple, or why the input is not a tuple. */
export type Normalized<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly problem: string };

/**
 * Shares what the tuples of one batch have in common: type names and parsed subjects (100 files in a folder name
 * the same parent). A tuple normalized with one holds the same string and Subject instances as its neighbours,
 * which a store then keeps once instead of once per tuple, and a subject seen before is not parsed again. Use one
 * per batch (it holds every distinct subject of the batch).
 */
export class TupleInterner {
  readonly #types = new Map<string, string>();
  readonly #subjects = new Map<string, Subject>();
  readonly #relations = new Set<string>();
  // The last type, relation and subject seen: neighbours in a batch mostly share them, so most tuples are matched
  // by these (no slice of the object's type, no map lookup).
  /** @internal */ lastType = "";
  /** @internal */ lastRelation: string | undefined;
  /** @internal */ lastUser: string | undefined;
  /** @internal */ lastSubject: Subject | undefined;

  /** Whether `relation` was checked (and found a relation name) before. */
  knowsRelation(relation: string): boolean {
    return this.#relations.has(relation);
  }

  /** Remembers that `relation` is a relation name. */
  addRelation(relation: string): void {
    this.#relations.add(relation);
  }

  /** The type name `type` (checked already) as the first instance this interner saw of it. */
  type(type: string): string {
    const known = this.#types.get(type);
    if (known !== undefined) return known;
    this.#types.set(type, type);
    return type;
  }

  /** The instance of `type` when this interner saw it before (it was checked then), else undefined. */
  knownType(type: string): string | undefined {
    return this.#types.get(type);
  }

  /** The parsed subject of `user`, or undefined when malformed. */
  subject(user: string): Subject | undefined {
    const known = this.#subjects.get(user);
    if (known !== undefined) return known;
    const parsed = parseSubject(user);
    if (parsed === undefined) return undefined;
    const subject: Subject =
      parsed.kind === "userset"
        ? { kind: "userset", type: this.type(parsed.type), id: parsed.id, relation: parsed.relation }
        : parsed.kind === "wildcard"
          ? { kind: "wildcard", type: this.type(parsed.type) }
          : { kind: "object", type: this.type(parsed.type), id: parsed.id };
    this.#subjects.set(user, subject);
    return subject;
  }
}

/**
 * What checkIdentity found: written in place of returning a new object per tuple (normalization runs once per
 * tuple of every write; the callers copy what they keep at once).
 */
const found = {
  tenant: "",
  subjectTenant: "",
  objectType: "",
  subject: undefined as Subject | undefined,
};

/** The checks of normalizeIdentity, in its order: the problem, or undefined with `found` filled in. */
function checkIdentity(
  key: Pick<TupleKey, "object" | "relation" | "user" | "tenant" | "subjectTenant">,
  tenant: string,
  requiredTenant: string | undefined,
  interner: TupleInterner | undefined,
): string | undefined {
  const tupleTenant = key.tenant ?? tenant;
  if (!isTenantName(tupleTenant)) return `tenant must be a non-empty string, got ${describe(key.tenant)}`;
  if (requiredTenant !== undefined && tupleTenant !== requiredTenant) {
    return `the tuple's tenant ${describe(tupleTenant)} is not the request's tenant ${describe(requiredTenant)}`;
  }
  const subjectTenant = key.subjectTenant ?? tupleTenant;
  if (!isTenantName(subjectTenant)) {
    return `subjectTenant must be a non-empty string, got ${describe(key.subjectTenant)}`;
  }
  // parseObject's rules, without its result object; the type is checked once per interner.
  const object = key.object as unknown;
  let type: string | undefined;
  let colon = -1;
  if (typeof object === "string" && !object.includes("\u0000")) {
    colon = object.indexOf(":");
    if (colon > 0 && colon !== object.length - 1) {
      if (
        interner !== undefined &&
        interner.lastType.length === colon &&
        object.startsWith(interner.lastType)
      ) {
        type = interner.lastType;
      } else {
        const text = object.slice(0, colon);
        type = interner?.knownType(text);
        if (type === undefined && !TYPE_REJECTS.test(text)) type = interner?.type(text) ?? text;
        if (interner !== undefined && type !== undefined) interner.lastType = type;
      }
    }
  }
  if (type === undefined) return `object must be "type:id", got ${describe(key.object)}`;
  const objectText = object as string;
  if (!isWellFormed(objectText))
    return `object must be well-formed text (a lone surrogate), got ${describe(key.object)}`;
  if (objectText.length === colon + 2 && objectText.charCodeAt(colon + 1) === STAR) {
    return `object cannot be a wildcard, got ${describe(key.object)}`;
  }
  const relation = key.relation as unknown;
  // The last relation and user are compared only once set: the first tuple of each batch compared a string with
  // undefined, which the code optimized on a batch's strings alone did not expect (a deoptimization per write).
  const lastRelation = interner?.lastRelation;
  if (
    interner === undefined ||
    typeof relation !== "string" ||
    lastRelation === undefined ||
    relation !== lastRelation
  ) {
    if (typeof relation !== "string" || interner === undefined || !interner.knowsRelation(relation)) {
      if (typeof relation !== "string" || !RELATION_NAME.test(relation) || relation.includes("\u0000")) {
        return `relation must be a relation name, got ${describe(key.relation)}`;
      }
      interner?.addRelation(relation);
    }
    if (interner !== undefined) interner.lastRelation = relation;
  }
  const user = key.user;
  if (typeof user === "string" && !isWellFormed(user)) {
    return `user must be well-formed text (a lone surrogate), got ${describe(key.user)}`;
  }
  let subject: Subject | undefined;
  if (interner === undefined || typeof user !== "string") subject = parseSubject(user);
  else if (interner.lastUser !== undefined && user === interner.lastUser) subject = interner.lastSubject;
  else {
    subject = interner.subject(user);
    if (subject !== undefined) {
      interner.lastUser = user;
      interner.lastSubject = subject;
    }
  }
  if (subject === undefined) {
    return `user must be "type:id", "type:*" or "type:id#relation", got ${describe(key.user)}`;
  }
  found.tenant = tupleTenant;
  found.subjectTenant = subjectTenant;
  found.objectType = type;
  found.subject = subject;
  return undefined;
}

const TYPE_REJECTS = /[\s#@]/;
const RELATION_NAME = /^[^\s:#@]+$/;
const STAR = 42;

/**
 * Normalizes one tuple. `tenant` is the request's tenant, used when the tuple names none.
 * A tuple naming another tenant than `requiredTenant` (when given) is refused (contextual tuples belong to the
 * request's tenant). With an `interner` (one per batch), tuples share their type names and subjects.
 */
export function normalizeTuple(
  key: TupleKey,
  tenant: string,
  requiredTenant?: string,
  interner?: TupleInterner,
): Normalized<RelationTuple> {
  const value = tupleOrProblem(key, tenant, requiredTenant, interner);
  return typeof value === "string" ? fail(value) : { ok: true, value };
}

/**
 * normalizeTuple's answer without its wrapper: the tuple, or the problem as text. A write's tuples go through
 * here one by one, and the wrapper was an object per tuple made only to be unpacked at once.
 */
export function tupleOrProblem(
  key: TupleKey,
  tenant: string,
  requiredTenant?: string,
  interner?: TupleInterner,
): RelationTuple | string {
  if (key === null || typeof key !== "object") return `a tuple must be an object, got ${describe(key)}`;
  const problem = checkIdentity(key, tenant, requiredTenant, interner);
  if (problem !== undefined) return problem;
  const { object, user } = key;
  let condition: TupleCondition | undefined;
  if (key.condition !== undefined && key.condition !== null) {
    const c = key.condition as unknown;
    if (typeof c !== "object" || c === null || typeof (c as TupleCondition).name !== "string") {
      return `condition must be { name, context? }, got ${describe(c)}`;
    }
    const { name, context } = c as TupleCondition;
    if (name === "") return "condition name is empty";
    if (context !== undefined && context !== null) {
      if (typeof context !== "object" || Array.isArray(context)) {
        return `condition context must be an object, got ${describe(context)}`;
      }
      condition = { name, context };
    } else {
      condition = { name };
    }
  }
  let expiresAt: number | undefined;
  if (key.expiresAt !== undefined && key.expiresAt !== null) {
    const time = instantOf(key.expiresAt);
    if (typeof time === "string") return `expiresAt ${time}`;
    expiresAt = time;
  }
  // The tuple keeps the caller's strings: formatSubject(parseSubject(user)) is always `user` itself. Its object
  // id is computed when read (StoredTuple), not sliced here.
  return new StoredTuple(
    found.tenant,
    object,
    found.objectType,
    key.relation,
    user,
    found.subject!,
    found.subjectTenant,
    condition,
    expiresAt,
  );
}

/** Normalizes what identifies a tuple (for deletes: condition and expiry are ignored). */
export function normalizeIdentity(
  key: Pick<TupleKey, "object" | "relation" | "user" | "tenant" | "subjectTenant">,
  tenant: string,
  requiredTenant?: string,
  interner?: TupleInterner,
): Normalized<TupleIdentity> {
  if (key === null || typeof key !== "object") return fail(`a tuple must be an object, got ${describe(key)}`);
  const problem = checkIdentity(key, tenant, requiredTenant, interner);
  if (problem !== undefined) return fail(problem);
  return {
    ok: true,
    value: {
      tenant: found.tenant,
      object: key.object,
      relation: key.relation,
      user: key.user,
      subjectTenant: found.subjectTenant,
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
