/**
 * tupleProblem and isValidTuple judge a tuple without a condition from its relation's allowed forms (validByForm)
 * and ask the full rules (findProblem) otherwise. On random tuples (defined and undefined types, relations and
 * subject forms; conditions, expiry, cross-tenant subjects) over models in the three languages, both must give
 * exactly findProblem's answer.
 */
import { describe, expect, it } from "vitest";
import { compileModelAsync } from "../../src/model/index.js";
import { compileNexus } from "../../src/model/nexus.js";
import type { Program } from "../../src/model/program.js";
import { findProblem, isValidTuple, sourceOnlyTypes, tupleProblem } from "../../src/model/tuple-rules.js";
import { normalizeTuple } from "../../src/tuples/normalize.js";
import type { TupleKey } from "../../src/tuples/tuple.js";
import { seededRandom } from "../../src/util/random.js";

const OPENFGA = `model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member, user with nice]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member, user:* with nice]
    define view: viewer or view from parent
type doc
  relations
    define parent: [folder]
    define owner: [user with nice]
    define viewer: [user, group#member, group, user:*]
    define view: viewer or owner or view from parent
condition nice(x: int) {
  x > 1
}
`;

const SPICEDB = `use expiration
caveat nice(x int) { x > 1 }
definition user {}
definition group {
  relation member: user | group#member | user with nice
  relation fan: user:*
}
definition doc {
  relation parent: group | group#member
  relation viewer: user with expiration | group#member
  relation editor: user with nice and expiration
  permission view = viewer + editor + parent->member
}
`;

const NEXUS = {
  doc: {
    relations: {
      parent: {},
      viewer: {},
      "shared-viewer": {},
      parent_viewer: { tupleToUserset: { tupleset: "parent", computedUserset: "viewer" } },
    },
    permissions: { read: ["viewer", "parent_viewer", "shared-viewer"] },
  },
  group: { relations: { member: {} } },
};

const TYPES = ["user", "group", "folder", "doc", "agent"];
const RELATIONS = ["member", "fan", "parent", "viewer", "owner", "editor", "view", "shared-viewer", "nope"];

function randomKey(random: () => number): TupleKey {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const id = `${Math.floor(random() * 3)}`;
  const subjectType = pick(TYPES);
  const form = random();
  const user =
    form < 0.5
      ? `${subjectType}:${id}`
      : form < 0.7
        ? `${subjectType}:*`
        : `${subjectType}:${id}#${pick(RELATIONS)}`;
  return {
    object: `${pick(TYPES)}:${id}`,
    relation: pick(RELATIONS),
    user,
    tenant: "t",
    ...(random() < 0.15 ? { subjectTenant: "u" } : {}),
    ...(random() < 0.2 ? { expiresAt: 1_000_000 } : {}),
    ...(random() < 0.2
      ? {
          condition:
            random() < 0.5 ? { name: "nice", context: { x: random() < 0.5 ? 2 : "no" } } : { name: "other" },
        }
      : {}),
  };
}

async function programs(): Promise<[string, Program][]> {
  return [
    ["openfga", await compileModelAsync(OPENFGA)],
    ["spicedb", await compileModelAsync(SPICEDB, "spicedb")],
    ["nexus", compileNexus(NEXUS)],
  ];
}

describe("tuple rules: the per-form judgement agrees with the full rules", () => {
  it("on random tuples in the three languages", async () => {
    for (const [name, program] of await programs()) {
      const random = seededRandom(name.length * 7919);
      let valid = 0;
      for (let i = 0; i < 20_000; i++) {
        const n = normalizeTuple(randomKey(random), "t");
        if (!n.ok) continue;
        const t = n.value;
        const want = findProblem(program, t);
        expect(tupleProblem(program, t), `${name}: ${JSON.stringify(t)}`).toBe(want);
        expect(isValidTuple(program, t), `${name}: ${JSON.stringify(t)}`).toBe(want === undefined);
        if (want === undefined) valid++;
      }
      // The draw reaches both answers in every language.
      expect(valid, name).toBeGreaterThan(100);
    }
  });
});

describe("sourceOnlyTypes: the types no valid tuple names as its subject", () => {
  it("are the types no relation allows as a subject, and no random valid tuple's subject has one", async () => {
    const want: Record<string, string[]> = { openfga: ["doc"], spicedb: ["doc"], nexus: [] };
    for (const [name, program] of await programs()) {
      const types = sourceOnlyTypes(program);
      expect([...types].sort(), name).toEqual(want[name]);
      const random = seededRandom(name.length * 104_729);
      for (let i = 0; i < 20_000; i++) {
        const n = normalizeTuple(randomKey(random), "t");
        if (!n.ok || !isValidTuple(program, n.value)) continue;
        if (n.value.subject.kind !== "wildcard") expect(types.has(n.value.subject.type), name).toBe(false);
      }
    }
  });
});
