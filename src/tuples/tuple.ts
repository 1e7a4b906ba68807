/**
 * Relationship tuples: the public input form (TupleKey, strings as OpenFGA writes them) and the normalized form
 * every store holds (RelationTuple: parsed object and subject, tenant resolved, expiry as epoch milliseconds).
 *
 * String forms:
 * - object: `type:id`. The id is everything after the first `:` and may hold `/`, spaces, `#`, `:` and any
 *   Unicode (`file:/workspace/a b/ü.txt`); it may not be `*` or empty.
 * - user (subject): `type:id` (an object), `type:*` (every object of the type), or `type:id#relation` (a userset).
 *   The last `#` starts a relation when what follows is a relation name (no `/`, `:`, `#`, `@`, `*` or
 *   whitespace), so an id may hold `#` as long as the part after its last `#` does not look like a relation.
 * - NUL (U+0000) is rejected everywhere: stores key on it, and PostgreSQL text cannot hold it either.
 */

/** The default tenant of every tuple and request that names none. */
export const DEFAULT_TENANT = "default";

/** A tuple's condition: a condition the model defines, with the part of its context the tuple fixes. */
export interface TupleCondition {
  readonly name: string;
  readonly context?: Readonly<Record<string, unknown>>;
}

/**
 * A relationship tuple as callers write and read it.
 *
 * Cross-tenant grants: a tuple lives in `tenant`; its subject lives in `subjectTenant` (default: the same
 * tenant). A tuple whose `subjectTenant` differs is a cross-tenant grant and may only be written on a relation
 * the model marks `shareable` (Nexus's `shared-*` relations). Evaluation that follows the grant's subject (a
 * userset, or a parent object) continues in the subject's tenant. Grants may expire like any tuple.
 */
export interface TupleKey {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly condition?: TupleCondition;
  /** After this instant the tuple no longer counts: RFC 3339 text (checked strictly), a Date, or epoch ms. */
  readonly expiresAt?: string | Date | number;
  /** The tenant the tuple belongs to (default "default"). */
  readonly tenant?: string;
  /** The tenant of the subject (default: `tenant`); set only for cross-tenant grants. */
  readonly subjectTenant?: string;
}

export type Subject =
  | { readonly kind: "object"; readonly type: string; readonly id: string }
  | { readonly kind: "wildcard"; readonly type: string }
  | { readonly kind: "userset"; readonly type: string; readonly id: string; readonly relation: string };

/** The normalized tuple every store holds. Immutable; stores share instances between snapshots. */
export interface RelationTuple {
  readonly tenant: string;
  readonly object: string;
  readonly objectType: string;
  readonly objectId: string;
  readonly relation: string;
  /** The subject in its string form (`user:anne`, `user:*`, `group:eng#member`). */
  readonly user: string;
  readonly subject: Subject;
  readonly subjectTenant: string;
  readonly condition?: TupleCondition;
  /** Epoch milliseconds after which the tuple no longer counts. */
  readonly expiresAt?: number;
}

/** StoredTuple#revisionCreated of a tuple no store holds as a version (no revision is negative). */
export const UNCLAIMED = -1;

/**
 * The RelationTuple every store in this package holds: `objectId` is computed when read (the object's text after
 * its type's `:`), not kept. A second string per tuple, read only when a tuple is written to PostgreSQL, was
 * ~40 B of each stored tuple and an allocation per tuple of every write. JSON.stringify writes it as a field
 * (toJSON); a spread (`{ ...t }`) or structuredClone copies only the fields kept, without `objectId`.
 */
export class StoredTuple implements RelationTuple {
  // Declared, not defined as class fields: a class field is an own property set to undefined before the
  // constructor runs (a second store per field), and condition and expiresAt are own properties only when set.
  declare readonly tenant: string;
  declare readonly object: string;
  declare readonly objectType: string;
  declare readonly relation: string;
  declare readonly user: string;
  declare readonly subject: Subject;
  declare readonly subjectTenant: string;
  declare readonly condition?: TupleCondition;
  declare readonly expiresAt?: number;
  /**
   * The tuple as a version in the in-memory store (src/tuples/versions.ts): the revision it was written at
   * (UNCLAIMED until a store takes it) and the one that deleted it (0 while live). The tuple object is the version
   * itself, so a stored tuple costs one object, not a tuple and a three-field Version beside it (48 of ~300 bytes a
   * tuple at a million). Private fields: a spread, JSON.stringify (toJSON) and structuredClone carry neither, so a
   * tuple read back looks as it was written.
   */
  #created = UNCLAIMED;
  #deleted = 0;

  /** `objectType` must be the type in `object` (the text before its first `:`). */
  constructor(
    tenant: string,
    object: string,
    objectType: string,
    relation: string,
    user: string,
    subject: Subject,
    subjectTenant: string,
    condition?: TupleCondition,
    expiresAt?: number,
  ) {
    const self = this as Mutable<StoredTuple>;
    self.tenant = tenant;
    self.object = object;
    self.objectType = objectType;
    self.relation = relation;
    self.user = user;
    self.subject = subject;
    self.subjectTenant = subjectTenant;
    if (condition !== undefined) self.condition = condition;
    if (expiresAt !== undefined) self.expiresAt = expiresAt;
  }

  /** @internal The revision the store wrote this version at; UNCLAIMED when no store holds it. */
  get revisionCreated(): number {
    return this.#created;
  }
  set revisionCreated(revision: number) {
    this.#created = revision;
  }
  /** @internal The revision that deleted this version; 0 while it is live. */
  get revisionDeleted(): number {
    return this.#deleted;
  }
  set revisionDeleted(revision: number) {
    this.#deleted = revision;
  }

  get objectId(): string {
    return this.object.slice(this.objectType.length + 1);
  }

  /** The fields of a RelationTuple literal, in its order, objectId included. */
  toJSON(): RelationTuple {
    return {
      tenant: this.tenant,
      object: this.object,
      objectType: this.objectType,
      objectId: this.objectId,
      relation: this.relation,
      user: this.user,
      subject: this.subject,
      subjectTenant: this.subjectTenant,
      ...(this.condition !== undefined ? { condition: this.condition } : {}),
      ...(this.expiresAt !== undefined ? { expiresAt: this.expiresAt } : {}),
    };
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What identifies a tuple (writes of the same identity are duplicates; deletes name it). */
export interface TupleIdentity {
  readonly tenant: string;
  readonly object: string;
  readonly relation: string;
  readonly user: string;
  readonly subjectTenant: string;
}

const RELATION_CHARS = /^[^\s/:#@*]+$/;
const isRelationName = (text: string): boolean => RELATION_CHARS.test(text) && !text.includes("\u0000");

/** Splits `type:id`; undefined when malformed (no `:`, empty type or id, NUL). */
export function parseObject(text: unknown): { type: string; id: string } | undefined {
  if (typeof text !== "string" || text.includes("\u0000")) return undefined;
  const colon = text.indexOf(":");
  if (colon <= 0 || colon === text.length - 1) return undefined;
  const type = text.slice(0, colon);
  if (/[\s#@]/.test(type)) return undefined;
  return { type, id: text.slice(colon + 1) };
}

/** Parses a subject string; undefined when malformed. */
export function parseSubject(text: unknown): Subject | undefined {
  if (typeof text !== "string") return undefined;
  const hash = text.lastIndexOf("#");
  if (hash > 0) {
    const relation = text.slice(hash + 1);
    if (isRelationName(relation)) {
      const object = parseObject(text.slice(0, hash));
      if (object === undefined || object.id === "*") return undefined;
      return { kind: "userset", type: object.type, id: object.id, relation };
    }
  }
  const object = parseObject(text);
  if (object === undefined) return undefined;
  if (object.id === "*") return { kind: "wildcard", type: object.type };
  return { kind: "object", type: object.type, id: object.id };
}

/** The string form of a subject. */
export function formatSubject(subject: Subject): string {
  switch (subject.kind) {
    case "object":
      return `${subject.type}:${subject.id}`;
    case "wildcard":
      return `${subject.type}:*`;
    case "userset":
      return `${subject.type}:${subject.id}#${subject.relation}`;
  }
}

/** Whether `text` is a usable tenant name (non-empty, no NUL). */
export function isTenantName(text: unknown): text is string {
  return typeof text === "string" && text !== "" && !text.includes("\u0000");
}

/** A string key for a tuple's identity (NUL-separated: no part may hold NUL). */
export function identityKey(t: TupleIdentity): string {
  return `${t.tenant}\u0000${t.object}\u0000${t.relation}\u0000${t.subjectTenant}\u0000${t.user}`;
}

/** The public form of a stored tuple (tenant always set; subjectTenant only on cross-tenant grants). */
export function toTupleKey(t: RelationTuple): TupleKey {
  return {
    user: t.user,
    relation: t.relation,
    object: t.object,
    ...(t.condition !== undefined ? { condition: t.condition } : {}),
    ...(t.expiresAt !== undefined ? { expiresAt: new Date(t.expiresAt).toISOString() } : {}),
    tenant: t.tenant,
    ...(t.subjectTenant !== t.tenant ? { subjectTenant: t.subjectTenant } : {}),
  };
}

/** `object#relation@user` (with tenants when they matter), for messages. */
export function describeTuple(t: {
  readonly object: string;
  readonly relation: string;
  readonly user: string;
  readonly tenant?: string;
  readonly subjectTenant?: string;
}): string {
  const base = `${t.object}#${t.relation}@${t.user}`;
  const tenant = t.tenant ?? DEFAULT_TENANT;
  const subjectTenant = t.subjectTenant ?? tenant;
  if (subjectTenant !== tenant) return `${base} (tenant ${tenant}, subject tenant ${subjectTenant})`;
  return tenant === DEFAULT_TENANT ? base : `${base} (tenant ${tenant})`;
}

/** Whether two conditions are the same (name and context, compared as JSON). */
export function sameCondition(a: TupleCondition | undefined, b: TupleCondition | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.name === b.name && stableJson(a.context ?? {}) === stableJson(b.context ?? {});
}

function stableJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    return typeof value === "bigint" ? `${value}n` : (JSON.stringify(value) ?? "undefined");
  }
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
}
