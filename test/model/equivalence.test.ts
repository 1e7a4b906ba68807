/**
 * One model written in the three languages compiles to the same Program (up to what a language cannot say:
 * Nexus does not restrict subject types, and marks permissions rather than rewrites as not writable).
 */
import { describe, expect, it } from "vitest";
import { compileModel, detectFormat, loadOpenFgaDsl } from "../../src/model/index.js";
import type { Program, Rewrite } from "../../src/model/program.js";

// OpenFGA DSL below is compiled synchronously; its parser loads on demand (src/model/dsl.ts).
await loadOpenFgaDsl();

const OPENFGA = `model
  schema 1.1

type user

type group
  relations
    define member: [user, group#member]

type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member]
    define parent_view: can_view from parent
    define can_view: viewer or parent_view

type doc
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user, group#member]
    define banned: [user]
    define parent_view: can_view from parent
    define can_edit: editor or owner
    define view_base: can_edit or parent_view
    define can_view: view_base but not banned
    define approved_edit: editor and owner
`;

const SPICEDB = `definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation parent: folder
  relation viewer: user | group#member
  permission parent_view = parent->can_view
  permission can_view = viewer + parent_view
}

definition doc {
  relation parent: folder
  relation owner: user
  relation editor: user | group#member
  relation banned: user
  permission parent_view = parent->can_view
  permission can_edit = editor + owner
  permission view_base = can_edit + parent_view
  permission can_view = view_base - banned
  permission approved_edit = editor & owner
}
`;

const NEXUS = {
  user: { relations: {} },
  group: { relations: { member: {} } },
  folder: {
    relations: {
      parent: {},
      viewer: {},
      parent_view: { tupleToUserset: { tupleset: "parent", computedUserset: "can_view" } },
      can_view: { union: ["viewer", "parent_view"] },
    },
  },
  doc: {
    relations: {
      parent: {},
      owner: {},
      editor: {},
      banned: {},
      not_banned: { exclusion: "banned" },
      parent_view: { tupleToUserset: { tupleset: "parent", computedUserset: "can_view" } },
      can_edit: { union: ["editor", "owner"] },
      view_base: { union: ["can_edit", "parent_view"] },
      can_view: { intersection: ["view_base", "not_banned"] },
      approved_edit: { intersection: ["editor", "owner"] },
    },
  },
};

/** type -> relation -> rewrite, with one-child unions/intersections unwrapped. */
function rewrites(program: Program): Record<string, Record<string, Rewrite>> {
  const out: Record<string, Record<string, Rewrite>> = {};
  for (const [typeName, type] of program.types) {
    out[typeName] = {};
    for (const [name, relation] of type.relations) out[typeName][name] = normalize(relation.rewrite);
  }
  return out;
}

function normalize(rewrite: Rewrite): Rewrite {
  switch (rewrite.kind) {
    case "union":
    case "intersection":
      return rewrite.children.length === 1
        ? normalize(rewrite.children[0]!)
        : { kind: rewrite.kind, children: rewrite.children.map(normalize) };
    case "exclusion":
      return { kind: "exclusion", base: normalize(rewrite.base), subtract: normalize(rewrite.subtract) };
    default:
      return rewrite;
  }
}

function directSubjects(program: Program): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [typeName, type] of program.types) {
    for (const [name, relation] of type.relations) {
      if (relation.rewrite.kind === "direct") out[`${typeName}#${name}`] = relation.directSubjects;
    }
  }
  return out;
}

describe("the three model languages compile to equivalent Programs", () => {
  it("detects each language", () => {
    expect(detectFormat(OPENFGA)).toBe("openfga");
    expect(detectFormat(SPICEDB)).toBe("spicedb");
    expect(detectFormat(NEXUS)).toBe("nexus");
  });

  it("gives the same rewrites for every relation", () => {
    const openfga = compileModel(OPENFGA);
    const spicedb = compileModel(SPICEDB);
    const nexus = compileModel(NEXUS);
    expect([openfga.format, spicedb.format, nexus.format]).toEqual(["openfga", "spicedb", "nexus"]);
    expect(rewrites(spicedb)).toEqual(rewrites(openfga));
    expect(rewrites(nexus)).toEqual(rewrites(openfga));
  });

  it("gives the same subject restrictions where the language has them (OpenFGA, SpiceDB)", () => {
    expect(directSubjects(compileModel(SPICEDB))).toEqual(directSubjects(compileModel(OPENFGA)));
    for (const subjects of Object.values(directSubjects(compileModel(NEXUS))))
      expect(subjects).toBeUndefined();
  });

  it("routes by the explicit format over detection", () => {
    expect(compileModel(JSON.stringify(NEXUS), "nexus").format).toBe("nexus");
    expect(() => compileModel(SPICEDB, "openfga")).toThrow();
  });
});
