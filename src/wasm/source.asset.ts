// Production builds of bundlers that emit `new URL("./x.wasm", import.meta.url)` as an asset and set the
// `production` export condition (Vite; webpack 5 from its mode) take this source: each kernel ships once, as a
// file the bundler emitted (or a data: URL it inlined), and nothing is inlined by nexus-fast. Bundlers without
// that condition (esbuild, as configured by default) get source.browser.ts, which carries the inline copies.
import { NexusError } from "../util/errors.js";
import { kernelUrls } from "./generated/urls.js";

export async function loadKernelModule(file: string): Promise<WebAssembly.Module> {
  const locate = kernelUrls[file];
  if (locate === undefined)
    throw new NexusError("kernel_unavailable", `WASM kernel "${file}" is not built in`, { file });
  const url = locate();
  let response: Response;
  try {
    response = await fetch(url);
  } catch (cause) {
    throw unavailable(file, url, (cause as Error).message, cause);
  }
  if (!response.ok) throw unavailable(file, url, `HTTP ${response.status}`);
  // Streaming needs the application/wasm type; a server that sends another still gets its bytes compiled.
  if (
    typeof WebAssembly.compileStreaming === "function" &&
    response.headers.get("content-type")?.split(";")[0]?.trim() === "application/wasm"
  ) {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

function unavailable(file: string, url: URL, reason: string, cause?: unknown): NexusError {
  return new NexusError(
    "kernel_unavailable",
    `WASM kernel "${file}" could not be fetched from ${url.href} (${reason}): this build chose the asset kernel ` +
      `source (the "production" export condition) but the ${file}.wasm asset is not served there. Serve the ` +
      `bundler's emitted assets, or build without the "production" condition to inline the kernels`,
    { file, url: url.href },
    cause === undefined ? undefined : { cause },
  );
}
