/**
 * 64 concurrent writers, each a store of its own (its own pool and connection, as 64 processes would be), over one
 * schema: revisions stay gap-free and each is applied once, conflicting writes have exactly one winner, and a
 * reader following the changelog meanwhile never sees a revision before every lower one (no gap it would skip).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgresTupleStore, type PostgresTupleStore } from "../../src/postgres/index.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { RelationTuple } from "../../src/tuples/tuple.js";
import { dropSchema, freshSchema, PG_URL, sql } from "./helpers.js";

const schema = freshSchema("writers");
const WRITERS = 64;
const WRITES_EACH = 1;

beforeAll(async () => {
  await (await openPostgresTupleStore({ connectionString: PG_URL, schema })).close();
});
afterAll(() => dropSchema(schema));

function tuple(tenant: string, object: string, user: string): RelationTuple {
  const n = normalizeTuple({ object, relation: "viewer", user }, tenant);
  if (!n.ok) throw new Error(n.problem);
  return n.value;
}

describe("64 concurrent writers", () => {
  it("keep revisions gap-free, each applied once, visible only after every lower one", async () => {
    const stores: PostgresTupleStore[] = [];
    for (let i = 0; i < WRITERS; i++) {
      stores.push(await openPostgresTupleStore({ connectionString: PG_URL, schema, max: 1 }));
    }
    await using reader = await openPostgresTupleStore({ connectionString: PG_URL, schema, max: 2 });
    try {
      const base = await reader.currentRevision();
      // The reader follows the changelog while the writers run, asserting each page continues the last.
      let cursor = base;
      let writing = true;
      const gaps: string[] = [];
      const follow = (async () => {
        while (writing || cursor < (await reader.currentRevision())) {
          const page = await reader.changesAfter(cursor, 50);
          for (const change of page) {
            if (change.revision !== cursor && change.revision !== cursor + 1) {
              gaps.push(`after ${cursor} came ${change.revision}`);
            }
            cursor = change.revision;
          }
          if (page.length === 0) await reader.waitForRevision(cursor, AbortSignal.timeout(200));
        }
      })();

      const results = await Promise.all(
        stores.map(async (store, w) => {
          const revisions: number[] = [];
          let won = 0;
          for (let i = 0; i < WRITES_EACH; i++) {
            const r = await store.write({
              writes: [tuple("writers", `doc:${w}_${i}`, `user:${w}`)],
              deletes: [],
            });
            revisions.push(r.revision);
            // Everybody also tries to write the same tuple: one wins, the others are refused.
            try {
              const c = await store.write({
                writes: [tuple("writers", `doc:contested_${i}`, "user:x")],
                deletes: [],
              });
              revisions.push(c.revision);
              won++;
            } catch (error) {
              expect((error as { code?: string }).code).toBe("invalid_write");
            }
          }
          return { revisions, won };
        }),
      );
      writing = false;
      await follow;

      const all = results.flatMap((r) => r.revisions).sort((a, b) => a - b);
      const expected = WRITERS * WRITES_EACH + WRITES_EACH;
      expect(results.reduce((n, r) => n + r.won, 0)).toBe(WRITES_EACH);
      expect(all).toEqual(Array.from({ length: expected }, (_, i) => base + 1 + i));
      expect(await reader.currentRevision()).toBe(base + expected);
      expect(gaps).toEqual([]);
      expect(cursor).toBe(base + expected);
      // Commit records are gap-free too, with commit times that never go back.
      const commits = await sql<{ revision: string; committed_at_ms: string }>(
        `SELECT revision, committed_at_ms FROM ${schema}.commits WHERE revision > $1 ORDER BY revision`,
        [base],
      );
      expect(commits.map((c) => Number(c.revision))).toEqual(all);
      for (let i = 1; i < commits.length; i++) {
        expect(Number(commits[i]!.committed_at_ms)).toBeGreaterThanOrEqual(
          Number(commits[i - 1]!.committed_at_ms),
        );
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
