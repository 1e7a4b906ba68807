/**
 * listObjects through the default engine (cache chain + WASM) against the reference engine on random union-only
 * models (intersections and exclusions of the generated models turned into unions, so the chain's shortcut —
 * returning the reverse expansion's candidates without per-candidate checks — is taken), random tuples and
 * write/delete steps, at the default and a small depth limit (where the shortcut must step aside and errors must
 * match). Every type, relation and subject (users, the wildcard, usersets) is listed after every step.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import type { Program, Rewrite } from "../../src/model/program.js";
import { type GeneratedModel, scenarioArb, subjectsOf } from "../reference/random-models.js";

const unionOf = (rw: Rewrite): Rewrite => {
  switch (rw.kind) {
    case "union":
    case "intersection":
      return { kind: "union", children: rw.children.map(unionOf) };
    case "exclusion":
      return { kind: "union", children: [unionOf(rw.base), unionOf(rw.subtract)] };
    default:
      return rw;
  }
};

function unionOnly(program: Program): Program {
  const types = new Map(
    [...program.types].map(([name, type]) => [
      name,
      {
        ...type,
        relations: new Map(
          [...type.relations].map(([r, def]) => [r, { ...def, rewrite: unionOf(def.rewrite) }]),
        ),
      },
    ]),
  );
  return { ...program, types };
}

let compared = 0;
let shortcuts = 0;
afterAll(() => {
  console.log(`list objects: ${compared} listings compared, ${shortcuts} answered without checks`);
  expect(compared).toBeGreaterThan(1000);
  expect(shortcuts).toBeGreaterThan(100);
});

const outcome = async (p: Promise<string[]>): Promise<string[] | string> => {
  try {
    return await p;
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
};

const chainRequests = (engine: Engine): number =>
  engine.stats().chain!.layers.reduce((n, layer) => n + layer.requests, 0);

async function compareAll(model: GeneratedModel, fast: Engine, reference: Engine): Promise<void> {
  const subjects = subjectsOf(model);
  for (const type of model.types) {
    for (const relation of model.program.types.get(type)!.relations.keys()) {
      for (const user of subjects) {
        const before = chainRequests(fast);
        const got = await outcome(fast.listObjects({ user, relation, type }));
        if (chainRequests(fast) === before && Array.isArray(got) && got.length > 0) shortcuts++;
        // The reference is a second engine on the same store: it reads the writer's latest revision only when
        // asked to (its default may lag another engine's writes by the staleness window).
        const expected = await outcome(
          reference.listObjects({ user, relation, type, consistency: "fully_consistent" }),
        );
        expect(got, `${type}#${relation}@${user}`).toEqual(expected);
        compared++;
      }
    }
  }
}

describe("listObjects on union-only models: default engine = reference", () => {
  for (const maxResolutionDepth of [25, 3]) {
    it(`random models, writes and deletes (maxResolutionDepth ${maxResolutionDepth})`, async () => {
      await fc.assert(
        fc.asyncProperty(
          scenarioArb({ conditions: false }),
          fc.array(fc.nat(40), { minLength: 1, maxLength: 3 }),
          async ({ model: generated, tuples, extra }, picks) => {
            const model = { ...generated, program: unionOnly(generated.program) };
            const fast = await createEngine({ model: model.program, maxResolutionDepth });
            const reference = await createEngine({
              model: model.program,
              maxResolutionDepth,
              evaluator: "reference",
              cache: false,
              store: fast.store,
            });
            try {
              if (tuples.length > 0) await fast.write({ writes: tuples });
              await fast.caughtUp();
              await compareAll(model, fast, reference);
              const writes = [...new Set(picks.map((p) => extra[p % Math.max(1, extra.length)]))].filter(
                (t) => t !== undefined,
              );
              if (writes.length > 0) await fast.write({ writes, onDuplicate: "ignore" });
              if (tuples.length > 0) await fast.write({ deletes: [tuples[picks[0]! % tuples.length]!] });
              await fast.caughtUp();
              await compareAll(model, fast, reference);
            } finally {
              await reference.close();
              await fast.close();
            }
          },
        ),
        { numRuns: 50 },
      );
    }, 120_000);
  }
});
