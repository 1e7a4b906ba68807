/**
 * A write reports how many tuples it wrote as counted when it was prepared. The prepared write holds the batch's
 * own list (no copy when nothing is skipped), and the file store awaits its log append between preparing and
 * applying: a caller that emptied its array meanwhile made the result say `written: 0` for a write of three
 * (review finding; fails before the fix). The tuples themselves were always stored.
 */
import { expect, it } from "vitest";
import { openFileTupleStore } from "../../src/tuples/file/index.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import { tempDir } from "../blobs/helpers.js";

const tuple = (object: string) => {
  const n = normalizeTuple({ object, relation: "viewer", user: "user:a" }, "default");
  if (!n.ok) throw new Error(n.problem);
  return n.value;
};

it("written counts what was staged, whatever the caller does to its array during the append", async () => {
  const { dir, cleanup } = tempDir("nexus-written-");
  const store = await openFileTupleStore({ dir });
  try {
    const writes = [tuple("doc:1"), tuple("doc:2"), tuple("doc:3")];
    const pending = store.write({ writes, deletes: [] });
    for (let i = 0; i < 3; i++) await Promise.resolve();
    writes.length = 0;
    const result = await pending;
    expect(result).toEqual({ revision: 1, written: 3, deleted: 0 });
    expect((await store.changesAfter(0, 100)).length).toBe(3);
  } finally {
    await store.close();
    cleanup();
  }
});
