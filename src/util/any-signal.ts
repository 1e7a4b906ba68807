/**
 * One signal that aborts when any of `signals` does. Long-lived signals (an engine's close signal) are shared by
 * every watch stream; adding an "abort" listener per stream would pile up listeners on them (Node warns past ten
 * and keeps each until the stream's cleanup runs). `AbortSignal.any` (Node 20.3+, current browsers, workerd) links
 * them without listeners and drops the link when the combined signal is garbage; the fallback adds listeners.
 */
export function anySignal(signals: readonly (AbortSignal | undefined)[]): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  const any = (AbortSignal as { any?: (signals: AbortSignal[]) => AbortSignal }).any;
  if (typeof any === "function") return any.call(AbortSignal, present);
  const controller = new AbortController();
  for (const signal of present) {
    if (signal.aborted) controller.abort(signal.reason);
    else signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  }
  return controller.signal;
}
