/**
 * Stated model limits (src/model/limits.ts): every oversized or overdeep model is "invalid_model" naming the limit,
 * quickly and before a parser sees it, in all three languages; limits are configurable per engine.
 */
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { compileModel, DEFAULT_MODEL_LIMITS } from "../../src/model/index.js";
import { isNexusError, type NexusError } from "../../src/util/errors.js";

function failure(fn: () => unknown): NexusError {
  try {
    fn();
  } catch (error) {
    if (isNexusError(error)) return error;
    throw error;
  }
  throw new Error("expected a NexusError");
}

async function failureOf(promise: Promise<unknown>): Promise<NexusError> {
  try {
    await promise;
  } catch (error) {
    if (isNexusError(error)) return error;
    throw error;
  }
  throw new Error("expected a NexusError");
}

const dsl = (expr: string) =>
  `model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define a: [user]\n    define p: ${expr}\n`;

describe("model limits", () => {
  it("states its defaults", () => {
    expect(DEFAULT_MODEL_LIMITS).toEqual({
      maxModelBytes: 4 * 1024 * 1024,
      maxNestingDepth: 32,
      maxTypes: 20_000,
      maxRelationsPerType: 5_000,
    });
  });

  it("refuses DSL parentheses 800 deep before OpenFGA's parser sees them (it takes minutes)", () => {
    const started = performance.now();
    const error = failure(() => compileModel(dsl(`${"(".repeat(800)}a${")".repeat(800)}`)));
    expect(error.code).toBe("invalid_model");
    expect(error.details).toMatchObject({ limit: "maxNestingDepth", max: 32, found: 800 });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("refuses SpiceDB schemas nested 10,000 deep (parentheses, exclusion chains) as invalid_model", () => {
    const schema = (expr: string) =>
      `definition user {}\ndefinition doc {\n  relation aaa: user\n  permission ppp = ${expr}\n}`;
    expect(failure(() => compileModel(schema(`${"(".repeat(10_000)}aaa${")".repeat(10_000)}`))).code).toBe(
      "invalid_model",
    );
    const exclusions = failure(() => compileModel(schema(Array(10_000).fill("aaa").join(" - "))));
    expect(exclusions.code).toBe("invalid_model");
    expect(exclusions.message).toContain("maxNestingDepth");
    // A long flat union is one node, not a deep one: accepted.
    const union = compileModel(schema(Array(10_000).fill("aaa").join(" + ")));
    expect(union.types.get("doc")?.relations.get("ppp")?.rewrite.kind).toBe("union");
  });

  it("refuses OpenFGA JSON nested 10,000 deep (object and text), and cyclic objects", () => {
    let rewrite: object = { this: {} };
    for (let i = 0; i < 10_000; i++) rewrite = { union: { child: [rewrite] } };
    const model = {
      schema_version: "1.1",
      type_definitions: [
        { type: "user" },
        {
          type: "doc",
          relations: { a: rewrite },
          metadata: { relations: { a: { directly_related_user_types: [{ type: "user" }] } } },
        },
      ],
    };
    expect(failure(() => compileModel(model)).code).toBe("invalid_model");
    // As text (JSON.stringify itself would overflow on this object).
    const text = `{"schema_version":"1.1","type_definitions":[{"type":"user"},{"type":"doc","relations":{"a":${'{"union":{"child":['.repeat(10_000)}{"this":{}}${"]}}".repeat(10_000)}}}]}`;
    expect(failure(() => compileModel(text)).code).toBe("invalid_model");
    const cyclic: Record<string, unknown> = { type_definitions: [] };
    (cyclic.type_definitions as unknown[]).push(cyclic);
    expect(failure(() => compileModel(cyclic)).message).toContain("cycle");
  });

  it("refuses models over the size, type and relation limits, naming the limit", () => {
    const big = `model\n  schema 1.1\ntype user\n${"# padding\n".repeat(500_000)}`;
    expect(failure(() => compileModel(big)).details).toMatchObject({ limit: "maxModelBytes" });
    const types = `model\n  schema 1.1\n${Array.from({ length: 11 }, (_, i) => `type t${i}`).join("\n")}\n`;
    expect(failure(() => compileModel(types, undefined, { maxTypes: 10 })).details).toMatchObject({
      limit: "maxTypes",
      found: 11,
    });
    const relations = `definition user {}\ndefinition doc {\n${Array.from({ length: 6 }, (_, i) => `  relation r${i}xx: user`).join("\n")}\n}`;
    expect(
      failure(() => compileModel(relations, "spicedb", { maxRelationsPerType: 5 })).details,
    ).toMatchObject({
      limit: "maxRelationsPerType",
    });
    const nexus = {
      doc: { relations: Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`r${i}`, {}])) },
    };
    expect(failure(() => compileModel(nexus, "nexus", { maxRelationsPerType: 5 })).details).toMatchObject({
      limit: "maxRelationsPerType",
      found: 6,
    });
  });

  it("takes limits from createEngine's options, and refuses malformed ones", async () => {
    const deep = dsl(`${"(".repeat(3)}a${")".repeat(3)}`);
    expect((await failureOf(createEngine({ model: deep, limits: { maxNestingDepth: 2 } }))).code).toBe(
      "invalid_model",
    );
    const engine = await createEngine({ model: deep, limits: { maxNestingDepth: 3 } });
    await engine.close();
    expect((await failureOf(createEngine({ model: deep, limits: { maxNestingDepth: 0 } }))).code).toBe(
      "invalid_argument",
    );
    expect(
      (await failureOf(createEngine({ model: deep, limits: { maxDepth: 3 } as unknown as { maxTypes: 1 } })))
        .code,
    ).toBe("invalid_argument");
  });
});
