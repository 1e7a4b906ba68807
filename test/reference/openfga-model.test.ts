import { describe, expect, it } from "vitest";
import { loadConditions } from "../../src/conditions/cel-js.js";
import { loadOpenFgaDsl } from "../../src/model/dsl.js";
import { compileOpenFga, openFgaDslToJson } from "../../src/model/openfga.js";
import type { Program, RelationDef } from "../../src/model/program.js";
import { validateProgram } from "../../src/model/validate.js";
import { isNexusError } from "../../src/util/errors.js";

// This file compiles models with conditions or caveats synchronously: the CEL runtime first.
await loadConditions();

// OpenFGA DSL below is compiled synchronously; its parser loads on demand (src/model/dsl.ts).
await loadOpenFgaDsl();

const dsl = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member, user:* with recent]
type folder
  relations
    define viewer: [user]
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user]
    define shared-viewer: [user]
    define viewer: ([user] or owner or viewer from parent) but not blocked
    define both: viewer and owner
condition recent(ts: timestamp, limit: list<int>, m: map<string>) {
  ts < timestamp("2030-01-01T00:00:00Z")
}
`;

function invalid(model: string | object): string {
  try {
    compileOpenFga(model);
  } catch (error) {
    expect(isNexusError(error, "invalid_model"), String(error)).toBe(true);
    return (error as Error).message;
  }
  throw new Error("expected invalid_model");
}

describe("compileOpenFga", () => {
  it("compiles the DSL into the shared Program", () => {
    const program = compileOpenFga(dsl);
    expect(program.format).toBe("openfga");
    const group = program.types.get("group")!.relations.get("member")!;
    expect(group.rewrite).toEqual({ kind: "direct" });
    expect(group.directSubjects).toEqual([
      { type: "user" },
      { type: "group", relation: "member" },
      { type: "user", wildcard: true, condition: "recent" },
    ]);
    const viewer = program.types.get("doc")!.relations.get("viewer")!;
    expect(viewer.rewrite).toEqual({
      kind: "exclusion",
      base: {
        kind: "union",
        children: [
          { kind: "direct" },
          { kind: "computed", relation: "owner" },
          { kind: "ttu", tupleset: "parent", computed: "viewer" },
        ],
      },
      subtract: { kind: "computed", relation: "blocked" },
    });
    expect(viewer.directSubjects).toEqual([{ type: "user" }]);
    expect(program.types.get("doc")!.relations.get("both")!.directSubjects).toEqual([]);
    expect(program.types.get("doc")!.relations.get("shared-viewer")!.shareable).toBe(true);
    expect(viewer.shareable).toBe(false);
    expect(viewer.allowsExpiration).toBe(true);
    expect(program.conditions.get("recent")!.parameters).toEqual(
      new Map<string, unknown>([
        ["ts", "timestamp"],
        ["limit", { list: "int" }],
        ["m", { map: "string" }],
      ]),
    );
  });

  it("compiles the API JSON (object or text) to the same Program as the DSL", () => {
    const json = openFgaDslToJson(dsl);
    const strip = (p: Program) => [...p.types.values()].map((t) => [t.name, [...t.relations.values()]]);
    expect(strip(compileOpenFga(json))).toEqual(strip(compileOpenFga(dsl)));
    expect(strip(compileOpenFga(JSON.stringify(json)))).toEqual(strip(compileOpenFga(dsl)));
  });

  it("accepts conditions on a tupleset's types (which trips the DSL validator)", () => {
    const program = compileOpenFga(`model
  schema 1.1
type user
type folder
  relations
    define viewer: [user]
type document
  relations
    define parent: [folder with xcond]
    define viewer: viewer from parent
condition xcond(x: int) {
  x == 10
}
`);
    expect(program.types.get("document")!.relations.get("parent")!.directSubjects).toEqual([
      { type: "folder", condition: "xcond" },
    ]);
  });

  it("reports the DSL validator's problems as invalid_model", () => {
    expect(
      invalid("model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define a: b\n    define b: a\n"),
    ).toMatch(/impossible relation|loop/);
    expect(invalid("model\n  schema 1.1\ntype doc\n  relations\n    define a: [nope]\n")).toMatch(/nope/);
    expect(invalid("model\n  schema 1.1\ntype doc\n  relations\n    define a: [doc] or\n")).toMatch(/syntax/);
    expect(invalid("model\n  schema 1.0\ntype doc\n")).toMatch(/schema/);
    expect(invalid("{ not json")).toMatch(/JSON/);
    expect(invalid({ type_definitions: "x" })).toMatch(/type_definitions/);
  });
});

describe("validateProgram (rules every model language shares)", () => {
  const rel = (
    name: string,
    rewrite: RelationDef["rewrite"],
    directSubjects: RelationDef["directSubjects"] = [],
  ): RelationDef => ({
    name,
    rewrite,
    directSubjects,
    allowsExpiration: true,
    shareable: false,
    isPermission: false,
  });
  const program = (relations: RelationDef[], extraTypes: [string, RelationDef[]][] = []): Program => ({
    format: "nexus",
    types: new Map([
      ["user", { name: "user", relations: new Map() }],
      ["doc", { name: "doc", relations: new Map(relations.map((r) => [r.name, r])) }],
      ...extraTypes.map(
        ([name, rs]) => [name, { name, relations: new Map(rs.map((r) => [r.name, r])) }] as const,
      ),
    ]),
    conditions: new Map(),
  });
  const message = (p: Program): string => {
    try {
      validateProgram(p);
    } catch (error) {
      expect(isNexusError(error, "invalid_model")).toBe(true);
      return (error as Error).message;
    }
    return "valid";
  };

  it("accepts unrestricted direct relations, self-recursion with an entry point, and empty relations", () => {
    expect(message(program([rel("a", { kind: "direct" }, undefined)]))).toBe("valid");
    expect(
      message(
        program([
          rel("a", { kind: "union", children: [{ kind: "direct" }, { kind: "computed", relation: "a" }] }, [
            { type: "user" },
          ]),
        ]),
      ),
    ).toBe("valid");
    expect(message(program([rel("nil", { kind: "none" })]))).toBe("valid");
  });

  it("names what is wrong", () => {
    expect(message(program([rel("a", { kind: "computed", relation: "zzz" })]))).toContain("doc#zzz");
    expect(message(program([rel("a", { kind: "ttu", tupleset: "p", computed: "x" })]))).toContain("doc#p");
    expect(
      message(
        program([
          rel("p", { kind: "computed", relation: "q" }),
          rel("q", { kind: "direct" }, [{ type: "user" }]),
          rel("a", { kind: "ttu", tupleset: "p", computed: "x" }),
        ]),
      ),
    ).toContain("directly assigned");
    expect(
      message(
        program([
          rel("p", { kind: "direct" }, [{ type: "user" }]),
          rel("a", { kind: "ttu", tupleset: "p", computed: "x" }),
        ]),
      ),
    ).toContain("x is not a relation");
    expect(message(program([rel("a", { kind: "direct" }, [{ type: "ghost" }])]))).toContain("ghost");
    expect(message(program([rel("a", { kind: "direct" }, [{ type: "doc", relation: "nope" }])]))).toContain(
      "doc#nope",
    );
    expect(message(program([rel("a", { kind: "direct" }, [{ type: "user", condition: "c" }])]))).toContain(
      "condition",
    );
    expect(
      message(
        program([
          rel("a", { kind: "computed", relation: "b" }),
          rel("b", { kind: "computed", relation: "a" }),
        ]),
      ),
    ).toContain("can never be satisfied");
    expect(message(program([rel("a", { kind: "direct" }, [{ type: "doc", relation: "a" }])]))).toContain(
      "can never be satisfied",
    );
    expect(message(program([rel("bad name", { kind: "direct" }, [{ type: "user" }])]))).toContain(
      "not valid",
    );
  });
});
