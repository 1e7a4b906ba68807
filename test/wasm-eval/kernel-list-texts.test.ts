/**
 * Kernel listings map result symbols to strings through Symbols' table of the strings it interned
 * (src/wasm-eval/symbols.ts), not by decoding them out of the kernel's memory. Here:
 * - the table holds, for every symbol, exactly the text the kernel's interner holds for it, after any mix of
 *   `intern` and `internMany` calls (repeats, wildcards, multi-byte and astral characters, texts equal only after
 *   Unicode normalization, which stay apart);
 * - listings equal the snapshot's exact reverse expansion at every revision of writes and deletes in two tenants
 *   sharing object names, including deletes of every tuple naming an object (its symbol stays, unreferenced) and
 *   later writes naming it again (the same symbol, the same text), subjects asked right after their last tuple was
 *   deleted, and ids that differ only by normalization (NFC and NFD: distinct objects, listed apart).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { internAbi } from "../../src/kernels/abi/intern.js";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";
import { exactListObjects } from "../../src/reference/exact-list-objects.js";
import { MemoryTupleStore } from "../../src/tuples/memory.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple, TupleKey } from "../../src/tuples/tuple.js";
import { ready } from "../../src/wasm/loader.js";
import { WasmEvaluator } from "../../src/wasm-eval/evaluator.js";
import { instantiateEvaluateKernel } from "../../src/wasm-eval/kernel.js";
import { listObjectsInKernel } from "../../src/wasm-eval/list-objects.js";
import { Symbols } from "../../src/wasm-eval/symbols.js";

await loadOpenFgaDsl();

const decoder = new TextDecoder();

/** Every symbol's text as the kernel's interner holds it (its entries: [bytes pointer], the length before the bytes). */
function internerTexts(symbols: Symbols, kernel: ReturnType<typeof instantiateEvaluateKernel>): string[] {
  const { I_ENTRIES, I_ENTRY_BYTES } = internAbi.constants;
  const u32 = kernel.views.u32;
  const entries = u32[(symbols.internerPointer + I_ENTRIES) >>> 2]!;
  const view = new DataView(kernel.memory.buffer);
  return Array.from({ length: symbols.size }, (_, s) => {
    const bytes = u32[(entries + s * I_ENTRY_BYTES) >>> 2]!;
    return decoder.decode(kernel.views.u8.subarray(bytes, bytes + view.getUint32(bytes - 4, true)));
  });
}

// Ids that differ only by normalization (é precomposed and decomposed), multi-byte and astral characters.
const ID_PARTS = [
  "caf\u00e9",
  "cafe\u0301",
  "\u00fc/a b",
  "\u65e5\u672c",
  "x\u{1F600}",
  "a",
  "ab",
  "a:b#c",
  "*",
];
const textArb = fc
  .tuple(fc.constantFrom("doc", "user", "group"), fc.constantFrom(...ID_PARTS), fc.nat(3))
  .map(([type, id, n]) => (id === "*" ? `${type}:*` : `${type}:${id}${n === 0 ? "" : n}`));

describe("Symbols keeps each symbol's text", () => {
  it("equal to the interner's, for every symbol, after interleaved intern and internMany calls", async () => {
    await ready();
    await fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.array(textArb, { maxLength: 12 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (calls) => {
          const kernel = instantiateEvaluateKernel();
          using symbols = new Symbols(kernel);
          const seen = new Set<string>();
          for (const [many, texts] of calls) {
            const types = texts.map((t) => ["doc", "user", "group"].indexOf(t.slice(0, t.indexOf(":"))));
            const got = many
              ? Array.from(
                  symbols
                    .internMany(texts, types, new Uint32Array(texts.length + 1))
                    .subarray(0, texts.length),
                )
              : texts.map((t, i) => symbols.intern(t, types[i]!));
            for (const t of texts) seen.add(t);
            for (let i = 0; i < texts.length; i++) expect(symbols.text(got[i]!)).toBe(texts[i]);
            const decoded = internerTexts(symbols, kernel);
            expect(symbols.texts.length).toBe(symbols.size);
            expect([...symbols.texts]).toEqual(decoded);
            for (let s = 0; s < symbols.size; s++) expect(symbols.text(s)).toBe(decoded[s]);
          }
          // Texts equal only after normalization are different symbols with their own texts.
          expect(symbols.size).toBe(seen.size);
          for (const t of seen) expect(symbols.text(symbols.lookup(t)!)).toBe(t);
        },
      ),
      { numRuns: 100 },
    );
  });
});

const program = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, user:*, group#member]
    define view: viewer or view from parent
type file
  relations
    define parent: [folder]
    define viewer: [user, user:*, group#member]
    define view: viewer or view from parent
`);

const TENANTS = ["default", "t2"];
const FILE_IDS = ["caf\u00e9", "cafe\u0301", "\u00fc/a b", "\u65e5\u672c", "x\u{1F600}", "a", "b", "c"];
const FOLDER_IDS = ["r", "s\u00e9", "se\u0301"];
const USER_IDS = ["jos\u00e9", "jose\u0301", "anne", "bob"];
const GROUPS = ["eng", "ops"];

/** Every tuple the steps pick from: grants on files and folders, folder parents, group members. */
function pool(): TupleKey[] {
  const out: TupleKey[] = [];
  for (const tenant of TENANTS) {
    const users = USER_IDS.map((u) => `user:${u}`);
    const subjects = [...users, "user:*", ...GROUPS.map((g) => `group:${g}#member`)];
    for (const f of FILE_IDS) {
      for (const s of subjects) out.push({ tenant, object: `file:${f}`, relation: "viewer", user: s });
      for (const d of FOLDER_IDS)
        out.push({ tenant, object: `file:${f}`, relation: "parent", user: `folder:${d}` });
    }
    for (const d of FOLDER_IDS) {
      for (const s of subjects) out.push({ tenant, object: `folder:${d}`, relation: "viewer", user: s });
      for (const p of FOLDER_IDS) {
        if (p !== d) out.push({ tenant, object: `folder:${d}`, relation: "parent", user: `folder:${p}` });
      }
    }
    for (const g of GROUPS) {
      for (const u of users) out.push({ tenant, object: `group:${g}`, relation: "member", user: u });
      for (const h of GROUPS) {
        if (h !== g)
          out.push({ tenant, object: `group:${g}`, relation: "member", user: `group:${h}#member` });
      }
    }
  }
  return out;
}

const normalized = (key: TupleKey): RelationTuple => {
  const r = normalizeTuple(key, key.tenant ?? "default");
  if (!r.ok) throw new Error(r.problem);
  return r.value;
};
const keyOf = (t: TupleKey) => `${t.tenant}\u0000${t.object}\u0000${t.relation}\u0000${t.user}`;

/** A step: writes of picked pool tuples, deletes of picked live ones, or every live tuple naming one object. */
const stepArb = fc.oneof(
  fc.record({
    kind: fc.constant("write" as const),
    picks: fc.uniqueArray(fc.nat(1000), { minLength: 1, maxLength: 12 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    picks: fc.uniqueArray(fc.nat(1000), { minLength: 1, maxLength: 6 }),
  }),
  fc.record({ kind: fc.constant("forget" as const), pick: fc.nat(1000) }),
);

describe("kernel listings with texts from Symbols = the snapshot's exact expansion", () => {
  it("across writes, deletes of every tuple naming an object, writes naming it again, two tenants", async () => {
    await ready();
    const all = pool();
    let compared = 0;
    let nonEmpty = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 2, maxLength: 8 }), async (steps) => {
        const store = new MemoryTupleStore();
        await using wasm = new WasmEvaluator({ program, store });
        const live = new Map<string, TupleKey>();
        const compare = async (): Promise<void> => {
          const revision = await store.currentRevision();
          const snapshot = await store.snapshot(revision);
          try {
            for (const tenant of TENANTS) {
              for (const type of ["file", "folder"]) {
                for (const relation of ["view", "viewer"]) {
                  const users = [...USER_IDS.map((u) => `user:${u}`), "user:never"];
                  for (const user of users) {
                    const query = { tenant, type, relation, user };
                    const where = `${tenant}/${type}#${relation}@${user} at ${revision}`;
                    const got = await listObjectsInKernel(wasm, query, revision);
                    const exact = await exactListObjects(program, snapshot, query, Date.now());
                    expect(got, where).toBeDefined();
                    expect(got, where).toEqual(exact);
                    compared++;
                    if (got!.length > 0) nonEmpty++;
                  }
                }
              }
            }
          } finally {
            snapshot.release();
          }
        };
        try {
          for (const step of steps) {
            let writes: TupleKey[] = [];
            let deletes: TupleKey[] = [];
            const present = [...live.values()];
            if (step.kind === "write") {
              writes = [
                ...new Map(step.picks.map((p) => all[p % all.length]!).map((t) => [keyOf(t), t])).values(),
              ];
              writes = writes.filter((t) => !live.has(keyOf(t)));
            } else if (step.kind === "delete") {
              if (present.length === 0) continue;
              deletes = [...new Set(step.picks.map((p) => present[p % present.length]!))];
            } else {
              if (present.length === 0) continue;
              // Every tuple naming one object (as object or subject), in its tenant: its symbol stays unreferenced.
              const victim = present[step.pick % present.length]!;
              const name = victim.object;
              deletes = present.filter(
                (t) => t.tenant === victim.tenant && (t.object === name || t.user.split("#")[0] === name),
              );
            }
            if (writes.length === 0 && deletes.length === 0) continue;
            await store.write({ writes: writes.map(normalized), deletes: deletes.map(normalized) });
            for (const t of writes) live.set(keyOf(t), t);
            for (const t of deletes) live.delete(keyOf(t));
            await compare();
          }
          // Everything the steps deleted, written again: the same symbols, listed with the same texts.
          const again = all.filter((t) => !live.has(keyOf(t))).slice(0, 200);
          await store.write({ writes: again.map(normalized), deletes: [] });
          for (const t of again) live.set(keyOf(t), t);
          await compare();
        } finally {
          await store.close();
        }
      }),
      { numRuns: Number(process.env.KERNEL_LIST_TEXT_RUNS ?? 40) },
    );
    expect(compared).toBeGreaterThan(1000);
    expect(nonEmpty).toBeGreaterThan(200);
  }, 300_000);
});
