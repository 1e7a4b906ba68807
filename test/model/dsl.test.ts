/**
 * OpenFGA's DSL parser loads on demand (src/model/dsl.ts). Vitest gives each test file its own module registry,
 * so this file starts with the parser not loaded, as an app does.
 */
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import {
  compileModel,
  compileModelAsync,
  isOpenFgaDslLoaded,
  loadOpenFgaDsl,
} from "../../src/model/index.js";
import { isNexusError } from "../../src/util/errors.js";

const DSL = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]
`;
const JSON_MODEL = {
  schema_version: "1.1",
  type_definitions: [
    { type: "user" },
    {
      type: "doc",
      relations: { viewer: { this: {} } },
      metadata: { relations: { viewer: { directly_related_user_types: [{ type: "user" }] } } },
    },
  ],
};
const SPICEDB = "definition user {}\ndefinition doc {\n  relation viewer: user\n}\n";
const MODULES = {
  modules: {
    "fga.mod": "schema: '1.2'\ncontents:\n  - core.fga\n",
    "core.fga": "module core\ntype user\ntype doc\n  relations\n    define viewer: [user]\n",
  },
};

describe("the OpenFGA DSL parser, loaded on demand", () => {
  it("is not loaded by what needs no DSL: JSON (object or text), SpiceDB, Nexus configs", async () => {
    expect(isOpenFgaDslLoaded()).toBe(false);
    expect(compileModel(JSON_MODEL).format).toBe("openfga");
    expect((await compileModelAsync(JSON.stringify(JSON_MODEL))).format).toBe("openfga");
    expect((await compileModelAsync(SPICEDB)).format).toBe("spicedb");
    expect((await compileModelAsync({ doc: { relations: { viewer: {} } } }, "nexus")).format).toBe("nexus");
    const engine = await createEngine({ model: JSON_MODEL });
    await engine.close();
    expect(isOpenFgaDslLoaded()).toBe(false);
  });

  it("a synchronous DSL compile before it is loaded says how to load it (not_ready)", () => {
    expect(isOpenFgaDslLoaded()).toBe(false);
    for (const model of [DSL, MODULES]) {
      let error: unknown;
      try {
        compileModel(model);
      } catch (caught) {
        error = caught;
      }
      expect(isNexusError(error, "not_ready")).toBe(true);
      expect((error as Error).message).toMatch(/compileModelAsync.*loadOpenFgaDsl/);
    }
    // A bad model is still the model's problem, found before any parser is needed.
    expect(() => compileModel("")).toThrow(/empty/);
  });

  it("compileModelAsync and createEngine load it for DSL text and modular models", async () => {
    const program = await compileModelAsync(DSL);
    expect(isOpenFgaDslLoaded()).toBe(true);
    expect(program.types.get("doc")?.relations.has("viewer")).toBe(true);
    // DSL text loads the parser alone: the fga.mod parser (and its YAML library) waits for a modular model.
    let error: unknown;
    try {
      compileModel(MODULES);
    } catch (caught) {
      error = caught;
    }
    expect(isNexusError(error, "not_ready")).toBe(true);
    expect((error as Error).message).toMatch(/fga\.mod parser.*compileModelAsync.*loadOpenFgaDsl/);
    expect((await compileModelAsync(MODULES)).types.has("doc")).toBe(true);
    expect(compileModel(MODULES).types.has("doc")).toBe(true);
    // Once loaded, the synchronous compile serves DSL too, and gives the same Program.
    expect(compileModel(DSL)).toEqual(program);
    await loadOpenFgaDsl(); // again: a no-op
    await using engine = await createEngine({ model: DSL });
    await engine.write({ writes: [{ object: "doc:1", relation: "viewer", user: "user:ann" }] });
    const answer: unknown = await engine.check({ object: "doc:1", relation: "viewer", user: "user:ann" });
    expect(answer === true || (answer as { allowed?: unknown }).allowed === true).toBe(true);
  });
});
