/**
 * `nexus-fast check --explain`: why a check came out as it did, built from the engine's public answers (expand
 * for the rewrite of each relation, check for each userset and parent it leads to). An allowed check prints the
 * one path that grants (relation by relation down to the tuple); a denied one prints every branch and why it does
 * not grant. The check's own answer stays the engine's; this only illustrates it, bounded in depth and size.
 */

import type { Engine } from "../engine/engine.js";
import type { UsersetNode } from "../reference/expand.js";

export interface ExplainQuery {
  readonly user: string;
  readonly relation: string;
  readonly object: string;
  readonly tenant?: string;
  readonly subjectTenant?: string;
  readonly context?: Record<string, unknown>;
}

interface Outcome {
  readonly granted: boolean;
  readonly lines: string[];
}

/** Lines explaining the check (indented two spaces per level). */
export async function explainCheck(engine: Engine, query: ExplainQuery, maxDepth = 25): Promise<string[]> {
  const explainer = new Explainer(engine, query, maxDepth);
  return (await explainer.relation(query.object, query.relation, 0, new Set())).lines;
}

/** At most this many lines are printed for one explanation (a denial in a wide model lists many branches). */
const MAX_LINES = 200;

class Explainer {
  #lines = 0;

  constructor(
    private readonly engine: Engine,
    private readonly query: ExplainQuery,
    private readonly maxDepth: number,
  ) {}

  async relation(object: string, relation: string, depth: number, onPath: Set<string>): Promise<Outcome> {
    const here = `${object}#${relation}`;
    if (onPath.has(here))
      return { granted: false, lines: [`${here}: a cycle (back to a relation on the path)`] };
    if (depth >= this.maxDepth)
      return { granted: false, lines: [`${here}: the depth limit (${this.maxDepth})`] };
    if (++this.#lines > MAX_LINES) return { granted: false, lines: ["… (more branches left out)"] };
    const granted = await this.#check(object, relation);
    let tree: Awaited<ReturnType<Engine["expand"]>>;
    try {
      tree = await this.engine.expand({
        object,
        relation,
        ...(this.query.tenant !== undefined ? { tenant: this.query.tenant } : {}),
        consistency: "fully_consistent",
      });
    } catch (error) {
      return { granted, lines: [`${here}: ${(error as Error).message}`] };
    }
    const inner = await this.node(tree.root, depth, new Set([...onPath, here]), granted);
    return {
      granted,
      lines: [`${here}: ${granted ? "granted" : "denied"}`, ...inner.lines.map((l) => `  ${l}`)],
    };
  }

  /** Explains one node of a relation's rewrite; `want` is whether to look for the granting branch. */
  async node(node: UsersetNode, depth: number, onPath: Set<string>, want: boolean): Promise<Outcome> {
    if ("leaf" in node) {
      const leaf = node.leaf;
      if ("users" in leaf) return this.#direct(leaf.users, depth, onPath);
      if ("computed" in leaf) {
        const [object, relation] = splitUserset(leaf.computed.userset);
        const inner = await this.relation(object, relation, depth, onPath);
        return { granted: inner.granted, lines: prefix("computed: ", inner.lines) };
      }
      const outcomes: Outcome[] = [];
      for (const { userset } of leaf.tupleToUserset.computed) {
        const [object, relation] = splitUserset(userset);
        const inner = await this.relation(object, relation, depth + 1, onPath);
        if (inner.granted)
          return { granted: true, lines: prefix(`from ${leaf.tupleToUserset.tupleset}: `, inner.lines) };
        outcomes.push(inner);
      }
      return {
        granted: false,
        lines:
          outcomes.length === 0
            ? [`from ${leaf.tupleToUserset.tupleset}: no parent`]
            : outcomes.flatMap((o) => prefix(`from ${leaf.tupleToUserset.tupleset}: `, o.lines)),
      };
    }
    if ("union" in node) {
      const denials: string[] = [];
      for (const child of node.union.nodes) {
        const outcome = await this.node(child, depth, onPath, want);
        if (outcome.granted) return { granted: true, lines: outcome.lines };
        denials.push(...outcome.lines);
      }
      return { granted: false, lines: prefix("any of: ", denials) };
    }
    if ("intersection" in node) {
      const lines: string[] = [];
      for (const child of node.intersection.nodes) {
        const outcome = await this.node(child, depth, onPath, want);
        if (!outcome.granted) return { granted: false, lines: prefix("all of, fails: ", outcome.lines) };
        lines.push(...outcome.lines);
      }
      return { granted: true, lines: prefix("all of: ", lines) };
    }
    const base = await this.node(node.difference.base, depth, onPath, want);
    if (!base.granted) return { granted: false, lines: prefix("base: ", base.lines) };
    const subtract = await this.node(node.difference.subtract, depth, onPath, !want);
    if (subtract.granted) return { granted: false, lines: prefix("but not (excluded): ", subtract.lines) };
    return {
      granted: true,
      lines: [...prefix("base: ", base.lines), ...prefix("but not (not excluded): ", subtract.lines)],
    };
  }

  async #direct(users: readonly string[], depth: number, onPath: Set<string>): Promise<Outcome> {
    const { user } = this.query;
    const type = user.slice(0, user.indexOf(":"));
    if (users.includes(user)) return { granted: true, lines: [`tuple: ${user}`] };
    if (users.includes(`${type}:*`)) return { granted: true, lines: [`tuple: ${type}:* (wildcard)`] };
    const denials: string[] = [];
    for (const candidate of users) {
      if (!candidate.includes("#")) continue;
      const [object, relation] = splitUserset(candidate);
      const inner = await this.relation(object, relation, depth + 1, onPath);
      if (inner.granted) return { granted: true, lines: prefix("tuple: ", inner.lines) };
      denials.push(...prefix("tuple: ", inner.lines));
    }
    return {
      granted: false,
      lines: [`no tuple names ${user}${users.length > 0 ? ` (${users.length} written)` : ""}`, ...denials],
    };
  }

  async #check(object: string, relation: string): Promise<boolean> {
    try {
      return await this.engine.check({
        user: this.query.user,
        relation,
        object,
        ...(this.query.tenant !== undefined ? { tenant: this.query.tenant } : {}),
        ...(this.query.subjectTenant !== undefined ? { subjectTenant: this.query.subjectTenant } : {}),
        ...(this.query.context !== undefined ? { context: this.query.context } : {}),
        consistency: "fully_consistent",
      });
    } catch {
      return false;
    }
  }
}

function splitUserset(userset: string): [string, string] {
  const hash = userset.lastIndexOf("#");
  return [userset.slice(0, hash), userset.slice(hash + 1)];
}

/** Prefixes the first line (the others are its indented details). */
function prefix(text: string, lines: readonly string[]): string[] {
  return lines.length === 0 ? [] : [`${text}${lines[0]}`, ...lines.slice(1)];
}
