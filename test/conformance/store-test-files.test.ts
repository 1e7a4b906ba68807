/**
 * runStoreTest with OpenFGA store files as OpenFGA has them: a modular model (model_file: fga.mod) and file names
 * that must stay in the store file's folder.
 */
import { describe, expect, it } from "vitest";
import { runStoreTest } from "../../src/conformance/store-test.js";

const files: Record<string, string> = {
  "model/fga.mod": "schema: '1.2'\ncontents:\n  - core.fga\n  - extra/docs.fga\n",
  "model/core.fga": "module core\n\ntype user\n\ntype team\n  relations\n    define member: [user]\n",
  "model/extra/docs.fga":
    "module docs\n\ntype doc\n  relations\n    define team: [team]\n    define viewer: member from team\n\nextend type team\n  relations\n    define lead: [user]\n",
};
const readFile = async (path: string) => files[path] ?? Promise.reject(new Error(`no ${path}`));

describe("store files", () => {
  it("run a modular model named by model_file: fga.mod", async () => {
    const report = await runStoreTest(
      {
        model_file: "model/fga.mod",
        tuples: [
          { user: "user:anne", relation: "member", object: "team:eng" },
          { user: "team:eng", relation: "team", object: "doc:1" },
          { user: "user:bob", relation: "lead", object: "team:eng" },
        ],
        tests: [
          {
            name: "modular",
            check: [
              { user: "user:anne", object: "doc:1", assertions: { viewer: true } },
              { user: "user:bob", object: "doc:1", assertions: { viewer: false } },
              { user: "user:bob", object: "team:eng", assertions: { lead: true } },
            ],
          },
        ],
      },
      { readFile },
    );
    expect(report.tests.flatMap((t) => t.results.filter((r) => !r.passed))).toEqual([]);
    expect(report.assertions).toBe(3);
  });

  it("refuse model_file and tuple_file paths outside the store file's folder", async () => {
    let read = 0;
    const counting = async (path: string) => {
      read++;
      return readFile(path);
    };
    for (const path of ["../../etc/hosts", "/etc/hosts", "a/../../b.fga", "..\\x.fga"]) {
      await expect(
        runStoreTest({ model_file: path, tests: [] }, { readFile: counting }),
      ).rejects.toMatchObject({
        code: "invalid_argument",
      });
      await expect(
        runStoreTest(
          { model: "model\n  schema 1.1\ntype user\n", tuple_file: path, tests: [] },
          { readFile: counting },
        ),
      ).rejects.toMatchObject({ code: "invalid_argument" });
    }
    expect(read).toBe(0);
    // A `..` that stays inside the folder is not refused: the file is asked of readFile (which lacks it).
    await expect(
      runStoreTest({ model_file: "model/extra/../fga.mod", tests: [] }, { readFile }),
    ).rejects.toThrow(/cannot read "model\/extra\/\.\.\/fga\.mod"/);
  });
});
