// Sets into a memo table that must hold the entry: at the table's hard limit (memo_set answers LIMIT_REACHED and
// changes nothing) these trap instead of going on without it. The graph's structures (its edge index, reverse
// adjacency and epochs, the Leopard index's records and marks) would otherwise miss an entry and answer as if a
// tuple were not there (a member denied, a fact never invalidated). A trap is the graph's failure model
// (assembly/graph.ts): the TypeScript side drops the graph and builds it again or answers with the reference
// evaluator. The limit is a 1 GiB slot array, some 25-50M entries in one table.
import { memo_reserve, memo_set2, memo_set4 } from "./memo";

export function put2(t: usize, a: u32, b: u32, value: u32): void {
  if (memo_set2(t, a, b, value) < 0) unreachable();
}

export function put4(t: usize, a: u32, b: u32, c: u32, d: u32, value: u32): void {
  if (memo_set4(t, a, b, c, d, value) < 0) unreachable();
}

/** memo_reserve, trapping when the table cannot take `size` entries. */
export function reserve(t: usize, size: u32): void {
  if (!memo_reserve(t, size)) unreachable();
}
