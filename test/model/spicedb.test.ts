import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadConditions } from "../../src/conditions/cel-js.js";
import type { RelationDef } from "../../src/model/program.js";
import { compileSpiceDb } from "../../src/model/spicedb.js";
import { isNexusError } from "../../src/util/errors.js";

// This file compiles models with conditions or caveats synchronously: the CEL runtime first.
await loadConditions();

function relation(schema: string, type: string, name: string): RelationDef {
  const def = compileSpiceDb(schema).types.get(type)?.relations.get(name);
  if (!def) throw new Error(`no ${type}#${name}`);
  return def;
}

/** Asserts a compile error with the given code whose message contains every fragment. */
function expectModelError(schema: string, ...fragments: string[]): void {
  try {
    compileSpiceDb(schema);
  } catch (error) {
    expect(isNexusError(error, "invalid_model"), String(error)).toBe(true);
    for (const fragment of fragments) expect((error as Error).message).toContain(fragment);
    return;
  }
  throw new Error(`schema compiled but should not:\n${schema}`);
}

const DOCS = `
/** The users. */
definition user {}

// Teams nest.
definition group {
  relation member: user | group#member
}

definition folder {
  relation owner: user
  relation viewer: user | user:* | group#member
  permission view = viewer + owner
}

definition document {
  relation parent: folder
  relation editor: user | group#member
  relation viewer: user | user:* | group#member
  relation banned: user
  permission edit = editor
  permission view = viewer + edit + parent->view - banned
}
`;

describe("compileSpiceDb: constructs", () => {
  it("compiles definitions, relations and permissions to the Program", () => {
    const program = compileSpiceDb(DOCS);
    expect(program.format).toBe("spicedb");
    expect([...program.types.keys()]).toEqual(["user", "group", "folder", "document"]);
    expect(program.types.get("user")!.relations.size).toBe(0);

    const viewer = relation(DOCS, "document", "viewer");
    expect(viewer).toEqual({
      name: "viewer",
      rewrite: { kind: "direct" },
      directSubjects: [
        { type: "user" },
        { type: "user", wildcard: true },
        { type: "group", relation: "member" },
      ],
      allowsExpiration: false,
      shareable: false,
      isPermission: false,
    });
    const view = relation(DOCS, "document", "view");
    expect(view.isPermission).toBe(true);
    expect(view.directSubjects).toEqual([]);
    expect(view.rewrite).toEqual({
      kind: "exclusion",
      base: {
        kind: "union",
        children: [
          { kind: "computed", relation: "viewer" },
          { kind: "computed", relation: "edit" },
          { kind: "ttu", tupleset: "parent", computed: "view" },
        ],
      },
      subtract: { kind: "computed", relation: "banned" },
    });
  });

  it("follows SpiceDB precedence: + binds tightest, then &, then -; all left-associative", () => {
    const schema = (expr: string) => `definition user {}
definition doc {
  relation aaa: user
  relation bbb: user
  relation ccc: user
  permission res = ${expr}
}`;
    const ref = (relation: string) => ({ kind: "computed", relation });
    expect(relation(schema("aaa + bbb - ccc"), "doc", "res").rewrite).toEqual({
      kind: "exclusion",
      base: { kind: "union", children: [ref("aaa"), ref("bbb")] },
      subtract: ref("ccc"),
    });
    expect(relation(schema("aaa - bbb + ccc"), "doc", "res").rewrite).toEqual({
      kind: "exclusion",
      base: ref("aaa"),
      subtract: { kind: "union", children: [ref("bbb"), ref("ccc")] },
    });
    expect(relation(schema("aaa - bbb - ccc"), "doc", "res").rewrite).toEqual({
      kind: "exclusion",
      base: { kind: "exclusion", base: ref("aaa"), subtract: ref("bbb") },
      subtract: ref("ccc"),
    });
    expect(relation(schema("aaa & bbb + ccc"), "doc", "res").rewrite).toEqual({
      kind: "intersection",
      children: [ref("aaa"), { kind: "union", children: [ref("bbb"), ref("ccc")] }],
    });
    expect(relation(schema("(aaa & bbb) + ccc"), "doc", "res").rewrite).toEqual({
      kind: "union",
      children: [{ kind: "intersection", children: [ref("aaa"), ref("bbb")] }, ref("ccc")],
    });
    expect(relation(schema("aaa + bbb + ccc"), "doc", "res").rewrite).toEqual({
      kind: "union",
      children: [ref("aaa"), ref("bbb"), ref("ccc")],
    });
    expect(relation(schema("nil"), "doc", "res").rewrite).toEqual({ kind: "none" });
    expect(relation(schema("aaa + nil"), "doc", "res").rewrite).toEqual({
      kind: "union",
      children: [ref("aaa"), { kind: "none" }],
    });
  });

  it("compiles arrows and the .any() arrow function to tuple-to-userset", () => {
    const schema = `definition user {}
definition folder { relation viewer: user }
definition doc {
  relation parent: folder
  permission one = parent->viewer
  permission two = parent.any(viewer)
}`;
    expect(relation(schema, "doc", "one").rewrite).toEqual({
      kind: "ttu",
      tupleset: "parent",
      computed: "viewer",
    });
    expect(relation(schema, "doc", "two").rewrite).toEqual({
      kind: "ttu",
      tupleset: "parent",
      computed: "viewer",
    });
  });

  it("keeps caveats as typed conditions with their CEL expression", () => {
    const schema = `caveat ip_allowlist(allowed list<string>, ip ipaddress, limits map<int>) {
  // a comment inside CEL, with a brace: }
  allowed.exists(a, ip.in_cidr(a)) && "{}" != "" && limits["x"] > 1
}
caveat somens/on_time(now timestamp, window duration) { now > timestamp("2020-01-01T00:00:00Z") + window }
definition user {}
definition doc {
  relation viewer: user with ip_allowlist | user:* with somens/on_time
}`;
    const program = compileSpiceDb(schema);
    const caveat = program.conditions.get("ip_allowlist")!;
    expect(caveat.expression).toContain('allowed.exists(a, ip.in_cidr(a)) && "{}" != "" && limits["x"] > 1');
    expect(Object.fromEntries(caveat.parameters)).toEqual({
      allowed: { list: "string" },
      ip: "ipaddress",
      limits: { map: "int" },
    });
    expect(Object.fromEntries(program.conditions.get("somens/on_time")!.parameters)).toEqual({
      now: "timestamp",
      window: "duration",
    });
    expect(relation(schema, "doc", "viewer").directSubjects).toEqual([
      { type: "user", condition: "ip_allowlist" },
      { type: "user", wildcard: true, condition: "somens/on_time" },
    ]);
  });

  it("marks relations `with expiration` (needs `use expiration`)", () => {
    const schema = `use expiration
caveat cond(flag bool) { flag }
definition user {}
definition doc {
  relation viewer: user with expiration
  relation editor: user with cond and expiration
  relation owner: user
}`;
    expect(relation(schema, "doc", "viewer").allowsExpiration).toBe(true);
    expect(relation(schema, "doc", "editor")).toMatchObject({
      allowsExpiration: true,
      directSubjects: [{ type: "user", condition: "cond" }],
    });
    expect(relation(schema, "doc", "owner").allowsExpiration).toBe(false);
  });

  it("accepts namespaced type names, #... subjects, semicolons and comments anywhere", () => {
    const schema = `/* block
comment */ definition test/user {} ; definition test/org/team { relation member: test/user | test/org/team#member ; permission all_members = member }
definition test/doc {
  relation owner: test/org/team#member // trailing comment
  permission view = owner /* inline */ + owner
}`;
    const program = compileSpiceDb(schema);
    expect([...program.types.keys()]).toEqual(["test/user", "test/org/team", "test/doc"]);
    expect(relation(schema, "test/org/team", "member").directSubjects).toEqual([
      { type: "test/user" },
      { type: "test/org/team", relation: "member" },
    ]);
    expect(relation(schema, "test/doc", "owner").directSubjects).toEqual([
      { type: "test/org/team", relation: "member" },
    ]);
  });
});

describe("compileSpiceDb: errors", () => {
  it("reports syntax errors with line:column", () => {
    expectModelError("definition user {\n  relation viewer user\n}", "2:19", '":"');
    expectModelError("definition user {\n  relation viewer: user\n", 'definition "user" is not closed');
    expectModelError("definition user {}\ndefinition doc {\n  permission view = + viewer\n}", "3:21");
    expectModelError("definition user {}\nfoo", "2:1", '"definition", "caveat" or "use"');
    expectModelError("definition user {} $", "1:20", "unexpected character");
    expectModelError("definition user { relation viewer: user relation editor: user }", "end of statement");
    expectModelError("/* never closed\ndefinition user {}", "1:1", "unterminated comment");
    expectModelError("definition user {}\ndefinition doc {\n  relation viewer: user:\n}", '"*"');
    expectModelError("definition user {}\ndefinition doc {\n  relation viewer: user#...\n}", "3:25");
  });

  it("rejects names SpiceDB rejects", () => {
    expectModelError("definition u {}", "invalid definition name");
    expectModelError("definition user { relation Viewer: user }", "invalid relation name");
    expectModelError("definition user { relation view_: user }", "invalid relation name");
  });

  it("rejects unknown types, relations and caveats, naming them", () => {
    expectModelError(
      "definition doc {\n  relation viewer: person\n}",
      "2:20",
      'subject type "person" is not defined',
    );
    expectModelError(
      "definition user {}\ndefinition doc {\n  relation viewer: user#member\n}",
      '"user#member" names a relation',
    );
    expectModelError(
      "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission view = viewer + editor\n}",
      "4:30",
      '"editor" is not a relation or permission of "doc"',
    );
    expectModelError(
      "definition user {}\ndefinition doc {\n  relation viewer: user with missing\n}",
      'caveat "missing"',
    );
    expectModelError(
      "definition user {}\ndefinition doc {\n  relation viewer: user with expiration\n}",
      "use expiration",
    );
    expectModelError("use frobnicate\ndefinition user {}", 'unknown use flag "frobnicate"');
  });

  it("rejects bad arrows", () => {
    const base =
      "definition user {}\ndefinition folder { relation viewer: user }\ndefinition doc {\n  relation parent: folder\n";
    // As SpiceDB: an arrow to a relation no subject type has compiles (and grants nothing).
    expect(relation(`${base}  permission view = parent->nothing\n}`, "doc", "view").rewrite).toEqual({
      kind: "ttu",
      tupleset: "parent",
      computed: "nothing",
    });
    expectModelError(`${base}  permission view = parent->viewer - \n}`, "6:1", "expected a relation");
    expectModelError(`${base}  permission view = missing->viewer\n}`, '"missing" is not a relation');
    expectModelError(
      `${base}  permission upward = parent->viewer\n  permission view = upward->viewer\n}`,
      "is a permission; arrows must start from a relation",
    );
    expect(relation(`${base}  permission view = parent.all(viewer)\n}`, "doc", "view").rewrite).toEqual({
      kind: "ttu",
      tupleset: "parent",
      computed: "viewer",
      all: true,
    });
    expectModelError(`${base}  permission view = parent.foo(viewer)\n}`, 'unknown arrow function "foo"');
    expectModelError(`${base}  permission view = parent->viewer->viewer\n}`, "chained arrows");
  });

  it("rejects duplicate names and malformed caveats", () => {
    expectModelError("definition user {}\ndefinition user {}", 'definition "user" is defined twice');
    expectModelError(
      "definition user { relation viewer: user\n permission viewer = viewer }",
      '"viewer" is defined twice',
    );
    expectModelError(
      "caveat cond(flag bool) { flag &&& }\ndefinition user {}",
      "1:25",
      "invalid CEL expression",
    );
    expectModelError("caveat cond(flag bool) { }\ndefinition user {}", "empty expression");
    expectModelError(
      "caveat cond(flag blob) { flag }\ndefinition user {}",
      'unknown caveat parameter type "blob"',
    );
    expectModelError("caveat cond(flag bool) { flag\ndefinition user {}", "not closed");
    expectModelError("caveat cond(a bool, a int) { a }\ndefinition user {}", 'duplicate parameter "a"');
  });

  it("never throws anything but a NexusError on arbitrary input", () => {
    const samples = [
      "",
      "{",
      "definition",
      "definition x",
      "caveat",
      "caveat c(",
      "use",
      "definition abc { relation",
      "\u0000",
    ];
    for (const sample of samples) {
      try {
        compileSpiceDb(sample);
      } catch (error) {
        expect(isNexusError(error), `${JSON.stringify(sample)}: ${String(error)}`).toBe(true);
      }
    }
  });
});

describe("compileSpiceDb: properties", () => {
  type Tree = string | { op: "+" | "&" | "-"; left: Tree; right: Tree };
  const leaf = fc.constantFrom("aaa", "bbb", "ccc", "nil", "parent->aaa");
  const tree: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
    t: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      leaf,
      fc.record({ op: fc.constantFrom("+", "&", "-"), left: tie("t"), right: tie("t") }),
    ),
  })).t;
  const BIND = { "+": 3, "&": 2, "-": 1 } as const;

  /** Prints with the fewest parentheses SpiceDB's precedence and left-associativity allow. */
  function print(t: Tree, parentBind = 0, rightSide = false): string {
    if (typeof t === "string") return t;
    const bind = BIND[t.op];
    const text = `${print(t.left, bind, false)} ${t.op} ${print(t.right, bind, true)}`;
    return bind < parentBind || (bind === parentBind && rightSide) ? `(${text})` : text;
  }

  function expected(t: Tree): unknown {
    if (typeof t === "string") {
      if (t === "nil") return { kind: "none" };
      if (t.includes("->")) return { kind: "ttu", tupleset: "parent", computed: "aaa" };
      return { kind: "computed", relation: t };
    }
    if (t.op === "-") return { kind: "exclusion", base: expected(t.left), subtract: expected(t.right) };
    const kind = t.op === "+" ? "union" : "intersection";
    const children: unknown[] = [];
    const collect = (n: Tree) => {
      if (typeof n !== "string" && n.op === t.op) {
        collect(n.left);
        collect(n.right);
      } else children.push(expected(n));
    };
    collect(t);
    return { kind, children };
  }

  it("parses any expression printed with minimal parentheses back to the same tree", () => {
    fc.assert(
      fc.property(tree, (t) => {
        const schema = `definition user {}
definition doc {
  relation aaa: user
  relation bbb: user
  relation ccc: user
  relation parent: doc
  permission res = ${print(t)}
}`;
        expect(relation(schema, "doc", "res").rewrite).toEqual(expected(t));
      }),
      { numRuns: 300 },
    );
  });

  it("throws only NexusErrors on arbitrary text", () => {
    const alphabet = fc.constantFrom(
      ..."definition relation permission caveat use with and nil user:*#->{}()|+&-=;/.,<>\n \"'".split(""),
    );
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 80 }).map((cs) => cs.join("")),
        (text) => {
          try {
            compileSpiceDb(text);
          } catch (error) {
            if (!isNexusError(error)) throw error;
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
