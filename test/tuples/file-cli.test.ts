// `--data DIR` in the CLI: `nexus-fast write --data DIR` keeps a model version and tuples in a file tuple store,
// and a later `nexus-fast check --data DIR`, in another process, answers from them.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/program.js";
import { openFileTupleStore } from "../../src/tuples/file/index.js";
import { tempDir } from "../blobs/helpers.js";

const { dir: root, cleanup } = tempDir("nexus-cli-data-");
afterAll(cleanup);

const file = (name: string, text: string): string => {
  const path = join(root, name);
  writeFileSync(path, text);
  return path;
};

const MODEL = file(
  "model.fga",
  `model
  schema 1.1

type user

type doc
  relations
    define viewer: [user, user with in_region]

condition in_region(region: string, allowed: list<string>) {
  region in allowed
}
`,
);

const TUPLES = file(
  "tuples.yaml",
  `- user: user:anne
  relation: viewer
  object: doc:1
- user: user:carl
  relation: viewer
  object: doc:2
  condition:
    name: in_region
    context:
      allowed: [eu]
`,
);

/** The CLI as a user runs it: its own process. */
function cli(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { encoding: "utf8" });
}

/** The CLI in this process (each call opens and closes the store, as a new process would). */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
  });
  return { code, out, err };
}

describe("nexus-fast --data DIR", () => {
  it("check answers from what an earlier write process stored, model included", () => {
    const data = join(root, "perms");
    const wrote = cli("write", "--data", data, "--model", MODEL, "--tuples", TUPLES);
    expect(wrote.stderr).toBe("");
    expect(wrote.status).toBe(0);
    expect(wrote.stdout).toMatch(/revision 1 after 2 write\(s\)/);

    const anne = cli("check", "--data", data, "user:anne", "viewer", "doc:1");
    expect([anne.status, anne.stdout]).toEqual([0, "allowed\n"]);
  });

  it("keeps conditions with their context, skips repeated writes, and makes deletes stick", async () => {
    const data = join(root, "conditions");
    expect((await run("write", "--data", data, "--model", MODEL, "--tuples", TUPLES)).code).toBe(0);
    expect((await run("check", "--data", data, "user:bob", "viewer", "doc:1")).code).toBe(1);
    const carl = ["check", "--data", data, "user:carl", "viewer", "doc:2"];
    expect((await run(...carl, "--context", '{"region":"eu"}')).code).toBe(0);
    expect((await run(...carl, "--context", '{"region":"us"}')).code).toBe(1);
    // Running the same write again changes nothing; deleting takes anne's access away for good.
    expect((await run("write", "--data", data, "--tuples", TUPLES)).out).toMatch(/revision 1 /);
    const deletes = file("revoke.txt", "doc:1#viewer@user:anne\n");
    expect((await run("write", "--data", data, "--deletes", deletes)).code).toBe(0);
    expect((await run("check", "--data", data, "user:anne", "viewer", "doc:1")).code).toBe(1);
    const store = await openFileTupleStore({ dir: data });
    expect(await store.currentRevision()).toBe(2);
    await store.close();
  });

  it("refuses tuples the model does not allow, leaving the store as it was", async () => {
    const data = join(root, "strict");
    expect((await run("write", "--data", data, "--model", MODEL, "--tuples", TUPLES)).code).toBe(0);
    const bad = file("bad.txt", "doc:1#owner@user:anne\n");
    const refused = await run("write", "--data", data, "--tuples", bad);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/owner/);
    const store = await openFileTupleStore({ dir: data });
    expect(await store.currentRevision()).toBe(1);
    expect((await store.models.list("default")).length).toBe(1);
    await store.close();
  });

  it("reports usage errors: no --data for write, --tuples with --data for check", async () => {
    expect((await run("write", "--tuples", TUPLES)).code).toBe(2);
    expect((await run("write", "--data", join(root, "empty"))).code).toBe(2);
    const mixed = await run(
      "check",
      "--data",
      join(root, "x"),
      "--tuples",
      TUPLES,
      "user:a",
      "viewer",
      "doc:1",
    );
    expect(mixed.code).toBe(2);
    expect(mixed.err).toMatch(/do not mix/);
  });
});
