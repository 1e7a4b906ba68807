/**
 * Binary search over an ascending list of numbers: the index of the last element ≤ `value` at or after `lo`.
 * The element at `lo` must be ≤ `value` (the caller's first candidate); the list must hold one at least.
 */
export function lastAtOrBefore(sorted: ArrayLike<number>, value: number, lo = 0): number {
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (sorted[mid]! <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
