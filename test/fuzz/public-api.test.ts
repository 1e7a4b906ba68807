/**
 * Fuzz suite (issue 11): random and adversarial models in all three languages (valid models, mutated models,
 * garbage, deep nesting), random and malformed tuples, and random and malformed requests, thrown at the public API
 * as a user creates it (createEngine with its defaults). Every outcome must be an answer or a NexusError: never a
 * raw RangeError / TypeError, never a hang. Each call is bounded: it must settle within CALL_LIMIT_MS (a race with a
 * timer catches an asynchronous hang; the elapsed time, checked after, catches one that blocks the event loop).
 *
 * Seeded (FUZZ_SEED, default 20261206) and bounded in time: each property stops drawing after its share of
 * FUZZ_TIME_MS (default 60 s for the whole suite); FUZZ_TIME_MS=600000 runs a longer campaign.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { NexusError } from "../../src/util/errors.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const TIME_MS = Number(process.env.FUZZ_TIME_MS ?? 60_000);
const CALL_LIMIT_MS = 10_000;

/** Runs one public-API call: an answer or a NexusError within the limit, anything else is a finding. */
async function bounded<T>(what: string, call: () => Promise<T>): Promise<T | NexusError> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${CALL_LIMIT_MS} ms`)),
      CALL_LIMIT_MS,
    );
  });
  let outcome: T | NexusError;
  try {
    outcome = await Promise.race([call(), hang]);
  } catch (error) {
    if (!(error instanceof NexusError)) {
      throw new Error(
        `${what}: threw ${(error as Error)?.name ?? typeof error}: ${(error as Error)?.message}`,
        {
          cause: error,
        },
      );
    }
    outcome = error;
  } finally {
    clearTimeout(timer);
  }
  const took = performance.now() - started;
  if (took > CALL_LIMIT_MS) throw new Error(`${what}: blocked the event loop for ${Math.round(took)} ms`);
  return outcome;
}

// --- models ------------------------------------------------------------------------------------------------

const TYPES = ["user", "team", "doc"];
const RELATIONS = ["member", "owner", "viewer", "parent"];

/** Every type but `user` has every relation; `parent` is a plain tupleset. A shape draws each one's rewrite. */
interface Shape {
  readonly relations: { direct: string[]; refs: { op: number; rel: string }[] }[];
}

const RELATION_OF_SHAPE = ["member", "owner", "viewer"];

const shapeArb: fc.Arbitrary<Shape> = fc.record({
  relations: fc.array(
    fc.record({
      direct: fc.subarray(["user", "user:*", "team#member", "doc"]),
      refs: fc.array(fc.record({ op: fc.nat(4), rel: fc.constantFrom(...RELATION_OF_SHAPE) }), {
        maxLength: 3,
      }),
    }),
    { minLength: 6, maxLength: 6 },
  ),
});

/** The shape's relation `index` of a type (team: 0-2, doc: 3-5); member always has a direct entry point. */
function relationOf(shape: Shape, index: number) {
  const r = shape.relations[index]!;
  return index % 3 === 0 && r.direct.length === 0 ? { ...r, direct: ["user"] } : r;
}

function dsl(shape: Shape): string {
  let text = "model\n  schema 1.1\ntype user\n";
  for (const [t, type] of ["team", "doc"].entries()) {
    text += `type ${type}\n  relations\n    define parent: [team, doc]\n`;
    for (const [i, name] of RELATION_OF_SHAPE.entries()) {
      const r = relationOf(shape, t * 3 + i);
      let expr = r.direct.length > 0 ? `[${r.direct.join(", ")}]` : "";
      let terms = r.direct.length > 0 ? 1 : 0;
      for (const ref of r.refs) {
        const term = ref.op === 3 ? `${ref.rel} from parent` : ref.rel;
        if (terms === 0) expr = term;
        else {
          const op = ["or", "and", "but not", "or", "or"][ref.op];
          expr = terms === 1 ? `${expr} ${op} ${term}` : `(${expr}) ${op} ${term}`;
        }
        terms++;
      }
      text += `    define ${name}: ${terms === 0 ? "[user]" : expr}\n`;
    }
  }
  return text;
}

function spicedb(shape: Shape): string {
  let text = "definition user {}\n";
  for (const [t, type] of ["team", "doc"].entries()) {
    text += `definition ${type} {\n  relation parent_rel: team | doc\n`;
    for (const [i, name] of RELATION_OF_SHAPE.entries()) {
      const r = relationOf(shape, t * 3 + i);
      const subjects = r.direct.map((d) => (d === "team#member" ? "team#member_perm" : d));
      text += `  relation ${name}_rel: ${(subjects.length > 0 ? subjects : ["user"]).join(" | ")}\n`;
      const terms = [
        `${name}_rel`,
        ...r.refs.map((ref) => (ref.op === 3 ? `parent_rel->${ref.rel}_perm` : `${ref.rel}_rel`)),
      ];
      text += `  permission ${name}_perm = ${terms.join([" + ", " & ", " - "][r.refs.length % 3])}\n`;
    }
    text += "}\n";
  }
  return text;
}

function nexus(shape: Shape): object {
  const out: Record<string, { relations: Record<string, unknown>; permissions: Record<string, unknown> }> =
    {};
  for (const [t, type] of ["team", "doc"].entries()) {
    const relations: Record<string, unknown> = { parent: {} };
    const permissions: Record<string, unknown> = {};
    for (const [i, name] of RELATION_OF_SHAPE.entries()) {
      const r = relationOf(shape, t * 3 + i);
      relations[`${name}_direct`] = {};
      const ttu = r.refs.find((ref) => ref.op === 3);
      if (ttu)
        relations[`${name}_inherited`] = {
          tupleToUserset: { tupleset: "parent", computedUserset: `${ttu.rel}` },
        };
      permissions[name] = [`${name}_direct`, ...(ttu ? [`${name}_inherited`] : [])];
    }
    out[type] = { relations, permissions };
  }
  return out;
}

function deep(open: string, inner: string, close: string, n: number): string {
  return open.repeat(n) + inner + close.repeat(n);
}

/** A text with a random edit: a deletion, an insertion of a model token, a duplication or a deep wrap. */
const mutationArb = fc.record({
  kind: fc.nat(4),
  at: fc.nat(),
  length: fc.nat(40),
  token: fc.constantFrom(
    "(",
    ")",
    "#",
    ":",
    " or ",
    " but not ",
    "define",
    "type",
    "\n",
    "{",
    "}",
    "->",
    "*",
    "\u0000",
    "module core\n",
    "schema 1.2\n",
  ),
  depth: fc.constantFrom(3, 40, 800, 10_000),
});

type Mutation = typeof mutationArb extends fc.Arbitrary<infer T> ? T : never;

function mutate(text: string, m: Mutation): string {
  const at = text.length === 0 ? 0 : m.at % text.length;
  switch (m.kind) {
    case 0:
      return text.slice(0, at) + text.slice(at + m.length);
    case 1:
      return text.slice(0, at) + m.token + text.slice(at);
    case 2:
      return text.slice(0, at) + text.slice(at, at + m.length).repeat(3) + text.slice(at);
    case 3:
      return text.slice(0, at) + deep("(", "viewer", ")", m.depth) + text.slice(at);
    default:
      return text.slice(0, at) + m.token.repeat(m.depth) + text.slice(at);
  }
}

function deepJson(levels: number): object {
  let rewrite: object = { this: {} };
  for (let i = 0; i < levels; i++) rewrite = { union: { child: [rewrite] } };
  return {
    schema_version: "1.1",
    type_definitions: [
      { type: "user" },
      {
        type: "doc",
        relations: { viewer: rewrite },
        metadata: { relations: { viewer: { directly_related_user_types: [{ type: "user" }] } } },
      },
    ],
  };
}

const modelArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: shapeArb.map(dsl) },
  { weight: 3, arbitrary: fc.tuple(shapeArb, mutationArb).map(([s, m]) => mutate(dsl(s), m)) },
  { weight: 3, arbitrary: shapeArb.map(spicedb) },
  { weight: 2, arbitrary: fc.tuple(shapeArb, mutationArb).map(([s, m]) => mutate(spicedb(s), m)) },
  { weight: 2, arbitrary: shapeArb.map(nexus) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      deepJson(40),
      deepJson(10_000),
      `definition user {}\ndefinition doc {\n relation aaa: user\n permission ppp = ${deep("(", "aaa", ")", 10_000)}\n}`,
      `definition user {}\ndefinition doc {\n relation aaa: user\n permission ppp = ${Array(5000).fill("aaa").join(" - ")}\n}`,
      `model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define a: [user]\n    define p: ${deep("(", "a", ")", 800)}\n`,
      {
        modules: {
          "fga.mod": "schema: '1.2'\ncontents:\n  - core.fga\n",
          "core.fga": "module core\ntype user\n",
        },
      },
      { modules: { "fga.mod": "schema: '1.2'\ncontents:\n  - ../../etc/hosts\n" } },
      "schema: '1.2'\ncontents:\n  - core.fga\n",
    ),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 6 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined, 0, -0, Number.NaN, [], {}, () => 1, Symbol("m")) },
);

// --- tuples and requests ------------------------------------------------------------------------------------

const nameArb = fc.oneof(
  fc.constantFrom(...TYPES.flatMap((t) => [`${t}:a`, `${t}:b`, `${t}:*`, `${t}:a#member`, `${t}:b#viewer`])),
  fc.constantFrom(
    "",
    ":",
    "a",
    "user:",
    ":x",
    "user:a#",
    "#",
    "user:a#member#x",
    "x".repeat(5000),
    "user:\u0000",
  ),
  fc.string({ maxLength: 20 }),
);
const relationArb = fc.oneof(
  fc.constantFrom(...RELATIONS, ...RELATIONS.map((r) => `${r}_perm`), ...RELATIONS.map((r) => `${r}_rel`)),
  fc.string({ maxLength: 10 }),
);
const contextArb = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
  fc.constantFrom({ x: -0 }, { ip: "10.0.0.1" }, { ts: "2030-02-30T00:00:00Z" }, { d: "1h" }),
  fc.anything({ maxDepth: 2 }),
);
const tupleArb = fc.record(
  {
    user: nameArb,
    relation: relationArb,
    object: nameArb,
    condition: fc.oneof(
      fc.record({ name: fc.string({ maxLength: 5 }), context: contextArb }),
      fc.anything({ maxDepth: 1 }),
    ),
    expiresAt: fc.oneof(
      fc.date(),
      fc.string({ maxLength: 25 }),
      fc.integer(),
      fc.constant("2030-02-30T00:00:00Z"),
    ),
    tenant: fc.oneof(fc.constantFrom("default", "acme"), fc.anything({ maxDepth: 0 })),
    subjectTenant: fc.constantFrom("default", "acme", "globex"),
  },
  { requiredKeys: ["user", "relation", "object"] },
);
const consistencyArb = fc.oneof(
  fc.constantFrom("minimize_latency", "fully_consistent", "stale", { atLeastAsFresh: "nope" }),
  fc.anything({ maxDepth: 1 }),
);
const extrasArb = fc.record(
  {
    tenant: fc.oneof(fc.constantFrom("default", "acme"), fc.anything({ maxDepth: 0 })),
    subjectTenant: fc.constantFrom("default", "globex"),
    context: contextArb,
    consistency: consistencyArb,
    contextualTuples: fc.array(tupleArb, { maxLength: 3 }),
    consitency: fc.constant("fully_consistent"),
  },
  { requiredKeys: [] },
);

type Operation =
  | { op: "write"; writes: unknown[]; deletes: unknown[] }
  | {
      op: "check" | "checkDetailed" | "listObjects" | "listUsers" | "expand" | "read" | "filter";
      request: unknown;
    }
  | { op: "checkBulk"; requests: unknown[] };

const operationArb: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({
    op: fc.constant("write" as const),
    writes: fc.array(tupleArb, { maxLength: 6 }),
    deletes: fc.array(tupleArb, { maxLength: 2 }),
  }),
  fc.record({
    op: fc.constantFrom("check" as const, "checkDetailed" as const),
    request: fc
      .tuple(fc.record({ user: nameArb, relation: relationArb, object: nameArb }), extrasArb)
      .map(([base, extra]) => ({ ...base, ...extra })),
  }),
  fc.record({
    op: fc.constant("checkBulk" as const),
    requests: fc.array(fc.record({ user: nameArb, relation: relationArb, object: nameArb }), {
      maxLength: 5,
    }),
  }),
  fc.record({
    op: fc.constant("listObjects" as const),
    request: fc
      .tuple(
        fc.record({ user: nameArb, relation: relationArb, type: fc.constantFrom(...TYPES, "") }),
        extrasArb,
      )
      .map(([base, extra]) => ({ ...base, ...extra })),
  }),
  fc.record({
    op: fc.constant("listUsers" as const),
    request: fc
      .tuple(
        fc.record({
          object: nameArb,
          relation: relationArb,
          userFilters: fc.oneof(
            fc.constant([{ type: "user" }]),
            fc.constant([{ type: "team", relation: "member" }]),
            fc.anything({ maxDepth: 2 }),
          ),
        }),
        extrasArb,
      )
      .map(([base, extra]) => ({ ...base, ...extra })),
  }),
  fc.record({
    op: fc.constantFrom("expand" as const, "read" as const),
    request: fc.record({ object: nameArb, relation: relationArb }, { requiredKeys: [] }),
  }),
  fc.record({
    op: fc.constant("filter" as const),
    request: fc.record({
      user: nameArb,
      relation: relationArb,
      objects: fc.array(nameArb, { maxLength: 5 }),
    }),
  }),
  fc.record({ op: fc.constant("check" as const), request: fc.anything({ maxDepth: 2 }) }),
);

async function apply(engine: Engine, operation: Operation): Promise<void> {
  const api = engine as unknown as Record<string, (request: unknown) => Promise<unknown>>;
  switch (operation.op) {
    case "write":
      await bounded("write", () =>
        engine.write({ writes: operation.writes, deletes: operation.deletes } as unknown as Parameters<
          Engine["write"]
        >[0]),
      );
      return;
    case "checkBulk":
      await bounded("checkBulk", () => api.checkBulk!.call(engine, operation.requests));
      return;
    default:
      await bounded(operation.op, () => api[operation.op]!.call(engine, operation.request));
  }
}

const engines: Engine[] = [];
afterAll(async () => {
  for (const engine of engines) await engine.close();
});

describe("fuzz: the public API answers or throws a NexusError, never crashes or hangs", () => {
  it(
    `random and adversarial models in all three languages (seed ${SEED})`,
    async () => {
      await fc.assert(
        fc.asyncProperty(modelArb, async (model) => {
          const engine = await bounded("createEngine", () =>
            createEngine({ model } as Parameters<typeof createEngine>[0]),
          );
          if (engine instanceof NexusError) return;
          await bounded("close", () => engine.close());
        }),
        { seed: SEED, numRuns: 600, interruptAfterTimeLimit: TIME_MS * 0.35, markInterruptAsFailure: false },
      );
    },
    TIME_MS + 60_000,
  );

  it(
    `random and malformed tuples and requests on valid models (seed ${SEED})`,
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(shapeArb.map(dsl), shapeArb.map(spicedb), shapeArb.map(nexus)),
          fc.array(operationArb, { minLength: 1, maxLength: 12 }),
          async (model, operations) => {
            const engine = await bounded("createEngine", () => createEngine({ model }));
            if (engine instanceof NexusError) return;
            try {
              for (const operation of operations) await apply(engine, operation);
            } finally {
              await bounded("close", () => engine.close());
            }
          },
        ),
        { seed: SEED, numRuns: 500, interruptAfterTimeLimit: TIME_MS * 0.65, markInterruptAsFailure: false },
      );
    },
    TIME_MS + 60_000,
  );

  it("the engine stays usable after every rejected input", async () => {
    const engine = await createEngine({
      model: "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n",
    });
    engines.push(engine);
    await fc.assert(
      fc.asyncProperty(fc.array(operationArb, { maxLength: 8 }), async (operations) => {
        for (const operation of operations) await apply(engine, operation);
        await engine.write({
          writes: [{ user: "user:zed", relation: "viewer", object: "doc:z" }],
          onDuplicate: "ignore",
        });
        expect(await engine.check({ user: "user:zed", relation: "viewer", object: "doc:z" })).toBe(true);
      }),
      { seed: SEED, numRuns: 40, interruptAfterTimeLimit: 15_000, markInterruptAsFailure: false },
    );
    expect(engines.length).toBe(1);
  }, 60_000);
});
