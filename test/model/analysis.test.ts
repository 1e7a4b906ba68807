/**
 * The one model analysis (src/model/analysis.ts) keeps two kinds of edge apart: granting edges leave a subtracted
 * branch out (it never grants: list objects and canReach must not follow it), dependency edges count every rewrite
 * position (a tuple under `but not` changes answers: the reverse index a cache walks must follow it).
 */
import { describe, expect, it } from "vitest";
import { analyze } from "../../src/model/analysis.js";
import { compileModel, loadOpenFgaDsl } from "../../src/model/index.js";

await loadOpenFgaDsl();

const program = compileModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user]
type folder
  relations
    define viewer: [user, group#member]
    define blocked: [user]
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define banned: [user]
    define viewer: ([user] or owner or viewer from parent) but not banned
    define audit: blocked from parent
`);

describe("model analysis", () => {
  it("leaves subtracted branches out of the granting edges and keeps them in the dependency edges", () => {
    const a = analyze(program);
    expect(a.computedParents("doc", "owner")).toEqual([{ type: "doc", relation: "viewer" }]);
    expect(a.computedParents("doc", "banned")).toEqual([]);
    expect(a.dependents.computedParents("doc", "banned")).toEqual(["viewer"]);
    expect(a.dependents.computedParents("doc", "owner")).toEqual(["viewer"]);
    expect(a.ttuParents("folder", "viewer")).toEqual([
      { type: "doc", relation: "viewer", tupleset: "parent" },
    ]);
    expect(a.dependents.ttuParents("folder", "blocked")).toEqual([
      { type: "doc", relation: "audit", tupleset: "parent" },
    ]);
    expect(a.canReach("doc", "viewer", "user")).toBe(true);
    expect(a.canReach("doc", "viewer", "group#member")).toBe(true);
    expect(a.canReach("doc", "owner", "group#member")).toBe(false);
  });

  it("offers the reverse index a cache walks from a changed tuple list", () => {
    const d = analyze(program).dependents;
    // doc:x#parent is read by parent itself and by every relation following it as a tupleset.
    expect([...d.listReaders("doc", "parent")].sort()).toEqual(["audit", "parent", "viewer"]);
    expect(d.listReaders("doc", "owner")).toEqual(["owner"]);
    expect(d.usersetSubject("group", "member")).toBe(true);
    expect(d.usersetSubject("doc", "viewer")).toBe(false);
    expect(d.reaches("doc#viewer", "group#member")).toBe(true);
    expect(d.reaches("doc#viewer", "doc#banned")).toBe(true);
    expect(d.reaches("doc#owner", "doc#viewer")).toBe(false);
  });

  it("is computed once per Program", () => {
    expect(analyze(program)).toBe(analyze(program));
    expect(analyze(program).edges.reads.get("doc#audit")).toEqual(new Set(["doc#parent"]));
  });
});
