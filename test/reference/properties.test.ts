/**
 * Property tests over random models and tuples: the reference queries agree with each other.
 * - list objects returns exactly the objects check allows;
 * - list users returns only subjects check allows, and every allowed one (a concrete user may be covered by a
 *   listed wildcard instead);
 * - for models without exclusion, membership computed from expand trees (a least fixpoint) equals check;
 * - writing tuples and deleting them again leaves every answer unchanged.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import type { UsersetNode } from "../../src/reference/expand.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { isNexusError } from "../../src/util/errors.js";
import { type GeneratedModel, IDS, scenarioArb, subjectsOf, USERS } from "./random-models.js";

const context = { x: 3 };
// Read with the defaults (every write of the engine seen).
const defaults = { context };

async function engineWith(model: GeneratedModel, tuples: readonly TupleKey[]): Promise<Engine> {
  const engine = await createEngine({
    model: model.program,
    maxResolutionDepth: 200,
  });
  if (tuples.length > 0) await engine.write({ writes: tuples });
  return engine;
}

async function checkOrError(
  engine: Engine,
  object: string,
  relation: string,
  user: string,
): Promise<boolean | string> {
  try {
    return await engine.check({ object, relation, user, ...defaults });
  } catch (error) {
    return isNexusError(error) ? `error:${error.code}` : `error:${error}`;
  }
}

function nodesOf(model: GeneratedModel): [string, string][] {
  const nodes: [string, string][] = [];
  for (const type of model.types) {
    for (const relation of model.program.types.get(type)!.relations.keys()) {
      for (const id of IDS) nodes.push([`${type}:${id}`, relation]);
    }
  }
  return nodes;
}

/** Every answer the engine gives over the model's objects and subjects, as one comparable record. */
async function answers(engine: Engine, model: GeneratedModel): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const subjects = subjectsOf(model);
  for (const [object, relation] of nodesOf(model)) {
    for (const user of subjects)
      out[`check ${object}#${relation}@${user}`] = await checkOrError(engine, object, relation, user);
    out[`users ${object}#${relation}`] = await engine
      .listUsers({ object, relation, userFilters: [{ type: "user" }], ...defaults })
      .catch((e: Error) => `error:${e.message}`);
  }
  for (const type of model.types) {
    for (const relation of model.program.types.get(type)!.relations.keys()) {
      for (const user of subjects) {
        out[`objects ${type}#${relation}@${user}`] = await engine
          .listObjects({ user, relation, type, ...defaults })
          .catch((e: Error) => `error:${e.message}`);
      }
    }
  }
  return out;
}

describe("reference evaluator properties", () => {
  it("list objects and list users agree with check", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(), async ({ model, tuples }) => {
        await using engine = await engineWith(model, tuples);
        const subjects = subjectsOf(model);
        for (const type of model.types) {
          for (const relation of model.program.types.get(type)!.relations.keys()) {
            for (const user of subjects) {
              const expected: string[] = [];
              for (const id of IDS) {
                const allowed = await checkOrError(engine, `${type}:${id}`, relation, user);
                expect(typeof allowed, `check ${type}:${id}#${relation}@${user}: ${allowed}`).toBe("boolean");
                if (allowed === true) expected.push(`${type}:${id}`);
              }
              const listed = await engine.listObjects({ user, relation, type, ...defaults });
              expect(listed, `listObjects ${type}#${relation}@${user}`).toEqual(expected);
            }
          }
        }
        for (const [object, relation] of nodesOf(model)) {
          const listed = await engine.listUsers({
            object,
            relation,
            userFilters: [{ type: "user" }],
            ...defaults,
          });
          const allowed = new Map<string, boolean>();
          for (const user of [...USERS, "user:*"])
            allowed.set(user, (await checkOrError(engine, object, relation, user)) === true);
          for (const user of listed)
            expect(allowed.get(user), `${user} listed for ${object}#${relation}`).toBe(true);
          expect(listed.includes("user:*"), `user:* for ${object}#${relation}`).toBe(allowed.get("user:*"));
          for (const user of USERS) {
            if (allowed.get(user)) {
              expect(
                listed.includes(user) || listed.includes("user:*"),
                `${user} missing for ${object}#${relation}`,
              ).toBe(true);
            }
          }
          for (const type of model.types) {
            for (const rel of model.program.types.get(type)!.relations.keys()) {
              const usersets = await engine.listUsers({
                object,
                relation,
                userFilters: [{ type, relation: rel }],
                ...defaults,
              });
              const expected: string[] = [];
              for (const id of IDS) {
                if ((await checkOrError(engine, object, relation, `${type}:${id}#${rel}`)) === true)
                  expected.push(`${type}:${id}#${rel}`);
              }
              expect(usersets, `listUsers ${object}#${relation} filter ${type}#${rel}`).toEqual(expected);
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it("membership from expand trees (least fixpoint) equals check, for models without exclusion", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb({ exclusion: false, conditions: false }), async ({ model, tuples }) => {
        await using engine = await engineWith(model, tuples);
        const nodes = nodesOf(model);
        const trees = new Map<string, UsersetNode>();
        for (const [object, relation] of nodes) {
          trees.set(`${object}#${relation}`, (await engine.expand({ object, relation })).root);
        }
        for (const subject of subjectsOf(model)) {
          const value = new Map<string, boolean>();
          const holds = (node: UsersetNode): boolean => {
            if ("union" in node) return node.union.nodes.some(holds);
            if ("intersection" in node) return node.intersection.nodes.every(holds);
            if ("difference" in node) throw new Error("no exclusion expected");
            const leaf = node.leaf;
            if ("users" in leaf) {
              const wildcard = subject.includes("#")
                ? undefined
                : `${subject.slice(0, subject.indexOf(":"))}:*`;
              return leaf.users.some(
                (u) => u === subject || u === wildcard || (u.includes("#") && value.get(u) === true),
              );
            }
            if ("computed" in leaf) return value.get(leaf.computed.userset) === true;
            return leaf.tupleToUserset.computed.some((c) => value.get(c.userset) === true);
          };
          let changed = true;
          while (changed) {
            changed = false;
            for (const [name, tree] of trees) {
              if (value.get(name)) continue;
              if (name === subject || holds(tree)) {
                value.set(name, true);
                changed = true;
              }
            }
          }
          for (const [object, relation] of nodes) {
            const name = `${object}#${relation}`;
            expect(await checkOrError(engine, object, relation, subject), `${name}@${subject}`).toBe(
              value.get(name) === true,
            );
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it("writing tuples and deleting them again leaves every answer unchanged", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(), async ({ model, tuples, extra }) => {
        fc.pre(extra.length > 0);
        await using engine = await engineWith(model, tuples);
        const before = await answers(engine, model);
        await engine.write({ writes: extra });
        await engine.write({ deletes: extra });
        expect(await answers(engine, model)).toEqual(before);
      }),
      { numRuns: 25 },
    );
  });
});
