import { describe, expect, it } from "vitest";
import { compileNexus } from "../../src/model/nexus.js";
import { nexusFilesystemModel } from "../../src/model/preset.js";
import { isNexusError } from "../../src/util/errors.js";

function expectModelError(input: object, ...fragments: string[]): void {
  try {
    compileNexus(input);
  } catch (error) {
    expect(isNexusError(error, "invalid_model"), String(error)).toBe(true);
    for (const fragment of fragments) expect((error as Error).message).toContain(fragment);
    return;
  }
  throw new Error(`config compiled but should not: ${JSON.stringify(input)}`);
}

const ref = (relation: string) => ({ kind: "computed", relation });

describe("compileNexus: constructs", () => {
  it("compiles {} / union / intersection / tupleToUserset relations and permission lists", () => {
    const program = compileNexus({
      doc: {
        relations: {
          parent: {},
          viewer: {},
          approved: {},
          parent_viewer: { tupleToUserset: { tupleset: "parent", computedUserset: "viewer" } },
          any_viewer: { union: ["viewer", "parent_viewer"] },
          approved_viewer: { intersection: ["any_viewer", "approved"] },
        },
        permissions: {
          read: ["approved_viewer", "viewer"],
          read2: { union: ["viewer"] },
          read3: { intersection: ["viewer", "approved"] },
        },
      },
    });
    expect(program.format).toBe("nexus");
    const rel = program.types.get("doc")!.relations;
    expect(rel.get("viewer")).toEqual({
      name: "viewer",
      rewrite: { kind: "direct" },
      directSubjects: undefined,
      allowsExpiration: true,
      shareable: false,
      isPermission: false,
    });
    expect(rel.get("parent_viewer")!.rewrite).toEqual({
      kind: "ttu",
      tupleset: "parent",
      computed: "viewer",
    });
    expect(rel.get("parent_viewer")!.directSubjects).toEqual([]);
    expect(rel.get("any_viewer")!.rewrite).toEqual({
      kind: "union",
      children: [ref("viewer"), ref("parent_viewer")],
    });
    expect(rel.get("approved_viewer")!.rewrite).toEqual({
      kind: "intersection",
      children: [ref("any_viewer"), ref("approved")],
    });
    expect(rel.get("read")).toMatchObject({
      rewrite: { kind: "union", children: [ref("approved_viewer"), ref("viewer")] },
      directSubjects: [],
      isPermission: true,
    });
    expect(rel.get("read2")!.rewrite).toEqual({ kind: "union", children: [ref("viewer")] });
    expect(rel.get("read3")!.rewrite).toEqual({
      kind: "intersection",
      children: [ref("viewer"), ref("approved")],
    });
  });

  it("folds Nexus's bare exclusion into `base but not x` inside an intersection", () => {
    const program = compileNexus({
      doc: {
        relations: {
          viewer: {},
          editor: {},
          banned: {},
          suspended: {},
          not_banned: { exclusion: "banned" },
          not_suspended: { exclusion: "suspended" },
          allowed: { intersection: ["viewer", "not_banned"] },
          both: { intersection: ["viewer", "editor", "not_banned", "not_suspended"] },
        },
        permissions: { read: { intersection: ["viewer", "not_banned"] } },
      },
    });
    const rel = program.types.get("doc")!.relations;
    expect(rel.get("allowed")!.rewrite).toEqual({
      kind: "exclusion",
      base: ref("viewer"),
      subtract: ref("banned"),
    });
    expect(rel.get("both")!.rewrite).toEqual({
      kind: "exclusion",
      base: { kind: "intersection", children: [ref("viewer"), ref("editor")] },
      subtract: { kind: "union", children: [ref("banned"), ref("suspended")] },
    });
    expect(rel.get("read")!.rewrite).toEqual({
      kind: "exclusion",
      base: ref("viewer"),
      subtract: ref("banned"),
    });
    // A negation on its own cannot be checked (there is no "everyone" to subtract from): it is not in the Program.
    expect(rel.has("not_banned")).toBe(false);
  });

  it("accepts the wrapped and the stored-row input shapes", () => {
    const config = { relations: { member: {} }, permissions: { read: ["member"] } };
    const a = compileNexus({ group: config });
    const b = compileNexus({ namespaces: { group: config } });
    const c = compileNexus([{ object_type: "group", config }]);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it("compiles the preset faithfully (Nexus's DEFAULT_FILE_NAMESPACE / DEFAULT_GROUP_NAMESPACE)", () => {
    const program = compileNexus(nexusFilesystemModel);
    expect([...program.types.keys()]).toEqual(["user", "agent", "file", "group"]);
    expect(program.types.get("user")!.relations.size).toBe(0);
    const file = program.types.get("file")!.relations;
    expect([...file.keys()]).toEqual([
      "parent",
      "direct_owner",
      "direct_editor",
      "direct_viewer",
      "parent_owner",
      "parent_editor",
      "parent_viewer",
      "group_owner",
      "group_editor",
      "group_viewer",
      "shared-viewer",
      "shared-editor",
      "shared-owner",
      "owner",
      "editor",
      "viewer",
      "read",
      "write",
      "execute",
      "traverse",
    ]);
    expect([...file.values()].filter((r) => r.shareable).map((r) => r.name)).toEqual([
      "shared-viewer",
      "shared-editor",
      "shared-owner",
    ]);
    expect(file.get("parent_viewer")!.rewrite).toEqual({
      kind: "ttu",
      tupleset: "parent",
      computed: "viewer",
    });
    expect(file.get("group_editor")!.rewrite).toEqual({
      kind: "ttu",
      tupleset: "direct_editor",
      computed: "member",
    });
    expect(file.get("viewer")!.rewrite).toEqual({
      kind: "union",
      children: [
        "direct_viewer",
        "parent_viewer",
        "group_viewer",
        "shared-viewer",
        "shared-editor",
        "shared-owner",
      ].map(ref),
    });
    expect(file.get("write")!.rewrite).toEqual({ kind: "union", children: [ref("editor"), ref("owner")] });
    expect(file.get("execute")!.rewrite).toEqual({ kind: "union", children: [ref("owner")] });
    // Not in Nexus's namespace (its NexusFS checks it before listing): granted as read is.
    expect(file.get("traverse")!.rewrite).toEqual({
      kind: "union",
      children: [ref("editor"), ref("viewer"), ref("owner")],
    });
    const group = program.types.get("group")!.relations;
    expect([...group.keys()]).toEqual(["member", "admin", "viewer", "read", "write", "manage"]);
    expect(group.get("viewer")!.rewrite).toEqual({ kind: "union", children: [ref("admin"), ref("member")] });
  });
});

describe("compileNexus: errors", () => {
  it("rejects malformed configs, naming the path", () => {
    expectModelError({}, "no object types");
    expectModelError({ file: "x" }, "file", "expected { relations, permissions }");
    expectModelError(
      { file: { relations: { viewer: { unoin: ["a"] } } } },
      "file.relations.viewer",
      'unknown key "unoin"',
    );
    expectModelError(
      { file: { relations: { viewer: { union: [] } } } },
      "file.relations.viewer.union",
      "non-empty list",
    );
    expectModelError(
      { file: { relations: { viewer: { union: ["a", 3] } } } },
      "file.relations.viewer.union[1]",
    );
    expectModelError(
      { file: { relations: { viewer: { union: ["a"], intersection: ["b"] } } } },
      "more than one operator",
    );
    expectModelError(
      { file: { relations: { p: { tupleToUserset: { tupleset: "parent" } } } } },
      "file.relations.p.tupleToUserset.computedUserset",
    );
    expectModelError(
      { file: { relations: { viewer: {} }, permissions: { read: "viewer" } } },
      "file.permissions.read",
    );
    expectModelError(
      { file: { relations: { read: {} }, permissions: { read: ["read"] } } },
      "both as a relation and as a permission",
    );
    expectModelError({ file: { relations: {}, extra: 1 } }, "file.extra", "unknown key");
    expectModelError({ "bad type": { relations: {} } }, "invalid object type name");
    expectModelError(
      [
        { object_type: "a", config: {} },
        { object_type: "a", config: {} },
      ],
      'duplicate object_type "a"',
    );
  });

  it("rejects a bare exclusion that nothing gives a base", () => {
    expectModelError(
      {
        doc: { relations: { banned: {}, not_banned: { exclusion: "banned" }, x: { union: ["not_banned"] } } },
      },
      "doc.relations.x.union[0]",
      "bare exclusion",
    );
    expectModelError(
      {
        doc: {
          relations: { banned: {}, nb: { exclusion: "banned" } },
          permissions: { read: { exclusion: "banned" } },
        },
      },
      "doc.permissions.read.exclusion",
      "no base",
    );
    expectModelError(
      { doc: { relations: { banned: {}, nb: { exclusion: "banned" }, x: { intersection: ["nb"] } } } },
      "intersection of exclusions only",
    );
  });
});
