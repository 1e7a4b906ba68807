// workerd refuses to compile WebAssembly from bytes at run time: kernels arrive as pre-compiled module imports.
import { NexusError } from "../util/errors.js";
import { workerdKernels } from "./generated/workerd.js";

export async function loadKernelModule(file: string): Promise<WebAssembly.Module> {
  const module = workerdKernels[file];
  if (module === undefined)
    throw new NexusError("kernel_unavailable", `WASM kernel "${file}" is not built in`, { file });
  return module;
}
