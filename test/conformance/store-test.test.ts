import { describe, expect, it } from "vitest";
import { parseCsvTuples, runStoreTest } from "../../src/conformance/store-test.js";

const model = `model
  schema 1.1
type user
type folder
  relations
    define owner: [user]
    define viewer: [user, user:*] or owner
    define editor: [user with business_hours]
condition business_hours(hour: int) {
  hour >= 9 && hour < 17
}
`;

describe("runStoreTest (fga model test store files)", () => {
  it("runs check, list_objects and list_users assertions, with model and tuples from files", async () => {
    const files: Record<string, string> = {
      "model.fga": model,
      "tuples.yaml": "- user: user:anne\n  relation: owner\n  object: folder:1\n",
      "more.csv":
        'user_type,user_id,user_relation,relation,object_type,object_id,condition_name,condition_context\nuser,carl,,editor,folder,2,business_hours,"{""hour"": 10}"\n',
    };
    const report = await runStoreTest(
      `
name: Folders
model_file: ./model.fga
tuple_file: ./tuples.yaml
tests:
  - name: owners view
    tuple_files: [./more.csv]
    tuples:
      - user: user:bob
        relation: viewer
        object: folder:2
    check:
      - user: user:anne
        object: folder:1
        assertions:
          owner: true
          viewer: true
      - users: [user:bob, user:carl]
        objects: [folder:1]
        assertions:
          viewer: false
      - user: user:carl
        object: folder:2
        context: { hour: 3 }
        assertions:
          editor: true
    list_objects:
      - user: user:anne
        type: folder
        assertions:
          viewer: [folder:1]
    list_users:
      - object: folder:2
        user_filter: [{ type: user }]
        assertions:
          viewer:
            users: [user:bob]
`,
      {
        readFile: async (path) => files[path.replace(/^\.\//, "")] ?? Promise.reject(new Error(`no ${path}`)),
      },
    );
    expect(report.name).toBe("Folders");
    expect(report.assertions).toBe(7);
    const failed = report.tests.flatMap((t) => t.results.filter((r) => !r.passed));
    // carl is an editor at hour 3: his tuple fixes hour 10, and a tuple's own context wins over the request's.
    expect(failed).toEqual([]);
    expect(report.passed).toBe(true);
  });

  it("reports failing assertions with what came back, and tuples the model refuses", async () => {
    const report = await runStoreTest({
      model,
      tuples: [{ user: "user:anne", relation: "viewer", object: "folder:1" }],
      tests: [
        { name: "wrong", check: [{ user: "user:anne", object: "folder:1", assertions: { viewer: false } }] },
        { name: "bad tuple", tuples: [{ user: "user:anne", relation: "nope", object: "folder:1" }] },
        {
          name: "missing context",
          check: [{ user: "user:anne", object: "folder:1", assertions: { editor: false } }],
        },
      ],
    });
    expect(report.passed).toBe(false);
    expect(report.tests[0]!.results[0]).toMatchObject({ passed: false, expected: false, actual: true });
    expect(report.tests[1]!.error).toMatch(/invalid_tuple/);
    expect(report.tests[2]!.results[0]).toMatchObject({ passed: true });
    expect(report.failed).toBe(2);
  });

  it("needs a readFile to follow file references", async () => {
    await expect(runStoreTest({ model_file: "model.fga", tests: [] })).rejects.toThrow(/readFile/);
  });

  it("parses the CLI's CSV tuple files", () => {
    expect(
      parseCsvTuples(
        'user_type,user_id,user_relation,relation,object_type,object_id\nuser,anne,,viewer,doc,a b\ngroup,eng,member,viewer,doc,"x,y"\n',
      ),
    ).toEqual([
      { user: "user:anne", relation: "viewer", object: "doc:a b" },
      { user: "group:eng#member", relation: "viewer", object: "doc:x,y" },
    ]);
  });
});
