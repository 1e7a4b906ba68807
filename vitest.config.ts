import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Tests run the TypeScript sources; the Node kernel source is the one the `node` condition picks in dist.
    alias: { "#wasm-source": fileURLToPath(new URL("./src/wasm/source.node.ts", import.meta.url)) },
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Browser and workerd tests drive real runtimes against the built dist/ (run `npm run build` first).
    pool: "forks",
  },
});
