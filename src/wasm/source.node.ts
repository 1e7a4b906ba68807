// Node: read the kernel's .wasm file that the build put next to this module.
import { readFile } from "node:fs/promises";
import { NexusError } from "../util/errors.js";

export async function loadKernelModule(file: string): Promise<WebAssembly.Module> {
  // From dist/ the file is a sibling; when running from src/ (tests), it is in the build's output folder.
  const candidates = [
    new URL(`./${file}.wasm`, import.meta.url),
    new URL(`../../dist/wasm/${file}.wasm`, import.meta.url),
  ];
  for (const url of candidates) {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = (await readFile(url)) as Uint8Array<ArrayBuffer>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw error;
    }
    return WebAssembly.compile(bytes);
  }
  throw new NexusError("kernel_unavailable", `WASM kernel "${file}" not found; run \`npm run build\``, {
    file,
  });
}
