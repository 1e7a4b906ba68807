/**
 * Reference list users: the subjects of a filter's form (`user` -> objects and the `user:*` wildcard;
 * `group#member` -> usersets) that have the relation on an object, each confirmed by check.
 *
 * Candidates come from walking the relation's rewrite forwards from the object (as OpenFGA's list users
 * expands it): direct tuples name subjects, usersets and tuple-to-usersets lead to further objects. A subject is
 * a candidate only where it is granted, not where it is taken away: the walk tracks polarity, flipping it under
 * `but not`, so a user listed only in a subtracted relation is not offered, while one excluded from an exclusion
 * that is itself subtracted is (double negation grants). With a wildcard granted, concrete users are listed only
 * where a tuple names them, as OpenFGA does.
 *
 * A tuple whose condition is false is not followed; one whose condition cannot be evaluated makes the request
 * fail; the walk is bounded by the depth limit ("resolution_too_complex") counted as check counts it: a userset
 * or tuple-to-userset hop is one level, a computed userset none (OpenFGA's check: "no dispatch here, as we don't
 * want to increase resolution depth"), so a chain of tuples fails here exactly where it fails in check.
 *
 * Cost: candidates are confirmed by check against a view of the tuples that gives each check, on a relation that
 * is not a tupleset, only the tuples naming that candidate, its type's wildcard and the usersets (an index built
 * once per object and relation), so 100k users on one object cost 100k short checks, not 100k scans of 100k.
 */
import type { Rewrite } from "../model/program.js";
import { parseSubject, type RelationTuple, type Subject } from "../tuples/tuple.js";
import { check } from "./check.js";
import { Evaluation } from "./evaluation.js";
import type { TupleReader } from "./reader.js";

export interface UserFilter {
  readonly type: string;
  readonly relation?: string;
}

export interface ListUsersQuery {
  readonly tenant: string;
  readonly object: string;
  readonly relation: string;
  readonly filter: UserFilter;
  /** Only subjects of this tenant are listed (default: the request's tenant). */
  readonly subjectTenant: string;
}

const SEP = "\u0000";

/** A chain of computed relations walks without counting depth: yield every this many nested walks (see check.ts). */
const YIELD_EVERY = 64;

export async function listUsers(ev: Evaluation, query: ListUsersQuery): Promise<string[]> {
  const candidates = await candidateUsers(ev, query);
  const result: string[] = [];
  const view = new CandidateView(ev.reader, ev.analysis);
  const confirm = new Evaluation(view.reader, {
    ...(ev.context !== undefined ? { context: ev.context } : {}),
    maxDepth: ev.maxDepth,
  });
  for (const user of candidates) {
    const subject = parseSubject(user) as Subject;
    view.candidate = user;
    const allowed = await check(confirm, {
      tenant: query.tenant,
      object: query.object,
      relation: query.relation,
      subject,
      user,
      subjectTenant: query.subjectTenant,
    });
    if (allowed) result.push(user);
  }
  return result.sort();
}

/** Subjects of the filter's form that may have the relation (a superset of the answer). */
export async function candidateUsers(ev: Evaluation, query: ListUsersQuery): Promise<Set<string>> {
  const { filter } = query;
  const objectType = query.object.slice(0, query.object.indexOf(":"));
  const filterKind = filter.relation === undefined ? filter.type : `${filter.type}#${filter.relation}`;
  const candidates = new Set<string>();
  const selfMatch = objectType === filter.type && query.relation === filter.relation;
  if (!selfMatch && !ev.analysis.canReach(objectType, query.relation, filterKind)) return candidates;

  const reachedAt = new Map<string, number>();
  let firstError: Error | undefined;
  const passes = (t: Parameters<Evaluation["conditionOutcome"]>[0]): boolean => {
    const outcome = ev.conditionOutcome(t);
    if (outcome === true) return true;
    if (outcome !== false) firstError ??= outcome;
    return false;
  };

  let nesting = 0;
  const walk = async (tenant: string, object: string, relation: string, positive: boolean, depth: number) => {
    nesting++;
    try {
      if (nesting % YIELD_EVERY === 0) await Promise.resolve();
      await walkNode(tenant, object, relation, positive, depth);
    } finally {
      nesting--;
    }
  };
  const walkNode = async (
    tenant: string,
    object: string,
    relation: string,
    positive: boolean,
    depth: number,
  ) => {
    if (depth >= ev.maxDepth) {
      firstError ??= ev.tooComplex(`the users of ${query.object}#${query.relation}`);
      return;
    }
    const key = tenant + SEP + object + SEP + relation + SEP + (positive ? "+" : "-");
    const seen = reachedAt.get(key);
    if (seen !== undefined && seen <= depth) return;
    reachedAt.set(key, depth);
    const type = object.slice(0, object.indexOf(":"));
    const rel = ev.program.types.get(type)?.relations.get(relation);
    if (rel === undefined) return;
    if (positive && tenant === query.subjectTenant && type === filter.type && relation === filter.relation) {
      candidates.add(`${object}#${relation}`);
    }
    await walkRewrite(rel.rewrite, tenant, object, relation, positive, depth);
  };

  const walkRewrite = async (
    rw: Rewrite,
    tenant: string,
    object: string,
    relation: string,
    positive: boolean,
    depth: number,
  ): Promise<void> => {
    switch (rw.kind) {
      case "direct": {
        for (const t of await ev.reader.byObject(tenant, object, relation)) {
          if (!passes(t)) continue;
          const s = t.subject;
          const listable = positive && t.subjectTenant === query.subjectTenant && s.type === filter.type;
          if (s.kind === "userset") {
            if (listable && s.relation === filter.relation) candidates.add(t.user);
            await walk(t.subjectTenant, `${s.type}:${s.id}`, s.relation, positive, depth + 1);
          } else if (listable && filter.relation === undefined) {
            candidates.add(t.user);
          }
        }
        return;
      }
      case "computed":
        return walk(tenant, object, rw.relation, positive, depth);
      case "ttu":
        for (const t of await ev.reader.byObject(tenant, object, rw.tupleset)) {
          // SpiceDB's arrows follow a userset subject's object too (src/model/program.ts).
          const s = t.subject;
          if (s.kind === "wildcard" || (s.kind === "userset" && !ev.spicedb) || !passes(t)) continue;
          if (!ev.program.types.get(s.type)?.relations.has(rw.computed)) continue;
          await walk(t.subjectTenant, `${s.type}:${s.id}`, rw.computed, positive, depth + 1);
        }
        return;
      case "union":
      case "intersection":
        for (const child of rw.children) await walkRewrite(child, tenant, object, relation, positive, depth);
        return;
      case "exclusion":
        await walkRewrite(rw.base, tenant, object, relation, positive, depth);
        await walkRewrite(rw.subtract, tenant, object, relation, !positive, depth);
        return;
      case "none":
        return;
    }
  };

  await walk(query.tenant, query.object, query.relation, true, 0);
  if (firstError !== undefined) throw firstError;
  return candidates;
}

/**
 * The tuples the confirming checks read: as `reader`, except that `byObject` on a relation that is not a tupleset
 * returns only the tuples naming the current candidate, the wildcards and the usersets, which are all a check's
 * direct step looks at. Indexed once per (tenant, object, relation).
 */
class CandidateView {
  candidate = "";
  readonly reader: TupleReader;
  readonly #indexes = new Map<
    string,
    Promise<{ byUser: Map<string, RelationTuple[]>; rest: RelationTuple[] }>
  >();

  constructor(inner: TupleReader, analysis: Evaluation["analysis"]) {
    const byObject = async (tenant: string, object: string, relation: string) => {
      const type = object.slice(0, object.indexOf(":"));
      if (analysis.isTupleset(type, relation)) return inner.byObject(tenant, object, relation);
      const key = tenant + SEP + object + SEP + relation;
      let index = this.#indexes.get(key);
      if (index === undefined) {
        index = inner.byObject(tenant, object, relation).then((tuples) => {
          const byUser = new Map<string, RelationTuple[]>();
          const rest: RelationTuple[] = [];
          for (const t of tuples) {
            if (t.subject.kind === "object") {
              const list = byUser.get(t.user);
              if (list === undefined) byUser.set(t.user, [t]);
              else list.push(t);
            } else rest.push(t);
          }
          return { byUser, rest };
        });
        this.#indexes.set(key, index);
      }
      const { byUser, rest } = await index;
      const own = byUser.get(this.candidate);
      return own === undefined ? rest : [...own, ...rest];
    };
    // Everything else reads through to the request's reader (getters and private state stay its own).
    this.reader = new Proxy(inner, {
      get(target, property) {
        if (property === "byObject") return byObject;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }
}
