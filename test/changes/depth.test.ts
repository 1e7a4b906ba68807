/**
 * The data-level depth bound: exact on chains, Infinity on cycles, lowered again by a recompute after the cycle is
 * broken, a multiset of edges over (tenant, object) nodes, and never below the true longest path at any revision it
 * answers for (property test against brute force). Against a real engine: a bound below the depth limit means no
 * check fails with "resolution_too_complex".
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TupleDepthBound, type TupleDepthBoundOptions } from "../../src/changes/depth.js";
import { ChangeFeed, type ChangeListener } from "../../src/changes/feed.js";
import { createEngine } from "../../src/engine/engine.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";
import type { Revision, StoredChange } from "../../src/tuples/types.js";
import { isNexusError } from "../../src/util/errors.js";

function tuple(
  user: string,
  relation: string,
  object: string,
  tenant = "default",
  subjectTenant?: string,
): RelationTuple {
  const n = normalizeTuple(
    { user, relation, object, tenant, ...(subjectTenant ? { subjectTenant } : {}) },
    tenant,
  );
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

/** A bound over an empty store, fed by hand: each call of `write`/`remove` is one revision. */
async function manual(options: TupleDepthBoundOptions = {}) {
  const store = new MemoryTupleStore();
  let listener: ChangeListener | undefined;
  let revision = 0;
  const bound = await TupleDepthBound.open(
    store,
    {
      watermark: 0,
      subscribe: (l) => {
        listener = l;
        const unsubscribe = () => {
          listener = undefined;
        };
        return Object.assign(unsubscribe, { replayed: () => Promise.resolve() });
      },
    },
    options,
  );
  const commit = (changes: { op: "write" | "delete"; tuple: RelationTuple }[]): Revision => {
    revision++;
    const stored: StoredChange[] = changes.map((c) => ({ revision, ...c }));
    listener?.onChanges(stored, revision);
    return revision;
  };
  return {
    bound,
    write: (...tuples: RelationTuple[]) => commit(tuples.map((t) => ({ op: "write" as const, tuple: t }))),
    remove: (...tuples: RelationTuple[]) => commit(tuples.map((t) => ({ op: "delete" as const, tuple: t }))),
    async [Symbol.asyncDispose]() {
      await bound.close();
      await store.close();
    },
  };
}

/** Never lazily recomputes: only recompute() lowers the bound. */
const lazyOff: TupleDepthBoundOptions = { recomputeWorkPerChange: 0, recomputeIntervalMs: 1e12 };

describe("TupleDepthBound", () => {
  it("bounds a chain exactly and answers safeBelow by it", async () => {
    await using m = await manual();
    expect(m.bound.longestChain()).toBe(0);
    let rev = 0;
    for (let i = 0; i < 5; i++) rev = m.write(tuple(`folder:${i + 1}`, "parent", `folder:${i}`));
    expect(m.bound.longestChain()).toBe(5);
    // A branch that is shorter changes nothing; one that is longer does.
    m.write(tuple("folder:3", "parent", "doc:x"));
    expect(m.bound.longestChain()).toBe(5);
    rev = m.write(tuple("folder:0", "parent", "doc:y"));
    expect(m.bound.longestChain()).toBe(6);
    expect(m.bound.safeBelow(7, rev)).toBe(true);
    expect(m.bound.safeBelow(6, rev)).toBe(false);
    // Not yet applied: unknown.
    expect(m.bound.safeBelow(7, rev + 1)).toBe(false);
    expect(m.bound.stats()).toMatchObject({ nodes: 8, edges: 7, distinctEdges: 7, seededFrom: "changelog" });
  });

  it("is Infinity on a cycle, and lower again once the cycle is deleted and the heights recomputed", async () => {
    await using m = await manual(lazyOff);
    const down = tuple("folder:b", "parent", "folder:a");
    const up = tuple("folder:a#viewer", "viewer", "folder:b");
    m.write(down);
    const cyclic = m.write(up);
    expect(m.bound.longestChain()).toBe(Number.POSITIVE_INFINITY);
    const broken = m.remove(up);
    // Deletes lower nothing by themselves (an upper bound stays sound)...
    expect(m.bound.longestChain()).toBe(Number.POSITIVE_INFINITY);
    m.bound.recompute();
    expect(m.bound.longestChain()).toBe(1);
    expect(m.bound.stats().recomputes).toBe(1);
    // ...and the lower bound answers from the recompute's revision on; older revisions keep the old one.
    expect(m.bound.safeBelow(25, broken)).toBe(true);
    expect(m.bound.safeBelow(25, cyclic)).toBe(false);
    expect(m.bound.safeBelow(25, 1)).toBe(false);
    expect(m.bound.stats().answersFrom).toBe(0);
  });

  it("recomputes lazily on its own when the graph is small next to the changes", async () => {
    await using m = await manual();
    const up = tuple("group:a#member", "member", "group:a");
    m.write(up);
    expect(m.bound.longestChain()).toBe(Number.POSITIVE_INFINITY);
    m.remove(up);
    expect(m.bound.longestChain()).toBe(0);
  });

  it("counts duplicate edges: deleting one of two tuples between the same nodes keeps the edge", async () => {
    await using m = await manual(lazyOff);
    const parent = tuple("folder:a", "parent", "doc:1");
    const userset = tuple("folder:a#viewer", "viewer", "doc:1");
    m.write(parent, userset);
    expect(m.bound.stats()).toMatchObject({ edges: 2, distinctEdges: 1 });
    m.remove(parent);
    m.bound.recompute();
    expect(m.bound.longestChain()).toBe(1);
    m.remove(userset);
    m.bound.recompute();
    expect(m.bound.longestChain()).toBe(0);
    expect(m.bound.stats()).toMatchObject({ edges: 0, distinctEdges: 0, nodes: 0 });
  });

  it("keeps tenants apart: the same object in two tenants is two nodes, and cross-tenant grants are edges", async () => {
    await using m = await manual();
    // acme's group:g points at globex's group:g, which points at acme's group:g: a cycle only across tenants.
    m.write(tuple("group:g#member", "member", "group:g", "acme", "globex"));
    expect(m.bound.longestChain()).toBe(1);
    m.write(tuple("group:h#member", "member", "group:g", "globex"));
    expect(m.bound.longestChain()).toBe(2);
    m.write(tuple("group:g#member", "member", "group:h", "globex", "acme"));
    expect(m.bound.longestChain()).toBe(Number.POSITIVE_INFINITY);
    // Within one tenant, the same edges would be a self-loop; another tenant's group:g is not that node.
    m.remove(tuple("group:g#member", "member", "group:h", "globex", "acme"));
    expect(m.bound.longestChain()).toBe(2);
    expect(m.bound.stats().nodes).toBe(3);
  });

  it("adds an edge for an object or userset subject, none for a wildcard", async () => {
    await using m = await manual();
    m.write(tuple("user:*", "viewer", "doc:1"), tuple("group:*", "viewer", "doc:1"));
    expect(m.bound.stats()).toMatchObject({ edges: 0, nodes: 0 });
    expect(m.bound.longestChain()).toBe(0);
    m.write(tuple("group:eng#member", "viewer", "doc:1"));
    m.write(tuple("user:anne", "member", "group:eng"));
    expect(m.bound.longestChain()).toBe(2);
    expect(m.bound.stats()).toMatchObject({ edges: 2, nodes: 3 });
  });

  it("reports Infinity for a chain reaching the cap", async () => {
    await using m = await manual({ cap: 8 });
    for (let i = 0; i < 7; i++) m.write(tuple(`group:${i + 1}#member`, "member", `group:${i}`));
    expect(m.bound.longestChain()).toBe(7);
    m.write(tuple("group:0#member", "member", "group:top"));
    expect(m.bound.longestChain()).toBe(Number.POSITIVE_INFINITY);
  });

  it("rejects bad options with invalid_argument", async () => {
    await using store = new MemoryTupleStore();
    const source = {
      watermark: 0,
      subscribe: () => Object.assign(() => {}, { replayed: () => Promise.resolve() }),
    };
    await expect(TupleDepthBound.open(store, source, { cap: 1 })).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("cap"),
    });
    await expect(TupleDepthBound.open(store, source, { pageSize: 0.5 })).rejects.toMatchObject({
      code: "invalid_argument",
    });
  });

  it("stays an upper bound at every revision it answers for (property, against brute force)", async () => {
    const objects = ["folder:a", "folder:b", "group:a", "group:b", "doc:1"];
    const tenants = ["t1", "t2"];
    const subjectArb = fc.oneof(
      fc.constantFrom(...objects).map((o) => ({ user: o, node: o })),
      fc.constantFrom(...objects).map((o) => ({ user: `${o}#member`, node: o })),
      fc.constantFrom("user:*", "group:*").map((w) => ({ user: w, node: undefined })),
    );
    const tupleArb = fc.record({
      tenant: fc.constantFrom(...tenants),
      subjectTenant: fc.constantFrom(...tenants),
      object: fc.constantFrom(...objects),
      relation: fc.constantFrom("parent", "member"),
      subject: subjectArb,
    });
    const stepArb = fc.oneof(
      { weight: 3, arbitrary: tupleArb.map((t) => ({ op: "write" as const, t })) },
      { weight: 2, arbitrary: fc.nat().map((i) => ({ op: "delete" as const, i })) },
      { weight: 1, arbitrary: fc.constant({ op: "recompute" as const }) },
    );
    /** The exact longest path over the live tuples (Infinity iff a cycle), by DFS with colours. */
    const truth = (live: Map<string, RelationTuple>): number => {
      const adj = new Map<string, string[]>();
      for (const t of live.values()) {
        if (t.subject.kind === "wildcard") continue;
        const to = `${t.subjectTenant}/${t.subject.type}:${t.subject.id}`;
        const from = `${t.tenant}/${t.object}`;
        adj.set(from, [...(adj.get(from) ?? []), to]);
      }
      const state = new Map<string, "open" | number>();
      const visit = (n: string): number => {
        const s = state.get(n);
        if (s === "open") return Number.POSITIVE_INFINITY;
        if (s !== undefined) return s;
        state.set(n, "open");
        let h = 0;
        for (const m of adj.get(n) ?? []) h = Math.max(h, 1 + visit(m));
        state.set(n, h);
        return h;
      };
      let best = 0;
      for (const n of adj.keys()) best = Math.max(best, visit(n));
      return best;
    };
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { maxLength: 40 }), fc.boolean(), async (steps, lazy) => {
        await using m = await manual(lazy ? {} : lazyOff);
        const live = new Map<string, RelationTuple>();
        const truthAt: number[] = [0];
        for (const step of steps) {
          if (step.op === "recompute") {
            m.bound.recompute();
            expect(m.bound.longestChain()).toBe(truth(live));
            continue;
          }
          let rev: number;
          if (step.op === "write") {
            const { tenant, subjectTenant, object, relation, subject } = step.t;
            const t = tuple(subject.user, relation, object, tenant, subjectTenant);
            const key = `${tenant} ${object} ${relation} ${subjectTenant} ${subject.user}`;
            if (live.has(key)) continue;
            live.set(key, t);
            rev = m.write(t);
          } else {
            if (live.size === 0) continue;
            const key = [...live.keys()][step.i % live.size]!;
            const t = live.get(key)!;
            live.delete(key);
            rev = m.remove(t);
          }
          truthAt[rev] = truth(live);
          expect(m.bound.longestChain()).toBeGreaterThanOrEqual(truthAt[rev]!);
          // Whatever revision a layer asks about, "safe below d" must hold for that revision's tuples.
          for (let r = 0; r <= rev; r++) {
            for (const d of [1, 2, 3, 5]) {
              if (m.bound.safeBelow(d, r)) expect(truthAt[r]!).toBeLessThan(d);
            }
          }
        }
        m.bound.recompute();
        expect(m.bound.longestChain()).toBe(truth(live));
      }),
      { numRuns: 200 },
    );
  });

  it("seeds from the changelog, or from a snapshot of the named tenants when the changelog was trimmed", async () => {
    await using store = new MemoryTupleStore({ changelogMaxEntries: 2 });
    for (let i = 0; i < 4; i++) {
      await store.write({ writes: [tuple(`group:${i + 1}#member`, "member", `group:${i}`)], deletes: [] });
    }
    await using source = await ChangeFeed.open(store);
    await using blind = await TupleDepthBound.open(store, source);
    expect(blind.longestChain()).toBe(Number.POSITIVE_INFINITY);
    expect(blind.safeBelow(25, 4)).toBe(false);
    expect(blind.stats()).toMatchObject({ seededFrom: "none", answersFrom: -1 });
    expect(blind.stats().note).toMatch(/does not reach back to revision 0/);

    await using seeded = await TupleDepthBound.open(store, source, { tenants: ["default"] });
    expect(seeded.longestChain()).toBe(4);
    expect(seeded.stats()).toMatchObject({ seededFrom: "snapshot", answersFrom: 4 });
    expect(seeded.safeBelow(25, 4)).toBe(true);
    expect(seeded.safeBelow(25, 3)).toBe(false);

    await using whole = new MemoryTupleStore();
    await whole.write({ writes: [tuple("group:b#member", "member", "group:a")], deletes: [] });
    await whole.write({ writes: [], deletes: [tuple("group:b#member", "member", "group:a")] });
    await using wholeFeed = await ChangeFeed.open(whole);
    await using replayed = await TupleDepthBound.open(whole, wholeFeed);
    expect(replayed.stats()).toMatchObject({ seededFrom: "changelog", answersFrom: 0, edges: 0 });
    expect(replayed.longestChain()).toBe(0);
  });

  it("buffers changes the feed delivers while seeding, and re-seeds after a reset", async () => {
    await using store = new MemoryTupleStore({ changelogMaxEntries: 3 });
    await using feed = await ChangeFeed.open(store);
    await using bound = await TupleDepthBound.open(store, feed, { tenants: ["default"] });
    // Ten commits before the feed runs again: the changelog keeps the last three, so the feed resets.
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        store.write({ writes: [tuple(`group:${i + 1}#member`, "member", `group:${i}`)], deletes: [] }),
      ),
    );
    await feed.caughtUp();
    await bound.whenSeeded();
    expect(bound.stats()).toMatchObject({ resets: 1, seededFrom: "snapshot", answersFrom: 10 });
    expect(bound.longestChain()).toBe(10);
    const { revision } = await store.write({
      writes: [tuple("group:0#member", "member", "group:top")],
      deletes: [],
    });
    await feed.caughtUp(revision);
    expect(bound.longestChain()).toBe(11);
    expect(bound.safeBelow(25, revision)).toBe(true);
    await bound.close();
    await bound.close();
    expect(feed.stats().listeners).toBe(0);
  });

  it("without tenants to read, a reset leaves the bound unknown", async () => {
    await using store = new MemoryTupleStore({ changelogMaxEntries: 3 });
    await using feed = await ChangeFeed.open(store);
    await using bound = await TupleDepthBound.open(store, feed);
    expect(bound.safeBelow(25, 0)).toBe(true);
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        store.write({ writes: [tuple("user:a", "member", `group:${i}`)], deletes: [] }),
      ),
    );
    await feed.caughtUp();
    await bound.whenSeeded();
    expect(bound.stats()).toMatchObject({ resets: 1, seededFrom: "none" });
    expect(bound.safeBelow(25, await store.currentRevision())).toBe(false);
  });

  it("leaves nothing running after close()", async () => {
    const before = process.getActiveResourcesInfo().length;
    const store = new MemoryTupleStore();
    const feed = await ChangeFeed.open(store);
    const bound = await TupleDepthBound.open(store, feed);
    await store.write({ writes: [tuple("group:b#member", "member", "group:a")], deletes: [] });
    await feed.caughtUp();
    await bound[Symbol.asyncDispose]();
    await feed.close();
    await store.close();
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });
});

describe("TupleDepthBound against the reference evaluator", () => {
  const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, user:*, group#member] or viewer from parent
type doc
  relations
    define parent: [folder]
    define viewer: [user, user:*, group#member] or viewer from parent
`;

  it("below the depth limit no check is resolution_too_complex; 30 nested groups give a bound ≥ 25", async () => {
    await using engine = await createEngine({ model, evaluator: "reference", cache: false });
    await using feed = await ChangeFeed.open(engine.store);
    await using bound = await TupleDepthBound.open(engine.store, feed);
    await engine.write({
      writes: [
        { user: "folder:root", relation: "parent", object: "folder:a" },
        { user: "folder:a", relation: "parent", object: "folder:b" },
        { user: "folder:b", relation: "parent", object: "doc:1" },
        { user: "group:eng#member", relation: "viewer", object: "folder:root" },
        { user: "group:all#member", relation: "member", object: "group:eng" },
        { user: "user:anne", relation: "member", object: "group:all" },
      ],
    });
    await feed.caughtUp();
    expect(bound.longestChain()).toBe(6);
    expect(bound.safeBelow(25, await engine.store.currentRevision())).toBe(true);
    for (const object of ["doc:1", "folder:b", "folder:a", "folder:root", "group:eng", "group:all"]) {
      const relation = object.startsWith("group") ? "member" : "viewer";
      for (const user of ["user:anne", "user:bob"]) {
        await expect(engine.check({ user, relation, object, consistency: "fully_consistent" })).resolves.toBe(
          user === "user:anne",
        );
      }
    }

    const nested = Array.from({ length: 30 }, (_, i) => ({
      user: `group:n${i + 1}#member`,
      relation: "member",
      object: `group:n${i}`,
    }));
    await engine.write({ writes: nested });
    await feed.caughtUp();
    expect(bound.longestChain()).toBeGreaterThanOrEqual(25);
    expect(bound.safeBelow(25, await engine.store.currentRevision())).toBe(false);
    await expect(
      engine.check({
        user: "user:anne",
        relation: "member",
        object: "group:n0",
        consistency: "fully_consistent",
      }),
    ).rejects.toMatchObject({ code: "resolution_too_complex" });
  });

  it("property: whenever the bound is below a small depth limit, no check fails on depth", async () => {
    const objects = ["folder:a", "folder:b", "folder:c", "doc:1", "doc:2", "group:a", "group:b", "group:c"];
    const writeArb = fc
      .record({
        object: fc.constantFrom(...objects),
        target: fc.constantFrom(...objects),
        user: fc.constantFrom("user:anne", "user:*"),
        leaf: fc.boolean(),
      })
      .map(({ object, target, user, leaf }) => {
        const type = object.slice(0, object.indexOf(":"));
        const targetType = target.slice(0, target.indexOf(":"));
        if (leaf)
          return {
            user: user === "user:*" && type === "group" ? "user:anne" : user,
            relation: type === "group" ? "member" : "viewer",
            object,
          };
        if (type !== "group" && targetType === "folder") return { user: target, relation: "parent", object };
        return {
          user: `group:${target.slice(target.indexOf(":") + 1)}#member`,
          relation: type === "group" ? "member" : "viewer",
          object,
        };
      });
    const maxResolutionDepth = 4;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(writeArb, { maxLength: 14, selector: (t) => `${t.object}#${t.relation}@${t.user}` }),
        async (writes) => {
          await using engine = await createEngine({
            model,
            evaluator: "reference",
            cache: false,
            maxResolutionDepth,
          });
          await using feed = await ChangeFeed.open(engine.store);
          await using bound = await TupleDepthBound.open(engine.store, feed);
          if (writes.length > 0) await engine.write({ writes });
          await feed.caughtUp();
          const revision = await engine.store.currentRevision();
          let tooComplex = false;
          for (const object of objects) {
            const relation = object.startsWith("group") ? "member" : "viewer";
            for (const user of ["user:anne", "user:bob"]) {
              try {
                await engine.check({ user, relation, object, consistency: "fully_consistent" });
              } catch (error) {
                if (!isNexusError(error, "resolution_too_complex")) throw error;
                tooComplex = true;
              }
            }
          }
          if (bound.safeBelow(maxResolutionDepth, revision)) expect(tooComplex).toBe(false);
        },
      ),
      { numRuns: 60 },
    );
  });
});
