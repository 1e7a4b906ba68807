/**
 * The CLI with OpenFGA store files as OpenFGA has them (issue 11): modular models (fga.mod) for `check --model`
 * and as a store file's model_file, store-file paths kept inside the store's folder, tuple files' own tenants and
 * --subject-tenant, --explain's path or denied branches, and OpenFGA DSL errors on the right line.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/program.js";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: (t) => {
      out += `${t}\n`;
    },
    err: (t) => {
      err += `${t}\n`;
    },
  });
  return { code, out, err };
}

let dir: string;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nexus-fast-store-files-"));
  file("modular/fga.mod", "schema: '1.2'\ncontents:\n  - core.fga\n  - tracker/projects.fga\n");
  file(
    "modular/core.fga",
    "module core\n\ntype user\n\ntype organization\n  relations\n    define member: [user]\n    define admin: [user]\n",
  );
  file(
    "modular/tracker/projects.fga",
    "module tracker\n\nextend type organization\n  relations\n    define can_create_project: admin\n\ntype project\n  relations\n    define organization: [organization]\n    define viewer: member from organization\n",
  );
  file(
    "modular/tuples.yaml",
    "- user: user:anne\n  relation: member\n  object: organization:acme\n- user: organization:acme\n  relation: organization\n  object: project:p1\n",
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("modular models (fga.mod)", () => {
  it("checks with --model path/to/fga.mod, reading the module files it lists", async () => {
    const mod = join(dir, "modular/fga.mod");
    const tuples = join(dir, "modular/tuples.yaml");
    expect(
      (await run("check", "--model", mod, "--tuples", tuples, "user:anne", "viewer", "project:p1")).code,
    ).toBe(0);
    expect(
      (await run("check", "--model", mod, "--tuples", tuples, "user:bob", "viewer", "project:p1")).code,
    ).toBe(1);
  });

  it("runs a store file whose model_file is an fga.mod", async () => {
    const store = file(
      "modular/store.fga.yaml",
      `name: modular
model_file: ./fga.mod
tuple_file: ./tuples.yaml
tests:
  - name: viewers
    check:
      - user: user:anne
        object: project:p1
        assertions: { viewer: true }
      - user: user:bob
        object: project:p1
        assertions: { viewer: false }
`,
    );
    const result = await run("test", store);
    expect(result.err).toBe("");
    expect(result.out).toContain("PASS viewers: 2/2");
    expect(result.code).toBe(0);
  });

  it("refuses an fga.mod listing a file outside its folder", async () => {
    const mod = file("escape/fga.mod", "schema: '1.2'\ncontents:\n  - ../modular/core.fga\n");
    const result = await run("check", "--model", mod, "user:anne", "member", "organization:acme");
    expect(result.code).toBe(2);
  });
});

describe("store-file paths", () => {
  it("refuses a model_file or tuple_file outside the store file's folder, as the fga CLI does", async () => {
    const nested = file(
      "stores/a/store.fga.yaml",
      "model_file: ../../../../../../../../etc/hosts\ntests: []\n",
    );
    const result = await run("test", nested);
    expect(result.code).toBe(2);
    expect(result.err).toContain("invalid_argument");
    expect(result.err).toContain("outside");
    file("stores/model.fga", "model\n  schema 1.1\ntype user\n");
    const tuples = file(
      "stores/b/store.fga.yaml",
      "model: |\n  model\n    schema 1.1\n  type user\ntuple_file: ../tuples.yaml\ntests: []\n",
    );
    const second = await run("test", tuples);
    expect(second.code).toBe(2);
    expect(second.err).toContain("outside");
    const absolute = file(
      "stores/c/store.fga.yaml",
      `model_file: ${join(dir, "stores/model.fga")}\ntests: []\n`,
    );
    expect((await run("test", absolute)).code).toBe(2);
  });
});

const SHARE_MODEL = `model
  schema 1.1
type user
type doc
  relations
    define owner: [user]
    define shared-viewer: [user]
    define viewer: owner or shared-viewer
`;

describe("tenants in nexus-fast check", () => {
  it("writes each tuple in its file's own tenant / subjectTenant, and asks with --tenant / --subject-tenant", async () => {
    const model = file("tenants/model.fga", SHARE_MODEL);
    const tuples = file(
      "tenants/tuples.yaml",
      `- user: user:anne
  relation: owner
  object: doc:1
  tenant: acme
- user: user:bob
  relation: shared-viewer
  object: doc:1
  tenant: acme
  subjectTenant: globex
- user: user:carol
  relation: owner
  object: doc:2
`,
    );
    const ask = (...args: string[]) => run("check", "--model", model, "--tuples", tuples, ...args);
    expect((await ask("--tenant", "acme", "user:anne", "viewer", "doc:1")).code).toBe(0);
    // Not every tuple went into --tenant: anne's tuple is acme's, carol's is the default tenant's.
    expect((await ask("user:anne", "viewer", "doc:1")).code).toBe(1);
    expect((await ask("user:carol", "viewer", "doc:2")).code).toBe(0);
    // A tuple without a tenant of its own goes into --tenant.
    expect((await ask("--tenant", "acme", "user:carol", "viewer", "doc:2")).code).toBe(0);
    expect((await ask("--tenant", "globex", "user:anne", "viewer", "doc:1")).code).toBe(1);
    // bob of globex, shared into acme.
    expect(
      (await ask("--tenant", "acme", "--subject-tenant", "globex", "user:bob", "viewer", "doc:1")).code,
    ).toBe(0);
    expect((await ask("--tenant", "acme", "user:bob", "viewer", "doc:1")).code).toBe(1);
  });

  it("refuses a tuple file whose tenant is not a string", async () => {
    const model = file("tenants/model2.fga", SHARE_MODEL);
    const tuples = file(
      "tenants/bad.yaml",
      "- user: user:anne\n  relation: owner\n  object: doc:1\n  tenant: 7\n",
    );
    const result = await run("check", "--model", model, "--tuples", tuples, "user:anne", "viewer", "doc:1");
    expect(result.code).toBe(2);
    expect(result.err).toContain("invalid_tuple");
  });
});

describe("nexus-fast check --explain", () => {
  const model = `model
  schema 1.1
type user
type team
  relations
    define member: [user]
type folder
  relations
    define viewer: [user, team#member]
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user]
    define viewer: (owner or viewer from parent) but not blocked
`;
  const tuples = `- user: user:anne
  relation: member
  object: team:eng
- user: team:eng#member
  relation: viewer
  object: folder:specs
- user: folder:specs
  relation: parent
  object: doc:design
- user: user:bob
  relation: owner
  object: doc:design
- user: user:bob
  relation: blocked
  object: doc:design
`;

  it("prints the path that granted", async () => {
    const m = file("explain/model.fga", model);
    const t = file("explain/tuples.yaml", tuples);
    const result = await run(
      "check",
      "--model",
      m,
      "--tuples",
      t,
      "--explain",
      "user:anne",
      "viewer",
      "doc:design",
    );
    expect(result.code).toBe(0);
    expect(result.out).toContain("granted by:");
    expect(result.out).toContain("doc:design#viewer: granted");
    expect(result.out).toContain("folder:specs#viewer: granted");
    expect(result.out).toContain("team:eng#member: granted");
    expect(result.out).toContain("tuple: user:anne");
  });

  it("prints the branches that denied", async () => {
    const m = file("explain/model.fga", model);
    const t = file("explain/tuples.yaml", tuples);
    const blocked = await run(
      "check",
      "--model",
      m,
      "--tuples",
      t,
      "--explain",
      "user:bob",
      "viewer",
      "doc:design",
    );
    expect(blocked.code).toBe(1);
    expect(blocked.out).toContain("denied; the branches:");
    expect(blocked.out).toContain("but not (excluded)");
    expect(blocked.out).toContain("doc:design#blocked: granted");
    const stranger = await run(
      "check",
      "--model",
      m,
      "--tuples",
      t,
      "--explain",
      "user:eve",
      "viewer",
      "doc:design",
    );
    expect(stranger.code).toBe(1);
    expect(stranger.out).toContain("doc:design#owner: denied");
    expect(stranger.out).toContain("folder:specs#viewer: denied");
    expect(stranger.out).toContain("no tuple names user:eve");
  });
});

describe("OpenFGA DSL errors", () => {
  it("report the line the mistake is on (1-based)", async () => {
    const m = file(
      "errors/model.fga",
      [
        "model",
        "  schema 1.1",
        "type user",
        "type doc",
        "  relations",
        "    define viewer: [user, unknown]",
      ].join("\n"),
    );
    const result = await run("check", "--model", m, "user:anne", "viewer", "doc:1");
    expect(result.code).toBe(2);
    expect(result.err).toContain("line 6, column 27");
  });
});
