/**
 * The CEL runtime behind conditions and caveats loads on first need (src/conditions/cel-js.ts), so a browser app
 * without conditions never fetches it (test/bundle/bundle.test.ts holds it out of the root entry). The contract is
 * the DSL parser's: the synchronous compilers use it once loaded and otherwise fail with "not_ready"; the async
 * paths (compileModelAsync, createEngine) load it themselves. This file loads nothing up front.
 */
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { compileModel, compileModelAsync, isConditionsLoaded } from "../../src/model/index.js";
import { compileSpiceDb } from "../../src/model/spicedb.js";
import { isNexusError } from "../../src/util/errors.js";

const conditional = {
  schema_version: "1.1",
  type_definitions: [
    { type: "user" },
    {
      type: "doc",
      relations: { viewer: { this: {} } },
      metadata: {
        relations: { viewer: { directly_related_user_types: [{ type: "user", condition: "office_hours" }] } },
      },
    },
  ],
  conditions: {
    office_hours: {
      name: "office_hours",
      expression: "hour >= 9 && hour < 17",
      parameters: { hour: { type_name: "TYPE_NAME_INT" } },
    },
  },
};

const plain = {
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

const caveated = `caveat office_hours(hour int) { hour >= 9 && hour < 17 }
definition user {}
definition doc {
  relation viewer: user with office_hours
}`;

const notReady = (compile: () => unknown): void => {
  try {
    compile();
  } catch (e) {
    expect(isNexusError(e, "not_ready"), String(e)).toBe(true);
    expect((e as Error).message).toContain("loadConditions");
    return;
  }
  throw new Error("expected not_ready");
};

describe("the CEL runtime, loaded on first need", () => {
  it("is not needed by a model without conditions, and needed before a synchronous compile of one with them", async () => {
    expect(isConditionsLoaded()).toBe(false);
    expect(compileModel(plain, "openfga").types.size).toBe(2);
    expect(isConditionsLoaded()).toBe(false);
    notReady(() => compileModel(conditional, "openfga"));
    notReady(() => compileSpiceDb(caveated));
    // The async path loads it, after which the synchronous compilers work. Given as JSON text that spells its
    // keys with an escape, the model is still seen to name conditions (the text is read as JSON first).
    const escaped = JSON.stringify(conditional).replaceAll('"condition', '"\\u0063ondition');
    expect(escaped).not.toMatch(/condition|caveat/);
    expect((await compileModelAsync(escaped)).conditions.size).toBe(1);
    expect(isConditionsLoaded()).toBe(true);
    expect(compileSpiceDb(caveated).conditions.size).toBe(1);
  });

  it("createEngine loads it for a model with conditions and evaluates them", async () => {
    const engine = await createEngine({ model: conditional });
    try {
      await engine.write({
        writes: [
          { user: "user:anne", relation: "viewer", object: "doc:1", condition: { name: "office_hours" } },
        ],
      });
      const ask = (hour: number) =>
        engine.check({ user: "user:anne", relation: "viewer", object: "doc:1", context: { hour } });
      expect(await ask(10)).toBe(true);
      expect(await ask(20)).toBe(false);
    } finally {
      await engine.close();
    }
  });
});
