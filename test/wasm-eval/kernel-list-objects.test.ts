/**
 * List objects by reverse expansion in the WASM kernel (src/wasm-eval/list-objects.ts) against the reference: on
 * random union-only models (the generators' intersections and exclusions turned into unions), random tuples
 * (users, wildcards, usersets, nested groups, tuple-to-usersets) and write/delete steps applied to a graph built
 * before them, every type, relation and plain subject is listed at every revision and must equal both the
 * snapshot's exact reverse expansion (exactListObjects) and the reference listObjects (candidates, each checked),
 * wherever the reference does not fail on the depth limit. Then the cases where it must step aside: a graph past
 * the revision, a flagged (expiring or cross-tenant) tuple, a model that is not union-only.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { loadConditions } from "../../src/conditions/cel-js.js";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import type { Program, Rewrite } from "../../src/model/program.js";
import { listObjectsThrough } from "../../src/pipeline/listing.js";
import { ReferenceResolver } from "../../src/pipeline/reference.js";
import type { ResolvedCheck } from "../../src/pipeline/types.js";
import { WasmResolver } from "../../src/pipeline/wasm.js";
import { Evaluation } from "../../src/reference/evaluation.js";
import { exactListObjects } from "../../src/reference/exact-list-objects.js";
import { candidateObjects, listObjects } from "../../src/reference/list-objects.js";
import { TupleReader } from "../../src/reference/reader.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import { DEFAULT_TENANT, parseSubject, type RelationTuple, type TupleKey } from "../../src/tuples/tuple.js";
import type { TupleStore } from "../../src/tuples/types.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { candidateObjectsInKernel, listObjectsInKernel } from "../../src/wasm-eval/list-objects.js";
import { type GeneratedModel, IDS, scenarioArb, USERS } from "../reference/random-models.js";

// This file compiles models with conditions or caveats synchronously: the CEL runtime first.
await loadConditions();

const unionOf = (rw: Rewrite): Rewrite => {
  switch (rw.kind) {
    case "union":
    case "intersection":
      return { kind: "union", children: rw.children.map(unionOf) };
    case "exclusion":
      return { kind: "union", children: [unionOf(rw.base), unionOf(rw.subtract)] };
    default:
      return rw;
  }
};

function unionOnly(program: Program): Program {
  const types = new Map(
    [...program.types].map(([name, type]) => [
      name,
      {
        ...type,
        relations: new Map(
          [...type.relations].map(([r, def]) => [r, { ...def, rewrite: unionOf(def.rewrite) }]),
        ),
      },
    ]),
  );
  return { ...program, types };
}

function normalized(key: TupleKey): RelationTuple {
  const r = normalizeTuple(key, DEFAULT_TENANT);
  if (!r.ok) throw new Error(r.problem);
  return r.value;
}

let compared = 0;
let nonEmpty = 0;
afterAll(() => {
  console.log(`kernel list objects: ${compared} listings compared (${nonEmpty} not empty)`);
});

/** The reference's listing (or the error code it fails with) and the snapshot's exact expansion. */
async function referenceListings(
  store: TupleStore,
  program: Program,
  revision: number,
  query: { type: string; relation: string; user: string },
  maxDepth: number,
): Promise<{ checked: string[] | string; exact: string[] | undefined }> {
  const snapshot = await store.snapshot(revision);
  try {
    const now = Date.now();
    const ev = new Evaluation(new TupleReader(snapshot, program, [], now), { maxDepth });
    let checked: string[] | string;
    try {
      checked = await listObjects(ev, {
        tenant: DEFAULT_TENANT,
        subjectTenant: DEFAULT_TENANT,
        type: query.type,
        relation: query.relation,
        user: query.user,
        subject: parseSubject(query.user)!,
      });
    } catch (error) {
      checked = (error as { code?: string }).code ?? String(error);
    }
    const exact = await exactListObjects(program, snapshot, { tenant: DEFAULT_TENANT, ...query }, now);
    return { checked, exact };
  } finally {
    snapshot.release();
  }
}

async function compareAll(
  model: GeneratedModel,
  program: Program,
  wasm: WasmEvaluator,
  store: TupleStore,
  maxDepth: number,
): Promise<void> {
  const revision = await store.currentRevision();
  const subjects = [...USERS, "user:never"];
  for (const type of model.types) for (const id of [...IDS, "zz"]) subjects.push(`${type}:${id}`);
  for (const type of model.types) {
    for (const relation of program.types.get(type)!.relations.keys()) {
      for (const user of subjects) {
        const query = { type, relation, user };
        const got = await listObjectsInKernel(wasm, { tenant: DEFAULT_TENANT, ...query }, revision);
        const { checked, exact } = await referenceListings(store, program, revision, query, maxDepth);
        const where = `${type}#${relation}@${user} at ${revision}`;
        expect(got, where).toBeDefined();
        expect(got, where).toEqual(exact);
        if (Array.isArray(checked)) expect(got, where).toEqual(checked);
        compared++;
        if (got!.length > 0) nonEmpty++;
      }
    }
  }
}

const stepArb = fc.record({
  write: fc.boolean(),
  picks: fc.uniqueArray(fc.nat(40), { minLength: 1, maxLength: 4 }),
});

describe("list objects in the kernel = reference (random union-only models)", () => {
  it("every listing equal, at every revision of writes and deletes after the graph was built", async () => {
    await ready();
    await fc.assert(
      fc.asyncProperty(
        scenarioArb({ conditions: false }),
        fc.array(stepArb, { minLength: 1, maxLength: 4 }),
        fc.constantFrom(25, 4),
        async ({ model, tuples, extra }, steps, maxDepth) => {
          const program = unionOnly(model.program);
          const store = new MemoryTupleStore();
          const wasm = new WasmEvaluator({ program, store, maxDepth });
          try {
            const live = new Map<string, TupleKey>();
            const keyOf = (t: TupleKey) => `${t.object}#${t.relation}@${t.user}`;
            if (tuples.length > 0) await store.write({ writes: tuples.map(normalized), deletes: [] });
            for (const t of tuples) live.set(keyOf(t), t);
            await compareAll(model, program, wasm, store, maxDepth);
            const pool = [...tuples, ...extra];
            for (const step of steps) {
              if (step.write) {
                const writes = step.picks
                  .map((p) => pool[p % pool.length]!)
                  .filter((t) => !live.has(keyOf(t)));
                const unique = [...new Map(writes.map((t) => [keyOf(t), t])).values()];
                if (unique.length === 0) continue;
                await store.write({ writes: unique.map(normalized), deletes: [] });
                for (const t of unique) live.set(keyOf(t), t);
              } else {
                const present = [...live.values()];
                if (present.length === 0) continue;
                const deletes = [...new Set(step.picks.map((p) => present[p % present.length]!))];
                await store.write({ writes: [], deletes: deletes.map(normalized) });
                for (const t of deletes) live.delete(keyOf(t));
              }
              await compareAll(model, program, wasm, store, maxDepth);
            }
          } finally {
            await wasm.close();
            await store.close();
          }
        },
      ),
      { numRuns: Number(process.env.KERNEL_LIST_RUNS ?? 150) },
    );
    expect(compared).toBeGreaterThan(5000);
    expect(nonEmpty).toBeGreaterThan(500);
  }, 300_000);
});

await loadOpenFgaDsl();
/** Every plain subject the listings ask about: users, one never written, and objects of each type. */
function plainSubjects(model: GeneratedModel): string[] {
  const subjects = [...USERS, "user:never"];
  for (const type of model.types) for (const id of [...IDS, "zz"]) subjects.push(`${type}:${id}`);
  return subjects;
}

/**
 * Lists through the pipeline's listing (src/pipeline/listing.ts) with the evaluator in its context, the WASM
 * evaluator over the reference as its layers: the kernel's exact listing in union-only programs, the kernel's
 * candidates checked by the layers in the others.
 */
async function listThrough(
  program: Program,
  store: TupleStore,
  wasm: WasmEvaluator,
  maxDepth: number,
  revision: number,
  query: { type: string; relation: string; user: string },
): Promise<string[] | string> {
  const outer = new WasmResolver(
    wasm,
    new ReferenceResolver({ program, store, maxResolutionDepth: maxDepth }),
  );
  const now = Date.now();
  const subject = parseSubject(query.user)!;
  const base = { tenant: DEFAULT_TENANT, subjectTenant: DEFAULT_TENANT, subject, user: query.user };
  try {
    return await listObjectsThrough(
      { program, store, maxDepth, depthGuard: () => maxDepth >= 25, wasm },
      { ...base, type: query.type, relation: query.relation, context: undefined, contextualTuples: [] },
      { revision, now, exact: false },
      outer,
      (object) =>
        ({
          ...base,
          object,
          objectType: query.type,
          relation: query.relation,
          revision,
          now,
          context: undefined,
          contextualTuples: [],
        }) as ResolvedCheck,
      undefined,
    );
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe("candidates in the kernel, and the listing with the evaluator (random models, every operator)", () => {
  it("candidates = the reference's candidates; listings = the reference's listings (conditions too)", async () => {
    await ready();
    let candidatesCompared = 0;
    let listingsCompared = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(scenarioArb({ conditions: false }), scenarioArb()),
        fc.array(stepArb, { minLength: 1, maxLength: 3 }),
        fc.constantFrom(25, 3),
        fc.boolean(),
        async ({ model, tuples, extra }, steps, maxDepth, unions) => {
          // Union-only half the time, so the exact listing (conditions declared or not) is taken too.
          const program = unions ? unionOnly(model.program) : model.program;
          const store = new MemoryTupleStore();
          const wasm = new WasmEvaluator({ program, store, maxDepth });
          const compare = async () => {
            const revision = await store.currentRevision();
            for (const type of model.types) {
              for (const relation of program.types.get(type)!.relations.keys()) {
                for (const user of plainSubjects(model)) {
                  const query = { type, relation, user };
                  const where = `${type}#${relation}@${user} at ${revision}`;
                  const snapshot = await store.snapshot(revision);
                  let expected: Set<string> | string;
                  let listed: string[] | string;
                  try {
                    const ev = () =>
                      new Evaluation(new TupleReader(snapshot, program, [], Date.now()), { maxDepth });
                    const q = {
                      tenant: DEFAULT_TENANT,
                      subjectTenant: DEFAULT_TENANT,
                      ...query,
                      subject: parseSubject(user)!,
                    };
                    try {
                      expected = await candidateObjects(ev(), q);
                    } catch (error) {
                      expected = (error as { code?: string }).code ?? String(error);
                    }
                    try {
                      listed = await listObjects(ev(), q);
                    } catch (error) {
                      listed = (error as { code?: string }).code ?? String(error);
                    }
                  } finally {
                    snapshot.release();
                  }
                  const got = await candidateObjectsInKernel(
                    wasm,
                    { tenant: DEFAULT_TENANT, ...query },
                    revision,
                  );
                  if (got === undefined) {
                    // Only a graph holding a flagged (here: conditional) tuple makes the kernel decline.
                    expect(wasm.graphIfCurrent(DEFAULT_TENANT, revision)!.flagged, where).toBeGreaterThan(0);
                  } else {
                    expect(got, where).toEqual(
                      typeof expected === "string" ? expected : [...expected].sort(),
                    );
                    candidatesCompared++;
                  }
                  const through = await listThrough(program, store, wasm, maxDepth, revision, query);
                  // At a small depth limit the order of checks decides which error the reference meets first.
                  if (typeof listed === "string" && typeof through === "string") continue;
                  expect(through, where).toEqual(listed);
                  listingsCompared++;
                }
              }
            }
          };
          try {
            const live = new Map<string, TupleKey>();
            const keyOf = (t: TupleKey) => `${t.object}#${t.relation}@${t.user}`;
            if (tuples.length > 0) await store.write({ writes: tuples.map(normalized), deletes: [] });
            for (const t of tuples) live.set(keyOf(t), t);
            await compare();
            const pool = [...tuples, ...extra];
            for (const step of steps) {
              const present = [...live.values()];
              const picked = step.picks.map((p) =>
                step.write ? pool[p % pool.length]! : present[p % present.length]!,
              );
              const unique = [
                ...new Map(picked.filter((t) => t !== undefined).map((t) => [keyOf(t), t])).values(),
              ];
              const changes = step.write ? unique.filter((t) => !live.has(keyOf(t))) : unique;
              if (changes.length === 0) continue;
              await store.write({
                writes: step.write ? changes.map(normalized) : [],
                deletes: step.write ? [] : changes.map(normalized),
              });
              for (const t of changes) step.write ? live.set(keyOf(t), t) : live.delete(keyOf(t));
              await compare();
            }
          } finally {
            await wasm.close();
            await store.close();
          }
        },
      ),
      { numRuns: Number(process.env.KERNEL_CANDIDATE_RUNS ?? 60) },
    );
    console.log(
      `kernel candidates: ${candidatesCompared} compared; listings through the pipeline: ${listingsCompared}`,
    );
    expect(listingsCompared).toBeGreaterThan(1000);
  }, 300_000);
});

const groups = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member]
    define view: viewer or view from parent
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, user:*, group#member]
    define view: viewer or owner or view from parent
`);

const key = (object: string, relation: string, user: string): TupleKey => ({ object, relation, user });

describe("list objects in the kernel: where it steps aside, and what it keeps", () => {
  it("answers nested groups, wildcards and folders; sorted as the reference; ranks stay exact as objects arrive", async () => {
    await ready();
    const store = new MemoryTupleStore();
    const wasm = new WasmEvaluator({ program: groups, store });
    try {
      const writes: TupleKey[] = [
        key("group:g2", "member", "user:anne"),
        key("group:g1", "member", "group:g2#member"),
        key("group:g2", "member", "group:g1#member"), // a cycle
        key("folder:root", "viewer", "group:g1#member"),
        key("folder:sub", "parent", "folder:root"),
        key("doc:z", "parent", "folder:sub"),
        key("doc:a", "parent", "folder:root"),
        key("doc:10", "parent", "folder:sub"),
        key("doc:9", "viewer", "user:*"),
        key("doc:b", "owner", "user:bob"),
      ];
      await store.write({ writes: writes.map(normalized), deletes: [] });
      const q = { tenant: DEFAULT_TENANT, type: "doc", relation: "view", user: "user:anne" };
      let revision = await store.currentRevision();
      expect(await listObjectsInKernel(wasm, q, revision)).toEqual(["doc:10", "doc:9", "doc:a", "doc:z"]);
      expect(await listObjectsInKernel(wasm, { ...q, user: "user:bob" }, revision)).toEqual([
        "doc:9",
        "doc:b",
      ]);
      expect(await listObjectsInKernel(wasm, { ...q, user: "user:nobody" }, revision)).toEqual(["doc:9"]);
      expect(await listObjectsInKernel(wasm, { ...q, type: "folder" }, revision)).toEqual([
        "folder:root",
        "folder:sub",
      ]);
      // New objects rank among the old ones; a deleted tuple leaves the listing at the next revision.
      await store.write({
        writes: [key("doc:0", "parent", "folder:sub"), key("doc:b2", "parent", "folder:root")].map(
          normalized,
        ),
        deletes: [normalized(key("doc:z", "parent", "folder:sub"))],
      });
      revision = await store.currentRevision();
      expect(await listObjectsInKernel(wasm, q, revision)).toEqual([
        "doc:0",
        "doc:10",
        "doc:9",
        "doc:a",
        "doc:b2",
      ]);
      expect(await listObjectsInKernel(wasm, { ...q, user: "user:bob" }, revision)).toEqual([
        "doc:9",
        "doc:b",
      ]);
      // The graph has moved past the old revision: no answer there (the caller lists another way).
      expect(await listObjectsInKernel(wasm, q, revision - 1)).toBeUndefined();
      // An expiring tuple is flagged (absent from the reverse adjacency): no answer while the graph holds one.
      await store.write({
        writes: [normalized({ ...key("doc:e", "viewer", "user:anne"), expiresAt: Date.now() + 3_600_000 })],
        deletes: [],
      });
      revision = await store.currentRevision();
      expect(await listObjectsInKernel(wasm, q, revision)).toBeUndefined();
    } finally {
      await wasm.close();
      await store.close();
    }
  });

  it("orders like Array.prototype.sort: many ids, shared prefixes, non-ASCII, listed in rounds", async () => {
    await ready();
    // Characters around the UTF-8/UTF-16 disagreement (U+E000-U+FFFF against astral ones) and other multi-byte
    // ones, prefixes of one another, and plain ASCII.
    const alphabet = ["a", "b", "z", "0", "9", "_", "-", "é", "ß", "中", "\uE000", "\uFFEE", "\uFB01", "~"];
    const idArb = (letters: readonly string[]) =>
      fc.array(fc.constantFrom(...letters), { minLength: 1, maxLength: 6 }).map((c) => c.join(""));
    const roundsArb = (letters: readonly string[]) =>
      fc.array(fc.uniqueArray(idArb(letters), { minLength: 1, maxLength: 300, size: "large" }), {
        minLength: 1,
        maxLength: 4,
      });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(roundsArb(alphabet), roundsArb([...alphabet, "\u{1F600}", "\u{10000}"])),
        async (rounds) => {
          const store = new MemoryTupleStore();
          const wasm = new WasmEvaluator({ program: groups, store });
          try {
            const q = { tenant: DEFAULT_TENANT, type: "doc", relation: "view", user: "user:anne" };
            const expected = new Set<string>();
            for (const [r, ids] of rounds.entries()) {
              // Each round adds docs under the user's folder, and one the user cannot see.
              const docs = ids.map((id) => `doc:${id}`).filter((d) => !expected.has(d));
              const writes = docs.map((d) => key(d, "parent", "folder:f"));
              if (r === 0) writes.push(key("folder:f", "viewer", "user:anne"));
              writes.push(key(`doc:hidden${r}`, "owner", "user:bob"));
              await store.write({ writes: writes.map(normalized), deletes: [] });
              for (const d of docs) expected.add(d);
              const revision = await store.currentRevision();
              expect(await listObjectsInKernel(wasm, q, revision)).toEqual([...expected].sort());
              // Another subject's listing in between ranks other symbols among the same ones.
              expect(await listObjectsInKernel(wasm, { ...q, user: "user:bob" }, revision)).toEqual(
                rounds
                  .slice(0, r + 1)
                  .map((_, k) => `doc:hidden${k}`)
                  .sort(),
              );
            }
          } finally {
            await wasm.close();
            await store.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("declines a model that is not union-only", async () => {
    await ready();
    const program = compileModel(`model
  schema 1.1
type user
type doc
  relations
    define blocked: [user]
    define viewer: [user]
    define view: viewer but not blocked
`);
    const store = new MemoryTupleStore();
    const wasm = new WasmEvaluator({ program, store });
    try {
      await store.write({ writes: [normalized(key("doc:a", "viewer", "user:anne"))], deletes: [] });
      const revision = await store.currentRevision();
      const q = { tenant: DEFAULT_TENANT, type: "doc", relation: "view", user: "user:anne" };
      expect(await listObjectsInKernel(wasm, q, revision)).toBeUndefined();
    } finally {
      await wasm.close();
      await store.close();
    }
  });
});
