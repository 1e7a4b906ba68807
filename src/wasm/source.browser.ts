// Browsers and Web Workers, as bundlers without an asset pipeline build them (esbuild) and as unbundled ES
// modules: stream-compile the asset next to this module; a bundle that did not copy the .wasm assets leaves it
// missing, so fall back to the copy inlined at build time.
import { loadKernelModule as loadInlineKernel } from "./source.inline.js";

export async function loadKernelModule(file: string): Promise<WebAssembly.Module> {
  try {
    const url = new URL(`./${file}.wasm`, import.meta.url);
    if (/^https?:$/.test(url.protocol) && typeof WebAssembly.compileStreaming === "function") {
      const response = await fetch(url);
      if (response.ok) return await WebAssembly.compileStreaming(response);
    }
  } catch {
    // Missing asset, wrong MIME type or no fetch: the inline copy below serves.
  }
  return loadInlineKernel(file);
}
