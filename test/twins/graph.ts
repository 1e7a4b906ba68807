// TypeScript twin of the graph kernel (assembly/graph.ts) and of the closure the Leopard index (assembly/leopard.ts)
// stores: plain Maps and arrays with the same observable behaviour (lists in insertion order, order kept by
// removal, flagged tuples only counted). Test-only: the model-based tests compare the kernel with it after every
// step, so a disagreement says which side is wrong.

export const NO_REL = 0xffffffff;
export const OBJECT = 0;
export const WILDCARD = 1;
export const USERSET = 2;

interface TwinNode {
  flagged: number;
  edges: number;
  objects: number[];
  usersets: [number, number][];
  wildcards: number[];
}

const key = (...parts: number[]) => parts.join(",");

export class GraphTwin {
  readonly nodes = new Map<string, TwinNode>();
  readonly edges = new Set<string>();
  readonly subjects = new Map<string, [number, number][]>();
  tuples = 0;
  flagged = 0;

  node(object: number, relation: number): TwinNode | undefined {
    return this.nodes.get(key(object, relation));
  }

  add(
    object: number,
    relation: number,
    subject: number,
    subjectRelation: number,
    kind: number,
    flagged: boolean,
  ): 0 | 1 {
    const k = key(object, relation);
    if (flagged) {
      const node = this.#nodeFor(k);
      node.flagged++;
      this.flagged++;
      return 1;
    }
    const e = key(object, relation, subject, subjectRelation);
    if (this.edges.has(e)) return 0;
    this.edges.add(e);
    const node = this.#nodeFor(k);
    node.edges++;
    if (kind === OBJECT) node.objects.push(subject);
    else if (kind === USERSET) node.usersets.push([subject, subjectRelation]);
    else node.wildcards.push(subject);
    const sk = key(subject, subjectRelation);
    const list = this.subjects.get(sk) ?? [];
    list.push([object, relation]);
    this.subjects.set(sk, list);
    this.tuples++;
    return 1;
  }

  remove(
    object: number,
    relation: number,
    subject: number,
    subjectRelation: number,
    kind: number,
    flagged: boolean,
  ): 0 | 1 {
    const k = key(object, relation);
    const node = this.nodes.get(k);
    if (node === undefined) return 0;
    if (flagged) {
      if (node.flagged === 0) return 0;
      node.flagged--;
      this.flagged--;
      this.#dropIfEmpty(k, node);
      return 1;
    }
    const e = key(object, relation, subject, subjectRelation);
    if (!this.edges.delete(e)) return 0;
    node.edges--;
    if (kind === OBJECT) removeFirst(node.objects, (x) => x === subject);
    else if (kind === USERSET) removeFirst(node.usersets, ([s, r]) => s === subject && r === subjectRelation);
    else removeFirst(node.wildcards, (x) => x === subject);
    this.#dropIfEmpty(k, node);
    const sk = key(subject, subjectRelation);
    const list = this.subjects.get(sk)!;
    removeFirst(list, ([o, r]) => o === object && r === relation);
    if (list.length === 0) this.subjects.delete(sk);
    this.tuples--;
    return 1;
  }

  /**
   * The Leopard closure of relation `relation` over groups `groups` (all of one type): undefined when it is not
   * clean (a cycle, a userset of another relation, a flagged tuple), else member -> min distance and height per group.
   */
  closure(
    groups: readonly number[],
    relation: number,
  ): { dist: Map<number, Map<number, number>>; height: Map<number, number> } | undefined {
    const groupSet = new Set(groups);
    for (const g of groups) {
      const node = this.node(g, relation);
      if (node === undefined) continue;
      if (node.flagged > 0) return undefined;
      for (const [s, r] of node.usersets) if (r !== relation || !groupSet.has(s)) return undefined;
    }
    const height = new Map<number, number>();
    const dist = new Map<number, Map<number, number>>();
    const state = new Map<number, 1 | 2>();
    const visit = (g: number): boolean => {
      if (state.get(g) === 2) return true;
      if (state.get(g) === 1) return false;
      state.set(g, 1);
      const node = this.node(g, relation);
      const d = new Map<number, number>();
      let h = 0;
      for (const m of [...(node?.objects ?? []), ...(node?.wildcards ?? [])]) d.set(m, 0);
      for (const [c] of node?.usersets ?? []) {
        if (!visit(c)) return false;
        h = Math.max(h, height.get(c)! + 1);
        for (const [m, k] of dist.get(c)!) if (!d.has(m) || d.get(m)! > k + 1) d.set(m, k + 1);
      }
      height.set(g, h);
      dist.set(g, d);
      state.set(g, 2);
      return true;
    };
    for (const g of groups) if (!visit(g)) return undefined;
    return { dist, height };
  }

  #nodeFor(k: string): TwinNode {
    let node = this.nodes.get(k);
    if (node === undefined) {
      node = { flagged: 0, edges: 0, objects: [], usersets: [], wildcards: [] };
      this.nodes.set(k, node);
    }
    return node;
  }

  #dropIfEmpty(k: string, node: TwinNode): void {
    if (node.flagged === 0 && node.edges === 0) this.nodes.delete(k);
  }
}

function removeFirst<T>(list: T[], match: (x: T) => boolean): void {
  const i = list.findIndex(match);
  if (i >= 0) list.splice(i, 1);
}
