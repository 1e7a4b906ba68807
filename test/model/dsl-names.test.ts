/**
 * OpenFGA's DSL tooling keeps names as keys of plain objects. A DSL model naming a type, relation, condition or
 * parameter after one of Object.prototype's own properties wrote to JavaScript's built-in objects through its
 * validator (`type __proto__` with a relation `viewer` set Object.prototype.viewer for the whole process, and every
 * later model defining `viewer` was refused). Such names are refused before the tooling sees them (src/model/openfga.ts).
 */
import { afterEach, describe, expect, it } from "vitest";
import { compileModelAsync } from "../../src/model/index.js";
import { isNexusError } from "../../src/util/errors.js";

const header = "model\n  schema 1.1\ntype user\n";

async function refusal(model: string | object): Promise<unknown> {
  try {
    await compileModelAsync(model);
  } catch (error) {
    return error;
  }
  return undefined;
}

afterEach(() => {
  // Nothing may have been written to the built-ins by any case.
  expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain("viewer");
  expect(Object.getOwnPropertyNames(Object)).not.toContain("viewer");
});

describe("DSL names that are Object.prototype's own properties", () => {
  it("are refused as types, relations, conditions and parameters, naming the name and its line", async () => {
    const cases: [string, string, number][] = [
      [`${header}type __proto__\n  relations\n    define viewer: [user]\n`, "__proto__", 4],
      [`${header}type doc\n  relations\n    define __proto__: [user]\n`, "__proto__", 6],
      [`${header}type constructor\n  relations\n    define viewer: [user]\n`, "constructor", 4],
      [
        `${header}type doc\n  relations\n    define owner: [user]\n    define viewer: [user] or toString\n`,
        "toString",
        7,
      ],
      [
        `${header}type doc\n  relations\n    define viewer: [user with hasOwnProperty]\ncondition hasOwnProperty(x: int) {\n  x > 1\n}\n`,
        "hasOwnProperty",
        6,
      ],
      [
        `${header}type doc\n  relations\n    define viewer: [user with c]\ncondition c(valueOf: int) {\n  valueOf > 1\n}\n`,
        "valueOf",
        7,
      ],
    ];
    for (const [dsl, name, line] of cases) {
      const error = await refusal(dsl);
      expect(isNexusError(error, "invalid_model"), `${name}: ${String(error)}`).toBe(true);
      expect((error as Error).message).toContain(`line ${line}: '${name}' cannot be a name`);
    }
    // A model using the name `viewer` still compiles afterwards (it was refused as "already defined" before).
    const program = await compileModelAsync(`${header}type doc\n  relations\n    define viewer: [user]\n`);
    expect(program.types.get("doc")?.relations.has("viewer")).toBe(true);
  });

  it("are refused in a modular model's files, naming the file", async () => {
    const error = await refusal({
      modules: {
        "fga.mod": "schema: '1.2'\ncontents:\n  - core.fga\n",
        "core.fga": "module core\ntype user\ntype __proto__\n  relations\n    define viewer: [user]\n",
      },
    });
    expect(isNexusError(error, "invalid_model"), String(error)).toBe(true);
    expect((error as Error).message).toContain("core.fga line 3: '__proto__'");
  });

  it("are fine inside comments, string literals, member accesses and longer names", async () => {
    const dsl = `# type __proto__ in a comment
model
  schema 1.1
type user
type my-constructor # constructor
  relations
    define viewer: [user, user with c]
    define toString_2: [user]
condition c(name: string) {
  name == "constructor" && name.size() > 1
}
`;
    const program = await compileModelAsync(dsl);
    expect([...program.types.keys()]).toEqual(["user", "my-constructor"]);
    expect([...program.types.get("my-constructor")!.relations.keys()]).toEqual(["viewer", "toString_2"]);
  });
});
