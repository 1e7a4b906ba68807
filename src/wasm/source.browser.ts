// Browsers and Web Workers: stream-compile the asset next to this module; bundlers that do not copy .wasm
// assets (esbuild, for one) leave it missing, so fall back to the copy inlined at build time.
import { NexusError } from "../errors.js";
import { inlineKernels } from "./generated/inline.js";

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
