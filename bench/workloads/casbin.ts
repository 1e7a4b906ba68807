/**
 * The filesystem workload (bench/workloads/filesystem.ts, Nexus preset) as casbin "RBAC with resource roles"
 * (role hierarchy on subjects and on objects), so casbin can be benchmarked as a peer on the same tuples.
 *
 * Mapping, tuple by tuple (Zanzibar `object#relation@subject` on the left):
 * - `group:G#member@user:U`           → `g, user:U, group:G`       (U holds G's role)
 * - `group:G#member@group:H#member`   → `g, group:H, group:G`      (H's members inherit G: role hierarchy)
 * - `file:F#parent@file:P`            → `g2, file:F, file:P`       (F inherits every grant on P: resource roles)
 * - `file:F#direct_viewer@S`          → `p, S', file:F, read`
 * - `file:F#direct_editor@S`          → `p, S', file:F, read` and `write`
 * - `file:F#direct_owner@S`           → `p, S', file:F, read`, `write` and `execute`
 * - `file:F#shared-viewer|editor|owner@S` → as direct_viewer / editor / owner
 *   where S' is `user:U` for `user:U`, and `group:G` for both `group:G` (Nexus expands it to G's members through
 *   `group_*`) and `group:G#member`.
 * Permission-implies-permission is expanded into actions when the policy is written (one `p` line per permission
 * the relation grants: owner ⇒ read/write/execute, editor ⇒ read/write, viewer ⇒ read), which is exactly the
 * preset's `read = editor + viewer + owner`, `write = editor + owner`, `execute = owner` with each of owner, editor,
 * viewer inherited through `parent` on its own. The matcher is casbin's resource-roles one with the cheap
 * action comparison first: `r.act == p.act && g(r.sub, p.sub) && g2(r.obj, p.obj)`.
 *
 * Questions casbin answers faithfully (`toCasbinQuestion`):
 * - `read` / `write` / `execute` on a `file:` object by a user (any subject that is not a group or a userset):
 *   `enforce(user, file, permission)`;
 * - `member` of a `group:` by a user: `hasLink(user, group)` on the `g` role manager (the role hierarchy alone).
 * Not expressible faithfully, so excluded (the function returns undefined): questions whose subject is a group or a
 * userset (casbin's `g` makes group H inherit G's grants, where Nexus grants only H's *members* through
 * `group:H#member`, not the object `group:H`), and questions on relations rather than permissions (`viewer`,
 * `direct_*`, `parent`, `group_*`: a relation such as `viewer` excludes editors, which the action expansion
 * cannot tell apart). Tuples of any other shape (group `admin`, `shared-*` to a group object, `member` naming a
 * group object rather than its members, conditions, expiry, tenants) are rejected when the policy is built.
 *
 * casbin's role managers stop following a hierarchy after `maxHierarchyLevel` links (10 by default); the adapter
 * sets it to the longest chain in the tuples (at least 10), so deep nesting is not silently cut off.
 */
import {
  type Adapter,
  CachedEnforcer,
  DefaultRoleManager,
  Enforcer,
  type Model,
  newModelFromString,
} from "casbin";
import type { Question, Tuple } from "./filesystem.js";

export const casbinModelText = `
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

/** The permissions each granting relation implies (Nexus preset: `read`, `write`, `execute` on files). */
const impliedActions: Readonly<Record<string, readonly string[]>> = {
  direct_viewer: ["read"],
  direct_editor: ["read", "write"],
  direct_owner: ["read", "write", "execute"],
  "shared-viewer": ["read"],
  "shared-editor": ["read", "write"],
  "shared-owner": ["read", "write", "execute"],
};

/** The file permissions casbin's actions stand for. */
export const casbinActions: ReadonlySet<string> = new Set(["read", "write", "execute"]);

export interface CasbinPolicy {
  /** `p` lines: [sub, obj, act]. */
  readonly policies: readonly (readonly [string, string, string])[];
  /** `g` lines: [member, group] (subject role hierarchy). */
  readonly groupings: readonly (readonly [string, string])[];
  /** `g2` lines: [child, parent] (object hierarchy). */
  readonly resourceGroupings: readonly (readonly [string, string])[];
  /** The longest chain of `g` / `g2` links, which the role managers must be able to follow. */
  readonly depth: { readonly g: number; readonly g2: number };
}

const typeOf = (object: string): string => object.slice(0, object.indexOf(":"));

/** A user-like subject: neither a group (object or userset) nor any other userset. */
const isUserSubject = (subject: string): boolean =>
  !subject.includes("#") && subject.includes(":") && typeOf(subject) !== "group";

function unsupported(tuple: Tuple, why: string): Error {
  return new Error(`casbin mapping: cannot map ${tuple.object}#${tuple.relation}@${tuple.user}: ${why}`);
}

/** The workload's tuples as casbin policy lines (see the header for the mapping). Duplicates are written once. */
export function toCasbinPolicy(tuples: readonly Tuple[]): CasbinPolicy {
  const policies = new Map<string, readonly [string, string, string]>();
  const groupings = new Map<string, readonly [string, string]>();
  const resourceGroupings = new Map<string, readonly [string, string]>();
  for (const tuple of tuples) {
    const objectType = typeOf(tuple.object);
    const [subject, subjectRelation] = tuple.user.split("#") as [string, string | undefined];
    if (objectType === "group" && tuple.relation === "member") {
      if (subjectRelation === undefined && typeOf(subject) === "group") {
        throw unsupported(
          tuple,
          "a group object as a member (its members are not members): use group:H#member",
        );
      }
      if (subjectRelation !== undefined && (subjectRelation !== "member" || typeOf(subject) !== "group")) {
        throw unsupported(tuple, "only group:H#member usersets are members");
      }
      groupings.set(`${subject}\n${tuple.object}`, [subject, tuple.object]);
    } else if (objectType === "file" && tuple.relation === "parent") {
      if (subjectRelation !== undefined || typeOf(subject) !== "file") {
        throw unsupported(tuple, "a parent is a file object");
      }
      resourceGroupings.set(`${tuple.object}\n${subject}`, [tuple.object, subject]);
    } else if (objectType === "file" && impliedActions[tuple.relation] !== undefined) {
      const shared = tuple.relation.startsWith("shared-");
      const groupSubject = typeOf(subject) === "group";
      if (subjectRelation !== undefined && !(groupSubject && subjectRelation === "member")) {
        throw unsupported(tuple, "only group:G#member usersets are mapped");
      }
      if (shared && groupSubject && subjectRelation === undefined) {
        throw unsupported(tuple, "shared-* to a group object grants the object, not its members");
      }
      for (const act of impliedActions[tuple.relation]!) {
        policies.set(`${subject}\n${tuple.object}\n${act}`, [subject, tuple.object, act]);
      }
    } else {
      throw unsupported(tuple, "no casbin equivalent in this mapping");
    }
  }
  return {
    policies: [...policies.values()],
    groupings: [...groupings.values()],
    resourceGroupings: [...resourceGroupings.values()],
    depth: { g: longestChain(groupings.values()), g2: longestChain(resourceGroupings.values()) },
  };
}

/** Links on the longest path of a `from → to` graph; a cycle counts as many links as the graph has nodes. */
function longestChain(edges: Iterable<readonly [string, string]>): number {
  const next = new Map<string, string[]>();
  for (const [from, to] of edges) {
    const list = next.get(from);
    if (list) list.push(to);
    else next.set(from, [to]);
  }
  const memo = new Map<string, number>();
  const onPath = new Set<string>();
  let cyclic = false;
  const visit = (node: string): number => {
    const known = memo.get(node);
    if (known !== undefined) return known;
    if (onPath.has(node)) {
      cyclic = true;
      return 0;
    }
    onPath.add(node);
    let best = 0;
    for (const to of next.get(node) ?? []) best = Math.max(best, 1 + visit(to));
    onPath.delete(node);
    memo.set(node, best);
    return best;
  };
  let longest = 0;
  for (const node of next.keys()) longest = Math.max(longest, visit(node));
  return cyclic ? next.size + 1 : longest;
}

/**
 * A read-only in-memory adapter: hands casbin the policy lines as arrays. casbin's StringAdapter parses every line
 * with csv-parse (about 0.8 s for this workload's 6,860 lines), and the enforcer's addPolicies checks each new line
 * against every existing one; one Model.addPolicies per section into an empty model is linear.
 */
class PolicyArrayAdapter implements Adapter {
  readonly #policy: CasbinPolicy;

  constructor(policy: CasbinPolicy) {
    this.#policy = policy;
  }

  async loadPolicy(model: Model): Promise<void> {
    for (const [sec, ptype, rules] of [
      ["p", "p", this.#policy.policies],
      ["g", "g", this.#policy.groupings],
      ["g", "g2", this.#policy.resourceGroupings],
    ] as const) {
      const [added] = model.addPolicies(
        sec,
        ptype,
        rules.map((rule) => [...rule]),
      );
      if (!added && rules.length > 0) throw new Error(`casbin mapping: ${ptype} lines were not loaded`);
    }
  }

  savePolicy(): Promise<boolean> {
    return Promise.reject(new Error("the casbin bench adapter is read-only"));
  }

  addPolicy(): Promise<void> {
    return this.savePolicy().then(() => undefined);
  }

  removePolicy(): Promise<void> {
    return this.savePolicy().then(() => undefined);
  }

  removeFilteredPolicy(): Promise<void> {
    return this.savePolicy().then(() => undefined);
  }
}

export interface CasbinPeer {
  /** Plain enforcer: no decision cache (casbin's default). */
  readonly enforcer: Enforcer;
  /** The same policy behind casbin's CachedEnforcer (a Map from request to decision). */
  readonly cached: CachedEnforcer;
  readonly policy: CasbinPolicy;
  /** Milliseconds to build the plain enforcer from the tuples (mapping, model parse, policy load, role links). */
  readonly loadMs: number;
}

async function loadEnforcer<E extends Enforcer>(enforcer: E, policy: CasbinPolicy): Promise<E> {
  await enforcer.initWithModelAndAdapter(newModelFromString(casbinModelText), undefined, true);
  // Role managers that follow the whole hierarchy (casbin's default stops at 10 links).
  enforcer.setNamedRoleManager("g", new DefaultRoleManager(Math.max(10, policy.depth.g)));
  enforcer.setNamedRoleManager("g2", new DefaultRoleManager(Math.max(10, policy.depth.g2)));
  enforcer.setAdapter(new PolicyArrayAdapter(policy));
  await enforcer.loadPolicy();
  return enforcer;
}

/** A plain and a cached casbin enforcer holding the tuples' policy. */
export async function createCasbinPeer(tuples: readonly Tuple[]): Promise<CasbinPeer> {
  const started = performance.now();
  const policy = toCasbinPolicy(tuples);
  const enforcer = await loadEnforcer(new Enforcer(), policy);
  const loadMs = performance.now() - started;
  const cached = await loadEnforcer(new CachedEnforcer(), policy);
  return { enforcer, cached, policy, loadMs };
}

/** How casbin asks a question, or undefined when it cannot answer it faithfully (see the header). */
export type CasbinQuestion =
  | { readonly kind: "enforce"; readonly request: readonly [string, string, string] }
  | { readonly kind: "membership"; readonly user: string; readonly group: string };

export function toCasbinQuestion(q: Question): CasbinQuestion | undefined {
  if (!isUserSubject(q.user)) return undefined;
  const type = typeOf(q.object);
  if (type === "file" && casbinActions.has(q.relation)) {
    return { kind: "enforce", request: [q.user, q.object, q.relation] };
  }
  if (type === "group" && q.relation === "member")
    return { kind: "membership", user: q.user, group: q.object };
  return undefined;
}

/** casbin's answer to a question it can express (`enforce`, or `hasLink` on the subject role hierarchy). */
export async function casbinAnswer(peer: CasbinPeer, question: CasbinQuestion): Promise<boolean> {
  return question.kind === "enforce"
    ? peer.enforcer.enforce(...question.request)
    : peer.enforcer.getRoleManager().hasLink(question.user, question.group);
}

/**
 * Every `file:` object a user may `act` on, through casbin's own listing API: getImplicitResourcesForUser
 * (the user's permissions through `g`, each object expanded to everything that inherits it through `g2`),
 * filtered to the action, deduplicated, sorted.
 */
export async function casbinListObjects(enforcer: Enforcer, user: string, act: string): Promise<string[]> {
  const found = new Set<string>();
  for (const [, obj, action] of await enforcer.getImplicitResourcesForUser(user)) {
    if (action === act && obj !== undefined && typeOf(obj) === "file") found.add(obj);
  }
  return [...found].sort();
}
