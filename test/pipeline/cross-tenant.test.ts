/**
 * The cross-tenant grant index: its queries (grantsTo / grantsOn: live grants, sorted, expiry without a write),
 * its denials (only where no chain of grants can reach the subject: no grant naming it, no hop into its tenant,
 * no grant on a class the question reads), revisions older than the index, conditions, seeding from a snapshot
 * when the changelog is trimmed, rebuilds on a feed reset, catching up when subscribed late, and close().
 * The property tests run random cross-tenant and same-tenant write sequences (usersets, wildcards, hops through
 * other tenants, tuple-to-userset across tenants, expiry) in an OpenFGA model and the Nexus preset: every answer
 * the layer gives equals the reference evaluator's at the same revision and instant, old revisions included.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChangeFeed } from "../../src/changes/feed.js";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import type { Program } from "../../src/model/program.js";
import { CrossTenantIndex, CrossTenantResolver } from "../../src/pipeline/cross-tenant/index.js";
import { ReferenceResolver } from "../../src/pipeline/reference.js";
import type {
  BatchOutcome,
  CheckResolver,
  LayerStats,
  Resolution,
  ResolvedCheck,
} from "../../src/pipeline/types.js";
import { questionKey } from "../../src/request/key.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { formatSubject, parseSubject, type TupleKey } from "../../src/tuples/tuple.js";
import { isNexusError } from "../../src/util/errors.js";
import { type GeneratedModel, modelArb, USERS } from "../reference/random-models.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*] or shared-member
    define shared-member: [user, user:*]
type folder
  relations
    define viewer: [user, group#member]
    define shared-viewer: [user, user:*, group#member]
    define can_view: viewer or shared-viewer
type doc
  relations
    define parent: [folder]
    define shared-parent: [folder]
    define owner: [user]
    define editor: [user]
    define blocked: [user]
    define shared-editor: [user, group#member]
    define shared-note: [user, user with small]
    define viewer: (owner or can_view from parent or can_view from shared-parent or shared-editor) but not blocked
    define edit_only: editor
    define noted: shared-note
condition small(x: int) {
  x < 5
}
`;

/**
 * The same with groups nested in groups: `member` is recursive, so a check may reach the depth limit and the
 * layer passes those questions through (the reference may report resolution_too_complex rather than deny).
 */
const nestedModel = model.replace(
  "define member: [user, user:*] or shared-member\n    define shared-member: [user, user:*]",
  "define member: [user, user:*, group#member] or shared-member\n    define shared-member: [user, user:*, group#member]",
);

interface Question {
  readonly tenant: string;
  readonly subjectTenant: string;
  readonly user: string;
  readonly relation: string;
  readonly object: string;
}

function resolved(q: Question, revision: number, now: number): ResolvedCheck {
  const subject = parseSubject(q.user)!;
  const user = formatSubject(subject);
  return {
    tenant: q.tenant,
    subjectTenant: q.subjectTenant,
    object: q.object,
    objectType: q.object.slice(0, q.object.indexOf(":")),
    relation: q.relation,
    subject,
    user,
    revision,
    now,
    context: undefined,
    contextualTuples: [],
    key: questionKey(q.tenant, q.subjectTenant, q.object, q.relation, user, ""),
  };
}

async function outcome(resolver: CheckResolver, check: ResolvedCheck): Promise<boolean | string> {
  try {
    return (await resolver.resolve(check)).allowed;
  } catch (error) {
    return isNexusError(error) ? `error:${error.code}` : `error:${String(error)}`;
  }
}

/** Counts what reaches the evaluator. */
class Counting implements CheckResolver {
  readonly layer = "counting";
  calls = 0;
  closed = 0;
  readonly #inner: CheckResolver;
  constructor(inner: CheckResolver) {
    this.#inner = inner;
  }
  resolve(check: ResolvedCheck, signal?: AbortSignal): Promise<Resolution> {
    this.calls++;
    return this.#inner.resolve(check, signal);
  }
  resolveMany(checks: readonly ResolvedCheck[], signal?: AbortSignal): Promise<BatchOutcome[]> {
    this.calls += checks.length;
    return this.#inner.resolveMany(checks, signal);
  }
  stats(): LayerStats[] {
    return this.#inner.stats();
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

interface Setup {
  engine: Engine;
  clock: { now: number };
  feed: ChangeFeed;
  layer: CrossTenantResolver;
  evaluator: Counting;
  oracle: ReferenceResolver;
  close(): Promise<void>;
}

async function setup(
  options: { model?: string | object; format?: "nexus"; writes?: TupleKey[] } = {},
): Promise<Setup> {
  const clock = { now: 1_700_000_000_000 };
  const engine = await createEngine({
    model: options.model ?? model,
    ...(options.format !== undefined ? { format: options.format } : {}),
    clock: () => clock.now,
  });
  if (options.writes !== undefined) await engine.write({ writes: options.writes });
  const { program, store } = engine;
  const feed = await ChangeFeed.open(store);
  const evaluator = new Counting(new ReferenceResolver({ program, store }));
  const layer = await CrossTenantResolver.open(
    evaluator,
    { program, store, source: feed },
    { clock: () => clock.now },
  );
  const oracle = new ReferenceResolver({ program, store });
  return {
    engine,
    clock,
    feed,
    layer,
    evaluator,
    oracle,
    async close() {
      await layer.close();
      await feed.close();
      await engine.close();
    },
  };
}

const layerStats = (layer: CrossTenantResolver) => layer.stats()[0]!;

async function current(s: Setup): Promise<number> {
  const revision = await s.engine.store.currentRevision();
  await s.feed.caughtUp(revision);
  return revision;
}

/** The layer's answer, asserted equal to the reference's; also says whether the layer answered it itself. */
async function agreed(s: Setup, q: Question, revision?: number, now?: number) {
  const check = resolved(q, revision ?? (await current(s)), now ?? s.clock.now);
  const before = s.evaluator.calls;
  const got = await outcome(s.layer, check);
  const expected = await outcome(s.oracle, check);
  expect(
    got,
    `${q.object}#${q.relation}@${q.subjectTenant}/${q.user} in ${q.tenant} at ${check.revision}`,
  ).toBe(expected);
  return { answer: got, denied: s.evaluator.calls === before };
}

const inA = (user: string, relation: string, object: string, subjectTenant = "B"): Question => ({
  tenant: "A",
  subjectTenant,
  user,
  relation,
  object,
});

describe("CrossTenantResolver: the index and its queries", () => {
  it("lists live grants by subject and by object, sorted, wildcards included on request", async () => {
    const s = await setup();
    try {
      const soon = new Date(s.clock.now + 1000);
      await s.engine.write({
        writes: [
          {
            tenant: "A",
            subjectTenant: "B",
            user: "user:bob",
            relation: "shared-viewer",
            object: "folder:f2",
          },
          {
            tenant: "A",
            subjectTenant: "B",
            user: "user:bob",
            relation: "shared-viewer",
            object: "folder:f1",
          },
          { tenant: "A", subjectTenant: "B", user: "user:*", relation: "shared-viewer", object: "folder:f3" },
          {
            tenant: "C",
            subjectTenant: "B",
            user: "user:bob",
            relation: "shared-editor",
            object: "doc:d1",
            expiresAt: soon,
          },
          {
            tenant: "A",
            subjectTenant: "C",
            user: "group:g#member",
            relation: "shared-viewer",
            object: "folder:f1",
          },
          { tenant: "A", user: "user:bob", relation: "viewer", object: "folder:f1" }, // same tenant: not a grant
        ],
      });
      await current(s);
      const toBob = s.layer.grantsTo({ subjectTenant: "B", user: "user:bob" });
      expect(toBob.map((g) => `${g.tenant}:${g.object}#${g.relation}@${g.user}`)).toEqual([
        "A:folder:f1#shared-viewer@user:bob",
        "A:folder:f2#shared-viewer@user:bob",
        "A:folder:f3#shared-viewer@user:*",
        "C:doc:d1#shared-editor@user:bob",
      ]);
      expect(toBob[0]).toEqual({
        user: "user:bob",
        relation: "shared-viewer",
        object: "folder:f1",
        tenant: "A",
        subjectTenant: "B",
      });
      expect(toBob[3]!.expiresAt).toBe(soon.toISOString());
      expect(s.layer.grantsTo({ subjectTenant: "B", user: "user:bob", includeWildcard: false })).toHaveLength(
        3,
      );
      expect(s.layer.grantsTo({ subjectTenant: "B", user: "user:bob", tenant: "C" })).toHaveLength(1);
      expect(s.layer.grantsTo({ subjectTenant: "A", user: "user:bob" })).toEqual([]);
      expect(s.layer.grantsTo({ subjectTenant: "C", user: "group:g#member" })).toHaveLength(1);
      // Expiry needs no write: the grant stops counting at its instant.
      expect(s.layer.grantsTo({ subjectTenant: "B", user: "user:bob", now: soon.getTime() })).toHaveLength(3);
      s.clock.now = soon.getTime();
      expect(s.layer.grantsTo({ subjectTenant: "B", user: "user:bob", tenant: "C" })).toEqual([]);

      expect(
        s.layer.grantsOn({ tenant: "A", object: "folder:f1" }).map((g) => `${g.subjectTenant}/${g.user}`),
      ).toEqual(["B/user:bob", "C/group:g#member"]);
      expect(s.layer.grantsOn({ tenant: "A", object: "folder:f1", subjectTenant: "C" })).toHaveLength(1);
      expect(s.layer.grantsOn({ tenant: "A", object: "folder:f1", relation: "viewer" })).toEqual([]);
      expect(s.layer.grantsOn({ tenant: "B", object: "folder:f1" })).toEqual([]);

      // Deletes leave the index as the feed delivers them.
      await s.engine.write({
        deletes: [
          {
            tenant: "A",
            subjectTenant: "B",
            user: "user:bob",
            relation: "shared-viewer",
            object: "folder:f1",
          },
        ],
      });
      await current(s);
      expect(s.layer.grantsOn({ tenant: "A", object: "folder:f1" })).toHaveLength(1);
      const stats = layerStats(s.layer);
      expect(stats.layer).toBe("cross-tenant");
      // 5 grants written, 1 deleted, 1 purged by the store once expired (same-tenant tuples are not grants).
      expect(stats.extra).toMatchObject({ grants: 3, tenantPairs: 2, hops: 1, coverage: "all tenants" });
      expect(stats.invalidations).toBe(7);
    } finally {
      await s.close();
    }
  });

  it("rejects bad queries with a NexusError naming the input", async () => {
    const s = await setup();
    try {
      const code = (f: () => unknown) => {
        try {
          f();
          return "none";
        } catch (error) {
          return isNexusError(error) ? error.code : String(error);
        }
      };
      expect(code(() => s.layer.grantsTo({ subjectTenant: "", user: "user:bob" }))).toBe("invalid_argument");
      expect(code(() => s.layer.grantsTo({ subjectTenant: "B", user: "bob" }))).toBe("invalid_argument");
      expect(code(() => s.layer.grantsTo({ subjectTenant: "B", user: "robot:x" }))).toBe("type_not_found");
      expect(code(() => s.layer.grantsOn({ tenant: "A", object: "doc" }))).toBe("invalid_argument");
      expect(code(() => s.layer.grantsOn({ tenant: "A", object: "doc:1", now: Number.NaN }))).toBe(
        "invalid_argument",
      );
      expect(code(() => s.layer.grantsTo(null as never))).toBe("invalid_argument");
      await expect(
        CrossTenantResolver.open(
          s.evaluator,
          { program: s.engine.program, store: s.engine.store },
          {
            tenants: ["ok", ""],
          },
        ),
      ).rejects.toMatchObject({ code: "invalid_argument", message: expect.stringContaining("tenants[1]") });
    } finally {
      await s.close();
    }
  });
});

describe("CrossTenantResolver: answers", () => {
  it("denies what no grant reaches without evaluating, and passes the rest; same-tenant passes straight through", async () => {
    const s = await setup({
      writes: [
        { tenant: "A", user: "folder:f1", relation: "parent", object: "doc:d1" },
        { tenant: "A", user: "user:ann", relation: "viewer", object: "folder:f1" },
        { tenant: "A", subjectTenant: "B", user: "user:bob", relation: "shared-viewer", object: "folder:f1" },
        { tenant: "A", subjectTenant: "B", user: "user:carl", relation: "shared-editor", object: "doc:d2" },
      ],
    });
    try {
      // Same tenant: evaluated, counted as passed through.
      expect((await agreed(s, inA("user:ann", "viewer", "doc:d1", "A"))).answer).toBe(true);
      // Grants naming the subject: evaluated (true where the grant reaches the object).
      expect(await agreed(s, inA("user:bob", "viewer", "doc:d1"))).toEqual({ answer: true, denied: false });
      expect(await agreed(s, inA("user:bob", "viewer", "doc:d2"))).toEqual({ answer: false, denied: false });
      // No grant names dave (nor user:*) in A for B: denied by the index.
      expect(await agreed(s, inA("user:dave", "viewer", "doc:d1"))).toEqual({ answer: false, denied: true });
      // Subjects of tenant C: A grants nothing to C.
      expect(await agreed(s, inA("user:bob", "viewer", "doc:d1", "C"))).toEqual({
        answer: false,
        denied: true,
      });
      // carl's grant is on doc#shared-editor, which doc#edit_only never reads: denied although he has a grant.
      expect(await agreed(s, inA("user:carl", "edit_only", "doc:d2"))).toEqual({
        answer: false,
        denied: true,
      });
      expect(await agreed(s, inA("user:carl", "viewer", "doc:d2"))).toEqual({ answer: true, denied: false });
      // A userset subject of B needs a hop into B: none.
      expect(await agreed(s, inA("group:g#member", "viewer", "doc:d1"))).toEqual({
        answer: false,
        denied: true,
      });
      const stats = layerStats(s.layer);
      expect(stats).toMatchObject({ requests: 8, hits: 4, misses: 4 });
      expect(stats.extra).toMatchObject({ sameTenant: 1, mayGrant: 3 });
    } finally {
      await s.close();
    }
  });

  it("follows grants to usersets and parents of other tenants, through chains of tenants", async () => {
    const s = await setup({
      writes: [
        // A shares folder f1 with B's group g; B's group g includes C's erin through a grant in B.
        {
          tenant: "A",
          subjectTenant: "B",
          user: "group:g#member",
          relation: "shared-viewer",
          object: "folder:f1",
        },
        { tenant: "A", user: "folder:f1", relation: "parent", object: "doc:d1" },
        { tenant: "B", user: "user:bob", relation: "member", object: "group:g" },
        { tenant: "B", subjectTenant: "C", user: "user:erin", relation: "shared-member", object: "group:g" },
        // A's doc d2 takes B's folder f9 as a parent across tenants (tuple-to-userset into B).
        { tenant: "A", subjectTenant: "B", user: "folder:f9", relation: "shared-parent", object: "doc:d2" },
        { tenant: "B", user: "user:fay", relation: "viewer", object: "folder:f9" },
      ],
    });
    try {
      expect(await agreed(s, inA("user:bob", "viewer", "doc:d1"))).toEqual({ answer: true, denied: false });
      expect(await agreed(s, inA("user:erin", "viewer", "doc:d1", "C"))).toEqual({
        answer: true,
        denied: false,
      });
      expect(await agreed(s, inA("user:fay", "viewer", "doc:d2"))).toEqual({ answer: true, denied: false });
      expect(await agreed(s, inA("group:g#member", "viewer", "doc:d1"))).toEqual({
        answer: true,
        denied: false,
      });
      // Tenant D: the chain A → B → C never reaches it.
      expect(await agreed(s, inA("user:erin", "viewer", "doc:d1", "D"))).toEqual({
        answer: false,
        denied: true,
      });
      // The hops are on classes doc#edit_only does not read.
      expect(await agreed(s, inA("user:bob", "edit_only", "doc:d1"))).toEqual({
        answer: false,
        denied: true,
      });
      // B's questions about C's users in B: B's grant names erin only.
      const inB = (user: string): Question => ({
        tenant: "B",
        subjectTenant: "C",
        user,
        relation: "member",
        object: "group:g",
      });
      expect(await agreed(s, inB("user:erin"))).toEqual({ answer: true, denied: false });
      expect(await agreed(s, inB("user:zed"))).toEqual({ answer: false, denied: true });
    } finally {
      await s.close();
    }
  });

  it("lets grants expire without a write", async () => {
    const s = await setup();
    try {
      const at = s.clock.now + 500;
      await s.engine.write({
        writes: [
          {
            tenant: "A",
            subjectTenant: "B",
            user: "user:bob",
            relation: "shared-viewer",
            object: "folder:f1",
            expiresAt: new Date(at),
          },
        ],
      });
      const q = inA("user:bob", "can_view", "folder:f1");
      expect(await agreed(s, q)).toEqual({ answer: true, denied: false });
      expect(await agreed(s, q, undefined, at - 1)).toEqual({ answer: true, denied: false });
      expect(await agreed(s, q, undefined, at)).toEqual({ answer: false, denied: true });
      s.clock.now = at + 10;
      expect(await agreed(s, q)).toEqual({ answer: false, denied: true });
      expect(s.layer.grantsTo({ subjectTenant: "B", user: "user:bob" })).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it("answers a question pinned to an older revision only when nothing it depends on changed since", async () => {
    const s = await setup();
    try {
      const grant = {
        tenant: "A",
        subjectTenant: "B",
        user: "user:bob",
        relation: "shared-viewer",
        object: "folder:f1",
      } as const;
      const r0 = await current(s);
      const { revision: r1 } = await s.engine.write({ writes: [grant] });
      const { revision: r2 } = await s.engine.write({ deletes: [grant] });
      const { revision: r3 } = await s.engine.write({
        writes: [
          {
            tenant: "A",
            subjectTenant: "C",
            user: "user:cy",
            relation: "shared-viewer",
            object: "folder:f1",
          },
        ],
      });
      await current(s);
      const q = inA("user:bob", "can_view", "folder:f1");
      // At r1 the grant existed: the index (which has seen its delete) must not deny.
      expect(await agreed(s, q, r1)).toEqual({ answer: true, denied: false });
      expect(await agreed(s, q, r0)).toEqual({ answer: false, denied: false });
      // From r2 on, (A, B) has not changed: denied, whatever happened to (A, C) at r3.
      expect(await agreed(s, q, r2)).toEqual({ answer: false, denied: true });
      expect(await agreed(s, q, r3)).toEqual({ answer: false, denied: true });
      // Beyond what the index has seen: passed through.
      const before = layerStats(s.layer).extra?.bypassed as number;
      await s.layer.resolve(resolved(q, r3 + 1, s.clock.now)).catch(() => undefined);
      expect(layerStats(s.layer).extra?.bypassed).toBe(before + 1);
    } finally {
      await s.close();
    }
  });

  it("keeps older revisions exact across chains of tenants: a removed hop, a tenant left without grants", async () => {
    const hop = {
      tenant: "A",
      subjectTenant: "B",
      user: "group:g#member",
      relation: "shared-viewer",
      object: "folder:f1",
    } as const;
    const leaf = { ...hop, user: "user:bob" };
    const s = await setup({
      writes: [
        hop,
        leaf,
        { tenant: "A", user: "folder:f1", relation: "parent", object: "doc:d1" },
        { tenant: "B", subjectTenant: "C", user: "user:erin", relation: "shared-member", object: "group:g" },
      ],
    });
    try {
      const erin = inA("user:erin", "viewer", "doc:d1", "C");
      const r1 = await current(s);
      // The hop goes; (A, B) keeps bob's grant and (A, C) never changed: only A's hop record says r1 differs.
      const { revision: r2 } = await s.engine.write({ deletes: [hop] });
      await current(s);
      expect(await agreed(s, erin, r1)).toEqual({ answer: true, denied: false });
      expect(await agreed(s, erin, r2)).toEqual({ answer: false, denied: true });
      // Back, then A loses every grant (its record goes): questions older than that still pass through.
      const { revision: r3 } = await s.engine.write({ writes: [hop] });
      const { revision: r4 } = await s.engine.write({ deletes: [hop, leaf] });
      await current(s);
      expect(await agreed(s, erin, r3)).toEqual({ answer: true, denied: false });
      expect(await agreed(s, erin, r4)).toEqual({ answer: false, denied: true });
      expect(layerStats(s.layer).extra).toMatchObject({ grants: 1, tenantPairs: 1 });
    } finally {
      await s.close();
    }
  });

  it("passes through recursive relations, where the reference may give up on depth rather than deny", async () => {
    const chain: TupleKey[] = Array.from({ length: 30 }, (_, i) => ({
      tenant: "A",
      user: `group:g${i + 1}#member`,
      relation: "member",
      object: `group:g${i}`,
    }));
    const s = await setup({
      model: nestedModel,
      writes: [...chain, { tenant: "A", user: "group:g0#member", relation: "viewer", object: "folder:f0" }],
    });
    try {
      const check = resolved(inA("user:x", "can_view", "folder:f0"), await current(s), s.clock.now);
      expect(await outcome(s.oracle, check)).toBe("error:resolution_too_complex");
      expect(await outcome(s.layer, check)).toBe("error:resolution_too_complex");
      expect(layerStats(s.layer).hits).toBe(0);
    } finally {
      await s.close();
    }
  });

  it("passes through questions that may evaluate a condition, and contextual tuples", async () => {
    const s = await setup({
      writes: [
        {
          tenant: "A",
          subjectTenant: "B",
          user: "user:bob",
          relation: "shared-note",
          object: "doc:d1",
          condition: { name: "small" },
        },
      ],
    });
    try {
      // The reference reports the missing parameter: the layer must not deny in its place.
      expect(await agreed(s, inA("user:bob", "noted", "doc:d1"))).toEqual({
        answer: "error:condition_missing_parameter",
        denied: false,
      });
      expect((await agreed(s, inA("user:zed", "noted", "doc:d1"))).denied).toBe(false);
      const check = {
        ...resolved(inA("user:zed", "viewer", "doc:d1"), await current(s), s.clock.now),
        contextualTuples: [],
      };
      const withContextual = { ...check, contextualTuples: [{} as never], key: undefined };
      const before = s.evaluator.calls;
      await s.layer.resolve(withContextual).catch(() => undefined);
      expect(s.evaluator.calls).toBe(before + 1);
    } finally {
      await s.close();
    }
  });

  it("answers batches: denials from the index, the rest in one batch, an error only for its own question", async () => {
    const s = await setup({
      writes: [
        { tenant: "A", subjectTenant: "B", user: "user:bob", relation: "shared-viewer", object: "folder:f1" },
        {
          tenant: "A",
          subjectTenant: "B",
          user: "user:bob",
          relation: "shared-note",
          object: "doc:d1",
          condition: { name: "small" },
        },
      ],
    });
    try {
      const revision = await current(s);
      const questions = [
        inA("user:bob", "can_view", "folder:f1"),
        inA("user:zed", "can_view", "folder:f1"),
        inA("user:bob", "noted", "doc:d1"),
        inA("user:bob", "can_view", "folder:f1", "A"),
      ];
      const checks = questions.map((q) => resolved(q, revision, s.clock.now));
      const before = s.evaluator.calls;
      const got = await s.layer.resolveMany(checks);
      expect(s.evaluator.calls - before).toBe(3);
      const expected = await s.oracle.resolveMany(checks);
      const view = (o: BatchOutcome) => (o instanceof Error ? (o as { code?: string }).code : o.allowed);
      expect(got.map(view)).toEqual(expected.map(view));
      expect(got.map(view)).toEqual([true, false, "condition_missing_parameter", false]);
      // All same-tenant: handed over as is.
      const same = [resolved(inA("user:bob", "can_view", "folder:f1", "A"), revision, s.clock.now)];
      expect((await s.layer.resolveMany(same)).map(view)).toEqual([false]);
    } finally {
      await s.close();
    }
  });
});

describe("CrossTenantResolver: building and following", () => {
  it("seeds from a snapshot of the named tenants when the changelog is trimmed, and covers only those", async () => {
    const clock = { now: 1_700_000_000_000 };
    const store = new MemoryTupleStore({ clock: () => clock.now, changelogMaxEntries: 2 });
    const engine = await createEngine({ model, store, clock: () => clock.now });
    for (const tenant of ["A", "X"]) {
      await engine.write({
        writes: [
          { tenant, subjectTenant: "B", user: "user:bob", relation: "shared-viewer", object: "folder:f1" },
        ],
      });
    }
    for (let i = 0; i < 3; i++) {
      await engine.write({
        writes: [{ tenant: "A", user: `user:u${i}`, relation: "viewer", object: "folder:f1" }],
      });
    }
    await expect(store.changesAfter(0, 1)).rejects.toMatchObject({ code: "invalid_token" });
    const evaluator = new Counting(new ReferenceResolver({ program: engine.program, store }));
    const feed = await ChangeFeed.open(store);
    const layer = await CrossTenantResolver.open(
      evaluator,
      { program: engine.program, store, source: feed },
      { tenants: ["A"], clock: () => clock.now },
    );
    try {
      expect(layer.complete).toBe(false);
      expect(layer.grantsOn({ tenant: "A", object: "folder:f1" })).toHaveLength(1);
      expect(() => layer.grantsOn({ tenant: "X", object: "folder:f1" })).toThrow(/does not cover tenant "X"/);
      expect(() => layer.grantsTo({ subjectTenant: "B", user: "user:bob" })).toThrow(/name a tenant/);
      const revision = await store.currentRevision();
      const ask = async (tenant: string) => {
        const before = evaluator.calls;
        await layer.resolve(
          resolved(
            { tenant, subjectTenant: "B", user: "user:zed", relation: "can_view", object: "folder:f1" },
            revision,
            clock.now,
          ),
        );
        return evaluator.calls === before;
      };
      expect(await ask("A")).toBe(true); // covered: denied by the index
      expect(await ask("X")).toBe(false); // not covered: evaluated
      // Older than the snapshot: passed through.
      const before = evaluator.calls;
      await layer.resolve(resolved(inA("user:zed", "can_view", "folder:f1"), revision - 1, clock.now));
      expect(evaluator.calls).toBe(before + 1);
      expect(layerStats(layer).extra).toMatchObject({ coverage: "1 tenants", answersFrom: revision });
    } finally {
      await layer.close();
      await feed.close();
      await engine.close();
      await store.close();
    }
  });

  it("rebuilds on a feed reset, buffering the changes that arrive meanwhile", async () => {
    const s = await setup({
      writes: [
        { tenant: "A", subjectTenant: "B", user: "user:bob", relation: "shared-viewer", object: "folder:f1" },
      ],
    });
    try {
      await current(s);
      const rebuilds = layerStats(s.layer).extra?.rebuilds as number;
      s.layer.onReset();
      // While rebuilding, nothing is answered from the index and its queries say so.
      expect(() => s.layer.grantsTo({ subjectTenant: "B", user: "user:bob" })).toThrow(/rebuilding/);
      await s.engine.write({
        writes: [
          {
            tenant: "A",
            subjectTenant: "B",
            user: "user:zed",
            relation: "shared-viewer",
            object: "folder:f1",
          },
        ],
        deletes: [
          {
            tenant: "A",
            subjectTenant: "B",
            user: "user:bob",
            relation: "shared-viewer",
            object: "folder:f1",
          },
        ],
      });
      await current(s);
      await waitFor(() => layerStats(s.layer).extra?.rebuilds === rebuilds + 1);
      await waitFor(() => {
        try {
          s.layer.grantsTo({ subjectTenant: "B", user: "user:zed" });
          return true;
        } catch {
          return false;
        }
      });
      expect(s.layer.grantsTo({ subjectTenant: "B", user: "user:zed" })).toHaveLength(1);
      expect(s.layer.grantsTo({ subjectTenant: "B", user: "user:bob" })).toEqual([]);
      expect(await agreed(s, inA("user:bob", "can_view", "folder:f1"))).toEqual({
        answer: false,
        denied: true,
      });
    } finally {
      await s.close();
    }
  });

  it("catches up from the store when subscribed after open (no source)", async () => {
    const clock = { now: 1_700_000_000_000 };
    await using engine = await createEngine({ model, clock: () => clock.now });
    const { program, store } = engine;
    const layer = await CrossTenantResolver.open(new ReferenceResolver({ program, store }), {
      program,
      store,
    });
    const grant = (user: string) =>
      ({ tenant: "A", subjectTenant: "B", user, relation: "shared-viewer", object: "folder:f1" }) as const;
    // Written while nobody feeds the layer.
    await engine.write({ writes: [grant("user:early")] });
    const feed = await ChangeFeed.open(store);
    const unsubscribe = feed.subscribe(layer);
    try {
      expect(layer.revision).toBe(0);
      await engine.write({ writes: [grant("user:late")] });
      await feed.caughtUp();
      await waitFor(() => layer.revision === 2 && layerStats(layer).extra?.catchUps === 1);
      expect(layer.grantsOn({ tenant: "A", object: "folder:f1" }).map((g) => g.user)).toEqual([
        "user:early",
        "user:late",
      ]);
      await engine.write({ deletes: [grant("user:early")] });
      await feed.caughtUp();
      expect(layer.grantsOn({ tenant: "A", object: "folder:f1" }).map((g) => g.user)).toEqual(["user:late"]);
    } finally {
      unsubscribe();
      await layer.close();
      await feed.close();
    }
  });

  it("close() is idempotent, closes the next layer, and leaves nothing running", async () => {
    await new Promise((r) => setTimeout(r, 10));
    const baseline = process.getActiveResourcesInfo().length;
    const s = await setup({
      writes: [
        { tenant: "A", subjectTenant: "B", user: "user:bob", relation: "shared-viewer", object: "folder:f1" },
      ],
    });
    await agreed(s, inA("user:zed", "can_view", "folder:f1"));
    await s.layer.close();
    await s.layer.close();
    expect(s.evaluator.closed).toBe(2);
    expect(s.feed.stats().listeners).toBe(0);
    expect(layerStats(s.layer).enabled).toBe(false);
    expect(() => s.layer.grantsTo({ subjectTenant: "B", user: "user:bob" })).toThrow(/closed/);
    await s.feed.close();
    await s.engine.close();
    await new Promise((r) => setTimeout(r, 10));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(baseline);
  });
});

describe("CrossTenantIndex on its own", () => {
  it("builds from the feed's replay, follows it, and serves a layer that shares it without closing it", async () => {
    const clock = { now: 1_700_000_000_000 };
    await using engine = await createEngine({ model, clock: () => clock.now });
    const { program, store } = engine;
    const grant = (user: string) =>
      ({ tenant: "A", subjectTenant: "B", user, relation: "shared-viewer", object: "folder:f1" }) as const;
    // Written before the index exists: it reaches the index through the feed's replay from revision 0.
    await engine.write({ writes: [grant("user:early")] });
    const feed = await ChangeFeed.open(store);
    const index = await CrossTenantIndex.open({ program, store, source: feed }, { clock: () => clock.now });
    try {
      expect(index.complete).toBe(true);
      expect(index.stats()).toMatchObject({ enabled: true, grants: 1, rebuilds: 1, answersFrom: 0 });
      await engine.write({ writes: [grant("user:late")] });
      const revision = await store.currentRevision();
      await feed.caughtUp(revision);
      expect(index.revision).toBe(revision);
      expect(index.grantsOn({ tenant: "A", object: "folder:f1" }).map((g) => g.user)).toEqual([
        "user:early",
        "user:late",
      ]);
      const evaluator = new Counting(new ReferenceResolver({ program, store }));
      const layer = await CrossTenantResolver.open(evaluator, { program, store, index });
      expect(layer.index).toBe(index);
      const check = resolved(inA("user:zed", "can_view", "folder:f1"), revision, clock.now);
      expect((await layer.resolve(check)).allowed).toBe(false);
      expect(evaluator.calls).toBe(0);
      await layer.close();
      // The layer leaves a shared index open and subscribed.
      expect(index.grantsTo({ subjectTenant: "B", user: "user:late" })).toHaveLength(1);
      expect(feed.stats().listeners).toBe(1);
    } finally {
      await index.close();
      expect(feed.stats().listeners).toBe(0);
      expect(() => index.grantsTo({ subjectTenant: "B", user: "user:late" })).toThrow(/closed/);
      await feed.close();
    }
  });
});

async function waitFor(done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(done()).toBe(true);
}

// --- property tests -------------------------------------------------------------------------------------------

interface Slot {
  readonly key: TupleKey;
  /** Whether a write may carry an expiry. */
  readonly expiring: boolean;
}

interface World {
  readonly name: string;
  readonly model: string | object;
  readonly format?: "nexus";
  readonly slots: readonly Slot[];
  readonly questions: readonly Question[];
}

const TENANTS = ["A", "B", "C"] as const;

function slotsFor(
  same: readonly Omit<TupleKey, "tenant">[],
  cross: readonly Omit<TupleKey, "tenant" | "subjectTenant">[],
): Slot[] {
  const out: Slot[] = [];
  for (const tenant of TENANTS) {
    for (const key of same) out.push({ key: { ...key, tenant }, expiring: false });
    for (const subjectTenant of TENANTS) {
      if (subjectTenant === tenant) continue;
      for (const key of cross) {
        out.push({ key: { ...key, tenant, subjectTenant }, expiring: false });
        out.push({ key: { ...key, tenant, subjectTenant }, expiring: true });
      }
    }
  }
  // One identity, two variants (with and without expiry): keep them apart by object so a batch never names
  // one identity twice.
  return out.map((slot) =>
    slot.expiring && slot.key.subjectTenant !== undefined
      ? { ...slot, key: { ...slot.key, object: `${slot.key.object}x` } }
      : slot,
  );
}

function questionsFor(subjects: readonly string[], targets: readonly [string, string][]): Question[] {
  const out: Question[] = [];
  for (const tenant of TENANTS) {
    for (const subjectTenant of TENANTS) {
      for (const user of subjects) {
        for (const [object, relation] of targets) out.push({ tenant, subjectTenant, user, relation, object });
      }
    }
  }
  return out;
}

const openfgaWorld: World = {
  name: "OpenFGA model",
  model: nestedModel,
  slots: slotsFor(
    [
      { user: "user:u0", relation: "member", object: "group:g0" },
      { user: "group:g1#member", relation: "member", object: "group:g0" },
      { user: "user:u1", relation: "member", object: "group:g1" },
      { user: "user:u0", relation: "viewer", object: "folder:f0" },
      { user: "group:g0#member", relation: "viewer", object: "folder:f0" },
      { user: "folder:f0", relation: "parent", object: "doc:d0" },
      { user: "folder:f0x", relation: "parent", object: "doc:d0" },
      { user: "user:u1", relation: "owner", object: "doc:d0" },
      { user: "user:u0", relation: "editor", object: "doc:d0" },
      { user: "user:u0", relation: "blocked", object: "doc:d0" },
    ],
    [
      { user: "user:u0", relation: "shared-member", object: "group:g0" },
      { user: "user:*", relation: "shared-member", object: "group:g1" },
      { user: "group:g1#member", relation: "shared-member", object: "group:g0" },
      { user: "user:u1", relation: "shared-viewer", object: "folder:f0" },
      { user: "user:*", relation: "shared-viewer", object: "folder:f0" },
      { user: "group:g0#member", relation: "shared-viewer", object: "folder:f0" },
      { user: "folder:f0", relation: "shared-parent", object: "doc:d0" },
      { user: "user:u0", relation: "shared-editor", object: "doc:d0" },
      { user: "group:g1#member", relation: "shared-editor", object: "doc:d0" },
    ],
  ),
  questions: questionsFor(
    ["user:u0", "user:u1", "user:u2", "user:*", "group:g0#member", "group:g1#member"],
    [
      ["doc:d0", "viewer"],
      ["doc:d0", "edit_only"],
      ["doc:d0", "shared-editor"],
      ["folder:f0", "can_view"],
      ["folder:f0x", "can_view"],
      ["group:g0", "member"],
    ],
  ),
};

/** Few slots, most of them hops: chains of tenants (A → B → C) appear and vanish often. */
const chainWorld: World = {
  name: "OpenFGA model, dense tenant chains",
  model: nestedModel,
  slots: slotsFor(
    [
      { user: "folder:f0", relation: "parent", object: "doc:d0" },
      { user: "user:u1", relation: "member", object: "group:g0" },
    ],
    [
      { user: "group:g0#member", relation: "shared-viewer", object: "folder:f0" },
      { user: "folder:f0", relation: "shared-parent", object: "doc:d0" },
      { user: "user:u0", relation: "shared-member", object: "group:g0" },
      { user: "user:*", relation: "shared-viewer", object: "folder:f0" },
    ],
  ).filter((slot) => !slot.expiring || slot.key.relation === "shared-member"),
  questions: questionsFor(
    ["user:u0", "user:u1", "user:*", "group:g0#member"],
    [
      ["doc:d0", "viewer"],
      ["folder:f0", "can_view"],
      ["group:g0", "member"],
    ],
  ),
};

const nexusWorld: World = {
  name: "Nexus preset",
  model: nexusFilesystemModel,
  format: "nexus",
  slots: slotsFor(
    [
      { user: "user:u0", relation: "member", object: "group:g0" },
      { user: "group:g1#member", relation: "member", object: "group:g0" },
      { user: "user:u1", relation: "member", object: "group:g1" },
      { user: "file:/a", relation: "parent", object: "file:/a/b" },
      { user: "user:u1", relation: "direct_viewer", object: "file:/a" },
      { user: "group:g0", relation: "direct_editor", object: "file:/a" },
    ],
    [
      { user: "user:u0", relation: "shared-viewer", object: "file:/a" },
      { user: "user:*", relation: "shared-viewer", object: "file:/a/b" },
      { user: "group:g0#member", relation: "shared-editor", object: "file:/a" },
      { user: "agent:bot", relation: "shared-owner", object: "file:/a/b" },
    ],
  ),
  questions: questionsFor(
    ["user:u0", "user:u1", "user:*", "agent:bot", "group:g0#member"],
    [
      ["file:/a/b", "read"],
      ["file:/a/b", "write"],
      ["file:/a", "viewer"],
      ["file:/ax", "read"],
      ["group:g0", "member"],
    ],
  ),
};

const stepArb = fc.record({
  toggle: fc.uniqueArray(fc.nat(10_000), { minLength: 1, maxLength: 6 }),
  expiresInMs: fc.integer({ min: 1, max: 6 }),
  advanceMs: fc.integer({ min: 0, max: 4 }),
  /** Questions asked at this older step's revision too (index into the revisions so far). */
  older: fc.nat(100),
  laterNow: fc.integer({ min: 0, max: 8 }),
});

const totals = { denied: 0, passed: 0, olderDenied: 0 };

type Step = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;

async function runWorld(world: World, steps: Step[]): Promise<void> {
  const s = await setup({
    model: world.model,
    ...(world.format !== undefined ? { format: world.format } : {}),
  });
  try {
    /** identity (slot index) → expiresAt (Infinity: none) of what is in the store now. */
    const present = new Map<number, number>();
    const revisions: number[] = [await current(s)];
    for (const step of steps) {
      const writes: TupleKey[] = [];
      const deletes: TupleKey[] = [];
      const used = new Set<number>();
      for (const pick of step.toggle) {
        const index = pick % world.slots.length;
        if (used.has(index)) continue;
        used.add(index);
        const slot = world.slots[index]!;
        const until = present.get(index);
        if (until !== undefined && until > s.clock.now) {
          const { user, relation, object, tenant, subjectTenant } = slot.key;
          deletes.push({ user, relation, object, tenant, ...(subjectTenant ? { subjectTenant } : {}) });
          present.delete(index);
        } else {
          const expiresAt = slot.expiring ? s.clock.now + step.expiresInMs : undefined;
          writes.push(expiresAt !== undefined ? { ...slot.key, expiresAt: new Date(expiresAt) } : slot.key);
          present.set(index, expiresAt ?? Number.POSITIVE_INFINITY);
        }
      }
      const { revision } = await s.engine.write({ writes, deletes, onMissing: "ignore" });
      // The write purged what had expired by now.
      for (const [index, until] of present) if (until <= s.clock.now) present.delete(index);
      revisions.push(revision);
      s.clock.now += step.advanceMs;
      await current(s);
      const older = revisions[step.older % revisions.length]!;
      for (const [revision, now] of [
        [revisions[revisions.length - 1]!, s.clock.now],
        [older, s.clock.now],
        [revisions[revisions.length - 1]!, s.clock.now + step.laterNow],
      ] as const) {
        const checks = world.questions.map((q) => resolved(q, revision, now));
        const before = s.evaluator.calls;
        const got = await s.layer.resolveMany(checks);
        const expected = await s.oracle.resolveMany(checks);
        const view = (o: BatchOutcome) =>
          o instanceof Error ? `error:${(o as { code?: string }).code}` : o.allowed;
        for (let i = 0; i < checks.length; i++) {
          const q = world.questions[i]!;
          expect(
            view(got[i]!),
            `${world.name}: ${q.object}#${q.relation}@${q.subjectTenant}/${q.user} in ${q.tenant} at ${revision}`,
          ).toBe(view(expected[i]!));
        }
        const evaluated = s.evaluator.calls - before;
        totals.denied += checks.length - evaluated;
        totals.passed += evaluated;
        if (revision !== revisions[revisions.length - 1]) totals.olderDenied += checks.length - evaluated;
      }
    }
  } finally {
    await s.close();
  }
}

describe("CrossTenantResolver: equals the reference under random write sequences", () => {
  for (const world of [openfgaWorld, chainWorld, nexusWorld]) {
    it(`${world.name} (fast-check)`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 6 }), (steps) =>
          runWorld(world, steps),
        ),
        { numRuns: 20 },
      );
      // The layer really answered: denials at the current and at older revisions.
      expect(totals.denied).toBeGreaterThan(0);
      expect(totals.olderDenied).toBeGreaterThan(0);
      expect(totals.passed).toBeGreaterThan(0);
    });
  }
});

/** The model with every relation shareable, so any tuple may be a cross-tenant grant. */
function allShareable(model: GeneratedModel): Program {
  const program = model.program;
  return {
    ...program,
    types: new Map(
      [...program.types].map(([name, type]) => [
        name,
        {
          ...type,
          relations: new Map([...type.relations].map(([r, def]) => [r, { ...def, shareable: true }])),
        },
      ]),
    ),
  };
}

describe("CrossTenantResolver: random models", () => {
  it("equals the reference with any relation shared across tenants (fast-check)", async () => {
    let denied = 0;
    await fc.assert(
      fc.asyncProperty(
        modelArb({ exclusion: true, conditions: true }),
        fc.array(fc.tuple(fc.nat(10_000), fc.nat(8)), { minLength: 4, maxLength: 30 }),
        fc.array(fc.nat(10_000), { maxLength: 6 }),
        async (generated, picks, removals) => {
          const program = allShareable(generated);
          if (generated.slots.length === 0) return;
          const s = await setup({ model: program });
          try {
            // Tenants A and B hold tuples; subjects from A, B or C.
            const pairs = [
              ["A", "A"],
              ["A", "B"],
              ["A", "C"],
              ["B", "B"],
              ["B", "A"],
              ["B", "C"],
            ] as const;
            const chosen = new Map<string, TupleKey>();
            for (const [slot, pair] of picks) {
              const [tenant, subjectTenant] = pairs[pair % pairs.length]!;
              const key = { ...generated.slots[slot % generated.slots.length]!, tenant, subjectTenant };
              chosen.set(`${tenant}/${subjectTenant}/${key.object}#${key.relation}@${key.user}`, key);
            }
            const written = [...chosen.values()];
            const { revision: r1 } = await s.engine.write({ writes: written });
            const deletes = [...new Set(removals.map((i) => written[i % written.length]!))];
            const r2 = deletes.length > 0 ? (await s.engine.write({ deletes })).revision : r1;
            await current(s);
            const subjects = [...USERS.slice(0, 2), "user:*"];
            for (const type of generated.types) subjects.push(`${type}:a#r1`);
            const questions: Question[] = [];
            for (const tenant of ["A", "B"]) {
              for (const subjectTenant of ["A", "B", "C"]) {
                for (const type of generated.types) {
                  for (const relation of program.types.get(type)!.relations.keys()) {
                    for (const user of subjects) {
                      if (
                        user.endsWith("#r1") &&
                        !program.types.get(user.slice(0, user.indexOf(":")))?.relations.has("r1")
                      ) {
                        continue;
                      }
                      questions.push({ tenant, subjectTenant, user, relation, object: `${type}:a` });
                    }
                  }
                }
              }
            }
            for (const revision of [r1, r2]) {
              const checks = questions.map((q) => resolved(q, revision, s.clock.now));
              const before = s.evaluator.calls;
              const got = await s.layer.resolveMany(checks);
              const expected = await s.oracle.resolveMany(checks);
              denied += checks.length - (s.evaluator.calls - before);
              const view = (o: BatchOutcome) =>
                o instanceof Error ? `error:${(o as { code?: string }).code}` : o.allowed;
              got.forEach((o, i) => {
                const q = questions[i]!;
                expect(
                  view(o),
                  `${q.object}#${q.relation}@${q.subjectTenant}/${q.user} in ${q.tenant} at ${revision}`,
                ).toBe(view(expected[i]!));
              });
            }
          } finally {
            await s.close();
          }
        },
      ),
      { numRuns: 60 },
    );
    expect(denied).toBeGreaterThan(0);
  });
});
