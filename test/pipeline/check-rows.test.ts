/**
 * The per-question shortcuts of the check path (issue 13's check rows) against the plain reference:
 * - validCheck's memo of the last accepted object type and subject gives exactly what a fresh validation gives
 *   (the same fields, the same error codes), over random texts and two programs;
 * - the default engine's checkBulk (one batch with duplicates, one shared consistency object, single checks in
 *   flight beside it) and its repeated single checks answer as the reference engine does, on random models and
 *   tuples, before and after writes.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createEngine } from "../../src/engine/engine.js";
import { compileModelAsync } from "../../src/model/index.js";
import { objectOf, subjectOf } from "../../src/request/requests.js";
import type { CheckRequest } from "../../src/request/types.js";
import { validCheck } from "../../src/request/validate.js";
import { isNexusError } from "../../src/util/errors.js";
import { ready } from "../../src/wasm/loader.js";
import { IDS, scenarioArb, subjectsOf } from "../reference/random-models.js";

const modelA = await compileModelAsync(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define viewer: [user, user:*, group#member]
`);
const modelB = await compileModelAsync(`model
  schema 1.1
type user
type doc
  relations
    define viewer: [user]
`);

function outcome(run: () => unknown): unknown {
  try {
    return run();
  } catch (error) {
    return isNexusError(error) ? `error:${error.code}` : `error:${String(error)}`;
  }
}

describe("validCheck's memo of the last object type and subject", () => {
  it("validates exactly as a fresh validation, whatever came before", () => {
    const objects = [
      "doc:1",
      "doc:2",
      "doc:*",
      "doc:",
      "doc",
      ":x",
      "doc:a:b",
      "doc:a\u0000",
      "docx:1",
      "do:1",
      "group:g",
      "user:u",
      "doc#x:1",
      " doc:1",
      "doc: 1",
    ];
    const users = [
      "user:u",
      "user:v",
      "user:*",
      "group:g#member",
      "group:g#viewer",
      "group:*#member",
      "doc:1",
      "nope:1",
      "user:",
      "user:a#b#member",
    ];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            b: fc.boolean(),
            object: fc.oneof(fc.constantFrom(...objects), fc.constant(5 as unknown as string)),
            user: fc.constantFrom(...users),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        (steps) => {
          for (const step of steps) {
            const program = step.b ? modelB : modelA;
            const request = { user: step.user, relation: "viewer", object: step.object };
            const got = outcome(() => {
              const v = validCheck(program, request, 10);
              return [v.objectType, v.subject, v.user];
            });
            const want = outcome(() => {
              const type = objectOf(program, request.object).type;
              if (!program.types.get(type)!.relations.has("viewer")) return "error:relation_not_found";
              const { subject, user } = subjectOf(program, request.user);
              return [type, subject, user];
            });
            expect(got, JSON.stringify(request)).toEqual(want);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("the default engine's batches and repeated checks equal the reference", () => {
  it("on random models and tuples, with duplicates, a shared consistency and single checks beside a batch", async () => {
    await ready();
    await fc.assert(
      fc.asyncProperty(
        scenarioArb(),
        fc.array(fc.nat(200), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        async ({ model, tuples }, toggles, token) => {
          await using reference = await createEngine({
            model: model.program,
            evaluator: "reference",
            cache: false,
            maxResolutionDepth: 200,
          });
          await using engine = await createEngine({ model: model.program, maxResolutionDepth: 200 });
          const write = async (writes: typeof tuples, deletes: typeof tuples) => {
            const r = await reference.write({ writes, deletes });
            const e = await engine.write({ writes, deletes });
            return [r.token, e.token] as const;
          };
          let [refToken, token2] = await write(tuples, []);
          const present = new Set(tuples.map((t) => JSON.stringify(t)));
          const subjects = subjectsOf(model);
          const questions: CheckRequest[] = [];
          for (const type of model.types)
            for (const relation of model.program.types.get(type)!.relations.keys())
              for (const id of IDS)
                for (const user of subjects) questions.push({ object: `${type}:${id}`, relation, user });
          for (const pick of [...toggles, -1]) {
            if (pick >= 0 && model.slots.length > 0) {
              const slot = model.slots[pick % model.slots.length]!;
              const key = JSON.stringify(slot);
              const on = present.has(key);
              if (on) present.delete(key);
              else present.add(key);
              [refToken, token2] = on ? await write([], [slot]) : await write([slot], []);
            }
            // One consistency object for the whole batch (the memoized path), or the default.
            const consistency = token ? { atLeastAsFresh: token2 } : undefined;
            const refConsistency = token ? { atLeastAsFresh: refToken } : undefined;
            const expected = await Promise.all(
              questions.map((q) => outcome(() => reference.check({ ...q, consistency: refConsistency }))),
            );
            const want = await Promise.all(expected);
            if (!want.every((a) => typeof a === "boolean")) continue;
            // Duplicates inside the batch, and single checks of the same questions in flight beside it.
            const batch = [...questions, ...questions.slice(0, 7)].map((q) => ({ ...q, consistency }));
            const singles = questions.slice(0, 5).map((q) => engine.check({ ...q, consistency }));
            for (let pass = 0; pass < 2; pass++) {
              const answers = await engine.checkBulk(batch);
              batch.forEach((q, i) => {
                expect(answers[i], `${q.object}#${q.relation}@${q.user} pass ${pass}`).toBe(
                  want[i % questions.length],
                );
              });
            }
            expect(await Promise.all(singles)).toEqual(want.slice(0, 5));
            for (const [i, q] of questions.entries()) {
              expect(await engine.check({ ...q, consistency })).toBe(want[i]);
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
