// Raw allocation exported by every kernel: TypeScript owns the lifetime of what it allocates (dispose/close frees).
// Kernels keep their state in raw memory (load/store), never in managed objects, so no GC is involved.

export function alloc(size: usize): usize {
  return heap.alloc(size);
}

export function free(ptr: usize): void {
  if (ptr != 0) heap.free(ptr);
}
