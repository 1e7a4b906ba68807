/** nexus-fast/node: everything in the root entry plus the Node-only pieces (worker pool, thresholds). */
export * from "./index.js";
