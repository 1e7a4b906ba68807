/**
 * A batch looks every question's object and subject up in one kernel call (Symbols.lookupMany) before encoding:
 * its answers must be the single-check path's, question by question, for known and unknown objects and subjects,
 * runs of one subject, usersets (including one of the question's own, never-interned object), wildcards and non-ASCII ids, and a
 * string interned by a later write must be found by the next batch (no miss is remembered).
 */
import { describe, expect, it } from "vitest";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import type { CheckQuery } from "../../src/reference/check.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple, TupleKey } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { Symbols } from "../../src/wasm-eval/symbols.js";
import { query } from "./reference.js";

await loadOpenFgaDsl();

const program = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
`);

const normalized = (key: TupleKey): RelationTuple => {
  const r = normalizeTuple(key, "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};

describe("batch symbol lookup", () => {
  it("answers as the single-check path does, and finds strings a later write interned", async () => {
    await ready();
    const store = new MemoryTupleStore();
    await using fast = new WasmEvaluator({ program, store });
    await store.write({
      writes: [
        { user: "user:anne", relation: "member", object: "group:eng" },
        { user: "user:*", relation: "member", object: "group:all" },
        { user: "group:eng#member", relation: "viewer", object: "folder:a" },
        { user: "folder:a", relation: "parent", object: "folder:a1" },
        { user: "user:zoë", relation: "viewer", object: "folder:ü" },
      ].map(normalized),
      deletes: [],
    });
    const questions: CheckQuery[] = [
      query("folder:a1", "viewer", "user:anne"),
      query("folder:a1", "viewer", "user:bob"),
      query("folder:ü", "viewer", "user:zoë"),
      query("folder:ü", "viewer", "user:anne"),
      query("folder:new", "viewer", "user:anne"),
      query("group:eng", "member", "group:eng#member"),
      query("group:zz", "member", "group:zz#member"),
      query("group:all", "member", "user:carl"),
      query("group:all", "member", "user:*"),
      query("folder:a1", "viewer", "group:eng#member"),
      query("folder:a1", "viewer", "user:anne"),
      // A run of one subject (one lookup shared), then the object of the run before it.
      query("folder:a", "viewer", "user:anne"),
      query("folder:ü", "viewer", "user:anne"),
      query("folder:new", "viewer", "user:anne"),
      query("folder:ü", "viewer", "user:zoë"),
    ];
    const compare = async (expected: readonly boolean[]) => {
      const revision = await store.currentRevision();
      const batch = await fast.checkMany(questions, revision);
      const single: unknown[] = [];
      for (const q of questions) single.push(await fast.check(q, revision));
      expect(batch).toEqual(single);
      expect(batch).toEqual(expected);
    };
    await compare([
      true,
      false,
      true,
      false,
      false,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
      true,
    ]);
    // New strings: folder:new and user:bob interned by this write; the next batch must see them.
    await store.write({
      writes: [
        { user: "user:bob", relation: "viewer", object: "folder:a" },
        { user: "folder:a", relation: "parent", object: "folder:new" },
      ].map(normalized),
      deletes: [],
    });
    await compare([
      true,
      true,
      true,
      false,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      true,
      true,
    ]);
  });

  it("takes a known object's type from the question's objectType: every symbol's type is its text's", async () => {
    await ready();
    const store = new MemoryTupleStore();
    await using fast = new WasmEvaluator({ program, store });
    await store.write({
      writes: [
        { user: "user:anne", relation: "member", object: "group:eng" },
        { user: "user:*", relation: "member", object: "group:all" },
        { user: "group:eng#member", relation: "viewer", object: "folder:a" },
        { user: "folder:a", relation: "parent", object: "folder:a:b" },
        { user: "user:x:*", relation: "viewer", object: "folder:a:b" },
      ].map(normalized),
      deletes: [],
    });
    const revision = await store.currentRevision();
    const plain = [
      query("folder:a:b", "viewer", "user:anne"),
      query("folder:a:b", "viewer", "user:x:*"),
      query("group:all", "member", "user:bob"),
      query("folder:a", "viewer", "group:eng#member"),
      query("folder:nope", "viewer", "user:anne"),
    ];
    const typed = plain.map((q) => ({ ...q, objectType: q.object.slice(0, q.object.indexOf(":")) }));
    const expected = [true, true, true, true, false];
    expect(await fast.checkMany(plain, revision)).toEqual(expected);
    expect(await fast.checkMany(typed, revision)).toEqual(expected);
    for (const [i, q] of typed.entries()) expect(await fast.check(q, revision)).toBe(expected[i]);
    // The encoder reads typeIds.get(objectType) instead of the symbol's entry: the two agree for every symbol.
    const { symbols, compiled } = fast;
    expect(symbols.size).toBeGreaterThan(6);
    for (let symbol = 0; symbol < symbols.size; symbol++) {
      const text = symbols.text(symbol);
      expect(symbols.typeOf(symbol), text).toBe(compiled.typeIds.get(text.slice(0, text.indexOf(":"))));
    }
  });

  it("Symbols.lookupMany marks a text never interned with Symbols.MISSING", async () => {
    await ready();
    const store = new MemoryTupleStore();
    await using fast = new WasmEvaluator({ program, store });
    await store.write({
      writes: [{ user: "user:anne", relation: "member", object: "group:eng" }].map(normalized),
      deletes: [],
    });
    const revision = await store.currentRevision();
    expect(await fast.check(query("group:eng", "member", "user:anne"), revision)).toBe(true);
    expect(Symbols.MISSING).toBe(0xffffffff);
  });
});
