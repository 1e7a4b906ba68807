import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/program.js";

/** Runs the CLI in-process, capturing its output. */
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
  writeFileSync(path, text);
  return path;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nexus-fast-cli-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MODEL = `model
  schema 1.1

type user

type team
  relations
    define member: [user, team#member]

type folder
  relations
    define viewer: [user, team#member]

type doc
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, team#member] or owner or viewer from parent
`;

const TUPLES = `- user: user:anne
  relation: owner
  object: doc:readme
- user: team:eng#member
  relation: viewer
  object: folder:specs
- user: user:bob
  relation: member
  object: team:eng
- user: folder:specs
  relation: parent
  object: doc:design
`;

describe("nexus-fast (overview)", () => {
  it("prints help and the version, and rejects unknown commands", async () => {
    const help = await run("--help");
    expect(help.code).toBe(0);
    expect(help.out).toContain("Usage: nexus-fast <command>");
    for (const command of ["demo", "check", "test"]) expect(help.out).toContain(command);
    const checkHelp = await run("check", "--help");
    expect(checkHelp.out).toContain("Exit code: 0 allowed, 1 denied, 2 error");
    expect((await run("--version")).out).toMatch(/^nexus-fast \d+\.\d+\.\d+/);
    const unknown = await run("frobnicate");
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown command "frobnicate"');
  });
});

describe("nexus-fast check", () => {
  it("answers with exit code 0 (allowed) or 1 (denied)", async () => {
    const model = file("model.fga", MODEL);
    const tuples = file("tuples.yaml", TUPLES);
    const allowed = await run(
      "check",
      "--model",
      model,
      "--tuples",
      tuples,
      "user:anne",
      "viewer",
      "doc:readme",
    );
    expect(allowed).toMatchObject({ code: 0, out: "allowed\n" });
    const nested = await run(
      "check",
      "--model",
      model,
      "--tuples",
      tuples,
      "user:bob",
      "viewer",
      "doc:design",
    );
    expect(nested).toMatchObject({ code: 0, out: "allowed\n" });
    const denied = await run(
      "check",
      "--model",
      model,
      "--tuples",
      tuples,
      "user:bob",
      "viewer",
      "doc:readme",
    );
    expect(denied).toMatchObject({ code: 1, out: "denied\n" });
  });

  it("exits 2 on errors, naming the problem", async () => {
    const model = file("model2.fga", MODEL);
    const badModel = file(
      "bad.fga",
      "model\n  schema 1.1\ntype doc\n  relations\n    define viewer: [person]\n",
    );
    const badTuples = file(
      "bad-tuples.json",
      JSON.stringify([{ user: "user:anne", relation: "nope", object: "doc:1" }]),
    );
    const r1 = await run("check", "--model", badModel, "user:anne", "viewer", "doc:1");
    expect(r1.code).toBe(2);
    expect(r1.err).toContain("invalid_model");
    const r2 = await run("check", "--model", model, "--tuples", badTuples, "user:anne", "viewer", "doc:1");
    expect(r2.code).toBe(2);
    expect(r2.err).toContain("invalid_tuple");
    const r3 = await run("check", "--model", model, "user:anne", "viewer");
    expect(r3.code).toBe(2);
    expect(r3.err).toContain("expected <user> <relation> <object>");
    const r4 = await run("check", "--model", model, "user:anne", "nope", "doc:1");
    expect(r4.code).toBe(2);
    expect(r4.err).toContain("relation_not_found");
    const r5 = await run("check", "--model", join(dir, "missing.fga"), "user:anne", "viewer", "doc:1");
    expect(r5.code).toBe(2);
    expect(r5.err).toContain("io_error");
    const r6 = await run("check", "--bogus", "user:anne", "viewer", "doc:1");
    expect(r6.code).toBe(2);
  });

  it("reads SpiceDB schemas, relationship lines and contexts; defaults to the Nexus preset", async () => {
    const schema = file(
      "schema.zed",
      `caveat weekday(day string) {
  day != "sunday"
}
definition user {}
definition doc {
  relation viewer: user with weekday
  permission view = viewer
}
`,
    );
    const rels = file("rels.txt", "# relationships\ndoc:plan#viewer@user:anne[weekday]\n");
    const base = ["check", "--model", schema, "--tuples", rels, "user:anne", "view", "doc:plan"];
    expect((await run(...base, "--context", '{"day":"monday"}')).code).toBe(0);
    expect((await run(...base, "--context", '{"day":"sunday"}')).code).toBe(1);
    const explained = await run(...base, "--context", '{"day":"monday"}', "--explain");
    expect(explained.out).toMatch(/^allowed\nmodel: spicedb .*1 tuple\(s\) loaded/);
    const csv = file(
      "tuples.csv",
      "user_type,user_id,user_relation,relation,object_type,object_id\nuser,anne,,direct_viewer,file,/a\nfile,/a,,parent,file,/a/b\n",
    );
    expect((await run("check", "--tuples", csv, "user:anne", "read", "file:/a/b")).code).toBe(0);
    expect((await run("check", "--tuples", csv, "user:anne", "write", "file:/a/b")).code).toBe(1);
  });
});

describe("nexus-fast test", () => {
  const storeFile = (name: string, extraAssertion: string) =>
    file(
      name,
      `name: docs
model_file: ./model3.fga
tuple_file: ./tuples3.yaml
tests:
  - name: owners and teams
    tuples:
      - user: user:carl
        relation: member
        object: team:eng
    check:
      - user: user:anne
        object: doc:readme
        assertions:
          viewer: true
          owner: true
      - users: [user:bob, user:carl]
        object: doc:design
        assertions:
          viewer: ${extraAssertion}
    list_objects:
      - user: user:bob
        type: doc
        assertions:
          viewer: [doc:design]
    list_users:
      - object: doc:design
        user_filter:
          - type: user
        assertions:
          viewer:
            users: [user:bob, user:carl]
  - name: isolated from the previous test's tuples
    check:
      - user: user:carl
        object: doc:design
        assertions:
          viewer: false
`,
    );

  it("passes a store file whose assertions hold (exit 0)", async () => {
    file("model3.fga", MODEL);
    file("tuples3.yaml", TUPLES);
    const result = await run("test", storeFile("pass.fga.yaml", "true"));
    expect(result.err).toBe("");
    expect(result.code).toBe(0);
    expect(result.out).toContain("PASS owners and teams: 6/6");
    expect(result.out).toContain("PASS isolated from the previous test's tuples: 1/1");
    expect(result.out).toContain("2 test(s), 7 assertion(s): 7 passed, 0 failed");
  });

  it("reports a failing assertion and exits 1", async () => {
    file("model3.fga", MODEL);
    file("tuples3.yaml", TUPLES);
    const result = await run("test", storeFile("fail.fga.yaml", "false"));
    expect(result.code).toBe(1);
    expect(result.out).toContain("FAIL owners and teams: 4/6");
    expect(result.out).toContain("FAIL check user:bob viewer doc:design: expected false, got true");
    expect(result.out).toContain("7 assertion(s): 5 passed, 2 failed");
  });

  it("exits 2 on a store file it cannot use", async () => {
    const missingModel = await run("test", file("nomodel.fga.yaml", "name: x\ntests: []\n"));
    expect(missingModel.code).toBe(2);
    expect(missingModel.err).toContain('needs "model"');
    expect((await run("test")).code).toBe(2);
  });
});

describe("nexus-fast demo", () => {
  it("builds the scenario and prints its tables, every answer as required", async () => {
    const result = await run("demo", "--files", "200", "--bulk", "50", "--bench-size", "0");
    expect(result.err).toBe("");
    expect(result.code).toBe(0);
    for (const heading of [
      "Built",
      "Questions",
      "Directory listing",
      "List objects",
      "Bulk check",
      "Revoke",
      "Expiry",
    ]) {
      expect(result.out).toContain(heading);
    }
    expect(result.out).toMatch(/acme\s+7\s+/);
    expect(result.out).toContain("globex→acme");
    expect(result.out).not.toContain("WRONG");
    // Every count it prints has its rows, or says how many it shows.
    const numberedRows = result.out.split("\n").filter((l) => /^\s+\d+\s{2}(acme|globex)/.test(l)).length;
    const fsRows = result.out
      .split("\n")
      .filter((l) => /^\s+(read|write|ls|glob|revoke|restart)\s{2,}\S/.test(l)).length;
    const summary =
      /All (\d+) results as the model requires: (\d+) numbered answers, the ls listing, the list objects, the bulk check and (\d+) filesystem steps\./.exec(
        result.out,
      );
    expect(summary).not.toBeNull();
    const [, total, numbered, steps] = summary!.map(Number);
    expect(numbered).toBe(numberedRows);
    expect(steps).toBe(fsRows);
    expect(total).toBe(numbered! + 3 + steps!);
    expect(result.out).toMatch(/305 files and folders .*, showing 6 of 305:/);
    expect(result.out).toMatch(/First check in this process: \S+ (ms|µs)/);
    expect(result.out).toContain("the same 50 answers as the reference evaluator");
  });

  it("leaves nothing running", async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").length;
    expect(
      (await run("demo", "--files", "50", "--bulk", "10", "--fs-files", "4", "--bench-size", "0")).code,
    ).toBe(0);
    const after = process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap").length;
    expect(after).toBeLessThanOrEqual(before);
  });
});

describe("the nexus-fast executable", () => {
  it("exits with the command's code", () => {
    const model = file("exe.fga", MODEL);
    const tuples = file("exe.yaml", TUPLES);
    const node = (args: string[]) =>
      spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { encoding: "utf8" });
    const allowed = node(["check", "--model", model, "--tuples", tuples, "user:anne", "owner", "doc:readme"]);
    expect(allowed.stdout).toBe("allowed\n");
    expect(allowed.status).toBe(0);
    expect(
      node(["check", "--model", model, "--tuples", tuples, "user:bob", "owner", "doc:readme"]).status,
    ).toBe(1);
    expect(node(["check", "--model", model, "user:bob"]).status).toBe(2);
  });
});

describe("nexus-fast preset, and mistyped flags and commands", () => {
  it("prints the built-in model, and as JSON a model check answers the same with", async () => {
    const shown = await run("preset");
    expect(shown.code).toBe(0);
    for (const line of [
      "type file",
      "permission read",
      "permission traverse",
      "parent_viewer",
      "type group",
    ]) {
      expect(shown.out).toContain(line);
    }
    const json = await run("preset", "--json");
    const model = file("preset.json", json.out);
    const tuples = file(
      "preset-tuples.txt",
      "file:/a#direct_viewer@user:alice\nfile:/a/b.txt#parent@file:/a\n",
    );
    const withPreset = await run("check", "--tuples", tuples, "user:alice", "read", "file:/a/b.txt");
    const withJson = await run(
      "check",
      "--model",
      model,
      "--tuples",
      tuples,
      "user:alice",
      "read",
      "file:/a/b.txt",
    );
    expect([withPreset.code, withJson.code]).toEqual([0, 0]);
  });

  it("names the nearest known flag or command", async () => {
    const flag = await run("check", "--modle", "m.fga", "user:a", "viewer", "doc:b");
    expect(flag.code).toBe(2);
    expect(flag.err).toContain("unknown option --modle (did you mean --model?)");
    const command = await run("chek");
    expect(command.code).toBe(2);
    expect(command.err).toContain('unknown command "chek" (did you mean check?)');
  });
});
