// Dev servers and development builds (the `development` condition inside `browser`): Vite's dev server pre-bundles
// an installed package into a folder with no .wasm beside it, so fetching would only 404 (and make Vite warn about
// the URL); the kernels inlined at build time serve directly. Size does not matter there; production builds take
// source.asset.ts. source.browser.ts falls back to this too.
import { NexusError } from "../util/errors.js";
import { inlineKernels } from "./generated/inline.js";

export async function loadKernelModule(file: string): Promise<WebAssembly.Module> {
  const base64 = inlineKernels[file];
  if (base64 === undefined)
    throw new NexusError("kernel_unavailable", `WASM kernel "${file}" is not built in`, { file });
  return WebAssembly.compile(decodeBase64(base64));
}

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
