/**
 * One turn of the event loop (a macrotask, so timers and I/O run before it resolves): what every sliced job in the
 * engine awaits between slices. setImmediate where there is one (Node); browsers, web workers and workerd have only
 * setTimeout (its 0 ms may be clamped to ~4 ms after nested calls, which slows a slicer but cannot stall it).
 */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => {
    const immediate = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;
    if (immediate !== undefined) immediate(resolve);
    else setTimeout(resolve, 0);
  });
}
