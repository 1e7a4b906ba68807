/**
 * The Bloom negative layer's synchronous path (resolveNow / resolveManyNow): a denial returned as it is, anything
 * else the inner layer's answer as the inner layer gave it, and the same guards as the promise path (revisions
 * mid-delivery or past the feed, rebuilds, tenants, wildcards, conditions, contextual tuples). The layer is driven
 * by hand (a manual change source) where the timing matters, and through an engine with the layer on (it is off
 * by default over the WASM evaluator: `cache: { bloom: true }` opts in) and a CheckChain with its result cache
 * where the whole chain asks it.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { ChangeListener, ChangeSource, Unsubscribe } from "../../src/changes/feed.js";
import { influenceOf } from "../../src/changes/influence.js";
import { createEngine } from "../../src/engine/engine.js";
import { BloomNegativeResolver } from "../../src/pipeline/bloom-negative.js";
import { CheckChain } from "../../src/pipeline/chain.js";
import type {
  BatchOutcome,
  CheckResolver,
  LayerStats,
  Resolution,
  ResolvedCheck,
} from "../../src/pipeline/types.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import type { Revision, TupleStore } from "../../src/tuples/types.js";
import { ready } from "../../src/wasm/loader.js";

const model = `model
  schema 1.1
type user
type group
  relations
    define member: [user]
type folder
  relations
    define viewer: [user, group#member]
type doc
  relations
    define parent: [folder]
    define editor: [user]
    define viewer: [user, user:*, group#member] or editor or viewer from parent
    define gated: [user with small]
condition small(x: int) {
  x < 5
}
`;

/** Answers every question at once with its own resolution object (so a test can tell it was passed on as is). */
class SyncInner implements CheckResolver {
  readonly layer = "evaluator";
  readonly asked: ResolvedCheck[] = [];
  readonly batches: (readonly ResolvedCheck[])[] = [];
  constructor(readonly mode: "sync" | "promise" | "none" = "sync") {
    if (mode === "none") {
      // A layer written against the promise contract only.
      (this as { resolveNow?: unknown }).resolveNow = undefined;
      (this as { resolveManyNow?: unknown }).resolveManyNow = undefined;
    }
  }
  answer(check: ResolvedCheck): Resolution {
    return { allowed: true, revision: check.revision, validUntil: 7 };
  }
  /** What resolveNow last returned. */
  last: Resolution | Promise<Resolution> | undefined;
  resolveNow(check: ResolvedCheck): Resolution | Promise<Resolution> {
    this.asked.push(check);
    const r = this.answer(check);
    this.last = this.mode === "promise" ? Promise.resolve(r) : r;
    return this.last;
  }
  resolveManyNow(checks: readonly ResolvedCheck[]): BatchOutcome[] | Promise<BatchOutcome[]> {
    this.batches.push(checks);
    const r = checks.map((c) => this.answer(c));
    return this.mode === "promise" ? Promise.resolve(r) : r;
  }
  async resolve(check: ResolvedCheck): Promise<Resolution> {
    this.asked.push(check);
    return this.answer(check);
  }
  async resolveMany(checks: readonly ResolvedCheck[]): Promise<BatchOutcome[]> {
    this.batches.push(checks);
    return checks.map((c) => this.answer(c));
  }
  stats(): LayerStats[] {
    return [];
  }
  async close(): Promise<void> {}
}

/** A change source the test delivers by hand (nothing to replay: the store starts empty). */
class ManualSource implements ChangeSource {
  watermark: Revision = 0;
  running = true;
  listener: ChangeListener | undefined;
  subscribe(listener: ChangeListener): Unsubscribe {
    this.listener = listener;
    return Object.assign(
      () => {
        this.listener = undefined;
      },
      { replayed: async () => {} },
    );
  }
  async caughtUp(): Promise<void> {}
}

type Key = { user: string; relation: string; object: string; tenant?: string; subjectTenant?: string };

function question(revision: Revision, q: Key, contextual = false): ResolvedCheck {
  const tenant = q.tenant ?? "default";
  const [type, rest] = q.user.split(":") as [string, string];
  const [id, relation] = rest.split("#") as [string, string | undefined];
  return {
    tenant,
    subjectTenant: q.subjectTenant ?? tenant,
    object: q.object,
    objectType: q.object.split(":")[0]!,
    relation: q.relation,
    subject:
      relation !== undefined
        ? { kind: "userset", type, id, relation }
        : id === "*"
          ? { kind: "wildcard", type }
          : { kind: "object", type, id },
    user: q.user,
    revision,
    now: 0,
    context: undefined,
    contextualTuples: contextual ? [{} as never] : [],
  };
}

async function layerOver(inner: CheckResolver, store: TupleStore, initialCapacity = 65_536) {
  const engine = await createEngine({ model });
  const source = new ManualSource();
  const layer = await BloomNegativeResolver.open(
    inner,
    { store, influence: influenceOf(engine.program), source },
    { initialCapacity },
  );
  await engine.close();
  /** Writes to the store and returns its changes (delivered by the test, whole or in parts). */
  const write = async (writes: Key[], deletes: Key[] = []) => {
    const before = await store.currentRevision();
    const { revision } = await store.write({
      writes: writes.map((w) => norm(w)),
      deletes: deletes.map((d) => norm(d)),
    });
    return { revision, changes: await store.changesAfter(before, 1_000_000) };
  };
  return { layer, source, write };
}

function norm(k: Key) {
  return {
    tenant: k.tenant ?? "default",
    subjectTenant: k.subjectTenant ?? k.tenant ?? "default",
    object: k.object,
    objectType: k.object.split(":")[0]!,
    relation: k.relation,
    user: k.user,
    subject: question(0, k).subject,
  } as never;
}

const denied = (r: unknown) =>
  !(r instanceof Promise) && (r as Resolution).allowed === false && (r as Resolution).validUntil === Infinity;

describe("BloomNegativeResolver, synchronous path", () => {
  beforeAll(async () => {
    await ready();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("returns a denial itself, and the inner layer's answer as the inner layer gave it", async () => {
    for (const mode of ["sync", "promise", "none"] as const) {
      const inner = new SyncInner(mode);
      const store = new MemoryTupleStore();
      const { layer, source, write } = await layerOver(inner, store);
      const { revision, changes } = await write([{ user: "user:anne", relation: "viewer", object: "doc:1" }]);
      source.listener!.onChanges(changes, revision);
      const present = question(revision, { user: "user:anne", relation: "viewer", object: "doc:1" });
      const noObject = question(revision, { user: "user:anne", relation: "viewer", object: "doc:9" });
      const noSubject = question(revision, { user: "user:zed", relation: "viewer", object: "doc:1" });
      expect(denied(layer.resolveNow(noObject)), mode).toBe(true);
      expect(denied(layer.resolveNow(noSubject)), mode).toBe(true);
      const passed = layer.resolveNow(present);
      if (mode !== "none") expect(passed).toBe(inner.last); // the same object, or the same promise
      expect(passed instanceof Promise, mode).toBe(mode !== "sync");
      expect((await passed).allowed).toBe(true);
      // The batch: denials in place, the rest from one inner batch of what passed.
      const batch = layer.resolveManyNow([noObject, present, noSubject]);
      expect(batch instanceof Promise, mode).toBe(mode !== "sync");
      const outcomes = (await batch) as Resolution[];
      expect(outcomes.map((o) => o.allowed)).toEqual([false, true, false]);
      expect(inner.batches.at(-1)).toEqual([present]);
      // Every question denied: the outcomes themselves, the inner layer not asked.
      const batches = inner.batches.length;
      const all = layer.resolveManyNow([noObject, noSubject]);
      expect(Array.isArray(all) && all.every(denied)).toBe(true);
      expect(inner.batches.length).toBe(batches);
      // Nothing denied: the batch goes on as it came.
      const same = [present, present];
      await layer.resolveManyNow(same);
      expect(inner.batches.at(-1)).toBe(same);
      // The promise forms agree.
      expect((await layer.resolve(noObject)).allowed).toBe(false);
      expect((await layer.resolveMany([noObject, present])).map((o) => (o as Resolution).allowed)).toEqual([
        false,
        true,
      ]);
      await layer.close();
    }
  });

  it("denies in a batch exactly what it denies question by question (subject keys looked up together)", async () => {
    const inner = new SyncInner();
    const store = new MemoryTupleStore();
    const { layer, source, write } = await layerOver(inner, store);
    const { revision, changes } = await write([
      { user: "user:anne", relation: "viewer", object: "doc:1" },
      { user: "user:bob", relation: "viewer", object: "doc:2" },
      { user: "group:eng#member", relation: "viewer", object: "doc:3" },
      { user: "user:carl", relation: "member", object: "group:eng" },
      { user: "user:dave", relation: "viewer", object: "folder:f", tenant: "t2" },
      { user: "user:*", relation: "viewer", object: "doc:4", tenant: "t2" },
    ]);
    source.listener!.onChanges(changes, revision);
    const users = [
      "user:anne",
      "user:bob",
      "user:zed",
      "user:carl",
      "user:*",
      "group:eng#member",
      "user:dave",
    ];
    const objects = ["doc:1", "doc:2", "doc:3", "doc:4", "doc:9", "folder:f", "group:eng"];
    const keys: Key[] = [];
    for (const tenant of ["default", "t2"]) {
      for (const user of users) {
        // Runs of one subject, and the same subject again after another.
        for (const object of objects) keys.push({ user, relation: "viewer", object, tenant });
        keys.push({ user: "user:zed", relation: "viewer", object: "doc:1", tenant });
        keys.push({ user, relation: "gated", object: "doc:1", tenant });
      }
    }
    const questions = keys.map((k) => question(revision, k));
    const single = questions.map((q) => denied(layer.resolveNow(q)));
    const batch = (layer.resolveManyNow(questions) as Resolution[]).map(denied);
    expect(batch).toEqual(single);
    // Both rules denied somewhere, and something passed.
    expect(single.filter(Boolean).length).toBeGreaterThan(10);
    expect(single.filter((d) => !d).length).toBeGreaterThan(10);
    expect(
      denied(layer.resolveNow(question(revision, { user: "user:zed", relation: "viewer", object: "doc:1" }))),
    ).toBe(true);
    await layer.close();
  });

  it("passes on, never denies, a revision delivered only in part or not yet delivered", async () => {
    const inner = new SyncInner();
    const store = new MemoryTupleStore();
    const { layer, source, write } = await layerOver(inner, store);
    const first = await write([{ user: "user:anne", relation: "viewer", object: "doc:1" }]);
    source.listener!.onChanges(first.changes, first.revision);
    const docs = Array.from({ length: 40 }, (_, i) => ({
      user: `user:u${i}`,
      relation: "viewer",
      object: `doc:n${i}`,
    }));
    const big = await write(docs);
    // The first half of the revision, its watermark the revision before (as the feed hands a large page).
    source.listener!.onChanges(big.changes.slice(0, 20), first.revision);
    const late = docs.map((d) => question(big.revision, d));
    for (const q of late) expect(denied(layer.resolveNow(q)), q.object).toBe(false);
    expect((layer.resolveManyNow(late) as Resolution[]).every((o) => o.allowed)).toBe(true);
    // A revision past the watermark altogether.
    const ahead = question(big.revision + 5, { user: "user:x", relation: "viewer", object: "doc:none" });
    expect(denied(layer.resolveNow(ahead))).toBe(false);
    // The rest arrives: every tuple present, and absent objects denied again at that revision.
    source.listener!.onChanges(big.changes.slice(20), big.revision);
    for (const q of late) expect(denied(layer.resolveNow(q))).toBe(false);
    expect(
      denied(
        layer.resolveNow(question(big.revision, { user: "user:u1", relation: "viewer", object: "doc:none" })),
      ),
    ).toBe(true);
    // Before the revision the layer answers from, and for contextual tuples: passed on.
    expect(denied(layer.resolveNow(question(big.revision, { ...docs[0]!, object: "doc:none" }, true)))).toBe(
      false,
    );
    await layer.close();
  });

  it("applies both rules only where they are exact: usersets, wildcards, conditions, tenants", async () => {
    const inner = new SyncInner();
    const store = new MemoryTupleStore();
    const { layer, source, write } = await layerOver(inner, store);
    const w = await write([
      { user: "user:*", relation: "viewer", object: "doc:open" },
      { user: "group:eng#member", relation: "viewer", object: "doc:team" },
      { user: "user:gina", relation: "gated", object: "doc:g" },
      { user: "user:amy", relation: "viewer", object: "doc:x", tenant: "acme", subjectTenant: "globex" },
      { user: "user:ünï", relation: "viewer", object: "doc:ç", tenant: "t\u00e9" },
      // In a tenant without a wildcard tuple (user:* keeps every user of "default" from the subject rule).
      { user: `user:${"l".repeat(80)}`, relation: "viewer", object: `doc:${"m".repeat(80)}`, tenant: "long" },
    ]);
    source.listener!.onChanges(w.changes, w.revision);
    const pass = (q: Key) =>
      expect(denied(layer.resolveNow(question(w.revision, q))), JSON.stringify(q)).toBe(false);
    const deny = (q: Key) =>
      expect(denied(layer.resolveNow(question(w.revision, q))), JSON.stringify(q)).toBe(true);
    pass({ user: "user:stranger", relation: "viewer", object: "doc:open" }); // wildcard
    pass({ user: "user:*", relation: "viewer", object: "doc:open" });
    pass({ user: "doc:zz#editor", relation: "viewer", object: "doc:zz" }); // a userset of the object itself
    pass({ user: "group:eng#member", relation: "viewer", object: "doc:team" });
    deny({ user: "group:eng#member", relation: "viewer", object: "doc:none" }); // object rule for usersets
    pass({ user: "user:nobody", relation: "gated", object: "doc:g" }); // a condition may be evaluated
    deny({ user: "user:nobody", relation: "gated", object: "doc:none" }); // the object rule still holds
    pass({ user: "user:amy", relation: "viewer", object: "doc:x", tenant: "acme", subjectTenant: "globex" });
    deny({ user: "user:amy", relation: "viewer", object: "doc:x", tenant: "acme" }); // acme's amy: no tuple
    deny({ user: "user:amy", relation: "viewer", object: "doc:x", tenant: "globex" }); // no doc:x in globex
    pass({ user: "user:ünï", relation: "viewer", object: "doc:ç", tenant: "t\u00e9" });
    pass({
      user: `user:${"l".repeat(80)}`,
      relation: "viewer",
      object: `doc:${"m".repeat(80)}`,
      tenant: "long",
    });
    deny({
      user: `user:${"l".repeat(79)}`,
      relation: "viewer",
      object: `doc:${"m".repeat(80)}`,
      tenant: "long",
    });
    deny({
      user: "user:nobody",
      relation: "viewer",
      object: "doc:x",
      tenant: "acme",
      subjectTenant: "globex",
    });
    await layer.close();
  });

  it("never denies a written tuple while a rebuild runs, is swapped in, and after", async () => {
    const inner = new SyncInner();
    const store = new MemoryTupleStore();
    const { layer, source, write } = await layerOver(inner, store, 64);
    // More than one rebuild slice (8,192 tuples), so the rebuild returns to the event loop in the middle.
    const first = Array.from({ length: 10_000 }, (_, i) => ({
      user: `user:a${i}`,
      relation: "viewer",
      object: `doc:a${i}`,
    }));
    const w1 = await write(first);
    source.listener!.onChanges(w1.changes, w1.revision); // outgrown: a rebuild starts
    const later: Key[] = [];
    let revision = w1.revision;
    const stats = () => layer.stats()[0]!.extra!;
    for (let round = 0; round < 200 && Number(stats().rebuilds) < 2; round++) {
      const next = Array.from({ length: 50 }, (_, i) => ({
        user: `user:b${round}_${i}`,
        relation: "viewer",
        object: `doc:b${round}_${i}`,
      }));
      const w = await write(next);
      source.listener!.onChanges(w.changes, w.revision);
      revision = w.revision;
      later.push(...next);
      for (const k of [...first.filter((_, i) => i % 97 === round % 97), ...next]) {
        expect(denied(layer.resolveNow(question(revision, k))), `${k.object} in round ${round}`).toBe(false);
      }
      const batch = layer.resolveManyNow(next.map((k) => question(revision, k))) as Resolution[];
      expect(batch.every((o) => o.allowed)).toBe(true);
      await new Promise((r) => setImmediate(r));
    }
    expect(Number(stats().rebuilds)).toBeGreaterThanOrEqual(1);
    for (const k of [...first, ...later]) expect(denied(layer.resolveNow(question(revision, k)))).toBe(false);
    expect(
      denied(layer.resolveNow(question(revision, { user: "user:a1", relation: "viewer", object: "doc:zz" }))),
    ).toBe(true);
    await layer.close();
  });
});

describe("the synchronous path through the whole chain", () => {
  beforeAll(async () => {
    await ready();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("an engine with the Bloom layer on answers as one without layers, asking the layer without promises", async () => {
    const now = vi.spyOn(BloomNegativeResolver.prototype, "resolveNow");
    const many = vi.spyOn(BloomNegativeResolver.prototype, "resolveManyNow");
    const promised = vi.spyOn(BloomNegativeResolver.prototype, "resolve");
    await using fast = await createEngine({ model, cache: { bloom: true } });
    await using plain = await createEngine({ model, cache: false });
    const writes = [
      { user: "user:anne", relation: "member", object: "group:eng" },
      { user: "group:eng#member", relation: "viewer", object: "folder:f" },
      { user: "folder:f", relation: "parent", object: "doc:1" },
      { user: "user:bob", relation: "editor", object: "doc:2" },
      { user: "user:*", relation: "viewer", object: "doc:3" },
      { user: "user:gina", relation: "gated", object: "doc:4", condition: { name: "small" } },
    ];
    const tokens = [(await fast.write({ writes })).token, (await plain.write({ writes })).token];
    const users = [
      "user:anne",
      "user:bob",
      "user:gina",
      "user:nobody",
      "group:eng#member",
      "doc:9#editor",
      "user:*",
    ];
    const objects = ["doc:1", "doc:2", "doc:3", "doc:4", "doc:9", "folder:f"];
    const requests = users.flatMap((user) =>
      objects.flatMap((object) =>
        (object.startsWith("doc") ? ["viewer", "editor", "gated"] : ["viewer"]).map((relation) => ({
          user,
          relation,
          object,
        })),
      ),
    );
    const answer = async (
      engine: typeof fast,
      token: string,
      r: (typeof requests)[number],
      context?: Record<string, unknown>,
    ) =>
      engine
        .check({ ...r, consistency: { atLeastAsFresh: token }, ...(context ? { context } : {}) })
        .catch((e: { code?: string }) => e.code ?? String(e));
    // The batch first (the single checks below would leave its answers in the result cache).
    const bulk = (engine: typeof fast, token: string) =>
      engine.checkBulk(
        requests
          .filter((r) => r.relation !== "gated")
          .map((r) => ({ ...r, consistency: { atLeastAsFresh: token } })),
      );
    expect(await bulk(fast, tokens[0]!)).toEqual(await bulk(plain, tokens[1]!));
    for (const r of requests) {
      for (const context of [undefined, { x: 1 }, { x: 9 }]) {
        expect(await answer(fast, tokens[0]!, r, context), JSON.stringify([r, context])).toBe(
          await answer(plain, tokens[1]!, r, context),
        );
      }
    }
    // Contextual tuples: never denied by the layer.
    const contextual = {
      user: "user:zed",
      relation: "viewer",
      object: "doc:77",
      contextualTuples: [{ user: "user:zed", relation: "viewer", object: "doc:77" }],
    };
    expect(await fast.check(contextual)).toBe(true);
    expect(now).toHaveBeenCalled();
    expect(many).toHaveBeenCalled();
    expect(promised).not.toHaveBeenCalled();
    const bloom = fast.stats().chain?.layers.find((l: LayerStats) => l.layer === "bloom-negative");
    expect(bloom?.hits ?? 0).toBeGreaterThan(0);
  });

  it("a grant written in a large write is never denied while the feed delivers it (engine and chain)", async () => {
    const promised = vi.spyOn(BloomNegativeResolver.prototype, "resolve");
    await using engine = await createEngine({ model, cache: { bloom: true } });
    await using chain = await CheckChain.open({ program: engine.program, store: engine.store });
    await engine.write({ writes: [{ user: "user:anne", relation: "viewer", object: "doc:0" }] });
    await chain.caughtUp();
    // Many feed pages in one revision: the layer takes it in parts, turning the event loop between them.
    const docs = Array.from({ length: 30_000 }, (_, i) => ({
      user: `user:w${i % 500}`,
      relation: "viewer",
      object: `doc:w${i}`,
    }));
    const { token } = await engine.write({ writes: docs });
    const consistency = { atLeastAsFresh: token };
    let rounds = 0;
    for (let i = docs.length - 1; i >= 0; i -= 997) {
      const d = docs[i]!;
      expect(await engine.check({ ...d, consistency }), d.object).toBe(true);
      expect(await chain.check({ ...d, consistency }), d.object).toBe(true);
      expect(await engine.check({ ...d, object: "doc:none", consistency })).toBe(false);
      rounds++;
      await new Promise((r) => setImmediate(r));
    }
    const sample = docs.filter((_, i) => i % 113 === 0).map((d) => ({ ...d, consistency }));
    expect((await engine.checkBulk(sample)).every(Boolean)).toBe(true);
    expect((await chain.checkMany(sample)).every(Boolean)).toBe(true);
    expect(rounds).toBeGreaterThan(20);
    expect(promised).not.toHaveBeenCalled();
  });
});
