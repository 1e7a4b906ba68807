/**
 * The Nexus preset (namespace configs) and its SpiceDB translation (bench/workloads/filesystem.ts) are the same
 * model: on random filesystems, every permission question gets the same answer from engines built on either.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { spicedbSchema } from "../../bench/workloads/filesystem.js";
import { createEngine } from "../../src/engine/engine.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import type { TupleKey } from "../../src/tuples/tuple.js";

const USERS = ["user:ann", "user:bob", "user:cat"];
const GROUPS = ["group:g0", "group:g1", "group:g2"];
const FILES = ["file:/r", "file:/r/a", "file:/r/a/b", "file:/r/c", "file:/r/a/b/f"];
const GRANTS = [
  "direct_owner",
  "direct_editor",
  "direct_viewer",
  "shared-viewer",
  "shared-editor",
  "shared-owner",
];
const PERMISSIONS = ["read", "write", "execute", "traverse", "owner", "editor", "viewer"];

const tuple = fc.oneof(
  // membership, nested groups
  fc.record({
    user: fc.constantFrom(...USERS),
    relation: fc.constant("member"),
    object: fc.constantFrom(...GROUPS),
  }),
  fc
    .tuple(fc.constantFrom(...GROUPS), fc.constantFrom(...GROUPS))
    .filter(([a, b]) => a !== b)
    .map(([child, parent]) => ({ user: `${child}#member`, relation: "member", object: parent })),
  fc.record({
    user: fc.constantFrom(...USERS),
    relation: fc.constant("admin"),
    object: fc.constantFrom(...GROUPS),
  }),
  // grants to people and to whole groups (shared-* only to people)
  fc.record({
    user: fc.constantFrom(...USERS, ...GROUPS),
    relation: fc.constantFrom(...GRANTS.slice(0, 3)),
    object: fc.constantFrom(...FILES),
  }),
  fc.record({
    user: fc.constantFrom(...USERS),
    relation: fc.constantFrom(...GRANTS.slice(3)),
    object: fc.constantFrom(...FILES),
  }),
);

/** The fixed tree /r > /r/a > /r/a/b > /r/a/b/f, /r > /r/c. */
const TREE: TupleKey[] = [
  { user: "file:/r", relation: "parent", object: "file:/r/a" },
  { user: "file:/r/a", relation: "parent", object: "file:/r/a/b" },
  { user: "file:/r/a/b", relation: "parent", object: "file:/r/a/b/f" },
  { user: "file:/r", relation: "parent", object: "file:/r/c" },
];

describe("the Nexus preset equals its SpiceDB translation", () => {
  it("answers every question alike on random filesystems", async () => {
    const nexus = await createEngine({ model: nexusFilesystemModel });
    const spicedb = await createEngine({ model: spicedbSchema });
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.uniqueArray(tuple, { maxLength: 12, selector: (t) => `${t.object}#${t.relation}@${t.user}` }),
          async (tuples) => {
            const writesNexus = [...TREE, ...tuples];
            const writesSpicedb = writesNexus.map((t) => ({
              ...t,
              relation: t.relation.replaceAll("-", "_"),
            }));
            const a = await nexus.write({ writes: writesNexus });
            const b = await spicedb.write({ writes: writesSpicedb });
            try {
              for (const user of [...USERS, ...GROUPS.map((g) => `${g}#member`)]) {
                for (const object of FILES) {
                  for (const relation of PERMISSIONS) {
                    const x = await nexus.check({ user, relation, object });
                    const y = await spicedb.check({ user, relation, object });
                    if (x !== y)
                      expect({ user, relation, object, nexus: x }).toEqual({
                        user,
                        relation,
                        object,
                        nexus: y,
                      });
                  }
                }
              }
            } finally {
              await nexus.write({ deletes: writesNexus });
              await spicedb.write({ deletes: writesSpicedb });
            }
            return a.revision > 0 && b.revision > 0;
          },
        ),
        { numRuns: 40 },
      );
    } finally {
      await nexus.close();
      await spicedb.close();
    }
  });
});
