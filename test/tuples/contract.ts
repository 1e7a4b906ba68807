/**
 * The TupleStore contract (src/tuples/types.ts) as a vitest suite that every store runs unchanged: memory
 * (memory.test.ts), file (file.test.ts), PostgreSQL. Call describeTupleStoreContract from a test file with a
 * function that opens a store.
 *
 * What `open` must give: a store that is open and usable, with no tuples or models in the tenants the suite uses.
 * The suite names fresh tenants for every test and counts revisions from the store's current one, so a store that
 * keeps other data (a shared database) passes as long as nobody else writes while a test runs. `open(options)` must
 * honour `changelogMaxEntries` (the store keeps at most that many changes, or the latest revision's changes
 * when one revision holds more). Each test closes the stores it opens.
 *
 * Time: the suite runs on the real clock. Expiry tests wait a few hundred milliseconds; revisionAt tests leave
 * 40 ms between commits.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizeIdentity, normalizeTuple } from "../../src/tuples/normalize.js";
import {
  identityKey,
  type RelationTuple,
  type TupleIdentity,
  type TupleKey,
} from "../../src/tuples/tuple.js";
import type { StoredChange, TupleStore } from "../../src/tuples/types.js";
import { isNexusError } from "../../src/util/errors.js";

export interface ContractStoreOptions {
  /** The changelog keeps at most this many changes (the retention test passes 10). */
  readonly changelogMaxEntries?: number;
}

export interface ContractHooks {
  /**
   * Runs before the retention test asserts that old changes are gone: a store whose changelog is trimmed by a
   * background collector (PostgreSQL) runs one collection pass here. Default: nothing.
   */
  readonly collectChangelog?: (store: TupleStore) => Promise<void>;
}

export type OpenStore = (options?: ContractStoreOptions) => Promise<TupleStore & AsyncDisposable>;

let tenantCounter = 0;
const runId = Math.random().toString(36).slice(2, 8);

/** Tenant names no other test (or earlier run over a shared database) has used. */
function freshTenants(): { a: string; b: string; c: string } {
  const n = `${runId}-${++tenantCounter}`;
  return { a: `ta-${n}`, b: `tb-${n}`, c: `tc-${n}` };
}

function tupleIn(tenant: string, key: TupleKey): RelationTuple {
  const n = normalizeTuple(key, tenant);
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

function identityIn(tenant: string, key: TupleKey): TupleIdentity {
  const n = normalizeIdentity(key, tenant);
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

/** `object#relation@user` helpers bound to one tenant. */
function tuplesOf(tenant: string) {
  return (object: string, user: string, extra: Partial<TupleKey> = {}): RelationTuple =>
    tupleIn(tenant, { object, relation: "viewer", user, ...extra });
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return isNexusError(error) ? error.code : `not a NexusError: ${String(error)}`;
  }
  return undefined;
}

const byIdentity = (a: RelationTuple, b: RelationTuple): number => {
  const x = identityKey(a);
  const y = identityKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Tuples in a stable order, for comparing results whose order the contract leaves open. */
function sorted(tuples: readonly RelationTuple[]): RelationTuple[] {
  return [...tuples].sort(byIdentity);
}

function ids(tuples: readonly RelationTuple[]): string[] {
  return tuples.map((t) => `${t.object}#${t.relation}@${t.user}`).sort();
}

async function readTenant(store: TupleStore, tenant: string, revision?: number): Promise<RelationTuple[]> {
  const snapshot = await store.snapshot(revision ?? (await store.currentRevision()));
  try {
    return sorted(await snapshot.read({ tenant }));
  } finally {
    snapshot.release();
  }
}

/** A change as [revision, op, object#relation@user, expired], for comparisons. */
function changeRow(c: StoredChange): [number, string, string, boolean] {
  return [c.revision, c.op, `${c.tuple.object}#${c.tuple.relation}@${c.tuple.user}`, c.expired ?? false];
}

/** Changes of one revision are compared as a set (their order within a revision is the store's). */
function changeRows(changes: readonly StoredChange[]): [number, string, string, boolean][] {
  return changes.map(changeRow).sort((a, b) => a[0] - b[0] || (a.join() < b.join() ? -1 : 1));
}

function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

/** Resources active now beyond the baseline (the test runner's own timers may come and go). */
function beyond(baseline: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [name, count] of resourceCounts()) {
    if (count > (baseline.get(name) ?? 0)) extra.push(`${name} × ${count - (baseline.get(name) ?? 0)}`);
  }
  return extra;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function describeTupleStoreContract(name: string, open: OpenStore, hooks: ContractHooks = {}): void {
  describe(`TupleStore contract: ${name}`, () => {
    describe("writes", () => {
      it("applies a batch atomically: a failing batch changes nothing", async () => {
        await using store = await open();
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const base = await store.currentRevision();
        const first = await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
        expect(first).toEqual({ revision: base + 1, written: 1, deleted: 0 });
        const failing = [
          // the second tuple exists
          { writes: [t("doc:2", "user:a"), t("doc:1", "user:a")], deletes: [] },
          // the delete names a tuple that does not exist
          { writes: [t("doc:3", "user:a")], deletes: [t("doc:9", "user:a")] },
          // a tuple twice in the writes
          { writes: [t("doc:4", "user:a"), t("doc:4", "user:a")], deletes: [] },
          // a tuple written and deleted in one batch
          { writes: [t("doc:5", "user:a")], deletes: [t("doc:1", "user:a"), t("doc:1", "user:a")] },
          { writes: [t("doc:1", "user:a")], deletes: [t("doc:1", "user:a")] },
        ];
        for (const batch of failing) expect(await codeOf(store.write(batch))).toBe("invalid_write");
        expect(await store.currentRevision()).toBe(base + 1);
        expect(ids(await readTenant(store, a))).toEqual(["doc:1#viewer@user:a"]);
        expect(changeRows(await store.changesAfter(base, 100))).toEqual([
          [base + 1, "write", "doc:1#viewer@user:a", false],
        ]);
      });

      it("names the offending tuple and honours onDuplicate / onMissing: ignore", async () => {
        await using store = await open();
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const { revision } = await store.write({
          writes: [
            t("doc:1", "user:a"),
            t("doc:2", "user:a", { expiresAt: new Date(Date.now() + 3_600_000) }),
          ],
          deletes: [],
        });
        await expect(store.write({ writes: [t("doc:1", "user:a")], deletes: [] })).rejects.toThrow(
          /doc:1#viewer@user:a/,
        );
        await expect(store.write({ writes: [], deletes: [t("doc:7", "user:b")] })).rejects.toThrow(
          /doc:7#viewer@user:b/,
        );
        const ignored = await store.write({
          writes: [t("doc:1", "user:a")],
          deletes: [t("doc:3", "user:b")],
          onDuplicate: "ignore",
          onMissing: "ignore",
        });
        expect(ignored).toEqual({ revision, written: 0, deleted: 0 });
        // A different condition or expiry is not a duplicate to ignore.
        for (const other of [
          t("doc:1", "user:a", { condition: { name: "c" } }),
          t("doc:1", "user:a", { expiresAt: new Date(Date.now() + 60_000) }),
          t("doc:2", "user:a"),
        ]) {
          expect(await codeOf(store.write({ writes: [other], deletes: [], onDuplicate: "ignore" }))).toBe(
            "invalid_write",
          );
        }
        // Ignored parts are skipped, the rest is applied and counted.
        const mixed = await store.write({
          writes: [t("doc:1", "user:a"), t("doc:4", "user:a")],
          deletes: [t("doc:2", "user:a"), t("doc:5", "user:a")],
          onDuplicate: "ignore",
          onMissing: "ignore",
        });
        expect(mixed).toEqual({ revision: revision + 1, written: 1, deleted: 1 });
        expect(ids(await readTenant(store, a))).toEqual(["doc:1#viewer@user:a", "doc:4#viewer@user:a"]);
        // A repeat skipped between new tuples: those before and after it are written, counted and logged.
        const between = await store.write({
          writes: [t("doc:8", "user:a"), t("doc:1", "user:a"), t("doc:9", "user:a")],
          deletes: [],
          onDuplicate: "ignore",
        });
        expect(between).toEqual({ revision: revision + 2, written: 2, deleted: 0 });
        const logged = await store.changesAfter(revision + 1, 100);
        expect(logged.map((c) => `${c.op} ${c.tuple.object}`)).toEqual(["write doc:8", "write doc:9"]);
        await store.write({ writes: [], deletes: [t("doc:8", "user:a"), t("doc:9", "user:a")] });
        // A delete matches the identity whatever the stored tuple's condition or expiry.
        await store.write({
          writes: [t("doc:6", "user:a", { condition: { name: "c", context: { x: 1 } } })],
          deletes: [],
        });
        await store.write({
          writes: [],
          deletes: [identityIn(a, { object: "doc:6", relation: "viewer", user: "user:a" })],
        });
        expect(ids(await readTenant(store, a))).toEqual(["doc:1#viewer@user:a", "doc:4#viewer@user:a"]);
      });

      it("gives concurrent writes consecutive revisions, each applied once", async () => {
        await using store = await open();
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const base = await store.currentRevision();
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            store.write({ writes: [t(`doc:${i}`, "user:a")], deletes: [] }),
          ),
        );
        expect(results.map((r) => r.revision).sort((x, y) => x - y)).toEqual(
          Array.from({ length: 40 }, (_, i) => base + 1 + i),
        );
        expect(await store.currentRevision()).toBe(base + 40);
        expect((await readTenant(store, a)).length).toBe(40);
        // Conflicting concurrent writes: exactly one of them wins.
        const outcomes = await Promise.allSettled(
          Array.from({ length: 5 }, () => store.write({ writes: [t("doc:x", "user:a")], deletes: [] })),
        );
        expect(outcomes.filter((o) => o.status === "fulfilled").length).toBe(1);
        expect(await store.currentRevision()).toBe(base + 41);
      });

      it("keeps every field of a tuple exactly: ids with spaces, #, : and Unicode, conditions with context", async () => {
        await using store = await open();
        const { a, b } = freshTenants();
        const written = [
          tupleIn(a, { object: "file:/workspace/a b/ü.txt", relation: "viewer", user: "user:anne" }),
          tupleIn(a, { object: "doc:with#hash:and:colons", relation: "editor", user: "group:eng#member" }),
          tupleIn(a, { object: "doc:1", relation: "viewer", user: "user:*" }),
          tupleIn(a, {
            object: "doc:2",
            relation: "viewer",
            user: "user:bob",
            condition: {
              name: "in_region",
              context: { region: "eu", limits: [1, 2.5, -3], nested: { ok: true, none: null }, "ü key": "é" },
            },
          }),
          tupleIn(a, {
            object: "doc:3",
            relation: "viewer",
            user: "user:carl",
            condition: { name: "plain" },
          }),
          tupleIn(a, {
            object: "doc:4",
            relation: "viewer",
            user: "user:dora",
            expiresAt: new Date(Date.now() + 3_600_000),
          }),
          tupleIn(a, { object: "doc:5", relation: "viewer", user: "user:erin", subjectTenant: b }),
        ];
        await store.write({ writes: written, deletes: [] });
        expect(await readTenant(store, a)).toEqual(sorted(written));
        const changes = await store.changesAfter((await store.currentRevision()) - 1, 100);
        expect(sorted(changes.map((c) => c.tuple))).toEqual(sorted(written));
      });
    });

    describe("snapshots", () => {
      it("serve every revision exactly as it was", async () => {
        await using store = await open();
        const objects = ["doc:1", "doc:2", "doc:3"];
        const users = ["user:a", "user:b"];
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.array(fc.nat(objects.length * users.length - 1), { minLength: 1, maxLength: 4 }), {
              maxLength: 10,
            }),
            async (batches) => {
              const { a } = freshTenants();
              const t = tuplesOf(a);
              const all = objects.flatMap((o) => users.map((u) => t(o, u)));
              const live = new Set<string>();
              const base = await store.currentRevision();
              const expected = new Map<number, string[]>([[base, []]]);
              for (const batch of batches) {
                const toggled = [...new Set(batch)].map((i) => all[i]!);
                const writes = toggled.filter((x) => !live.has(identityKey(x)));
                const deletes = toggled.filter((x) => live.has(identityKey(x)));
                const { revision } = await store.write({ writes, deletes });
                for (const x of writes) live.add(identityKey(x));
                for (const x of deletes) live.delete(identityKey(x));
                expected.set(revision, [...live].sort());
              }
              for (const [revision, keys] of expected) {
                expect((await readTenant(store, a, revision)).map(identityKey)).toEqual(keys);
              }
            },
          ),
          { numRuns: 25 },
        );
      });

      it("keep reading their revision while later writes land; release is idempotent", async () => {
        await using store = await open();
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const { revision } = await store.write({
          writes: [t("doc:1", "user:a"), t("doc:2", "user:a")],
          deletes: [],
        });
        const held = await store.snapshot(revision);
        expect(held.revision).toBe(revision);
        await store.write({ writes: [t("doc:3", "user:a")], deletes: [t("doc:1", "user:a")] });
        await store.write({ writes: [], deletes: [t("doc:2", "user:a")] });
        expect(ids(await held.read({ tenant: a }))).toEqual(["doc:1#viewer@user:a", "doc:2#viewer@user:a"]);
        expect(
          ids((await held.readByObject([{ tenant: a, object: "doc:1", relation: "viewer" }]))[0]!),
        ).toEqual(["doc:1#viewer@user:a"]);
        held.release();
        held.release();
        expect(ids(await readTenant(store, a))).toEqual(["doc:3#viewer@user:a"]);
      });

      it("refuse revisions the store does not have (invalid_token)", async () => {
        await using store = await open();
        const current = await store.currentRevision();
        for (const bad of [current + 1, current + 1000, -1, 1.5, Number.NaN]) {
          expect(await codeOf(store.snapshot(bad)), String(bad)).toBe("invalid_token");
        }
      });
    });

    describe("reads", () => {
      it("readByObject: one list per key, in key order, within the key's tenant", async () => {
        await using store = await open();
        const { a, b } = freshTenants();
        const ta = tuplesOf(a);
        const tb = tuplesOf(b);
        await store.write({
          writes: [
            ta("doc:1", "user:a"),
            ta("doc:1", "user:b"),
            ta("doc:1", "group:eng#member"),
            ta("doc:1", "user:*"),
            tupleIn(a, { object: "doc:1", relation: "editor", user: "user:c" }),
            ta("doc:2", "user:a"),
            tb("doc:1", "user:z"),
          ],
          deletes: [],
        });
        const snapshot = await store.snapshot(await store.currentRevision());
        try {
          const lists = await snapshot.readByObject([
            { tenant: a, object: "doc:2", relation: "viewer" },
            { tenant: a, object: "doc:1", relation: "viewer" },
            { tenant: b, object: "doc:1", relation: "viewer" },
            { tenant: a, object: "doc:9", relation: "viewer" },
            { tenant: a, object: "doc:1", relation: "editor" },
          ]);
          expect(lists.map(ids)).toEqual([
            ["doc:2#viewer@user:a"],
            [
              "doc:1#viewer@group:eng#member",
              "doc:1#viewer@user:*",
              "doc:1#viewer@user:a",
              "doc:1#viewer@user:b",
            ],
            ["doc:1#viewer@user:z"],
            [],
            ["doc:1#editor@user:c"],
          ]);
          expect(await snapshot.readByObject([])).toEqual([]);
        } finally {
          snapshot.release();
        }
      });

      it("readBySubject: across tenants by subject tenant; wildcards and usersets are their own subjects", async () => {
        await using store = await open();
        const { a, b } = freshTenants();
        const ta = tuplesOf(a);
        await store.write({
          writes: [
            ta("doc:1", "user:anne"),
            tupleIn(a, { object: "folder:1", relation: "owner", user: "user:anne" }),
            ta("doc:2", "user:*"),
            ta("doc:3", "group:eng#member"),
            // A cross-tenant grant: lives in b, its subject is anne of tenant a.
            tupleIn(b, { object: "doc:b1", relation: "viewer", user: "user:anne", subjectTenant: a }),
            // anne of tenant b is another subject.
            tupleIn(b, { object: "doc:b2", relation: "viewer", user: "user:anne" }),
          ],
          deletes: [],
        });
        const snapshot = await store.snapshot(await store.currentRevision());
        try {
          const [all, docs, owners, wildcard, userset, inB, nobody] = await snapshot.readBySubject([
            { subjectTenant: a, user: "user:anne" },
            { subjectTenant: a, user: "user:anne", objectType: "doc" },
            { subjectTenant: a, user: "user:anne", relation: "owner" },
            { subjectTenant: a, user: "user:*" },
            { subjectTenant: a, user: "group:eng#member", objectType: "doc", relation: "viewer" },
            { subjectTenant: b, user: "user:anne" },
            { subjectTenant: a, user: "user:nobody" },
          ]);
          expect(ids(all!)).toEqual([
            "doc:1#viewer@user:anne",
            "doc:b1#viewer@user:anne",
            "folder:1#owner@user:anne",
          ]);
          expect(sorted(all!).map((t) => [t.tenant, t.subjectTenant])).toEqual([
            [a, a],
            [a, a],
            [b, a],
          ]);
          expect(ids(docs!)).toEqual(["doc:1#viewer@user:anne", "doc:b1#viewer@user:anne"]);
          expect(ids(owners!)).toEqual(["folder:1#owner@user:anne"]);
          expect(ids(wildcard!)).toEqual(["doc:2#viewer@user:*"]);
          expect(ids(userset!)).toEqual(["doc:3#viewer@group:eng#member"]);
          expect(inB!.map((t) => [t.tenant, t.object])).toEqual([[b, "doc:b2"]]);
          expect(nobody).toEqual([]);
        } finally {
          snapshot.release();
        }
      });

      it("readByTypeRelation and read(filter): every filter field, within one tenant", async () => {
        await using store = await open();
        const { a, b } = freshTenants();
        const ta = tuplesOf(a);
        const editor = (object: string, user: string) => tupleIn(a, { object, relation: "editor", user });
        await store.write({
          writes: [
            ta("doc:1", "user:a"),
            ta("doc:2", "user:b"),
            editor("doc:1", "user:b"),
            ta("folder:1", "user:a"),
            tupleIn(b, { object: "doc:1", relation: "viewer", user: "user:a" }),
            tupleIn(b, { object: "doc:9", relation: "viewer", user: "user:a", subjectTenant: a }),
          ],
          deletes: [],
        });
        const snapshot = await store.snapshot(await store.currentRevision());
        try {
          const byType = await snapshot.readByTypeRelation([
            { tenant: a, objectType: "doc", relation: "viewer" },
            { tenant: a, objectType: "doc", relation: "editor" },
            { tenant: b, objectType: "doc", relation: "viewer" },
            { tenant: a, objectType: "team", relation: "viewer" },
          ]);
          expect(byType.map(ids)).toEqual([
            ["doc:1#viewer@user:a", "doc:2#viewer@user:b"],
            ["doc:1#editor@user:b"],
            ["doc:1#viewer@user:a", "doc:9#viewer@user:a"],
            [],
          ]);
          const read = async (filter: Record<string, string>) =>
            ids(await snapshot.read({ tenant: a, ...filter }));
          expect(await read({})).toEqual([
            "doc:1#editor@user:b",
            "doc:1#viewer@user:a",
            "doc:2#viewer@user:b",
            "folder:1#viewer@user:a",
          ]);
          expect(await read({ object: "doc:1" })).toEqual(["doc:1#editor@user:b", "doc:1#viewer@user:a"]);
          expect(await read({ object: "doc:1", relation: "viewer" })).toEqual(["doc:1#viewer@user:a"]);
          expect(await read({ objectType: "doc" })).toEqual([
            "doc:1#editor@user:b",
            "doc:1#viewer@user:a",
            "doc:2#viewer@user:b",
          ]);
          expect(await read({ objectType: "doc", relation: "viewer" })).toEqual([
            "doc:1#viewer@user:a",
            "doc:2#viewer@user:b",
          ]);
          expect(await read({ relation: "viewer" })).toEqual([
            "doc:1#viewer@user:a",
            "doc:2#viewer@user:b",
            "folder:1#viewer@user:a",
          ]);
          expect(await read({ user: "user:a" })).toEqual(["doc:1#viewer@user:a", "folder:1#viewer@user:a"]);
          expect(await read({ objectType: "doc", user: "user:b", relation: "editor" })).toEqual([
            "doc:1#editor@user:b",
          ]);
          expect(await read({ object: "doc:404" })).toEqual([]);
          expect((await snapshot.read({ tenant: b })).map((t) => t.object).sort()).toEqual([
            "doc:1",
            "doc:9",
          ]);
        } finally {
          snapshot.release();
        }
      });

      it("carry expiresAt so readers drop expired tuples by their clock; an expired tuple may be written again", async () => {
        await using store = await open();
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const soon = new Date(Date.now() + 400);
        const { revision } = await store.write({
          writes: [
            t("doc:1", "user:a", { expiresAt: soon }),
            t("doc:2", "user:a"),
            t("doc:3", "user:a", { expiresAt: soon }),
          ],
          deletes: [],
        });
        expect(ids(await readTenant(store, a))).toEqual([
          "doc:1#viewer@user:a",
          "doc:2#viewer@user:a",
          "doc:3#viewer@user:a",
        ]);
        const held = await store.snapshot(revision);
        await sleep(soon.getTime() - Date.now() + 50);
        // A store may go on returning an expired tuple until a write removes it, but with its expiresAt, so a
        // reader drops it by its own clock; what a reader keeps is exactly the unexpired tuples.
        const kept = (tuples: readonly RelationTuple[], now: number) => {
          for (const x of tuples) if (x.object !== "doc:2") expect(x.expiresAt).toBe(soon.getTime());
          return ids(tuples.filter((x) => x.expiresAt === undefined || x.expiresAt > now));
        };
        const now = Date.now();
        const [byObject] = await held.readByObject([{ tenant: a, object: "doc:1", relation: "viewer" }]);
        const [bySubject] = await held.readBySubject([{ subjectTenant: a, user: "user:a" }]);
        const [byType] = await held.readByTypeRelation([
          { tenant: a, objectType: "doc", relation: "viewer" },
        ]);
        const filtered = await held.read({ tenant: a });
        expect([byObject!, bySubject!, byType!, filtered].map((x) => kept(x, now))).toEqual([
          [],
          ["doc:2#viewer@user:a"],
          ["doc:2#viewer@user:a"],
          ["doc:2#viewer@user:a"],
        ]);
        held.release();
        // Writing an expired tuple again is not a duplicate: within its revision the expired one is deleted first.
        const again = await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
        const changes = (await store.changesAfter(revision, 100)).filter((c) => c.tuple.object === "doc:1");
        expect(changes.map(changeRow)).toEqual([
          [again.revision, "delete", "doc:1#viewer@user:a", true],
          [again.revision, "write", "doc:1#viewer@user:a", false],
        ]);
        // The other expired tuple is gone from the changelog's view too: deleted as expired by a write.
        await store.write({ writes: [t("doc:4", "user:a")], deletes: [] });
        const doc3 = (await store.changesAfter(revision, 100)).filter((c) => c.tuple.object === "doc:3");
        expect(doc3.map((c) => [c.op, c.expired])).toEqual([["delete", true]]);
        expect(ids(await readTenant(store, a))).toEqual([
          "doc:1#viewer@user:a",
          "doc:2#viewer@user:a",
          "doc:4#viewer@user:a",
        ]);
      });
    });

    describe("changelog", () => {
      it("lists changes after a revision, in revision order, pages never splitting a revision", async () => {
        await using store = await open();
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const base = await store.currentRevision();
        await store.write({
          writes: [t("doc:1", "user:a"), t("doc:2", "user:a"), t("doc:3", "user:a")],
          deletes: [],
        });
        await store.write({ writes: [t("doc:4", "user:a")], deletes: [t("doc:1", "user:a")] });
        await store.write({ writes: [t("doc:5", "user:a")], deletes: [] });
        const all = await store.changesAfter(base, 1000);
        expect(changeRows(all)).toEqual([
          [base + 1, "write", "doc:1#viewer@user:a", false],
          [base + 1, "write", "doc:2#viewer@user:a", false],
          [base + 1, "write", "doc:3#viewer@user:a", false],
          [base + 2, "delete", "doc:1#viewer@user:a", false],
          [base + 2, "write", "doc:4#viewer@user:a", false],
          [base + 3, "write", "doc:5#viewer@user:a", false],
        ]);
        expect(all.map((c) => c.revision)).toEqual([...all.map((c) => c.revision)].sort((x, y) => x - y));
        // limit 1 still returns the whole first revision.
        expect((await store.changesAfter(base, 1)).map((c) => c.revision)).toEqual([
          base + 1,
          base + 1,
          base + 1,
        ]);
        for (const limit of [1, 2, 3, 4, 5]) {
          const pages: StoredChange[][] = [];
          let after = base;
          for (;;) {
            const page = await store.changesAfter(after, limit);
            if (page.length === 0) break;
            pages.push(page);
            after = page[page.length - 1]!.revision;
          }
          const revisions = pages.map((p) => new Set(p.map((c) => c.revision)));
          for (let i = 1; i < revisions.length; i++) {
            for (const r of revisions[i]!) expect(revisions[i - 1]!.has(r), `limit ${limit}`).toBe(false);
          }
          expect(changeRows(pages.flat()), `limit ${limit}`).toEqual(changeRows(all));
        }
        expect(await store.changesAfter(base + 3, 10)).toEqual([]);
        expect(await codeOf(store.changesAfter(base + 4, 10))).toBe("invalid_token");
        expect(await codeOf(store.changesAfter(-1, 10))).toBe("invalid_token");
      });

      it("keeps what retention allows and refuses revisions it no longer covers (invalid_token)", async () => {
        await using store = await open({ changelogMaxEntries: 10 });
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const base = await store.currentRevision();
        for (let i = 0; i < 30; i++) await store.write({ writes: [t(`doc:${i}`, "user:a")], deletes: [] });
        await hooks.collectChangelog?.(store);
        const recent = await store.changesAfter(base + 25, 100);
        expect(recent.map((c) => c.revision)).toEqual([26, 27, 28, 29, 30].map((r) => base + r));
        expect(recent.every((c) => c.op === "write")).toBe(true);
        const error = await store.changesAfter(base + 2, 100).catch((e: unknown) => e);
        expect(isNexusError(error, "invalid_token")).toBe(true);
        // A snapshot of the current revision is always readable.
        expect((await readTenant(store, a)).length).toBe(30);
      });
    });

    describe("waiting and time", () => {
      it("waitForRevision resolves on a write, at once when already past, on abort and on close", async () => {
        const store = await open();
        try {
          const { a } = freshTenants();
          const t = tuplesOf(a);
          const base = await store.currentRevision();
          const waiting = store.waitForRevision(base);
          expect(await settlesWithin(waiting, 50)).toBe(false);
          await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
          expect(await settlesWithin(waiting, 5_000)).toBe(true);
          expect(await settlesWithin(store.waitForRevision(base), 1_000)).toBe(true);
          const abort = new AbortController();
          const aborted = store.waitForRevision(base + 1, abort.signal);
          expect(await settlesWithin(aborted, 50)).toBe(false);
          abort.abort();
          expect(await settlesWithin(aborted, 1_000)).toBe(true);
          const already = new AbortController();
          already.abort();
          expect(await settlesWithin(store.waitForRevision(base + 1, already.signal), 1_000)).toBe(true);
          const closing = store.waitForRevision(base + 1);
          await store.close();
          expect(await settlesWithin(closing, 5_000)).toBe(true);
          expect(await settlesWithin(store.waitForRevision(base + 1), 1_000)).toBe(true);
        } finally {
          await store.close();
        }
      });

      it("revisionAt gives the latest revision committed at or before a time", async () => {
        await using store = await open();
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const base = await store.currentRevision();
        await sleep(40);
        const before = Date.now();
        await sleep(40);
        const first = await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
        await sleep(40);
        const between = Date.now();
        await sleep(40);
        const second = await store.write({ writes: [t("doc:2", "user:a")], deletes: [] });
        await sleep(40);
        expect(await store.revisionAt(before)).toBe(base);
        expect(await store.revisionAt(between)).toBe(first.revision);
        expect(await store.revisionAt(Date.now())).toBe(second.revision);
        expect(await store.revisionAt(Date.now() + 3_600_000)).toBe(second.revision);
      });
    });

    describe("closing", () => {
      it("refuses use after close with NexusError closed; close is idempotent", async () => {
        const store = await open();
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const { revision } = await store.write({ writes: [t("doc:1", "user:a")], deletes: [] });
        const held = await store.snapshot(revision);
        expect(store.closed).toBe(false);
        await store.close();
        expect(store.closed).toBe(true);
        await store.close();
        for (const attempt of [
          store.write({ writes: [t("doc:2", "user:a")], deletes: [] }),
          store.currentRevision(),
          store.snapshot(revision),
          store.changesAfter(0, 10),
          store.revisionAt(Date.now()),
          held.read({ tenant: a }),
        ]) {
          expect(await codeOf(attempt)).toBe("closed");
        }
        held.release();
      });

      it("leaves nothing running after close (active resources back to the baseline)", async () => {
        const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 20));
        await settle();
        const baseline = resourceCounts();
        const store = await open();
        const { a } = freshTenants();
        const t = tuplesOf(a);
        const abort = new AbortController();
        const waiting = store.waitForRevision((await store.currentRevision()) + 4, abort.signal);
        for (let i = 0; i < 5; i++) await store.write({ writes: [t(`doc:${i}`, "user:a")], deletes: [] });
        await waiting;
        const parked = store.waitForRevision(await store.currentRevision());
        await store.models?.add({ tenant: a, source: "model" });
        await store.close();
        await parked;
        await settle();
        expect(beyond(baseline)).toEqual([]);
      });

      it("Symbol.asyncDispose closes the store", async () => {
        let outer: TupleStore | undefined;
        {
          await using store = await open();
          outer = store;
        }
        expect(outer.closed).toBe(true);
      });
    });

    describe("model versions", () => {
      it("are immutable versions per tenant with increasing ids, newest first, paged", async () => {
        await using store = await open();
        const models = store.models;
        expect(models).toBeDefined();
        if (models === undefined) return;
        const { a, b, c } = freshTenants();
        const a1 = await models.add({ tenant: a, source: "model 1" });
        const b1 = await models.add({ tenant: b, source: "model b", format: "spicedb" });
        const a2 = await models.add({ tenant: a, source: "model 2\nwith ü and\ttabs", format: "openfga" });
        expect(a1.id < b1.id && b1.id < a2.id).toBe(true);
        expect(a1.id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
        expect(a1).toMatchObject({ tenant: a, source: "model 1" });
        expect(a1.format).toBeUndefined();
        expect(Math.abs(a1.createdAtMs - Date.now())).toBeLessThan(60_000);
        expect((await models.list(a)).map((m) => m.source)).toEqual(["model 2\nwith ü and\ttabs", "model 1"]);
        expect((await models.list(a, { limit: 1 })).map((m) => m.id)).toEqual([a2.id]);
        expect((await models.list(a, { before: a2.id })).map((m) => m.id)).toEqual([a1.id]);
        expect(await models.list(c)).toEqual([]);
        expect(await models.latest(a)).toEqual(a2);
        expect((await models.latest(b))?.format).toBe("spicedb");
        expect(await models.latest(c)).toBeUndefined();
        expect(await models.get(b, a1.id)).toBeUndefined(); // another tenant's id
        expect(await models.get(a, a1.id)).toEqual(a1);
        expect(await models.get(a, "01ARZ3NDEKTSV4RRFFQ69G5FAV")).toBeUndefined();
        // Model versions are not tuple revisions.
        const revision = await store.currentRevision();
        await models.add({ tenant: a, source: "model 3" });
        expect(await store.currentRevision()).toBe(revision);
      });

      it("reject a version without a tenant or source (invalid_argument)", async () => {
        await using store = await open();
        const models = store.models;
        if (models === undefined) return;
        for (const bad of [{ tenant: "a", source: "" }, { source: "x" }, null, { tenant: "a", source: 3 }]) {
          expect(await codeOf(models.add(bad as never))).toBe("invalid_argument");
        }
      });
    });
  });
}
