/**
 * Reference expand: one level of a relation's userset tree, shaped like OpenFGA's Expand response. Leaves are
 * the subjects written directly (`users`), a computed userset of the same object (`computed`), or the usersets a
 * tuple-to-userset reaches (`tupleToUserset`; a SpiceDB intersection arrow `parent.all(view)` is an `intersection`
 * of its parents' computed usersets); inner nodes are `union`, `intersection` and `difference`. Callers
 * expand a leaf's usersets with further expand calls. Conditions are not evaluated (the tree shows what is
 * written); expired tuples and tuples the model no longer allows are left out.
 */
import type { Rewrite } from "../model/program.js";
import type { RelationTuple } from "../tuples/tuple.js";
import type { Evaluation } from "./evaluation.js";

/** A subject from another tenant (a cross-tenant grant). */
export interface ForeignSubject {
  readonly tenant: string;
  readonly user: string;
}

export type UsersetLeaf =
  | { readonly users: readonly string[]; readonly foreignUsers?: readonly ForeignSubject[] }
  | { readonly computed: { readonly userset: string } }
  | {
      readonly tupleToUserset: {
        readonly tupleset: string;
        readonly computed: readonly { readonly userset: string; readonly tenant?: string }[];
      };
    };

export type UsersetNode =
  | { readonly name: string; readonly leaf: UsersetLeaf }
  | { readonly name: string; readonly union: { readonly nodes: readonly UsersetNode[] } }
  | { readonly name: string; readonly intersection: { readonly nodes: readonly UsersetNode[] } }
  | {
      readonly name: string;
      readonly difference: { readonly base: UsersetNode; readonly subtract: UsersetNode };
    };

export interface UsersetTree {
  readonly root: UsersetNode;
}

export interface ExpandQuery {
  readonly tenant: string;
  readonly object: string;
  readonly relation: string;
}

export async function expand(ev: Evaluation, query: ExpandQuery): Promise<UsersetTree> {
  const type = query.object.slice(0, query.object.indexOf(":"));
  const rel = ev.program.types.get(type)!.relations.get(query.relation)!;
  return { root: await node(ev, query, rel.rewrite) };
}

/**
 * SpiceDB's `tupleset.all(computed)`: the intersection of every parent's `computed` (a parent lacking it, or no
 * tuple at all, is an empty leaf: nobody).
 */
function intersectionArrow(
  ev: Evaluation,
  computed: string,
  tuples: readonly RelationTuple[],
): { leaf: UsersetLeaf } | { intersection: { nodes: UsersetNode[] } } {
  const nodes: UsersetNode[] = [];
  for (const t of tuples) {
    const s = t.subject;
    const parent = s.kind === "wildcard" ? undefined : `${s.type}:${s.id}`;
    if (parent === undefined || !ev.program.types.get(s.type)?.relations.has(computed)) {
      return { leaf: { users: [] } };
    }
    nodes.push({ name: `${parent}#${computed}`, leaf: { computed: { userset: `${parent}#${computed}` } } });
  }
  return nodes.length === 0 ? { leaf: { users: [] } } : { intersection: { nodes } };
}

async function node(ev: Evaluation, query: ExpandQuery, rw: Rewrite): Promise<UsersetNode> {
  const name = `${query.object}#${query.relation}`;
  switch (rw.kind) {
    case "direct": {
      const users: string[] = [];
      const foreignUsers: ForeignSubject[] = [];
      for (const t of await ev.reader.byObject(query.tenant, query.object, query.relation)) {
        if (t.subjectTenant === query.tenant) users.push(t.user);
        else foreignUsers.push({ tenant: t.subjectTenant, user: t.user });
      }
      return { name, leaf: foreignUsers.length > 0 ? { users, foreignUsers } : { users } };
    }
    case "computed":
      return { name, leaf: { computed: { userset: `${query.object}#${rw.relation}` } } };
    case "ttu": {
      const computed: { userset: string; tenant?: string }[] = [];
      const tuples = await ev.reader.byObject(query.tenant, query.object, rw.tupleset);
      if (rw.all === true) return { name, ...intersectionArrow(ev, rw.computed, tuples) };
      for (const t of tuples) {
        // SpiceDB's arrows follow a userset subject's object too; OpenFGA's only plain objects.
        const s = t.subject;
        if (s.kind === "wildcard" || (s.kind === "userset" && !ev.spicedb)) continue;
        if (!ev.program.types.get(s.type)?.relations.has(rw.computed)) continue;
        const userset = `${s.type}:${s.id}#${rw.computed}`;
        computed.push(t.subjectTenant === query.tenant ? { userset } : { userset, tenant: t.subjectTenant });
      }
      return { name, leaf: { tupleToUserset: { tupleset: `${query.object}#${rw.tupleset}`, computed } } };
    }
    case "union":
    case "intersection": {
      const nodes: UsersetNode[] = [];
      for (const child of rw.children) nodes.push(await node(ev, query, child));
      return rw.kind === "union" ? { name, union: { nodes } } : { name, intersection: { nodes } };
    }
    case "exclusion":
      return {
        name,
        difference: { base: await node(ev, query, rw.base), subtract: await node(ev, query, rw.subtract) },
      };
    case "none":
      return { name, leaf: { users: [] } };
  }
}
