/**
 * normalizeTuple and normalizeIdentity parse each string once and keep the caller's strings; an interner shares
 * types and subjects across a batch. On random strings (colons, hashes, stars, spaces, NUL, Unicode) they must
 * answer exactly as the straightforward version below (parse, then format the subject back) does.
 */
import { describe, expect, it } from "vitest";
import {
  instantOf,
  type Normalized,
  normalizeIdentity,
  normalizeTuple,
  TupleInterner,
} from "../../src/tuples/normalize.js";
import {
  formatSubject,
  isTenantName,
  parseObject,
  parseSubject,
  type RelationTuple,
  type TupleCondition,
  type TupleIdentity,
  type TupleKey,
} from "../../src/tuples/tuple.js";
import { describe as describeValue } from "../../src/util/errors.js";
import { seededRandom } from "../../src/util/random.js";

const describe_ = describeValue;
const fail = (problem: string): { ok: false; problem: string } => ({ ok: false, problem });

// The normalization as it was written before (issue 13), kept as the reference.
function oldNormalizeTuple(
  key: TupleKey,
  tenant: string,
  requiredTenant?: string,
): Normalized<RelationTuple> {
  if (key === null || typeof key !== "object")
    return fail(`a tuple must be an object, got ${describe_(key)}`);
  const identity = oldNormalizeIdentity(key, tenant, requiredTenant);
  if (!identity.ok) return identity;
  const { value } = identity;
  const object = parseObject(value.object)!;
  const subject = parseSubject(value.user)!;
  let condition: TupleCondition | undefined;
  if (key.condition !== undefined && key.condition !== null) {
    const c = key.condition as unknown;
    if (typeof c !== "object" || c === null || typeof (c as TupleCondition).name !== "string") {
      return fail(`condition must be { name, context? }, got ${describe_(c)}`);
    }
    const { name, context } = c as TupleCondition;
    if (name === "") return fail("condition name is empty");
    if (context !== undefined && context !== null) {
      if (typeof context !== "object" || Array.isArray(context)) {
        return fail(`condition context must be an object, got ${describe_(context)}`);
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
function oldNormalizeIdentity(
  key: Pick<TupleKey, "object" | "relation" | "user" | "tenant" | "subjectTenant">,
  tenant: string,
  requiredTenant?: string,
): Normalized<TupleIdentity> {
  if (key === null || typeof key !== "object")
    return fail(`a tuple must be an object, got ${describe_(key)}`);
  const tupleTenant = key.tenant ?? tenant;
  if (!isTenantName(tupleTenant))
    return fail(`tenant must be a non-empty string, got ${describe_(key.tenant)}`);
  if (requiredTenant !== undefined && tupleTenant !== requiredTenant) {
    return fail(
      `the tuple's tenant ${describe_(tupleTenant)} is not the request's tenant ${describe_(requiredTenant)}`,
    );
  }
  const subjectTenant = key.subjectTenant ?? tupleTenant;
  if (!isTenantName(subjectTenant)) {
    return fail(`subjectTenant must be a non-empty string, got ${describe_(key.subjectTenant)}`);
  }
  const object = parseObject(key.object);
  if (object === undefined) return fail(`object must be "type:id", got ${describe_(key.object)}`);
  if (object.id === "*") return fail(`object cannot be a wildcard, got ${describe_(key.object)}`);
  if (
    typeof key.relation !== "string" ||
    !/^[^\s:#@]+$/.test(key.relation) ||
    key.relation.includes("\u0000")
  ) {
    return fail(`relation must be a relation name, got ${describe_(key.relation)}`);
  }
  const subject = parseSubject(key.user);
  if (subject === undefined) {
    return fail(`user must be "type:id", "type:*" or "type:id#relation", got ${describe_(key.user)}`);
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

const PARTS = [
  "doc",
  "user",
  "group",
  ":",
  ":",
  "#",
  "#",
  "*",
  "a",
  "1",
  " ",
  "@",
  "/",
  "\u0000",
  "ü",
  "member",
  "x",
];

/**
 * A normalized tuple as a plain object with its objectId as a field: a StoredTuple computes objectId when read,
 * and the reference (the literal normalization once was) keeps it.
 */
function withObjectId(result: Normalized<RelationTuple>): Normalized<RelationTuple> {
  return result.ok ? { ok: true, value: { ...result.value, objectId: result.value.objectId } } : result;
}

describe("normalizeTuple", () => {
  it("answers as the reference on random strings, with and without an interner", () => {
    const random = seededRandom(7);
    const text = () => {
      let s = "";
      const n = Math.floor(random() * 6);
      for (let i = 0; i < n; i++) s += PARTS[Math.floor(random() * PARTS.length)];
      return s;
    };
    const interner = new TupleInterner();
    let ok = 0;
    for (let i = 0; i < 30_000; i++) {
      const key = {
        object: random() < 0.5 ? `doc:${text()}` : text(),
        relation: random() < 0.5 ? "viewer" : text(),
        user: random() < 0.3 ? `user:${text()}` : random() < 0.5 ? `group:${text()}#member` : text(),
        ...(random() < 0.1 ? { tenant: random() < 0.5 ? "" : "t" } : {}),
        ...(random() < 0.1 ? { subjectTenant: "s" } : {}),
        ...(random() < 0.05 ? { condition: { name: "c", context: { a: 1 } } } : {}),
        ...(random() < 0.05 ? { expiresAt: 5 } : {}),
      } as TupleKey;
      const want = oldNormalizeTuple(key, "default");
      expect(withObjectId(normalizeTuple(key, "default")), JSON.stringify(key)).toEqual(want);
      expect(withObjectId(normalizeTuple(key, "default", undefined, interner)), JSON.stringify(key)).toEqual(
        want,
      );
      expect(normalizeIdentity(key, "default", undefined, interner)).toEqual(
        oldNormalizeIdentity(key, "default"),
      );
      expect(withObjectId(normalizeTuple(key, "default", "t"))).toEqual(
        oldNormalizeTuple(key, "default", "t"),
      );
      if (want.ok) ok++;
    }
    expect(ok).toBeGreaterThan(1000);
  });

  it("hands back tuples whose objectId is computed when read, and written by JSON.stringify", () => {
    for (const object of ["doc:a", "file:/w/a b:c#d", "doc::x", "team:*x"]) {
      const result = normalizeTuple({ object, relation: "viewer", user: "user:u" }, "default");
      if (!result.ok) throw new Error(result.problem);
      const id = parseObject(object)!.id;
      expect(result.value.objectId).toBe(id);
      expect(JSON.parse(JSON.stringify(result.value))).toEqual({
        tenant: "default",
        object,
        objectType: parseObject(object)!.type,
        objectId: id,
        relation: "viewer",
        user: "user:u",
        subject: { kind: "object", type: "user", id: "u" },
        subjectTenant: "default",
      });
      // Kept fields only: no own objectId, and no condition or expiresAt where the tuple has none.
      expect(Object.keys(result.value)).toEqual([
        "tenant",
        "object",
        "objectType",
        "relation",
        "user",
        "subject",
        "subjectTenant",
      ]);
    }
  });

  it("refuses an object or user holding a lone surrogate (no UTF-8 form: the kernels could not intern it)", () => {
    const interner = new TupleInterner();
    for (const ids of [
      { object: "doc:\uD800", user: "user:a" },
      { object: "doc:a\uDC00b", user: "user:a" },
      { object: "doc:a", user: "user:\uD83D" },
      { object: "doc:a", user: "group:\uDE00#member" },
    ]) {
      for (const run of [
        () => normalizeTuple({ ...ids, relation: "viewer" }, "default"),
        () => normalizeTuple({ ...ids, relation: "viewer" }, "default", undefined, interner),
      ]) {
        const result = run();
        expect(result.ok, JSON.stringify(ids)).toBe(false);
        if (!result.ok) expect(result.problem).toContain("lone surrogate");
      }
    }
    // A surrogate pair (an astral character) is well formed.
    expect(
      normalizeTuple({ object: "doc:\u{1F600}", relation: "viewer", user: "user:\u{1F600}" }, "default").ok,
    ).toBe(true);
  });
});
