import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Browser, workerd and bundle tests drive real runtimes against the built dist/ (`npm run build` first).
const runtimeTests = ["test/browser/**/*.test.ts", "test/workerd/**/*.test.ts", "test/bundle/**/*.test.ts"];

export default defineConfig({
  resolve: {
    // Tests run the TypeScript sources; the Node kernel source is the one the `node` condition picks in dist.
    alias: { "#wasm-source": fileURLToPath(new URL("./src/wasm/source.node.ts", import.meta.url)) },
  },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "node", include: ["test/**/*.test.ts"], exclude: runtimeTests } },
      {
        extends: true,
        test: { name: "runtimes", include: runtimeTests, globalSetup: ["test/browser/setup-chromium.ts"] },
      },
    ],
  },
});
