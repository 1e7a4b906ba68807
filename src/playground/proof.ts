/**
 * The proof tree of a check: why `user` has (or lacks) `relation` on `object`, built from the public API alone.
 * Each userset (`object#relation`) is marked with the engine's own check answer and opened with `engine.expand`
 * (one level of its rewrite: unions, intersections, exclusions, direct subjects, computed usersets, tuple-to-
 * userset hops). Usersets the user reaches are opened further; the others are shown closed, so an allowed
 * answer reads as the path that grants it and a denied one as the branches that all failed. Bounded by depth and
 * by the number of expand calls, so a large graph cannot stall the page.
 */
import type { Engine, UsersetNode } from "../index.js";

export interface ProofNode {
  readonly label: string;
  /** The check answer of this userset, when the node is one. */
  readonly holds?: boolean;
  /** A direct subject that is the user asked about (or a wildcard covering it). */
  readonly hit?: boolean;
  readonly note?: string;
  readonly children: readonly ProofNode[];
}

const MAX_DEPTH = 12;
const MAX_EXPANDS = 120;
const MAX_SUBJECTS_SHOWN = 40;

export async function proveCheck(
  engine: Engine,
  request: { user: string; relation: string; object: string },
): Promise<ProofNode> {
  let expands = 0;
  const userType = request.user.slice(0, request.user.indexOf(":"));

  const userset = async (object: string, relation: string, path: readonly string[]): Promise<ProofNode> => {
    const label = `${object}#${relation}`;
    let holds: boolean | undefined;
    let note: string | undefined;
    try {
      holds = await engine.check({ user: request.user, relation, object });
    } catch (error) {
      note = errorText(error);
    }
    if (path.includes(label)) return { label, holds, note: "cycle", children: [] };
    // The root is always opened; below it only the branches that grant are followed.
    if (path.length > 0 && holds !== true) return { label, holds, ...(note ? { note } : {}), children: [] };
    if (path.length >= MAX_DEPTH || expands >= MAX_EXPANDS) {
      return { label, holds, note: "not expanded (proof size limit)", children: [] };
    }
    expands++;
    try {
      const tree = await engine.expand({ object, relation });
      return { label, holds, children: [await rewrite(tree.root, [...path, label])] };
    } catch (error) {
      return { label, holds, note: errorText(error), children: [] };
    }
  };

  const rewrite = async (node: UsersetNode, path: readonly string[]): Promise<ProofNode> => {
    if ("union" in node) return { label: "union (any of)", children: await all(node.union.nodes, path) };
    if ("intersection" in node) {
      return { label: "intersection (all of)", children: await all(node.intersection.nodes, path) };
    }
    if ("difference" in node) {
      const [base, subtract] = await all([node.difference.base, node.difference.subtract], path);
      return {
        label: "exclusion (base but not subtract)",
        children: [
          { label: "base", children: [base!] },
          { label: "but not", children: [subtract!] },
        ],
      };
    }
    const leaf = node.leaf;
    if ("computed" in leaf) {
      const [object, relation] = splitUserset(leaf.computed.userset);
      return { label: "computed", children: [await userset(object, relation, path)] };
    }
    if ("tupleToUserset" in leaf) {
      const children: ProofNode[] = [];
      for (const { userset: target } of leaf.tupleToUserset.computed) {
        const [object, relation] = splitUserset(target);
        children.push(await userset(object, relation, path));
      }
      return {
        label: `from ${leaf.tupleToUserset.tupleset}`,
        ...(children.length === 0 ? { note: "no tuples" } : {}),
        children,
      };
    }
    const subjects = [...leaf.users, ...(leaf.foreignUsers ?? []).map((f) => `${f.tenant}/${f.user}`)];
    const children: ProofNode[] = [];
    for (const subject of subjects.slice(0, MAX_SUBJECTS_SHOWN)) {
      const hash = subject.indexOf("#");
      if (hash > 0 && !subject.includes("/")) {
        children.push(await userset(subject.slice(0, hash), subject.slice(hash + 1), path));
      } else {
        const hit = subject === request.user || subject === `${userType}:*`;
        children.push({ label: subject, hit, children: [] });
      }
    }
    const more = subjects.length - MAX_SUBJECTS_SHOWN;
    return {
      label: "direct",
      ...(subjects.length === 0 ? { note: "no tuples" } : more > 0 ? { note: `${more} more not shown` } : {}),
      children,
    };
  };

  const all = async (nodes: readonly UsersetNode[], path: readonly string[]): Promise<ProofNode[]> => {
    const out: ProofNode[] = [];
    for (const node of nodes) out.push(await rewrite(node, path));
    return out;
  };

  return userset(request.object, request.relation, []);
}

/** The tree of one expand call as proof nodes (no user to mark): what `expand O R` shows. */
export function expandTree(node: UsersetNode): ProofNode {
  if ("union" in node) return { label: `${node.name}: union`, children: node.union.nodes.map(expandTree) };
  if ("intersection" in node) {
    return { label: `${node.name}: intersection`, children: node.intersection.nodes.map(expandTree) };
  }
  if ("difference" in node) {
    return {
      label: `${node.name}: exclusion`,
      children: [
        { label: "base", children: [expandTree(node.difference.base)] },
        { label: "but not", children: [expandTree(node.difference.subtract)] },
      ],
    };
  }
  const leaf = node.leaf;
  if ("computed" in leaf) return { label: `${node.name}: computed ${leaf.computed.userset}`, children: [] };
  if ("tupleToUserset" in leaf) {
    return {
      label: `${node.name}: from ${leaf.tupleToUserset.tupleset}`,
      children: leaf.tupleToUserset.computed.map((c) => ({ label: c.userset, children: [] })),
    };
  }
  const subjects = [...leaf.users, ...(leaf.foreignUsers ?? []).map((f) => `${f.tenant}/${f.user}`)];
  return { label: `${node.name}: direct`, children: subjects.map((s) => ({ label: s, children: [] })) };
}

function splitUserset(userset: string): [string, string] {
  const hash = userset.lastIndexOf("#");
  return [userset.slice(0, hash), userset.slice(hash + 1)];
}

export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
