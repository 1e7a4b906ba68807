/**
 * Tenant isolation: nothing crosses tenants except cross-tenant grants on shareable relations.
 * - fuzz: tenant B's tuples never change any answer in tenant A for A's own subjects;
 * - fuzz: answers for B's subjects in A equal a single-tenant oracle where B's entities are renamed apart, so a
 *   B subject reaches A's objects only through the grants A wrote;
 * - grants need a shareable relation, expire, and a wildcard grant covers the subject tenant only.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { isNexusError } from "../../src/util/errors.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user, group#member]
    define shared-viewer: [user, group#member]
    define can_view: viewer or shared-viewer
type file
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: owner or can_view from parent
`;

const users = ["user:u0", "user:u1", "user:u2"];
const groups = ["group:g0", "group:g1"];
const folders = ["folder:f0", "folder:f1"];
const files = ["file:x0", "file:x1"];

const sameTenantSlots: { user: string; relation: string; object: string }[] = [
  ...groups.flatMap((g) =>
    [...users, ...groups.map((h) => `${h}#member`)].map((user) => ({ user, relation: "member", object: g })),
  ),
  ...folders.flatMap((f) =>
    [...users, ...groups.map((g) => `${g}#member`)].map((user) => ({ user, relation: "viewer", object: f })),
  ),
  ...files.flatMap((x) => folders.map((user) => ({ user, relation: "parent", object: x }))),
  ...files.flatMap((x) => users.map((user) => ({ user, relation: "owner", object: x }))),
];
const grantSlots = folders.flatMap((f) =>
  [...users, ...groups.map((g) => `${g}#member`)].map((user) => ({
    user,
    relation: "shared-viewer",
    object: f,
  })),
);

const pick = <T>(items: readonly T[]) =>
  fc.uniqueArray(fc.nat(items.length - 1), { maxLength: 14 }).map((ix) => ix.map((i) => items[i]!));
const worldArb = fc.record({ a: pick(sameTenantSlots), b: pick(sameTenantSlots), grants: pick(grantSlots) });

// Read with the defaults (every write of the engine seen).
const defaults = {};

async function engineWith(tuples: TupleKey[]): Promise<Engine> {
  const engine = await createEngine({ model });
  if (tuples.length > 0) await engine.write({ writes: tuples });
  return engine;
}

const queries = [
  ...folders.flatMap((object) =>
    ["viewer", "shared-viewer", "can_view"].map((relation) => ({ object, relation })),
  ),
  ...files.map((object) => ({ object, relation: "viewer" })),
];

/** Renames an entity of tenant B apart: `user:u0` -> `user:B_u0`, `group:g0#member` -> `group:B_g0#member`. */
const renamed = (text: string) => text.replace(/^([^:]+):/, "$1:B_");

describe("tenant isolation", () => {
  it("never lets tenant B's tuples change an answer for tenant A's own subjects (fuzz)", async () => {
    await fc.assert(
      fc.asyncProperty(worldArb, async ({ a, b, grants }) => {
        await using full = await engineWith([
          ...a.map((t) => ({ ...t, tenant: "A" })),
          ...b.map((t) => ({ ...t, tenant: "B" })),
          ...grants.map((t) => ({ ...t, tenant: "A", subjectTenant: "B" })),
        ]);
        await using onlyA = await engineWith(a.map((t) => ({ ...t, tenant: "A" })));
        for (const user of users) {
          for (const q of queries) {
            const request = { ...q, user, tenant: "A", ...defaults };
            expect(await full.check(request), `${q.object}#${q.relation}@${user}`).toBe(
              await onlyA.check(request),
            );
          }
          const lo = { user, relation: "viewer", type: "file", tenant: "A", ...defaults };
          expect(await full.listObjects(lo)).toEqual(await onlyA.listObjects(lo));
        }
        for (const object of files) {
          const lu = {
            object,
            relation: "viewer",
            userFilters: [{ type: "user" }],
            tenant: "A",
            ...defaults,
          };
          expect(await full.listUsers(lu)).toEqual(await onlyA.listUsers(lu));
        }
        // And the other way round: A's tuples, grants included, never answer for B.
        await using onlyB = await engineWith(b.map((t) => ({ ...t, tenant: "B" })));
        for (const user of users) {
          for (const q of queries) {
            const request = { ...q, user, tenant: "B", ...defaults };
            expect(await full.check(request)).toBe(await onlyB.check(request));
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  it("lets tenant B's subjects into tenant A exactly through A's grants (fuzz, against a renamed single-tenant oracle)", async () => {
    await fc.assert(
      fc.asyncProperty(worldArb, async ({ a, b, grants }) => {
        await using full = await engineWith([
          ...a.map((t) => ({ ...t, tenant: "A" })),
          ...b.map((t) => ({ ...t, tenant: "B" })),
          ...grants.map((t) => ({ ...t, tenant: "A", subjectTenant: "B" })),
        ]);
        await using oracle = await engineWith([
          ...a,
          ...b.map((t) => ({ ...t, user: renamed(t.user), object: renamed(t.object) })),
          ...grants.map((t) => ({ ...t, user: renamed(t.user) })),
        ]);
        for (const user of users) {
          for (const q of queries) {
            const got = await full.check({ ...q, user, tenant: "A", subjectTenant: "B", ...defaults });
            expect(got, `${q.object}#${q.relation}@B/${user}`).toBe(
              await oracle.check({ ...q, user: renamed(user), ...defaults }),
            );
          }
          const objects = await full.listObjects({
            user,
            relation: "viewer",
            type: "file",
            tenant: "A",
            subjectTenant: "B",
            ...defaults,
          });
          const inA = (
            await oracle.listObjects({ user: renamed(user), relation: "viewer", type: "file", ...defaults })
          ).filter((o) => !o.startsWith("file:B_"));
          expect(objects).toEqual(inA);
        }
        for (const object of files) {
          const listed = await full.listUsers({
            object,
            relation: "viewer",
            userFilters: [{ type: "user" }],
            tenant: "A",
            subjectTenant: "B",
            ...defaults,
          });
          const expected = (
            await oracle.listUsers({
              object,
              relation: "viewer",
              userFilters: [{ type: "user" }],
              ...defaults,
            })
          )
            .filter((u) => u.startsWith("user:B_"))
            .map((u) => u.replace("user:B_", "user:"));
          expect(listed).toEqual(expected);
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe("cross-tenant grants", () => {
  const wildModel = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user, user:*]
    define shared-viewer: [user, user:*]
    define can_view: viewer or shared-viewer
`;

  it("are only accepted on shareable relations", async () => {
    await using engine = await createEngine({ model: wildModel });
    const error = await engine
      .write({
        tenant: "A",
        writes: [{ user: "user:bob", relation: "viewer", object: "doc:1", subjectTenant: "B" }],
      })
      .catch((e: unknown) => e);
    expect(isNexusError(error, "invalid_tuple")).toBe(true);
    expect((error as Error).message).toContain("not shareable");
  });

  it("cover the subject tenant only, wildcards included, and expire", async () => {
    let now = 1_000_000;
    await using engine = await createEngine({ model: wildModel, clock: () => now });
    await engine.write({
      tenant: "A",
      writes: [
        { user: "user:*", relation: "viewer", object: "doc:1" },
        {
          user: "user:*",
          relation: "shared-viewer",
          object: "doc:2",
          subjectTenant: "B",
          expiresAt: new Date(now + 1000),
        },
      ],
    });
    const check = (object: string, subjectTenant?: string) =>
      engine.check({
        tenant: "A",
        user: "user:bob",
        relation: "can_view",
        object,
        ...(subjectTenant ? { subjectTenant } : {}),
      });
    expect(await check("doc:1")).toBe(true);
    expect(await check("doc:1", "B")).toBe(false);
    expect(await check("doc:2", "B")).toBe(true);
    expect(await check("doc:2")).toBe(false);
    expect(await check("doc:2", "C")).toBe(false);
    expect(
      await engine.listUsers({
        tenant: "A",
        subjectTenant: "B",
        object: "doc:2",
        relation: "can_view",
        userFilters: [{ type: "user" }],
      }),
    ).toEqual(["user:*"]);
    expect(await engine.read({ tenant: "A", object: "doc:2" })).toEqual([
      expect.objectContaining({ user: "user:*", tenant: "A", subjectTenant: "B" }),
    ]);
    expect(await engine.read({ tenant: "B" })).toEqual([]);
    const tree = await engine.expand({ tenant: "A", object: "doc:2", relation: "shared-viewer" });
    expect(tree.root).toEqual({
      name: "doc:2#shared-viewer",
      leaf: { users: [], foreignUsers: [{ tenant: "B", user: "user:*" }] },
    });
    now += 1000;
    expect(await check("doc:2", "B")).toBe(false);
  });
});
